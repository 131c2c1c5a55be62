"""Evaluation layer: the challenger's report against champion and popularity, and the gate."""

import hashlib

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
)
from pydantic import Field

from assets.automation import after_updates_of
from assets.ingestion import raw_interactions
from assets.models import popularity_baseline, ranker, user_segments
from resources.registry import RegistryResource
from resources.storage import LakeResource
from resources.tracking import MLFLOW_HOOKS, MlFlow, mlflow_links
from sands.evaluation.challenger import estimate_off_policy, evaluate_challenger, evaluation_tags
from sands.evaluation.gate import GateRules
from sands.evaluation.metrics import finite
from sands.evaluation.off_policy import DEFAULT_CLIP, ESTIMATORS
from sands.evaluation.offline import PRIMARY, EvaluationSpec, NothingToRank
from sands.evaluation.policy_value import OffPolicySpec
from sands.evaluation.report import render_html, summary_markdown
from sands.models.aliases import CHALLENGER
from sands.models.registry import Registry
from sands.models.tags import EVALUATION_RUN_TAG, MODEL_VERSION_TAG, OFF_POLICY_TAG
from sands.models.tracking import dagster_tags
from sands.monitoring.online_quality import AttributionSpec

GROUP = "evaluation"
GATE = "promotion_gate"


class EvaluationConfig(Config):
    """Metric cut-off, slicing, and the promotion gate's rules."""

    k: int = Field(default=10, ge=1)
    new_user_days: float = Field(default=7.0, gt=0, description="Tenure below this is 'new'.")
    popularity_window_days: int = Field(default=7, description="1, 7 or 28 (a feature window).")
    primary_metric: str = PRIMARY
    min_improvement: float = Field(
        default=0.0,
        ge=0,
        description="Absolute margin over the champion and popularity on the primary metric.",
    )
    confidence: float = Field(
        default=GateRules.confidence,
        ge=0,
        lt=1,
        description="Two-sided level of the per-user paired bootstrap interval of the gain over "
        "popularity, which must lie above zero; 0 compares means only.",
    )
    champion_confidence: float = Field(
        default=GateRules.champion_confidence,
        ge=0,
        lt=1,
        description="The same for the gain over the champion; 0 compares means, so a tie goes "
        "to the challenger, which saw newer data.",
    )
    off_policy: bool = Field(
        default=GateRules.off_policy,
        description="Hold back a challenger the champion's logged lists estimate worse than the "
        "champion beyond the interval (`off_policy_estimate`).",
    )
    floors: dict[str, float] = Field(default_factory=lambda: {"auc": 0.6, PRIMARY: 0.01})
    guarded_dimensions: list[str] = Field(default_factory=lambda: ["user_type", "segment"])
    slice_tolerance: float = Field(default=0.05, ge=0)
    min_slice_users: int = Field(default=30, ge=1)
    require_behaviour: bool = True

    def spec(self) -> EvaluationSpec:
        return EvaluationSpec(
            k=self.k,
            new_user_days=self.new_user_days,
            popularity_window_days=self.popularity_window_days,
        )

    def rules(self) -> GateRules:
        return GateRules(
            primary_metric=self.primary_metric,
            min_improvement=self.min_improvement,
            floors=dict(self.floors),
            guarded_dimensions=tuple(self.guarded_dimensions),
            slice_tolerance=self.slice_tolerance,
            min_slice_users=self.min_slice_users,
            require_behaviour=self.require_behaviour,
            confidence=self.confidence,
            champion_confidence=self.champion_confidence,
            off_policy=self.off_policy,
        )


class OffPolicyConfig(Config):
    """How the champion's logged lists judge a challenger before it serves anyone."""

    estimator: str = Field(
        default=OffPolicySpec.estimator,
        description=f"The reported estimator, one of {', '.join(ESTIMATORS)}.",
    )
    gate_estimator: str = Field(
        default=OffPolicySpec.gate_estimator,
        description="Whose challenger - champion difference the gate reads: dr (each model's own "
        "calibrated click model) or the reported `estimator`.",
    )
    clip: float = Field(default=DEFAULT_CLIP, gt=0, description="Largest weight of one click.")
    confidence: float = Field(default=OffPolicySpec.confidence, gt=0, lt=1)
    window_hours: float = Field(
        default=AttributionSpec.window_hours,
        gt=0,
        description="Hours after serving a click still counts for the list.",
    )
    lookback_days: int = Field(default=7, ge=1, description="Newest served days read.")
    min_lists: int = Field(
        default=OffPolicySpec.min_lists, ge=1, description="Fewer logged lists: not judged."
    )
    examination_prior: float = Field(
        default=OffPolicySpec.examination_prior,
        ge=0,
        description="Position bias (1/position)^this until the log's explored clicks fit one.",
    )
    min_explored_clicks: int = Field(default=OffPolicySpec.min_explored_clicks, ge=1)
    min_agreement: float = Field(
        default=OffPolicySpec.min_agreement,
        ge=0,
        le=1,
        description="Judge only when the champion recomputed offline reproduces this share of "
        "its logged greedy slots (the targets' lists are then what they would serve).",
    )
    min_support: float = Field(
        default=OffPolicySpec.min_support,
        ge=0,
        le=1,
        description="Below this share of the challenger's examination on artworks the log could "
        "have shown, the estimators are blind to the rest: the gate reads the challenger's list "
        "by the champion's click model (`extrapolate`) or does not judge.",
    )
    extrapolate: bool = Field(
        default=OffPolicySpec.extrapolate,
        description="Below `min_support`, judge by the champion's click model read at the "
        "challenger's list; false: not judged (the offline gate and the canary decide).",
    )
    k: int = Field(default=10, ge=1)
    popularity_window_days: int = Field(default=7, description="1, 7 or 28 (a feature window).")

    def spec(self) -> OffPolicySpec:
        return OffPolicySpec(
            k=self.k,
            estimator=self.estimator,
            gate_estimator=self.gate_estimator,
            clip=self.clip,
            confidence=self.confidence,
            window_hours=self.window_hours,
            min_lists=self.min_lists,
            examination_prior=self.examination_prior,
            min_explored_clicks=self.min_explored_clicks,
            min_agreement=self.min_agreement,
            min_support=self.min_support,
            extrapolate=self.extrapolate,
        )


def optional_version(version: int | None) -> MetadataValue:
    """A model version for the UI: null, not 0, when there is none."""
    return MetadataValue.null() if version is None else MetadataValue.int(version)


@asset(
    deps=[ranker, popularity_baseline, "served_impressions", raw_interactions],
    group_name=GROUP,
    automation_condition=after_updates_of("ranker"),
    kinds={"mlflow"},
    description="Off-policy estimates of clicks and conversions per list for the challenger, the "
    "champion and popularity, from the lists the champion served (with exploration and logged "
    "propensities) since the challenger's cut-off; tagged on the challenger's version for the "
    "gate's online criterion.",
)
def off_policy_estimate(
    context: AssetExecutionContext,
    config: OffPolicyConfig,
    lake: LakeResource,
    registry: RegistryResource,
) -> MaterializeResult:
    client = registry.open()
    comparison = estimate_off_policy(
        client,
        lake.root,
        config.spec(),
        EvaluationSpec(k=config.k, popularity_window_days=config.popularity_window_days),
        config.lookback_days,
        lake.storage_options,
    )
    version = int(client.aliased(CHALLENGER).version)
    # An empty tag clears an estimate from an earlier champion's log.
    client.tag_version(version, {OFF_POLICY_TAG: comparison.to_json() if comparison else ""})
    if comparison is None:
        summary = "No champion lists logged after the challenger's cut-off: not judged."
    else:
        why_not = comparison.unjudged_reason
        summary = "\n\n".join(
            part
            for part in (
                comparison.markdown() if comparison.estimates else "",
                f"Not judged: {why_not}." if why_not else "",
            )
            if part
        )
    difference = comparison.gate_estimates()[2] if comparison and comparison.difference else None
    judged = comparison is not None and comparison.unjudged_reason is None
    context.log.info(
        f"challenger - champion as the gate reads it: {difference.describe()}"
        if difference and judged
        else summary.splitlines()[-1]
    )
    return MaterializeResult(
        metadata={
            "challenger_version": MetadataValue.int(version),
            "lists": MetadataValue.int(comparison.lists if comparison else 0),
            "estimates": MetadataValue.md(summary),
            **(
                {
                    "difference": MetadataValue.float(round(difference.value, 5)),
                    "difference_estimator": MetadataValue.text(comparison.judged_by),
                }
                if difference
                else {}
            ),
        },
    )


@asset(
    deps=[ranker, popularity_baseline, user_segments, off_policy_estimate],
    group_name=GROUP,
    automation_condition=after_updates_of("off_policy_estimate"),
    kinds={"mlflow", "html"},
    hooks=MLFLOW_HOOKS,
    check_specs=[
        AssetCheckSpec(
            GATE,
            asset="evaluation_report",
            blocking=True,
            description="The challenger beats both the champion and the popularity baseline by "
            "the margin and beyond chance, stays above the floors, no guarded slice regresses, "
            "behaviour holds, and the champion's logged lists do not estimate it worse online.",
        )
    ],
    description="Temporal-split, full-catalogue evaluation of the challenger against the champion "
    "and the popularity baseline: metrics, slices, calibration, behaviour tests, HTML report; "
    "logged as a child of the Dagster run's MLflow run.",
)
def evaluation_report(
    context: AssetExecutionContext,
    config: EvaluationConfig,
    lake: LakeResource,
    registry: RegistryResource,
    mlflow: ResourceParam[MlFlow],
) -> MaterializeResult:
    client = registry.open()
    try:
        run = evaluate_challenger(
            client,
            lake.root,
            config.spec(),
            config.rules(),
            config.popularity_window_days,
            lake.storage_options,
        )
    except NothingToRank as why:
        return _not_judged(context, client, str(why))
    version = run.challenger_version
    path = registry.report_path(f"evaluation-v{version}.html")
    with open(path, "w") as handle:
        handle.write(render_html(run.report))
    metrics = finite(
        {f"eval_{k}": v for k, v in {**run.challenger.overall, **run.challenger.pointwise}.items()}
    )
    verdict_tags = evaluation_tags(run)
    # A child of the Dagster run's MLflow run, opened by the mlflow resource.
    parent = mlflow.mlflow_run_id
    logged = client.log_child_run(
        parent,
        f"evaluation v{version} {context.run.run_id[:8]}",
        {"evaluation": path},
        metrics,
        {
            **dagster_tags(registry.dagster_ui_url, context.run.run_id),
            **verdict_tags,
            MODEL_VERSION_TAG: str(version),
        },
    )
    client.tag_version(version, {**verdict_tags, EVALUATION_RUN_TAG: logged.run_id})
    if not run.decision.passed:
        client.record_rejection(
            version, f"dagster run {context.run.run_id}", "; ".join(run.decision.reasons)
        )
    verdict = "passed" if run.decision.passed else "failed"
    context.log.info(f"v{version} gate {verdict} against {run.decision.reference}")
    fingerprint = f"{version}|{run.champion_version}|{run.decision.passed}|{run.challenger.overall}"
    return MaterializeResult(
        metadata={
            "challenger_version": MetadataValue.int(version),
            "champion_version": optional_version(run.champion_version),
            "report": MetadataValue.path(path),
            "report_in_mlflow": MetadataValue.url(logged.artifacts["evaluation"]),
            **mlflow_links(client, logged.run_id, parent, version),
            "summary": MetadataValue.md(summary_markdown(run.report)),
            PRIMARY: MetadataValue.float(round(run.challenger.overall[PRIMARY], 5)),
            "users": MetadataValue.int(int(run.challenger.overall["users"])),
        },
        data_version=DataVersion(hashlib.sha256(fingerprint.encode()).hexdigest()[:16]),
        check_results=[
            AssetCheckResult(
                check_name=GATE,
                passed=run.decision.passed,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "challenger_version": MetadataValue.int(version),
                    "reference": MetadataValue.text(run.decision.reference),
                    "criteria": MetadataValue.md(run.decision.markdown()),
                },
            )
        ],
    )


def _not_judged(context: AssetExecutionContext, client: Registry, why: str) -> MaterializeResult:
    """The gate's verdict on a challenger whose holdout nothing could be ranked on: rejected,
    with the reason, so nothing is deployed ungated and the loop goes on."""
    version = int(client.aliased(CHALLENGER).version)
    reason = f"not judged: {why}"
    client.record_rejection(version, f"dagster run {context.run.run_id}", reason)
    context.log.warning(f"v{version} {reason}")
    return MaterializeResult(
        metadata={
            "challenger_version": MetadataValue.int(version),
            "not_judged": MetadataValue.text(why),
        },
        check_results=[
            AssetCheckResult(
                check_name=GATE,
                passed=False,
                severity=AssetCheckSeverity.ERROR,
                metadata={"reason": MetadataValue.text(reason)},
            )
        ],
    )
