"""Training data: labelled examples with point-in-time features, pinned to the versions read."""

import hashlib
import json
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from assets.automation import after_upstream_updates
from assets.features import artwork_features, user_features
from assets.ingestion import artworks, raw_interactions
from assets.step_resources import k8s_step
from resources.storage import LakeResource
from resources.warehouse import WarehouseResource
from sands.features.engagement import events_before, with_engaged
from sands.features.offline import ARTWORK_FEATURES, USER_FEATURES
from sands.features.training_set import LabelSpec, training_labels
from sands.features.training_store import (
    TRAINING_EXAMPLES,
    SourceVersions,
    evidence_days,
    label_events,
    write_training_set,
)
from sands.ingest.contract import ARTWORKS, EVENT_TYPES, INTERACTIONS, positive_events
from sands.settings import POSITIVE_EVENTS_VAR

GROUP = "training"
NO_FUTURE = "features_precede_labels"


class TrainingSetConfig(Config):
    """What counts as a positive, how negatives are drawn, and how stale a feature may be."""

    positive_events: list[str] | None = Field(
        default=None,
        description="Event types that make a positive; default: SANDS_POSITIVE_EVENTS, or "
        "favourite and purchase.",
    )
    viewed_negatives_per_positive: int = Field(default=LabelSpec.viewed_negatives, ge=0)
    popular_negatives_per_positive: int = Field(
        default=LabelSpec.popular_negatives, ge=0, description="Catalogue draws by popularity."
    )
    uniform_negatives_per_positive: int = Field(
        default=LabelSpec.uniform_negatives, ge=0, description="Uniform catalogue draws."
    )
    label_days: int = Field(default=7, ge=1, description="Most recent landing days to label.")
    min_positives: int = Field(
        default=3000,
        ge=0,
        description="On sparse histories, label further back until the window holds this many "
        "positive events (a model needs enough of them to learn and to be judged on).",
    )
    max_label_days: int = Field(
        default=28, ge=1, description="The furthest back labelling reaches for min_positives."
    )
    feature_ttl_hours: int = Field(default=48, ge=1, description="Older features count as absent.")
    seed: int = 0

    def positives(self) -> tuple[str, ...]:
        """The configured positive events, else the home's (`positive_events`)."""
        if self.positive_events is None:
            return positive_events()
        unknown = sorted(set(self.positive_events) - set(EVENT_TYPES))
        if unknown or not self.positive_events:
            raise Failure(
                f"positive_events {self.positive_events}: expected one or more of "
                f"{', '.join(EVENT_TYPES)}{f', not {unknown}' if unknown else ''}"
            )
        return tuple(self.positive_events)

    def spec(self) -> LabelSpec:
        return LabelSpec(
            positive_events=self.positives(),
            viewed_negatives=self.viewed_negatives_per_positive,
            popular_negatives=self.popular_negatives_per_positive,
            uniform_negatives=self.uniform_negatives_per_positive,
            seed=self.seed,
        )


def leaked_rows(examples: pa.Table) -> int:
    """Rows whose joined features were stamped or created after their label time."""
    leaks = pa.array(np.zeros(examples.num_rows, dtype=bool))  # typed even when empty
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
    op_tags=k8s_step("heavy"),
    name="training_examples",
    deps=[raw_interactions, artworks, user_features, artwork_features],
    group_name=GROUP,
    kinds={"delta", "duckdb", "spark"},
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
    context: AssetExecutionContext,
    config: TrainingSetConfig,
    lake: LakeResource,
    warehouse: WarehouseResource,
) -> MaterializeResult:
    options = lake.storage_options
    wanted = config.positives()
    settings = {**config.model_dump(), "positive_events": list(wanted)}
    days, positives = evidence_days(
        lake.bronze(INTERACTIONS),
        wanted,
        config.label_days,
        config.min_positives,
        max(config.max_label_days, config.label_days),
        options,
    )
    if positives == 0:
        # An empty training set would pass for one: every model step after it would fail on it.
        raise Failure(
            f"no {' or '.join(wanted)} events in the last {days} landing days: nothing to "
            "label, so no training set is written (the last one stays); for a click or view "
            f"log, set {POSITIVE_EVENTS_VAR} (e.g. click,favourite,purchase)"
        )
    events, catalogue, bronze_versions = label_events(
        lake.bronze(INTERACTIONS), lake.bronze(ARTWORKS), days, options
    )
    context.log.info(f"labelling {days} landing days holding {positives:,} positive events")
    ttl = timedelta(hours=config.feature_ttl_hours)
    since = pc.min(events["event_ts"]).as_py() - ttl if events.num_rows else None
    labels = training_labels(events, catalogue, config.spec())
    if labels.num_rows:
        # The pair input reaches back a window before the first label: read on the same version.
        first = pc.min(labels["label_ts"]).as_py()
        history = events_before(lake.root, first, bronze_versions["interactions"], options)
        labels = with_engaged(labels, history)
    uris = [USER_FEATURES.uri(lake.root), ARTWORK_FEATURES.uri(lake.root)]
    examples, (user_version, artwork_version) = warehouse.compute().training_examples(
        labels, uris, since, ttl, lake.storage_options
    )
    versions = SourceVersions(
        **bronze_versions,
        user_features=user_version,
        artwork_features=artwork_version,
    )
    written = write_training_set(lake.root, examples, versions, settings, options)
    leaks = leaked_rows(examples)
    context.log.info(f"{examples.num_rows:,} examples -> Delta v{written}; sources {versions}")
    fingerprint = json.dumps([versions.as_dict(), settings], sort_keys=True)
    return MaterializeResult(
        metadata={
            "dagster/uri": MetadataValue.path(TRAINING_EXAMPLES.uri(lake.root)),
            "dagster/row_count": MetadataValue.int(examples.num_rows),
            "delta_version": MetadataValue.int(written),
            "source_versions": MetadataValue.md(versions.markdown()),
            "composition": MetadataValue.md(composition_markdown(examples)),
            "label_days": MetadataValue.int(days),
            "positive_events": MetadataValue.text(", ".join(wanted)),
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
