"""Bronze layer: landing-zone drops validated against the contract and written to Delta."""

from datetime import date, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    DailyPartitionsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
    asset_check,
)
from pydantic import Field

from assets.step_resources import k8s_step
from resources.storage import LakeResource, LandingZoneResource
from sands.ingest.bronze import IngestReport, ingest_day, ingest_reference
from sands.ingest.contract import ARTWORKS, INTERACTIONS, USERS, Entity
from sands.ingest.partitions import EMPTY_LANDING_START, PartitionRange
from sands.ingest.quarantine import rejected_file_line
from sands.ingest.validation import stored_table_failures
from sands.lake import delta
from sands.settings import PARTITIONS_START_VAR, partitions_start

GROUP = "ingestion"


def daily_partitions_for(covered: PartitionRange) -> DailyPartitionsDefinition:
    """Dagster's daily partitions over a range from `sands.ingest.partitions` (open: through
    today)."""
    start = covered.start.isoformat()
    if covered.end is None:
        return DailyPartitionsDefinition(start_date=start, end_offset=1, timezone="UTC")
    end = (covered.end + timedelta(days=1)).isoformat()  # Dagster's end_date is exclusive
    return DailyPartitionsDefinition(start_date=start, end_date=end, timezone="UTC")


def covered_range(partitions: PartitionsDefinition) -> PartitionRange:
    """The days a loaded daily partitions definition holds, for `sands.ingest.partitions`'
    messages."""
    keys = partitions.get_partition_keys()
    pinned = partitions_start()  # valid: the code location loaded with it
    origin = f"{PARTITIONS_START_VAR}={pinned}" if pinned else "as the code location loaded"
    if not keys:
        return PartitionRange(date.max, date.min, origin)
    return PartitionRange(date.fromisoformat(keys[0]), date.fromisoformat(keys[-1]), origin)


# What the assets are declared with. `build_defs` swaps in the range derived from the landing
# zone (`sands.ingest.partitions`), so this one only shows when an asset is used outside a code
# location.
daily_partitions = daily_partitions_for(PartitionRange(EMPTY_LANDING_START))

ACCOUNTED = "rows_accounted_for"
REJECT_BUDGET = "reject_rate_within_budget"
FILES_READABLE = "files_readable"


class IngestionConfig(Config):
    """How much bad input a drop may carry before its check fails and blocks downstream."""

    max_reject_share: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Largest tolerated share of rejected rows."
    )


def _check_specs(asset_name: str) -> list[AssetCheckSpec]:
    key = AssetKey(asset_name)
    return [
        AssetCheckSpec(
            ACCOUNTED,
            asset=key,
            blocking=True,
            description="Accepted + rejected rows equal the rows read: nothing is lost.",
        ),
        AssetCheckSpec(
            REJECT_BUDGET,
            asset=key,
            blocking=True,
            description="The share of rejected rows stays within the configured budget.",
        ),
        # A warning, not a block: the drop's other files are in bronze and good to use.
        AssetCheckSpec(
            FILES_READABLE,
            asset=key,
            blocking=False,
            description="Every landing file could be read; unreadable ones are quarantined whole.",
        ),
    ]


def reject_line(report: IngestReport, budget: float) -> str:
    """One line: how much was rejected against the budget, and by which rules (most first)."""
    ranked = sorted(report.reason_counts.items(), key=lambda kv: -kv[1])
    rules = ", ".join(f"{code} {count:,}" for code, count in ranked[:3])
    more = f" and {len(ranked) - 3} more rules" if len(ranked) > 3 else ""
    head = (
        f"{report.rows_rejected:,} of {report.rows_read:,} rows rejected "
        f"({report.reject_share:.1%}, budget {budget:.1%})"
    )
    hints = "".join(f"; {hint}" for hint in report.hints)
    return f"{head}: {rules}{more}{hints} (rules: docs/data-contract.md)" if rules else head


def reasons_markdown(reason_counts: dict[str, int]) -> str:
    """Reason codes and their row counts as a markdown table for the Dagster UI."""
    if not reason_counts:
        return "No rows rejected."
    rows = "\n".join(
        f"| `{code}` | {count:,} |"
        for code, count in sorted(reason_counts.items(), key=lambda kv: -kv[1])
    )
    return "| reason | rows |\n|---|---:|\n" + rows


def ingestion_checks(report: IngestReport, config: IngestionConfig) -> list[AssetCheckResult]:
    """Check results that travel with the materialization: accounting and the reject budget."""
    return [
        AssetCheckResult(
            check_name=ACCOUNTED,
            passed=report.balanced,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "rows_read": report.rows_read,
                "rows_accepted": report.rows_accepted,
                "rows_rejected": report.rows_rejected,
                "files_read": len(report.rows_per_file),
                "files_rejected": report.files_rejected,
            },
        ),
        AssetCheckResult(
            check_name=REJECT_BUDGET,
            passed=report.reject_share <= config.max_reject_share,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "reason": MetadataValue.text(reject_line(report, config.max_reject_share)),
                "reject_share": MetadataValue.float(round(report.reject_share, 6)),
                "max_reject_share": MetadataValue.float(config.max_reject_share),
                "reasons": MetadataValue.md(reasons_markdown(report.reason_counts)),
            },
        ),
        AssetCheckResult(
            check_name=FILES_READABLE,
            passed=report.files_rejected == 0,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "files_rejected": report.files_rejected,
                "rejected_files": MetadataValue.md(rejected_files_markdown(report)),
            },
        ),
    ]


def rejected_files_markdown(report: IngestReport) -> str:
    """Unreadable files, why, and where their bytes were kept, as a markdown list."""
    if not report.rejected_files:
        return "Every file was read."
    return "\n".join(f"- {rejected_file_line(f)}" for f in report.rejected_files)


def report_metadata(report: IngestReport, table_uri: str, quarantine_uri: str) -> dict[str, object]:
    """Materialization metadata: accounting, Delta versions, reasons, files."""
    return {
        "dagster/row_count": MetadataValue.int(report.rows_accepted),
        "dagster/uri": MetadataValue.path(table_uri),
        "rows_read": MetadataValue.int(report.rows_read),
        "rows_accepted": MetadataValue.int(report.rows_accepted),
        "rows_rejected": MetadataValue.int(report.rows_rejected),
        "files_rejected": MetadataValue.int(report.files_rejected),
        "rejected_files": MetadataValue.json(report.rejected_files),
        "rows_per_file": MetadataValue.json(report.rows_per_file),
        "rows_inserted": MetadataValue.int(report.rows_inserted),
        "rows_updated": MetadataValue.int(report.rows_updated),
        "rows_repeated": MetadataValue.int(report.rows_repeated),
        "versions_unchanged": MetadataValue.int(report.versions_unchanged),
        "versions_corrected": MetadataValue.int(report.versions_corrected),
        "delta_version": MetadataValue.int(report.table_version),
        "quarantine_version": MetadataValue.int(report.quarantine_version),
        "quarantine_uri": MetadataValue.path(quarantine_uri),
        "reasons": MetadataValue.md(reasons_markdown(report.reason_counts)),
        "reason_counts": MetadataValue.json(report.reason_counts),
        "hints": MetadataValue.json(report.hints),
        "unexpected_columns": MetadataValue.json(report.unexpected_columns),
        "files": MetadataValue.md("\n".join(f"- `{f}`" for f in report.files) or "No files."),
    }


def _result(
    context: AssetExecutionContext,
    report: IngestReport,
    lake: LakeResource,
    entity: Entity,
    config: IngestionConfig,
) -> MaterializeResult:
    for rejected in report.rejected_files:
        context.log.warning(rejected_file_line(rejected))
    return MaterializeResult(
        metadata=report_metadata(report, lake.bronze(entity), lake.quarantine(entity)),
        check_results=ingestion_checks(report, config),
        # Same landing files -> same data version, so unchanged input does not ripple downstream.
        data_version=DataVersion(report.files_digest),
    )


@asset(
    op_tags=k8s_step("light"),
    partitions_def=daily_partitions,
    group_name=GROUP,
    kinds={"delta", "pandera"},
    check_specs=_check_specs("raw_interactions"),
    code_version="1",
    description="Interaction events by landing day, validated against the contract; "
    "rejected rows go, unchanged and with reason codes, to the quarantine table.",
)
def raw_interactions(
    context: AssetExecutionContext,
    config: IngestionConfig,
    landing: LandingZoneResource,
    lake: LakeResource,
) -> MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    report = ingest_day(landing.root, lake.root, day, lake.storage_options)
    context.log.info(
        f"{day}: read {report.rows_read:,}, accepted {report.rows_accepted:,}, "
        f"rejected {report.rows_rejected:,} -> Delta v{report.table_version}"
    )
    return _result(context, report, lake, INTERACTIONS, config)


def _reference_asset(entity: Entity, description: str) -> AssetsDefinition:
    @asset(
        name=entity.name,
        group_name=GROUP,
        kinds={"delta", "pandera"},
        check_specs=_check_specs(entity.name),
        code_version="1",
        description=description,
    )
    def _ingest(
        context: AssetExecutionContext,
        config: IngestionConfig,
        landing: LandingZoneResource,
        lake: LakeResource,
    ) -> MaterializeResult:
        report = ingest_reference(entity, landing.root, lake.root, lake.storage_options)
        context.log.info(
            f"{entity.name}: read {report.rows_read:,}, inserted {report.rows_inserted:,}, "
            f"updated {report.rows_updated:,}, rejected {report.rows_rejected:,}, identical "
            f"copies of an earlier row {report.rows_repeated:,}, new timestamps on unchanged rows "
            f"{report.versions_unchanged:,} (no new version), versions corrected in place "
            f"{report.versions_corrected:,}"
        )
        return _result(context, report, lake, entity, config)

    return _ingest


users = _reference_asset(USERS, "User profiles, MERGEd on user_id (the latest updated_ts wins).")
artworks = _reference_asset(
    ARTWORKS, "The artwork catalogue, MERGEd on artwork_id (latest updated_ts wins)."
)


def _stored_contract_check(entity: Entity) -> AssetChecksDefinition:
    @asset_check(
        asset=AssetKey(entity.name),
        name="stored_rows_match_contract",
        blocking=True,
        description=f"Re-validates the whole {entity.name} Delta table against the contract "
        "and checks MERGE left one row per id.",
    )
    def _check(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
        table = delta.open_table(lake.bronze(entity), lake.storage_options)
        if table is None:
            return AssetCheckResult(passed=False, metadata={"error": "table does not exist yet"})
        frame = table.to_pandas()
        failures = stored_table_failures(frame, entity)
        return AssetCheckResult(
            passed=not failures,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "rows": MetadataValue.int(len(frame)),
                "delta_version": MetadataValue.int(table.version()),
                "failures": MetadataValue.md(reasons_markdown(failures)),
            },
        )

    return _check


reference_checks = [_stored_contract_check(USERS), _stored_contract_check(ARTWORKS)]
