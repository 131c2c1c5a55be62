"""The dbt project: where it lives, and a manifest that is parsed when missing or out of date."""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import subprocess
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path

from dagster import AssetExecutionContext
from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version
from pydantic import Field

from resources.dbt_in_process import build_in_process

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt"
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _newest_source(project_dir: Path) -> float:
    files = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        files.extend(p for p in (project_dir / folder).rglob("*") if p.is_file())
    return max(p.stat().st_mtime for p in files)


def _fresh(manifest: Path, project_dir: Path) -> bool:
    return manifest.exists() and manifest.stat().st_mtime >= _newest_source(project_dir)


def ensure_manifest(project: DbtProject = dbt_project) -> Path:
    """The project's manifest.json, re-parsed first if any model, macro or test is newer."""
    manifest = project.manifest_path
    if _fresh(manifest, project.project_dir):
        # Prebuilt (the image parses at build time): nothing to write, so a read-only root works.
        return manifest
    lock_path = project.project_dir / "target" / ".parse.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    # Test workers and the webserver may load definitions at once; one parse is enough.
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _fresh(manifest, project.project_dir):
            return manifest
        subprocess.run(
            [
                str(dbt_executable()),
                "parse",
                "--quiet",
                "--profiles-dir",
                str(project.profiles_dir),
            ],
            cwd=project.project_dir,
            env={**os.environ, "DO_NOT_TRACK": "1"},
            check=True,
        )
    return manifest


def dbt_executable(name: str = "dbt") -> Path:
    """The dbt entry point installed beside this interpreter, so no PATH activation is needed."""
    return Path(sys.executable).with_name(name)


class SandsDbtCliResource(DbtCliResource):
    """dagster-dbt's CLI resource without its fixed cost per call, about 5 s of a small day.

    Before each call it runs `dbt --version` and builds an in-process dbt adapter, which costs
    two imports of dbt and a project load. The adapter only serves `fetch_column_metadata`,
    which the transform does not use; the version is the installed dbt-core's. With
    `in_process`, `build` runs dbt inside this process (`resources.dbt_in_process`).
    """

    in_process: bool = Field(
        default=False,
        description="Run dbt through its Python API in the step's process rather than as a "
        "`dbt` subprocess: a process that runs dbt again (the loop, a backfill) imports it once.",
    )

    @cached_property
    def _cli_version(self) -> Version:
        return Version(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None

    def build(
        self, context: AssetExecutionContext, target_path: Path, stream: bool
    ) -> Iterator[object]:
        """`dbt build` of the context's selection: its Dagster events when `stream`, else none;
        raises when any node failed, as the CLI invocation does."""
        if self.in_process:
            events = build_in_process(self, context, target_path)
            yield from events if stream else deque(events, maxlen=0)
            return
        invocation = self.cli(["build"], context=context, target_path=target_path)
        if stream:
            yield from invocation.stream()
        else:
            invocation.wait()


def dbt_resource(engine: str = "duckdb") -> DbtCliResource:
    """The dbt CLI resource for the project; on Spark, dbt runs inside a Spark session (its own
    process); on DuckDB, inside the step's process."""
    return SandsDbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=str(dbt_entry_point(engine)),
        in_process=engine != "spark",
    )


def dbt_entry_point(engine: str) -> Path:
    """`dbt` for DuckDB; on Spark, `sands-dbt-spark` (dbt inside the configured Spark session)."""
    return dbt_executable("sands-dbt-spark" if engine == "spark" else "dbt")
