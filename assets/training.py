"""Training data: labelled examples with point-in-time features, pinned to the versions read."""

import hashlib
import json
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from assets.automation import after_upstream_updates
from assets.features import artwork_features, user_features
from assets.ingestion import artworks, raw_interactions
from resources.storage import LakeResource
from sands.contract import ARTWORKS, INTERACTIONS
from sands.feature_store import ARTWORK_FEATURES, USER_FEATURES
from sands.training_set import LabelSpec, training_labels
from sands.training_set import training_examples as join_training_examples
from sands.training_store import (
    TRAINING_EXAMPLES,
    SourceVersions,
    feature_rows_since,
    label_events,
    write_training_set,
)

GROUP = "training"
NO_FUTURE = "features_precede_labels"


class TrainingSetConfig(Config):
    """What counts as a positive, how negatives are drawn, and how stale a feature may be."""

    positive_events: list[str] = Field(default=["favourite", "purchase"])
    viewed_negatives_per_positive: int = Field(default=2, ge=0)
    popular_negatives_per_positive: int = Field(default=2, ge=0)
    label_days: int = Field(default=7, ge=1, description="Most recent landing days to label.")
    feature_ttl_hours: int = Field(default=48, ge=1, description="Older features count as absent.")
    seed: int = 0

    def spec(self) -> LabelSpec:
        return LabelSpec(
            positive_events=tuple(self.positive_events),
            viewed_negatives=self.viewed_negatives_per_positive,
            popular_negatives=self.popular_negatives_per_positive,
            seed=self.seed,
        )


def leaked_rows(examples: pa.Table) -> int:
    """Rows whose joined features were stamped or created after their label time."""
    leaks = pa.array([False] * examples.num_rows)
    for prefix in ("user_", "artwork_"):
        for column in (f"{prefix}feature_ts", f"{prefix}created_ts"):
            later = pc.greater(examples[column], examples["label_ts"])
            leaks = pc.or_(leaks, pc.fill_null(later, False))
    return int(pc.sum(leaks).as_py() or 0)


def composition_markdown(examples: pa.Table) -> str:
    """Example counts by sample source and label, as a markdown table."""
    counts = examples.group_by(["sample_source", "label"]).aggregate([("label", "count")])
    lines = [
        f"| {row['sample_source']} | {row['label']} | {row['label_count']:,} |"
        for row in counts.sort_by("sample_source").to_pylist()
    ]
    return "| source | label | rows |\n|---|---:|---:|\n" + "\n".join(lines)


@asset(
    name="training_examples",
    deps=[raw_interactions, artworks, user_features, artwork_features],
    group_name=GROUP,
    kinds={"delta", "duckdb"},
    automation_condition=after_upstream_updates(),
    check_specs=[
        AssetCheckSpec(
            NO_FUTURE,
            asset="training_examples",
            blocking=True,
            description="No example carries a feature stamped or created after its label time.",
        )
    ],
    description="Positives, viewed and popular negatives for the latest label days, joined to "
    "user and artwork features as of each label time (Feast semantics plus created-time cutoff).",
)
def training_examples(
    context: AssetExecutionContext, config: TrainingSetConfig, lake: LakeResource
) -> MaterializeResult:
    options = lake.storage_options
    events, catalogue, bronze_versions = label_events(
        lake.bronze(INTERACTIONS), lake.bronze(ARTWORKS), config.label_days, options
    )
    ttl = timedelta(hours=config.feature_ttl_hours)
    since = pc.min(events["event_ts"]).as_py() - ttl if events.num_rows else None
    users, user_version = feature_rows_since(USER_FEATURES.uri(lake.root), since, options)
    works, artwork_version = feature_rows_since(ARTWORK_FEATURES.uri(lake.root), since, options)
    versions = SourceVersions(
        **bronze_versions,
        user_features=user_version,
        artwork_features=artwork_version,
    )
    labels = training_labels(events, catalogue, config.spec())
    examples = join_training_examples(labels, users, works, ttl)
    written = write_training_set(lake.root, examples, versions, config.model_dump(), options)
    leaks = leaked_rows(examples)
    context.log.info(f"{examples.num_rows:,} examples -> Delta v{written}; sources {versions}")
    fingerprint = json.dumps([versions.as_dict(), config.model_dump()], sort_keys=True)
    return MaterializeResult(
        metadata={
            "dagster/uri": MetadataValue.path(TRAINING_EXAMPLES.uri(lake.root)),
            "dagster/row_count": MetadataValue.int(examples.num_rows),
            "delta_version": MetadataValue.int(written),
            "source_versions": MetadataValue.md(versions.markdown()),
            "composition": MetadataValue.md(composition_markdown(examples)),
            "positive_share": MetadataValue.float(
                round(float(pc.mean(examples["label"]).as_py() or 0.0), 4)
            ),
        },
        data_version=DataVersion(hashlib.sha256(fingerprint.encode()).hexdigest()[:16]),
        check_results=[
            AssetCheckResult(
                check_name=NO_FUTURE,
                passed=leaks == 0,
                severity=AssetCheckSeverity.ERROR,
                metadata={"leaked_rows": leaks},
            )
        ],
    )
