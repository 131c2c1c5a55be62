"""Model layer: user segments, artwork similarity, the popularity baseline and the ranker."""

import hashlib
from collections.abc import Iterator
from typing import Literal

import numpy as np
import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
)
from pydantic import Field, field_validator

from assets.automation import after_upstream_updates, retrain
from assets.features import artwork_features, user_features
from assets.ingestion import artworks, raw_interactions
from assets.monitoring import champion_performance, feature_drift, online_performance
from assets.step_resources import k8s_step
from assets.training import training_examples
from resources.dbt import ensure_manifest
from resources.registry import RegistryResource
from resources.storage import LakeResource
from resources.tracking import MLFLOW_HOOKS, MlFlow, mlflow_links
from resources.warehouse import WarehouseResource
from sands.engines.compute import RankerFit
from sands.evaluation.metrics import roc_auc
from sands.evaluation.offline import (
    evaluation_split,
    label_day_count,
    popularity_scores,
)
from sands.features.offline import ARTWORK_FEATURES, USER_FEATURES, latest_snapshot
from sands.features.training_store import TRAINING_EXAMPLES, read_training_set
from sands.ingest.contract import ARTWORKS, INTERACTIONS
from sands.models import model_store
from sands.models.lineage import dbt_manifest_hash, git_commit
from sands.models.ranking import (
    TRENDING_INPUTS,
    RankerParams,
    labelled_before,
    trees_chosen_on,
    with_shuffled_labels,
)
from sands.models.refit import refit_cutoff, refit_params, refit_tags
from sands.models.segments import (
    assignments,
    fit_segments,
    profile_markdown,
    segment_profile,
)
from sands.models.similarity import (
    SimilaritySpec,
    same_style_share,
    similarity_inputs,
    similarity_table,
)
from sands.models.tags import (
    DBT_MANIFEST_TAG,
    GIT_COMMIT_TAG,
    HOLDOUT_UNTIL_TAG,
    SHUFFLED_LABELS_TAG,
    TRAIN_CUTOFF_TAG,
    TRAINING_EXAMPLES_VERSION_TAG,
    USER_SEGMENTS_VERSION_TAG,
)
from sands.models.tracking import DEFAULT_DAGSTER_UI, dagster_tags
from sands.monitoring.popularity_window import WINDOWS, WindowRule, popularity_window

GROUP = "models"


def _markdown(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


class SegmentsConfig(Config):
    """How many behaviour/demographic segments to fit."""

    segments: int = Field(default=6, ge=1, le=50)
    seed: int = 0


@asset(
    op_tags=k8s_step("heavy"),
    deps=[user_features],
    group_name=GROUP,
    automation_condition=after_upstream_updates(),
    kinds={"delta", "scikitlearn"},
    description="K-means segments of users by behaviour and demographics on the latest feature "
    "snapshot; the model is stored with the assignments and applied point in time elsewhere.",
)
def user_segments(
    context: AssetExecutionContext, config: SegmentsConfig, lake: LakeResource
) -> MaterializeResult:
    snapshot, version = latest_snapshot(
        USER_FEATURES.uri(lake.root), USER_FEATURES.key, storage_options=lake.storage_options
    )
    model = fit_segments(snapshot, config.segments, config.seed)
    rows = assignments(snapshot, model)
    written = model_store.write_segments(
        lake.root, rows, model, {"user_features": version}, lake.storage_options
    )
    profile = segment_profile(snapshot, model.assign(snapshot))
    context.log.info(f"{model.k} segments over {rows.num_rows:,} users -> Delta v{written}")
    return MaterializeResult(
        metadata={
            "dagster/uri": MetadataValue.path(
                model_store.model_uri(lake.root, model_store.USER_SEGMENTS)
            ),
            "dagster/row_count": MetadataValue.int(rows.num_rows),
            "delta_version": MetadataValue.int(written),
            "segments": MetadataValue.int(model.k),
            "profile": MetadataValue.md(profile_markdown(profile)),
        },
        data_version=DataVersion(hashlib.sha256(model.to_json().encode()).hexdigest()[:16]),
    )


class SimilarityConfig(Config):
    """Embedding block weights and sizes, neighbours kept, and the engagement window."""

    content_weight: float = Field(default=0.5, ge=0)
    behaviour_weight: float = Field(default=0.5, ge=0)
    behaviour_dims: int = Field(default=32, ge=1)
    content_dims: int = Field(
        default=SimilaritySpec.content_dims,
        ge=1,
        description="Content columns past this (a large vocabulary of descriptions or tags) are "
        "reduced to it by a truncated SVD.",
    )
    neighbours: int = Field(default=20, ge=1)
    exact_up_to: int = Field(
        default=SimilaritySpec.exact_up_to,
        ge=1,
        description="Past this many artworks, neighbours come from a clustered search (about 98 "
        "% of the exact ones, docs/benchmarks.md#similarity).",
    )
    engagement_days: int = Field(default=28, ge=1)
    seed: int = 0

    def spec(self) -> SimilaritySpec:
        return SimilaritySpec(
            content_weight=self.content_weight,
            behaviour_weight=self.behaviour_weight,
            behaviour_dims=self.behaviour_dims,
            content_dims=self.content_dims,
            neighbours=self.neighbours,
            seed=self.seed,
            exact_up_to=self.exact_up_to,
        )


@asset(
    op_tags=k8s_step("heavy"),
    deps=[artworks, raw_interactions],
    group_name=GROUP,
    automation_condition=after_upstream_updates(),
    kinds={"delta", "scikitlearn"},
    description="Artwork embeddings from content (style, medium, colours, tags, description) and "
    "co-engagement, with each artwork's nearest neighbours for candidate generation.",
)
def artwork_similarity(
    context: AssetExecutionContext, config: SimilarityConfig, lake: LakeResource
) -> MaterializeResult:
    options = lake.storage_options
    catalogue, engaged, versions = similarity_inputs(
        lake.bronze(INTERACTIONS), lake.bronze(ARTWORKS), config.engagement_days, options
    )
    table = similarity_table(catalogue, engaged, config.spec())
    written = model_store.write_model_table(
        lake.root, model_store.ARTWORK_SIMILARITY, table, versions, options
    )
    sample = table.slice(0, 5).to_pylist()
    styles = dict(
        zip(catalogue["artwork_id"].to_pylist(), catalogue["style"].to_pylist(), strict=True)
    )
    context.log.info(f"{table.num_rows:,} artwork embeddings -> Delta v{written}")
    return MaterializeResult(
        metadata={
            "dagster/uri": MetadataValue.path(
                model_store.model_uri(lake.root, model_store.ARTWORK_SIMILARITY)
            ),
            "dagster/row_count": MetadataValue.int(table.num_rows),
            "delta_version": MetadataValue.int(written),
            "neighbour_same_style_share": MetadataValue.float(
                round(same_style_share(table, catalogue), 4)
            ),
            "examples": MetadataValue.md(
                _markdown(
                    ["artwork", "style", "top neighbours (similarity)"],
                    [
                        [
                            r["artwork_id"],
                            styles[r["artwork_id"]],
                            ", ".join(
                                f"{n} ({s:.2f})"
                                for n, s in zip(
                                    r["neighbour_ids"][:3], r["neighbour_scores"][:3], strict=True
                                )
                            ),
                        ]
                        for r in sample
                    ],
                )
            ),
        },
    )


class PopularityConfig(Config):
    """The trailing window the served popularity list counts over: chosen by evidence, or fixed."""

    window_days: int | None = Field(
        default=None,
        description="1, 7 or 28 (a feature window) to fix it; unset, 7 unless another window "
        "ranked the newest labelled days better beyond chance "
        "(`sands.monitoring.popularity_window`).",
    )
    min_evidence_users: int = Field(
        default=WindowRule.min_users, ge=1, description="User-days to judge the windows on."
    )
    max_evidence_days: int = Field(
        default=WindowRule.max_days, ge=1, description="The newest label days searched for them."
    )
    confidence: float = Field(
        default=WindowRule.confidence,
        gt=0,
        lt=1,
        description="Level of the paired interval a window's gain over 7 days must clear.",
    )

    @field_validator("window_days")
    @classmethod
    def _a_feature_window(cls, days: int | None) -> int | None:
        if days is not None and days not in WINDOWS:
            raise ValueError(f"window_days {days}: popularity counts over {WINDOWS} days only")
        return days

    def rule(self) -> WindowRule:
        return WindowRule(
            min_users=self.min_evidence_users,
            max_days=self.max_evidence_days,
            confidence=self.confidence,
        )


@asset(
    deps=[artwork_features, training_examples],
    group_name=GROUP,
    automation_condition=after_upstream_updates(),
    kinds={"delta"},
    description="Recent popularity: weighted view/click/favourite/purchase counts over the "
    "trailing window, from the latest artwork features: what serving falls back to. The window "
    "is the one that ranked the newest labelled days best beyond chance (7 days by default).",
)
def popularity_baseline(
    context: AssetExecutionContext, config: PopularityConfig, lake: LakeResource
) -> MaterializeResult:
    snapshot, version = latest_snapshot(
        ARTWORK_FEATURES.uri(lake.root), ARTWORK_FEATURES.key, storage_options=lake.storage_options
    )
    choice = None
    window = config.window_days
    if window is None:
        choice = popularity_window(lake.root, config.rule(), lake.storage_options)
        window = choice.window
        context.log.info(f"popularity window: {choice.describe()}")
    scores = popularity_scores(snapshot, window)
    order = np.lexsort((np.asarray(snapshot["artwork_id"].to_pylist(), dtype=object), -scores))
    ranked = snapshot.select(["artwork_id", "feature_date"]).take(order)
    ranked = (
        ranked.append_column("score", [scores[order]])
        .append_column("rank", [np.arange(1, len(order) + 1, dtype=np.int32)])
        .append_column(
            model_store.POPULARITY_WINDOW_COLUMN, [np.full(len(order), window, dtype=np.int32)]
        )
    )
    written = model_store.write_model_table(
        lake.root,
        model_store.POPULARITY,
        ranked,
        {"artwork_features": version},
        lake.storage_options,
    )
    context.log.info(f"popularity of {ranked.num_rows:,} artworks -> Delta v{written}")
    return MaterializeResult(
        metadata={
            "dagster/uri": MetadataValue.path(
                model_store.model_uri(lake.root, model_store.POPULARITY)
            ),
            "dagster/row_count": MetadataValue.int(ranked.num_rows),
            "delta_version": MetadataValue.int(written),
            "window_days": MetadataValue.int(window),
            **(
                {
                    "window_choice": MetadataValue.text(choice.describe()),
                    "windows_judged": MetadataValue.md(choice.markdown()),
                }
                if choice is not None and choice.users
                else {}
            ),
            "top_10": MetadataValue.md(
                _markdown(
                    ["rank", "artwork", "score"],
                    [
                        [r["rank"], r["artwork_id"], f"{r['score']:.0f}"]
                        for r in ranked.slice(0, 10).to_pylist()
                    ],
                )
            ),
        },
    )


class RankerConfig(Config):
    """XGBoost hyperparameters and the evaluation window held out of training."""

    trees: int = Field(
        default=RankerParams.trees, ge=1, description="Trees (the most, with early stopping)."
    )
    early_stopping_rounds: int | None = Field(
        default=RankerParams.early_stopping_rounds,
        ge=1,
        description="Stop adding trees after this many without a better NDCG@10 on the newest "
        "training label days, then refit on every row; None (default: measured worse when "
        "tastes move, docs/models.md): always `trees`.",
    )
    validation_positives: int = Field(
        default=RankerParams.validation_positives,
        ge=1,
        description="The positives those validation days must hold; fewer (sparse data): "
        "no early stopping.",
    )
    validation_max_days: int = Field(
        default=RankerParams.validation_max_days,
        ge=1,
        description="The most training label days held out to choose the trees.",
    )
    max_depth: int = Field(default=RankerParams.max_depth, ge=1)
    learning_rate: float = Field(default=0.1, gt=0)
    min_child_weight: float = Field(default=1.0, ge=0)
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)
    reg_lambda: float = Field(default=1.0, ge=0)
    seed: int = 0
    threads: int = Field(default=2, ge=1)
    parallel_trees: int = Field(
        default=RankerParams.parallel_trees,
        ge=1,
        description="Trees grown per round on their own samples and averaged (a boosted "
        "forest): steadier models on sparse data; 1: plain boosting.",
    )
    forest_max_rows: int | None = Field(
        default=RankerParams.forest_max_rows,
        ge=1,
        description="Past this many training rows, one tree a round (a compute budget); "
        "None: parallel_trees at any size.",
    )
    half_life_days: float | None = Field(
        default=1.5, gt=0, description="Training weight halves per this many days of label age."
    )
    max_rows: int | None = Field(
        default=RankerParams.max_rows,
        ge=1,
        description="Past this many training rows, train on whole user-days sampled in "
        "proportion to their recency weight and reweighted (the same expected loss, a fraction "
        "of the time); None: every row.",
    )
    eval_days: int = Field(
        default=1, ge=1, description="Fewest last label days held out for the evaluation report."
    )
    min_eval_positives: int = Field(
        default=300,
        ge=0,
        description="Hold out more label days until the evaluation holds this many positives: "
        "on sparse data one day is too few to judge a model.",
    )
    min_eval_users: int = Field(
        default=100,
        ge=0,
        description="Hold out more label days until this many users with a positive (counted "
        "per day) are judged: the gate's intervals are over users, and a ratings history packs "
        "300 positives into 20 users.",
    )
    max_eval_days: int = Field(
        default=7,
        ge=1,
        description="The most label days held out for min_eval_positives and min_eval_users.",
    )
    shuffle_labels: bool = Field(
        default=False, description="Sabotage for gate drills: train on permuted labels."
    )
    trainer: Literal["auto", "local", "spark"] = Field(
        default="auto",
        description="local: XGBoost in this process; spark: XGBoost's Spark estimator (for sets "
        "too big for one machine); auto: spark when SANDS_ENGINE=spark.",
    )
    spark_workers: int = Field(default=2, ge=1, description="XGBoost tasks on Spark.")
    popularity_prior: float = Field(
        default=RankerParams.popularity_prior,
        ge=0,
        description="Margins start at this weight times log1p(7-day popularity), and the trees "
        "learn what popularity misses (docs/models.md); 0: no prior.",
    )
    trend_inputs: bool = Field(
        default=True,
        description="Train on the artwork trend and style/medium share inputs (slightly worse "
        "at 20k events/day, needed at 3k; docs/models.md).",
    )

    def params(self) -> RankerParams:
        return RankerParams(
            trees=self.trees,
            early_stopping_rounds=self.early_stopping_rounds,
            validation_positives=self.validation_positives,
            validation_max_days=self.validation_max_days,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            seed=self.seed,
            threads=self.threads,
            parallel_trees=self.parallel_trees,
            forest_max_rows=self.forest_max_rows,
            half_life_days=self.half_life_days,
            max_rows=self.max_rows,
            popularity_prior=self.popularity_prior,
            excluded_features=() if self.trend_inputs else TRENDING_INPUTS,
        )


def lineage_tags(
    training_version: int,
    sources: dict[str, int],
    segments_version: int,
    run_id: str,
    dagster_ui_url: str = DEFAULT_DAGSTER_UI,
) -> dict[str, str]:
    """Registry tags tying a model to the exact data, code and run (id and UI page) that made
    it."""
    tags = {f"sands.delta.{name}": str(v) for name, v in sources.items()}
    tags.update(
        {
            TRAINING_EXAMPLES_VERSION_TAG: str(training_version),
            USER_SEGMENTS_VERSION_TAG: str(segments_version),
            DBT_MANIFEST_TAG: dbt_manifest_hash(ensure_manifest()),
            GIT_COMMIT_TAG: git_commit(),
            **dagster_tags(dagster_ui_url, run_id),
        }
    )
    return tags


@asset(
    op_tags=k8s_step("heavy"),
    deps=[
        training_examples,
        user_segments,
        feature_drift,
        champion_performance,
        online_performance,
    ],
    group_name=GROUP,
    automation_condition=retrain(),
    kinds={"xgboost", "mlflow"},
    # A young history (fewer label days than the held-out window needs) skips, not fails.
    output_required=False,
    hooks=MLFLOW_HOOKS,
    description="XGBoost rank:ndcg ranker (query groups per user and day) trained on the training "
    "set minus its evaluation window; registered in MLflow with lineage, aliased `challenger`; "
    "its MLflow run is a child of the Dagster run's.",
)
def ranker(
    context: AssetExecutionContext,
    config: RankerConfig,
    lake: LakeResource,
    registry: RegistryResource,
    warehouse: WarehouseResource,
    mlflow: ResourceParam[MlFlow],
) -> Iterator[MaterializeResult]:
    options = lake.storage_options
    examples, training_version, sources = read_training_set(lake.root, None, options)
    days = label_day_count(examples)
    if days <= config.eval_days:
        context.log.warning(
            f"skipped: the training set spans {days} label day(s); holding out "
            f"{config.eval_days} for evaluation needs at least {config.eval_days + 1}"
        )
        return
    segments, segments_version = model_store.read_segment_model(lake.root, None, options)
    cutoff, held_out = evaluation_split(
        examples,
        config.eval_days,
        config.min_eval_positives,
        config.max_eval_days,
        config.min_eval_users,
    )
    context.log.info(f"holding out labels from {cutoff:%Y-%m-%d} on ({held_out:,} positives)")
    # A mask, not a copy: the trainer takes the rows it keeps once (`training_rows`).
    before = labelled_before(examples, cutoff).to_numpy(zero_copy_only=False)
    train_rows = int(before.sum())
    if config.shuffle_labels:
        examples = with_shuffled_labels(examples, config.seed, before)
    fit = RankerFit(
        examples, TRAINING_EXAMPLES.uri(lake.root), training_version, cutoff, config.shuffle_labels
    )
    engine = warehouse.compute(config.trainer, config.spark_workers)
    fitted = engine.fit_ranker(fit, segments, config.params())
    model, inputs = fitted.model, fitted.row_inputs()
    train_auc = roc_auc(fitted.rows["label"].to_numpy(zero_copy_only=False), fitted.row_margins())
    tags = lineage_tags(
        training_version,
        sources.as_dict(),
        segments_version,
        context.run.run_id,
        registry.dagster_ui_url,
    )
    tags[TRAIN_CUTOFF_TAG] = cutoff.isoformat()
    tags[HOLDOUT_UNTIL_TAG] = pc.max(examples["label_ts"]).as_py().date().isoformat()
    tags[SHUFFLED_LABELS_TAG] = str(config.shuffle_labels).lower()
    client = registry.open()
    # The Dagster run's MLflow run, opened by the mlflow resource: the ranker's run nests in it.
    parent = mlflow.mlflow_run_id
    logged = client.log_ranker(
        model,
        example=inputs,
        params={**model.spec.params, "eval_days": config.eval_days},
        metrics={"train_auc": train_auc, "train_rows": float(train_rows)},
        tags=tags,
        run_name=f"ranker {context.run.run_id[:8]}",
        parent_run_id=parent,
    )
    version = logged.version
    importance = sorted(
        model.booster.get_score(importance_type="gain").items(), key=lambda kv: -kv[1]
    )[:10]
    context.log.info(
        f"registered {registry.model_name} v{version.version} (challenger), "
        f"{model.booster.num_boosted_rounds()} trees: {trees_chosen_on(model.spec.params)}"
    )
    yield MaterializeResult(
        metadata={
            "model_version": MetadataValue.int(int(version.version)),
            "model_uri": MetadataValue.text(f"models:/{registry.model_name}/{version.version}"),
            **mlflow_links(client, logged.run_id, parent, int(version.version)),
            "train_rows": MetadataValue.int(train_rows),
            # Fewer than train_rows past max_rows: the recency sample (`training_rows`).
            "trained_rows": MetadataValue.int(
                int(model.spec.params.get("trained_rows", train_rows))
            ),
            "train_cutoff": MetadataValue.text(cutoff.isoformat()),
            "trees": MetadataValue.int(model.booster.num_boosted_rounds()),
            # How early stopping chose the trees (0 days: too few positives, every tree).
            "trees_chosen_on": MetadataValue.text(trees_chosen_on(model.spec.params)),
            "train_auc": MetadataValue.float(round(train_auc, 4)),
            "features": MetadataValue.int(len(model.spec.features)),
            "lineage": MetadataValue.md(
                _markdown(["tag", "value"], [[k, v] for k, v in sorted(tags.items())])
            ),
            "top_features_by_gain": MetadataValue.md(
                _markdown(["feature", "gain"], [[f, f"{g:.2f}"] for f, g in importance])
            ),
        },
        data_version=DataVersion(hashlib.sha256(model.model_bytes()).hexdigest()[:16]),
    )


def refit_ranker(
    context: AssetExecutionContext,
    judged: int,
    registry: RegistryResource,
    lake: LakeResource,
    warehouse: WarehouseResource,
    parent_run_id: str | None,
    spark_workers: int = 2,
) -> int:
    """Register the judged version's recipe refit on every label day of its training set (the
    version to serve, `sands.models.refit`); the judged version itself when it held nothing
    out."""
    client = registry.open()
    tags = dict(client.version(judged).tags)
    cutoff = refit_cutoff(tags)
    if cutoff is None:
        return judged
    model = client.load_ranker(judged)
    examples, training_version, _ = read_training_set(
        lake.root, int(tags[TRAINING_EXAMPLES_VERSION_TAG]), lake.storage_options
    )
    fit = RankerFit(examples, TRAINING_EXAMPLES.uri(lake.root), training_version, cutoff)
    engine = warehouse.compute("auto", spark_workers)
    fitted = engine.fit_ranker(fit, model.spec.segments(), refit_params(model))
    refit = fitted.model
    auc = roc_auc(fitted.rows["label"].to_numpy(zero_copy_only=False), fitted.row_margins())
    logged = client.log_ranker(
        refit,
        example=fitted.row_inputs(),
        params={**refit.spec.params, "refit_of": judged},
        metrics={"train_auc": auc, "train_rows": float(fitted.rows.num_rows)},
        tags={
            **refit_tags(tags, judged, cutoff),
            **dagster_tags(registry.dagster_ui_url, context.run.run_id),
        },
        run_name=f"refit of v{judged}",
        parent_run_id=parent_run_id,
        alias=None,
    )
    version = int(logged.version.version)
    context.log.info(
        f"refit v{judged} on labels up to {cutoff:%Y-%m-%d}: v{version}, "
        f"{refit.booster.num_boosted_rounds()} trees, {fitted.rows.num_rows:,} rows"
    )
    return version
