from pathlib import Path

from dagster import AssetCheckSeverity, DagsterInstance, materialize

from assets.ingestion import IngestionConfig, artworks, raw_interactions, reasons_markdown, users
from dagster_project.runner import dropped_columns, rejected_files, rejected_rows
from resources import build_resources
from tests.conftest import DAY, drop, events_table, ts

GOOD = [
    ("e1", "u1", "a1", "view", ts(DAY, 9), None),
    ("e2", "u1", "a1", "click", ts(DAY, 9, 1), None),
]
BAD = [
    {
        "event_id": "b1",
        "user_id": "u1",
        "artwork_id": "a1",
        "event_type": "hover",
        "event_ts": "2026-09-02T10:00:00Z",
    }
]


def run_day(paths, config: IngestionConfig | None = None):
    resources = build_resources()
    run_config = {
        "ops": {"raw_interactions": {"config": (config or IngestionConfig()).model_dump()}}
    }
    with DagsterInstance.ephemeral() as instance:
        return materialize(
            [raw_interactions],
            partition_key=str(DAY),
            resources=resources,
            instance=instance,
            run_config=run_config,
            raise_on_error=False,
        )


def checks(result) -> dict[str, tuple[bool, AssetCheckSeverity]]:
    return {e.check_name: (e.passed, e.severity) for e in result.get_asset_check_evaluations()}


def test_a_partition_materializes_with_accounting_versions_and_passing_checks(paths):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(GOOD))
    drop(paths.landing, f"interactions/{DAY}/feed-b.jsonl", BAD)
    result = run_day(paths, IngestionConfig(max_reject_share=0.5))
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw_interactions")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert (meta["rows_read"], meta["rows_accepted"], meta["rows_rejected"]) == (3, 2, 1)
    assert meta["delta_version"] == 1 and "event_type:isin" in meta["reasons"]
    assert checks(result) == {
        "rows_accounted_for": (True, AssetCheckSeverity.ERROR),
        "reject_rate_within_budget": (True, AssetCheckSeverity.ERROR),
        "files_readable": (True, AssetCheckSeverity.WARN),
    }


def test_an_unreadable_file_is_named_and_warned_about_while_the_rest_of_its_day_lands(paths):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(GOOD))
    broken = Path(paths.landing, "interactions", str(DAY), "broken.parquet")
    broken.write_bytes(b"PAR1 and then garbage")
    result = run_day(paths)
    assert result.success  # a warning: the day's readable rows are good to use
    assert checks(result)["files_readable"] == (False, AssetCheckSeverity.WARN)
    (materialization,) = result.asset_materializations_for_node("raw_interactions")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert (meta["rows_read"], meta["rows_accepted"], meta["files_rejected"]) == (2, 2, 1)
    (line,) = rejected_files(result)
    assert line.startswith(f"{broken} (21 bytes) could not be read: ArrowInvalid: ")
    assert "\n" not in line and "kept at" in line


def test_columns_outside_the_contract_are_named_in_one_line_and_not_written(paths):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(GOOD))
    # A header mangled on export: a duplicate `user_id` column read back as `user_id.1`.
    mangled = Path(paths.landing, "interactions", str(DAY), "feed-c.csv")
    # And a column named in another case, and one of 70 characters.
    long = "x" * 70
    mangled.write_text(
        f"event_id,user_id,artwork_id,event_type,event_ts,user_id.1,Price,{long}\n"
        "e3,u2,a1,view,2026-09-02T11:00:00Z,u2,12.5,y\n"
    )
    result = run_day(paths)
    assert result.success
    (line,) = dropped_columns(result)
    assert line == (
        f"raw_interactions {DAY}: columns not in the contract were not written to bronze: "
        f"'Price' (the contract's 'price'?), 'user_id.1', '{long[:60]}...' "
        "(the contract: docs/data-contract.md)"
    )


def test_thousands_of_stray_columns_are_named_in_one_short_line(paths):
    stray = [f"c{i:04d}" for i in range(2_000)]
    wide = Path(paths.landing, "interactions", str(DAY), "wide.csv")
    wide.parent.mkdir(parents=True)
    wide.write_text(
        ",".join(["event_id", "user_id", "artwork_id", "event_type", "event_ts", *stray])
        + "\ne4,u2,a1,view,2026-09-02T11:00:00Z"
        + ",x" * len(stray)
        + "\n"
    )
    result = run_day(paths)
    (line,) = dropped_columns(result)
    assert line.endswith("'c0009' and 1,990 more (the contract: docs/data-contract.md)")
    assert len(line) < 300


def test_a_drop_over_the_reject_budget_is_recorded_but_fails_its_blocking_check(paths):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(GOOD))
    drop(paths.landing, f"interactions/{DAY}/feed-b.jsonl", BAD)
    result = run_day(paths, IngestionConfig(max_reject_share=0.05))
    assert not result.success
    assert checks(result)["reject_rate_within_budget"] == (False, AssetCheckSeverity.ERROR)
    assert len(result.asset_materializations_for_node("raw_interactions")) == 1
    # The failure's one line says which rule rejected how many rows.
    (budget,) = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert budget.metadata["reason"].value == (
        f"1 of {len(GOOD) + 1} rows rejected ({1 / (len(GOOD) + 1):.1%}, budget 5.0%): "
        "event_type:isin 1 (rules: docs/data-contract.md)"
    )


def test_unchanged_landing_files_give_the_same_data_version(paths):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(GOOD))
    versions = []
    for _ in range(2):
        (m,) = run_day(paths).asset_materializations_for_node("raw_interactions")
        versions.append(m.tags["dagster/data_version"])
    assert versions[0] == versions[1]
    late = [("e3", "u2", "a1", "view", ts(DAY, 23), None)]
    drop(paths.landing, f"interactions/{DAY}/late.parquet", events_table(late))
    (m,) = run_day(paths).asset_materializations_for_node("raw_interactions")
    assert m.tags["dagster/data_version"] != versions[0]


def test_reference_assets_merge_and_recheck_the_stored_table(paths):
    drop(
        paths.landing,
        "users/u.jsonl",
        [
            {
                "user_id": "u1",
                "signup_ts": "2026-01-01T00:00:00Z",
                "age": 30,
                "gender": None,
                "country": "FR",
                "interests": ["abstract"],
                "updated_ts": "2026-09-01T00:00:00Z",
            }
        ],
    )
    with DagsterInstance.ephemeral() as instance:
        result = materialize([users, artworks], resources=build_resources(), instance=instance)
    assert result.success
    evaluations = {
        (e.asset_key.path[-1], e.check_name): e.passed for e in result.get_asset_check_evaluations()
    }
    assert (
        evaluations[("users", "rows_accounted_for")]
        and evaluations[("users", "reject_rate_within_budget")]
    )


def test_reasons_render_as_a_markdown_table_most_frequent_first():
    assert reasons_markdown({"a:x": 1, "b:y": 5}).splitlines()[2:] == [
        "| `b:y` | 5 |",
        "| `a:x` | 1 |",
    ]


def test_a_broken_re_upload_of_a_day_keeps_its_rows_and_says_so_in_one_line(paths):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(GOOD))
    assert run_day(paths).success
    Path(paths.landing, "interactions", str(DAY), "events.parquet").write_bytes(b"PAR1 broken")
    result = run_day(paths)
    (materialization,) = result.asset_materializations_for_node("raw_interactions")
    assert materialization.metadata["rows_read"].value == 0
    kept = f"no file of {DAY} could be read: bronze keeps the rows it held for the day"
    assert f"raw_interactions {DAY}: {kept}" in rejected_rows(result)
