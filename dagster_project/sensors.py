"""The landing-zone sensor: new or changed files become ingestion runs for their day or feed."""

import json
from collections.abc import Callable
from datetime import date

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    PartitionsDefinition,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from assets.ingestion import covered_range, daily_partitions, raw_interactions
from dagster_project.jobs import daily_pipeline_job, reference_ingestion_job
from resources.storage import LandingZoneResource
from sands.ingest.contract import ENTITIES
from sands.ingest.landing import LandingFile, changed_groups, files_digest, unlisted_notes
from sands.ingest.partitions import outside_message

# The digest of the files a group's latest ingestion read, whichever path ran it (the sensor, the
# CLI, the demo): ingestion assets record it as their data version.
IngestedDigest = Callable[[str, date | None], str | None]


def plan_run_requests(
    files: list[LandingFile],
    seen: dict[str, str],
    valid_days: set[str],
    ingested: IngestedDigest = lambda entity, day: None,
) -> tuple[list[RunRequest], list[str]]:
    """Run requests for every changed group not already ingested as it is, and the days skipped
    as outside the partitions."""
    requests, skipped = [], []
    for (entity, day), members in sorted(
        changed_groups(files, seen).items(), key=lambda kv: (kv[0][0], str(kv[0][1]))
    ):
        digest = files_digest(members)
        if ingested(entity, day) == digest:
            continue
        if day is None:
            requests.append(
                RunRequest(run_key=f"{entity}:{digest}", job_name=reference_ingestion_job.name)
            )
        elif day.isoformat() in valid_days:
            requests.append(
                RunRequest(
                    run_key=f"interactions:{day}:{digest}",
                    job_name=daily_pipeline_job.name,
                    partition_key=day.isoformat(),
                )
            )
        else:
            skipped.append(day.isoformat())
    # Users and artworks are ingested together, so one request covers both feeds; it comes
    # first, so a day's events meet the users and artworks that landed with them.
    reference = [r for r in requests if r.job_name == reference_ingestion_job.name]
    if reference:
        keys = "+".join(sorted(r.run_key for r in reference))
        requests = [r for r in requests if r not in reference]
        requests.insert(0, RunRequest(run_key=keys, job_name=reference_ingestion_job.name))
    return requests, skipped


def ingested_digests(context: SensorEvaluationContext) -> IngestedDigest:
    """The data version of the group's latest ingestion materialization in this instance."""

    def latest(entity: str, day: date | None) -> str | None:
        key = AssetKey(entity) if day is None else raw_interactions.key
        partitions = None if day is None else [day.isoformat()]
        records = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=1
        ).records
        materialization = records[0].asset_materialization if records else None
        return materialization.tags.get(DATA_VERSION_TAG) if materialization else None

    return latest


def loaded_partitions(context: SensorEvaluationContext) -> PartitionsDefinition:
    """The daily partitions of the code location this tick runs in (`build_defs` derives them
    from the landing zone when it loads), or the declared ones when run on its own."""
    repository = context.repository_def
    if repository is not None:
        loaded = repository.get_job(daily_pipeline_job.name).partitions_def
        if loaded is not None:
            return loaded
    return daily_partitions


@sensor(
    jobs=[daily_pipeline_job, reference_ingestion_job],
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Watches the landing zone; a new or changed file (late too) re-runs its day "
    "through ingestion, dbt and feature publishing.",
)
def landing_zone_sensor(
    context: SensorEvaluationContext, landing: LandingZoneResource
) -> SensorResult | SkipReason:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    files = [f for entity in ENTITIES.values() for f in landing.files(entity)]
    for line in unlisted_notes(landing.root, landing.storage_options):
        context.log.warning(line)  # its files wait until the folder can be listed
    partitions = loaded_partitions(context)
    valid_days = set(partitions.get_partition_keys())
    requests, skipped = plan_run_requests(files, seen, valid_days, ingested_digests(context))
    if skipped:
        covered = covered_range(partitions)
        for day in skipped:
            line = outside_message(date.fromisoformat(day), covered)
            context.log.warning(f"{line}; its files wait.")
    cursor = json.dumps(
        {f.path: f.fingerprint for f in files if f.day is None or f.day.isoformat() in valid_days}
    )
    if not requests:
        return SensorResult(
            skip_reason=SkipReason("No new or changed landing files."), cursor=cursor
        )
    return SensorResult(run_requests=requests, cursor=cursor)


# Dagster's default automation sensor starts stopped; this one runs from the start, so the online
# store and the training set follow new feature versions without anyone pressing a button.
automation_sensor = AutomationConditionSensorDefinition(
    "sands_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates every asset's automation condition.",
)
