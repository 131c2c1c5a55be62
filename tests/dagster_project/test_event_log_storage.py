"""The pooled SQLite event log: the same history as Dagster's, visible across instances."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from dagster import AssetKey, DagsterInstance, Definitions, MaterializeResult, asset
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from dagster_project import event_log_storage
from dagster_project.event_log_storage import PooledSqliteEventLogStorage
from dagster_project.runner import instance_config
from sands.settings import SandsPaths


@asset
def first() -> MaterializeResult:
    return MaterializeResult(metadata={"rows": 3})


@asset(deps=[first])
def second() -> MaterializeResult:
    return MaterializeResult(metadata={"rows": 5})


JOB = Definitions(assets=[first, second]).resolve_implicit_global_asset_job_def()


def _instance(home: Path, monkeypatch) -> DagsterInstance:
    paths = SandsPaths.from_env({"SANDS_HOME": str(home)})
    monkeypatch.setenv("DAGSTER_HOME", str(instance_config(paths).parent))
    return DagsterInstance.get()


def _rows(instance: DagsterInstance, key: str) -> int:
    event = instance.get_latest_materialization_event(AssetKey(key))
    assert event is not None and event.asset_materialization is not None
    return event.asset_materialization.metadata["rows"].value


def test_runs_are_recorded_where_dagster_keeps_them_and_read_by_another_instance(
    tmp_path, monkeypatch
):
    writer = _instance(tmp_path, monkeypatch)
    assert isinstance(writer.event_log_storage, PooledSqliteEventLogStorage)
    runs = [JOB.execute_in_process(instance=writer).run_id for _ in range(2)]
    # Another process (the UI, the daemon) opens its own instance while the writer's
    # connections stay open, and sees every run and materialization.
    reader = _instance(tmp_path, monkeypatch)
    assert [r.run_id for r in reader.get_runs()] == runs[::-1]
    assert (_rows(reader, "first"), _rows(reader, "second")) == (3, 5)
    steps = [e.step_key for e in reader.all_logs(runs[1]) if e.is_dagster_event]
    assert steps.count("second") >= 3  # start, output, materialization, success
    assert Path(tmp_path, "dagster", "history", "runs", f"{runs[0]}.db").is_file()
    # A write by the reader reaches the writer's open connections too.
    JOB.execute_in_process(instance=reader)
    assert writer.get_runs_count() == 3
    writer.dispose()
    reader.dispose()


def test_open_databases_are_bounded_and_a_wipe_closes_them(tmp_path, monkeypatch):
    monkeypatch.setattr(event_log_storage, "MAX_OPEN_SHARDS", 2)
    instance = _instance(tmp_path, monkeypatch)
    storage = instance.event_log_storage
    for _ in range(3):
        JOB.execute_in_process(instance=instance)
    assert len(storage._engines) == 2  # the index and the newest run's shard
    storage.wipe()
    assert list(storage._engines) == ["index"]  # reopened to empty it; the run shards are gone
    assert [p.name for p in Path(tmp_path, "dagster", "history", "runs").glob("*.db")] == [
        "index.db"
    ]
    JOB.execute_in_process(instance=instance)
    assert _rows(instance, "second") == 5
    instance.dispose()


def test_a_forked_child_opens_its_own_connections(tmp_path, monkeypatch):
    instance = _instance(tmp_path, monkeypatch)
    JOB.execute_in_process(instance=instance)
    storage = instance.event_log_storage
    parent_engine = storage._engines["index"]
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        try:
            JOB.execute_in_process(instance=instance)
            ok = storage._engines["index"] is not parent_engine and _rows(instance, "first") == 3
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert instance.get_runs_count() == 2  # the child's run, through the parent's connections
    instance.dispose()


def _schema(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as connection:
        tables = connection.execute(
            "select type, name, sql from sqlite_master order by type, name"
        ).fetchall()
        stamp = connection.execute("select version_num from alembic_version").fetchall()
        mode = connection.execute("pragma journal_mode").fetchone()[0]
    return [*tables, ("alembic", str(stamp), mode)]


def test_a_new_runs_database_is_the_template_dagster_would_have_built(tmp_path, monkeypatch):
    instance = _instance(tmp_path, monkeypatch)
    storage = instance.event_log_storage
    run = JOB.execute_in_process(instance=instance).run_id
    template = Path(storage.template_path())
    assert template.is_file() and template.parent != Path(storage.path_for_shard(run)).parent
    assert [r.run_id for r in instance.get_runs()] == [run]  # the template is not taken for a run
    # Dagster's own init of a run database, on a fresh file, gives the same schema and stamp.
    built = SqliteEventLogStorage(str(tmp_path / "dagster-built"))
    assert built.get_records_for_run("some-run").records == []  # reading creates the database
    built.dispose()
    assert _schema(Path(storage.path_for_shard(run))) == _schema(
        tmp_path / "dagster-built" / "some-run.db"
    )
    assert _rows(instance, "second") == 5
    instance.dispose()


def test_an_existing_runs_database_is_never_replaced_by_the_template(tmp_path, monkeypatch):
    instance = _instance(tmp_path, monkeypatch)
    storage = instance.event_log_storage
    run = JOB.execute_in_process(instance=instance).run_id
    events = len(instance.all_logs(run))
    fresh = PooledSqliteEventLogStorage(storage._base_dir)  # another process, nothing initialised
    assert fresh._copy_template(run) is False
    assert len(fresh.get_records_for_run(run).records) == events
    fresh.dispose()
    instance.dispose()
