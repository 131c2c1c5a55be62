"""Deployment layer: the `champion` alias follows the gate; candidate lists for serving."""

from datetime import timedelta

import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    AssetSpec,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
)
from pydantic import Field

from assets.automation import after_updates_of, after_upstream_updates
from assets.evaluation import evaluation_report, optional_version
from assets.ingestion import artworks, raw_interactions
from assets.models import refit_ranker, user_segments
from assets.monitoring import QualityConfig
from assets.step_resources import k8s_step
from resources.online import OnlineStoreResource
from resources.registry import RegistryResource
from resources.storage import LakeResource
from resources.tracking import MLFLOW_HOOKS, MlFlow, mlflow_links
from resources.warehouse import WarehouseResource
from sands.features.engagement import engaged_lists, events_before, histories_with_engaged
from sands.features.training_store import label_events
from sands.ingest.contract import ARTWORKS, INTERACTIONS
from sands.models import model_store
from sands.models.aliases import CHALLENGER
from sands.models.candidates import USER_HISTORY, CandidateSpec, segment_favourites, user_histories
from sands.models.tags import CHAMPION_VERSION_TAG, DECISION_TAG, GATE_REASONS_TAG, GATE_TAG
from sands.monitoring.guard import guard_new_champion

GROUP = "deployment"

served_impressions = AssetSpec(
    "served_impressions",
    group_name=GROUP,
    kinds={"delta"},
    description="Every list `sands serve` returned (impression id, user, items with positions and "
    "scores, model version, arm, strategy, time), appended in batches by the service.",
    metadata={
        "dagster/uri": "lake/serving/impressions (sands.serving.prediction_log.impressions_uri)"
    },
)


class DeploymentConfig(QualityConfig):
    """The serving guard's settings, and whether a passed challenger serves as its refit."""

    refit: bool = Field(
        default=True,
        description="Serve the passed challenger's recipe refit on every label day, its holdout "
        "included (a new version tagged `sands.refit_of`), not the model the gate judged, which "
        "never saw the newest labels (up to max_eval_days on sparse data; docs/models.md).",
    )
    spark_workers: int = Field(default=2, ge=1, description="XGBoost tasks of a refit on Spark.")


@asset(
    deps=[evaluation_report],
    group_name=GROUP,
    automation_condition=after_updates_of("evaluation_report"),
    kinds={"mlflow", "xgboost"},
    op_tags=k8s_step("heavy"),
    hooks=MLFLOW_HOOKS,
    description="The serving model: when the challenger's promotion gate passed, refits its "
    "recipe on every label day and moves MLflow's `champion` alias to the refit; records why it "
    "did or did not (also on the Dagster run's MLflow run). A new champion then faces the "
    "serving guard on the newest label days.",
)
def deployed_ranker(
    context: AssetExecutionContext,
    config: DeploymentConfig,
    registry: RegistryResource,
    lake: LakeResource,
    warehouse: WarehouseResource,
    mlflow: ResourceParam[MlFlow],
) -> MaterializeResult:
    client = registry.open()
    challenger = client.aliased(CHALLENGER)
    if challenger is None:
        raise LookupError("no challenger registered: materialize ranker and evaluation_report")
    version = int(challenger.version)
    verdict = challenger.tags.get(GATE_TAG)
    if verdict is None:
        raise LookupError(
            f"challenger v{version} has not been evaluated: materialize evaluation_report"
        )
    reasons = challenger.tags.get(GATE_REASONS_TAG, "")
    current = client.champion_version()
    judged = client.judged_version(current) if current is not None else None
    parent = mlflow.mlflow_run_id
    if verdict == "passed" and judged != version:
        serving = version
        if config.refit:
            serving = refit_ranker(
                context, version, registry, lake, warehouse, parent, config.spark_workers
            )
        refit = f"; serving v{serving}, its refit on every label day" if serving != version else ""
        change = client.promote(
            serving,
            f"dagster run {context.run.run_id}",
            f"gate passed v{version}: {reasons}{refit}",
            "gate_promote",
        )
        previous = f"v{change.previous}" if change.previous is not None else "none"
        outcome = f"promoted v{version}{refit} (previous champion: {previous})"
        if config.guard:
            actor = f"dagster run {context.run.run_id}"
            policy, guarded = guard_new_champion(
                client, lake.root, config.objective(), actor, lake.storage_options
            )
            if guarded is not None:
                outcome += f"; the champion arm serves {policy} ({guarded.guard_reason()})"
    elif verdict == "passed":
        outcome = f"v{version} is already the champion" + (
            f" (serving as its refit v{current})" if current != version else ""
        )
    else:
        kept = f"kept champion v{current}" if current is not None else "no champion yet"
        outcome = f"{kept}; v{version} was rejected: {reasons}"
    context.log.info(outcome)
    champion = client.champion_version()
    # Empty, not "None", without a champion: as the evaluation's champion tag.
    tag = "" if champion is None else str(champion)
    client.tag_run(parent, {DECISION_TAG: outcome, CHAMPION_VERSION_TAG: tag})
    return MaterializeResult(
        metadata={
            "champion_version": optional_version(champion),
            "challenger_version": MetadataValue.int(version),
            "decision": MetadataValue.text(outcome),
            "serving_policy": MetadataValue.text(client.serving_policy()),
            "model_uri": MetadataValue.text(f"models:/{registry.model_name}@champion"),
            # The run of this decision (the Dagster run's MLflow run) and both versions' pages.
            **mlflow_links(client, None, parent, None),
            **(
                {"mlflow_champion_version": MetadataValue.url(client.ui_link(champion))}
                if champion
                else {}
            ),
            "mlflow_challenger_version": MetadataValue.url(client.ui_link(version)),
        },
        data_version=DataVersion(f"champion-v{champion}"),
    )


class CandidateSourcesConfig(Config):
    """Seeds per user and artworks per segment, and the windows they are counted over."""

    seeds: int = Field(default=CandidateSpec.seeds, ge=1)
    recent_days: int = Field(default=CandidateSpec.recent_days, ge=1)
    per_segment: int = Field(default=CandidateSpec.per_segment, ge=1)
    segment_days: int = Field(default=CandidateSpec.segment_days, ge=1)


@asset(
    deps=[raw_interactions, artworks, user_segments],
    group_name=GROUP,
    automation_condition=after_upstream_updates(),
    kinds={"delta", "sqlite", "redis"},
    description="What serving draws candidates from: each user's recently engaged and converted "
    "artworks (online store) and each segment's favourite artworks (Delta).",
)
def serving_candidates(
    context: AssetExecutionContext,
    config: CandidateSourcesConfig,
    lake: LakeResource,
    online: OnlineStoreResource,
) -> MaterializeResult:
    options = lake.storage_options
    events, _, versions = label_events(
        lake.bronze(INTERACTIONS), lake.bronze(ARTWORKS), config.recent_days, options
    )
    histories = user_histories(events, config.seeds)
    if events.num_rows:
        # The ranker's pair input for the day after the newest one landed: the day served next.
        at = pc.max(events["event_ts"]).as_py() + timedelta(days=1)
        window = events_before(lake.root, at, versions["interactions"], options)
        histories = histories_with_engaged(histories, engaged_lists(window, at))
    store = online.open()
    try:
        store.write(USER_HISTORY, "user_id", histories)
    finally:
        store.close()
    segments, segments_version = model_store.read_model_table(
        lake.root, model_store.USER_SEGMENTS, options
    )
    favourites = segment_favourites(events, segments, config.per_segment, config.segment_days)
    written = model_store.write_model_table(
        lake.root,
        model_store.SEGMENT_FAVOURITES,
        favourites,
        {**versions, "user_segments": segments_version},
        options,
    )
    context.log.info(
        f"histories of {histories.num_rows:,} users; favourites of {favourites.num_rows} segments"
        f" -> Delta v{written}"
    )
    return MaterializeResult(
        metadata={
            "users_with_history": MetadataValue.int(histories.num_rows),
            "segments": MetadataValue.int(favourites.num_rows),
            "segment_favourites_version": MetadataValue.int(written),
        }
    )
