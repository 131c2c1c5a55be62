"""Monitoring layer: drift of the newest data against the champion's training rows, and the
champion's quality on the newest labelled day. Their failing checks are retraining triggers."""

from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from assets.automation import after_upstream_updates
from assets.ingestion import raw_interactions
from assets.training import training_examples
from resources.registry import RegistryResource
from resources.storage import LakeResource
from sands.evaluation.challenger import estimate_popularity_lead
from sands.evaluation.offline import PRIMARY, EvaluationSpec
from sands.evaluation.policy_value import OffPolicySpec
from sands.features.training_store import label_events
from sands.ingest.contract import ARTWORKS, INTERACTIONS
from sands.models.aliases import CHALLENGER, CHAMPION, CHAMPION_POLICY
from sands.monitoring.champion import champion_drift, champion_quality
from sands.monitoring.drift import DriftRule
from sands.monitoring.guard import guard_serving
from sands.monitoring.online_quality import (
    BETTER,
    WORSE,
    AttributionSpec,
    OnlineObjective,
    figures_uri,
    markdown,
    online_report,
    record_figures,
)
from sands.monitoring.verdicts import Objective
from sands.serving.prediction_log import impressions_uri, recent_impressions

GROUP = "monitoring"
DRIFT_CHECK = "no_dataset_drift"
OBJECTIVE_CHECK = "champion_meets_objective"
FRESH_CHECK = "champion_is_fresh"
ONLINE_CHECK = "online_ctr_meets_objective"
# Metadata of a check that passes because there was nothing to measure (no champion yet).
NOT_MEASURED = "not_measured"


class DriftConfig(Config):
    """The current window, how each column's verdict is decided, and per feature group the share
    of drifted columns that is drift. Measured with `python -m bench drift_alarms`."""

    window_days: int = Field(default=1, ge=1, description="Newest label days compared.")
    reference_days: int = Field(
        default=3, ge=1, description="The champion's last training label days used as reference."
    )
    share_thresholds: dict[str, float] = Field(
        # The label group holds three distinct signals (positive rate, and the style and medium
        # of what converted): any one of them is a change of concept, so one in three.
        default_factory=lambda: {"user": 0.5, "artwork": 0.5, "label": 0.3},
        description="Per group, the share of its columns that must drift for the group to drift.",
    )
    calibrated: bool = Field(
        default=True,
        description="Judge each column by its distance against a floor and a permutation null "
        "at the sizes compared. Off: Evidently's rule (KS / chi-square p < 0.05 up to 1,000 "
        "reference rows), which flags most small days of a steady history.",
    )
    null_quantile: float = Field(
        default=0.99,
        gt=0.5,
        lt=1,
        description="A column drifts only when its distance exceeds this quantile of the "
        "distances of random splits of the pooled rows (a per-column false-alarm rate of 1 %).",
    )
    min_effect: float = Field(
        default=0.1,
        ge=0,
        description="Effect-size floor: normed Wasserstein or Jensen-Shannon distance below "
        "which nothing drifts however large the sample (Evidently's large-sample threshold).",
    )
    permutations: int = Field(
        default=200, ge=20, description="Random splits drawn for each column's null (seeded)."
    )
    prediction_drift_is_drift: bool = Field(
        default=False,
        description="Also fail on score drift alone. Off by default: a training set's scores "
        "move with its negative mix and a day's user sample, so alone they are noisy.",
    )

    def rule(self) -> DriftRule:
        return DriftRule(
            calibrated=self.calibrated,
            quantile=self.null_quantile,
            min_effect=self.min_effect,
            permutations=self.permutations,
        )


@asset(
    deps=[training_examples],
    group_name=GROUP,
    kinds={"html"},
    automation_condition=after_upstream_updates(),
    check_specs=[
        AssetCheckSpec(
            DRIFT_CHECK,
            asset="feature_drift",
            description="No feature group drifts (share of drifted columns under its threshold) "
            "and the champion's score distribution holds. Failing triggers retraining.",
        )
    ],
    description="Feature, prediction, label and schema drift of the newest labelled rows against "
    "the rows the champion was trained on (the exact Delta versions in its lineage).",
)
def feature_drift(
    context: AssetExecutionContext,
    config: DriftConfig,
    lake: LakeResource,
    registry: RegistryResource,
) -> MaterializeResult:
    client = registry.open()
    run = champion_drift(
        client,
        lake.root,
        config.window_days,
        config.share_thresholds,
        lake.storage_options,
        config.reference_days,
        config.rule(),
    )
    if run is None:
        return MaterializeResult(
            metadata={"status": MetadataValue.text("no champion yet: nothing to compare against")},
            check_results=[
                AssetCheckResult(
                    check_name=DRIFT_CHECK,
                    passed=True,
                    metadata={"reason": "no champion yet", NOT_MEASURED: True},
                )
            ],
        )
    result = run.result
    path = registry.report_path(f"drift-{run.window[1]}-v{run.champion_version}.html")
    with open(path, "w") as handle:
        handle.write(run.html)
    groups = "\n".join(
        f"| {g} | {share:.2f} | {threshold:.2f} | {'**drifted**' if drifted else 'ok'} |"
        for g, (share, threshold, drifted) in result.features.groups.items()
    )
    drifted = result.verdict(config.prediction_drift_is_drift)
    context.log.info(f"drift {'found' if drifted else 'none'} for {run.window}")
    return MaterializeResult(
        metadata={
            "champion_version": MetadataValue.int(run.champion_version),
            "window": MetadataValue.text(f"{run.window[0]}..{run.window[1]}"),
            "report": MetadataValue.path(path),
            "groups": MetadataValue.md(
                "| group | share drifted | threshold | verdict |\n|---|---:|---:|---|\n" + groups
            ),
            "prediction_drift": MetadataValue.float(round(result.prediction.statistic, 4)),
            "positive_rate": MetadataValue.text(
                f"{result.positive_rates[0]:.4f} -> {result.positive_rates[1]:.4f}"
            ),
        },
        check_results=[
            AssetCheckResult(
                check_name=DRIFT_CHECK,
                passed=not drifted,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "reason": MetadataValue.text(result.reason(config.prediction_drift_is_drift)),
                    "columns": MetadataValue.md(result.markdown()),
                    "prediction_drifted": MetadataValue.bool(result.prediction.drifted),
                    "label_drifted": MetadataValue.bool(result.label.drifted),
                    "schema": MetadataValue.text(
                        f"new columns {result.schema.new_columns}, missing "
                        f"{result.schema.missing_columns}, new categories "
                        f"{result.schema.new_categories}"
                    ),
                    "report": MetadataValue.path(path),
                },
            )
        ],
    )


class QualityConfig(Config):
    """The champion's objective on the newest labelled days, its maximum age in data days, the
    evidence a verdict needs, and the serving guard."""

    min_ndcg_at_10: float = Field(default=Objective.min_ndcg, ge=0)
    min_ratio_to_popularity: float = Field(default=Objective.min_ratio_to_popularity, ge=0)
    max_age_days: int = Field(default=Objective.max_age_days, ge=1)
    min_positives: int = Field(
        default=Objective.min_positives,
        ge=1,
        description="Newest label days after the champion's training cutoff are pooled until "
        "they hold this many positives.",
    )
    max_days: int = Field(default=Objective.max_days, ge=1, description="At most this many.")
    min_users: int = Field(
        default=Objective.min_users,
        ge=0,
        description="...and until they hold this many users with a positive (counted per day): "
        "a verdict averages over users.",
    )
    guard: bool = Field(
        default=True,
        description="Serve popularity instead of the champion while popularity is clearly "
        "better, and the champion again when it is clearly better or a new one passes the gate "
        "and is not behind popularity on the newest label days (deployed_ranker judges it).",
    )
    guard_margin: float = Field(
        default=Objective.guard_margin,
        ge=0,
        description="NDCG@10 by which popularity must lead the champion for popularity to serve.",
    )
    guard_confidence: float = Field(
        default=Objective.guard_confidence,
        gt=0,
        lt=1,
        description="The champion serves again when its lead over popularity is significant at "
        "this level (paired bootstrap), or when a new champion passes the gate.",
    )
    guard_online: bool = Field(
        default=True,
        description="Popularity also serves when the champion's own logged lists estimate it "
        "better than the champion beyond the interval (off-policy, `docs/ope.md`).",
    )
    guard_online_days: int = Field(
        default=3, ge=1, description="Newest served days of the champion's lists read."
    )

    def objective(self) -> Objective:
        return Objective(
            self.min_ndcg_at_10,
            self.min_ratio_to_popularity,
            self.max_age_days,
            self.min_positives,
            self.max_days,
            self.guard_margin,
            self.guard_confidence,
            self.min_users,
        )


@asset(
    deps=[training_examples],
    group_name=GROUP,
    kinds={"mlflow"},
    automation_condition=after_upstream_updates(),
    check_specs=[
        AssetCheckSpec(
            OBJECTIVE_CHECK,
            asset="champion_performance",
            description="The champion's NDCG@10 on the newest labelled days meets its objective "
            "(at least popularity's). Failing (or no champion) triggers retraining.",
        ),
        AssetCheckSpec(
            FRESH_CHECK,
            asset="champion_performance",
            description="The champion was trained on labels at most max_age_days older than the "
            "newest. A stale champion triggers retraining.",
        ),
    ],
    description="The serving champion and the popularity baseline ranking the full catalogue for "
    "the newest labelled days it was not trained on. The serving guard: while popularity is "
    "clearly better, popularity serves the champion arm (recorded in champion_history).",
)
def champion_performance(
    context: AssetExecutionContext,
    config: QualityConfig,
    lake: LakeResource,
    registry: RegistryResource,
) -> MaterializeResult:
    found = champion_quality(
        registry.open(), lake.root, config.objective(), EvaluationSpec(), lake.storage_options
    )
    if found is None:
        missing = {"reason": "no champion yet"}
        return MaterializeResult(
            metadata={"status": MetadataValue.text("no champion yet")},
            check_results=[
                AssetCheckResult(check_name=OBJECTIVE_CHECK, passed=False, metadata=missing),
                AssetCheckResult(check_name=FRESH_CHECK, passed=False, metadata=missing),
            ],
        )
    version, verdict = found
    context.log.info(verdict.reason())
    client = registry.open()
    policy = client.serving_policy()
    online = None
    if config.guard and config.guard_online and policy == CHAMPION_POLICY:
        online = estimate_popularity_lead(
            client, lake.root, OffPolicySpec(), config.guard_online_days, lake.storage_options
        )
    online_says_popularity = online is not None and online.popularity_clearly_better
    if config.guard:
        policy = guard_serving(client, verdict, f"dagster run {context.run.run_id}", online)
    context.log.info(f"serving policy: {policy} ({verdict.guard_reason()})")
    return MaterializeResult(
        metadata={
            "champion_version": MetadataValue.int(version),
            "serving_policy": MetadataValue.text(policy),
            "guard": MetadataValue.text(verdict.guard_reason()),
            "guard_online": MetadataValue.text(
                online.describe()
                if online
                else "not judged: guard_online is off, popularity already serves, or the "
                "champion's log holds too few lists (with their snapshot's sources) or reaches "
                "too little of popularity's lists"
            ),
            "day": MetadataValue.text(verdict.day),
            PRIMARY: MetadataValue.float(round(verdict.ndcg, 5)),
            "popularity_ndcg_at_10": MetadataValue.float(round(verdict.popularity_ndcg, 5)),
            "users": MetadataValue.int(verdict.users),
            "positives": MetadataValue.int(verdict.positives),
            "label_days": MetadataValue.int(verdict.days),
            "age_days": MetadataValue.int(verdict.age_days),
        },
        check_results=[
            AssetCheckResult(
                check_name=OBJECTIVE_CHECK,
                # Popularity estimated better online is a degradation too: it requests a retrain.
                passed=verdict.meets_objective and not online_says_popularity,
                metadata={
                    "reason": verdict.reason()
                    + (f"; online: {online.describe()}" if online_says_popularity else ""),
                    "objective": verdict.floor,
                },
            ),
            AssetCheckResult(
                check_name=FRESH_CHECK,
                passed=verdict.fresh,
                metadata={
                    "age_days": verdict.age_days,
                    "max_age_days": config.max_age_days,
                },
            ),
        ],
    )


class OnlineConfig(Config):
    """Attribution window, how far back to look, the champion's CTR objective and canary rule."""

    window_hours: float = Field(
        default=AttributionSpec.window_hours,
        gt=0,
        description="Hours after serving a click or conversion still counts for the list.",
    )
    lookback_days: int = Field(default=7, ge=1)
    min_ctr: float = Field(default=OnlineObjective.min_ctr, ge=0, le=1)
    min_impressions: int = Field(default=OnlineObjective.min_impressions, ge=1)
    canary_min_impressions: int = Field(default=OnlineObjective.canary_min_impressions, ge=1)
    canary_z: float = Field(default=OnlineObjective.canary_z, gt=0)

    def objective(self) -> OnlineObjective:
        return OnlineObjective(
            self.min_ctr, self.min_impressions, self.canary_min_impressions, self.canary_z
        )


@asset(
    deps=["served_impressions", raw_interactions],
    group_name=GROUP,
    kinds={"delta", "mlflow"},
    automation_condition=after_upstream_updates(),
    check_specs=[
        AssetCheckSpec(
            ONLINE_CHECK,
            asset="online_performance",
            description="The serving champion's click-through rate on its mature impressions "
            "meets the objective. Failing is the performance-degradation retraining trigger.",
        )
    ],
    description="Served lists joined with later interactions in the attribution window: CTR and "
    "conversion per arm and model version. Rolls a clearly worse canary back to zero traffic and "
    "records a clearly better one for promotion. The figures go to lake/serving/online_quality, "
    "which the service publishes as Prometheus gauges.",
)
def online_performance(
    context: AssetExecutionContext,
    config: OnlineConfig,
    lake: LakeResource,
    registry: RegistryResource,
) -> MaterializeResult:
    client = registry.open()
    aliases, share, _ = client.serving_state()
    champion, challenger = aliases.get(CHAMPION), aliases.get(CHALLENGER)
    impressions = recent_impressions(
        impressions_uri(lake.root), config.lookback_days, lake.storage_options
    )
    events, _, _ = label_events(
        lake.bronze(INTERACTIONS),
        lake.bronze(ARTWORKS),
        config.lookback_days + 1,
        lake.storage_options,
    )
    spec = AttributionSpec(window_hours=config.window_hours)
    report = online_report(impressions, events, champion, challenger, spec, config.objective())
    # For the service's /metrics (sands_online_ctr and friends): dashboards and alerts read it.
    record_figures(figures_uri(lake.root), report, datetime.now(UTC), lake.storage_options)
    actor = f"dagster run {context.run.run_id}"
    actions = []
    if report.canary == WORSE and share > 0:
        client.set_canary_share(0.0, actor, f"canary v{challenger} CTR clearly below champion")
        actions.append(f"rolled canary v{challenger} back to 0 % traffic")
    if report.canary in (WORSE, BETTER):
        recorded = client.record_canary_verdict(
            challenger, report.canary, actor, f"online CTR {report.canary} than v{champion}"
        )
        if recorded:
            actions.append(f"recorded v{challenger} as {report.canary} than the champion")
    for action in actions:
        context.log.info(action)
    reason = report.reason(config.objective())
    return MaterializeResult(
        metadata={
            "impressions": MetadataValue.int(impressions.num_rows),
            "as_of": MetadataValue.text(str(report.as_of)),
            "by_arm": MetadataValue.md(markdown(report.by_arm)),
            "champion_impressions": MetadataValue.int(report.champion_impressions),
            **(
                {"champion_ctr": MetadataValue.float(round(report.champion_ctr, 4))}
                if report.champion_ctr is not None
                else {}
            ),
            "canary": MetadataValue.text(report.canary),
            "canary_share": MetadataValue.float(share),
            "actions": MetadataValue.text("; ".join(actions) or "none"),
        },
        check_results=[
            AssetCheckResult(
                check_name=ONLINE_CHECK,
                passed=report.meets_objective,
                metadata={"reason": reason, "objective": config.min_ctr},
            )
        ],
    )
