"""`sands`: the Shifting Sands command line, one module per command group (`data`, `models`,
`demo`, `ops`) over what they share (`common`)."""

from __future__ import annotations

import atexit
import os
import sys
import warnings
from collections.abc import Callable

import typer

from dagster_project.cli import data, demo, models, ops
from dagster_project.cli.common import SandsGroup, _error, _options, stderr
from sands.settings import SettingError

app = typer.Typer(
    cls=SandsGroup,
    help="Shifting Sands: a self-running data and model platform for a digital art marketplace.\n\n"
    "All state lives under SANDS_HOME (default ./.sands). Exit status: 0 done; 1 a run, a "
    "blocking check or a setting failed (one line each); 2 a bad argument.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
app.callback()(_options)

# Registered in the order `sands --help` lists them (Typer keeps the order of registration).
COMMANDS: list[tuple[str, Callable[..., None]]] = [
    ("simulate", data.simulate),
    ("ingest", data.ingest),
    ("demo", demo.demo),
    ("replay", demo.replay),
    ("features", data.features),
    ("training-data", data.training_data),
    ("train", models.train),
    ("retrain", models.retrain),
    ("models", models.models),
    ("promote", models.promote),
    ("rollback", models.rollback),
    ("mlflow", ops.mlflow),
    ("status", data.status),
    ("ui", ops.ui),
    ("serve", ops.serve),
    ("spark-jars", ops.spark_jars),
    ("contract-docs", data.contract_docs),
]
for name, command in COMMANDS:
    app.command(name)(command)


def quiet_library_warnings() -> None:
    """The CLI prints its own summaries: library chatter and API-stability notes are noise."""
    warnings.filterwarnings("ignore", message=".*is currently in beta")
    # pandera formatting its failure cases (a pandas concat deprecation), once per rejected batch.
    warnings.filterwarnings("ignore", category=FutureWarning, module="pandera")
    # The daily job mixes assets with and without a single-run backfill policy on purpose: it
    # always runs one partition, and ranges go through `feature_build`.
    warnings.filterwarnings("ignore", message=".*materializes assets with varying BackfillPolicies")


def main() -> None:
    """The `sands` entry point. It leaves with os._exit: delta-rs's reader threads can abort the
    process's C-level teardown ("terminate called without an active exception", delta-rs#2184),
    which would turn a finished command's exit status into 134."""
    code = 0
    quiet_library_warnings()
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    try:
        app()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except SettingError as error:  # e.g. a malformed SANDS_PARTITIONS_START: one line, no trace
        _error(str(error))
        code = 1
    except BaseException:  # only with --debug: otherwise SandsGroup ends errors in one line
        stderr.print_exception()
        code = 1
    # Python's own exit handlers still run (multiprocessing cleans up its semaphores); only the
    # C-level teardown where the abort happens is skipped.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
