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
from assets.models import popularity_baseline, ranker, user_segments
from resources.registry import RegistryResource
from resources.storage import LakeResource
from resources.tracking import MLFLOW_HOOKS, MlFlow, mlflow_links
from sands.evaluation.challenger import evaluate_challenger, evaluation_tags
from sands.evaluation.gate import GateRules
from sands.evaluation.metrics import finite
from sands.evaluation.offline import PRIMARY, EvaluationSpec
from sands.evaluation.report import render_html, summary_markdown
from sands.models.tags import EVALUATION_RUN_TAG, MODEL_VERSION_TAG
from sands.models.tracking import dagster_tags

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
        "each reference, which must lie above zero; 0 compares means only.",
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
        )


@asset(
    deps=[ranker, popularity_baseline, user_segments],
    group_name=GROUP,
    automation_condition=after_updates_of("ranker"),
    kinds={"mlflow", "html"},
    hooks=MLFLOW_HOOKS,
    check_specs=[
        AssetCheckSpec(
            GATE,
            asset="evaluation_report",
            blocking=True,
            description="The challenger beats both the champion and the popularity baseline by "
            "the margin and beyond chance, stays above the floors, no guarded slice regresses, "
            "behaviour holds.",
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
    run = evaluate_challenger(
        client,
        lake.root,
        config.spec(),
        config.rules(),
        config.popularity_window_days,
        lake.storage_options,
    )
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
            "champion_version": MetadataValue.int(run.champion_version or 0),
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
