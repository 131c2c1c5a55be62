"""`sands` commands that run servers and set up machines: the service, the Dagster and MLflow
UIs, and Spark's jars."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from dagster_project.cli.common import (
    _one_line_errors,
    _paths,
    console,
)
from sands.settings import SandsPaths

# `sands serve` as a child process (plays against the service, tests, benchmarks): the command
# is `sands` from this interpreter whether or not the console script is on PATH.
SERVE_COMMAND = (sys.executable, "-m", "dagster_project.cli", "serve")


def mlflow(port: Annotated[int, typer.Option(min=1, max=65535)] = 5000) -> None:
    """Start the MLflow UI on the embedded tracking store and artifacts."""
    paths = _paths()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        paths.mlflow_tracking_uri,
        "--default-artifact-root",
        paths.mlflow_artifacts,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    raise typer.Exit(subprocess.call(command))


def ui(port: Annotated[int, typer.Option(min=1, max=65535)] = 3000) -> None:
    """Start the Dagster UI and daemon (`dagster dev`) on this code location."""
    paths = _paths()
    from dagster_project.runner import instance_for

    instance_for(paths)
    env = {**os.environ, "DAGSTER_HOME": paths.dagster_home, "SANDS_HOME": paths.home}
    workspace = Path(__file__).resolve().parents[2] / "workspace.yaml"
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-p", str(port)]
    raise typer.Exit(subprocess.call(command, env=env))


def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Processes; each loads the models.")] = 1,
) -> None:
    """Serve recommendations, the Open Inference Protocol and /metrics (champion + canary)."""
    from sands.serving.process import ServeError, listen, serve_app
    from sands.serving.process import serve as run_service

    paths = SandsPaths.from_env()
    os.environ["SANDS_HOME"] = paths.home
    with _one_line_errors(ServeError):  # e.g. the port is taken: refused before any worker starts
        sockets = listen(host, port, workers)
        if workers > 1:
            # Created once here: workers racing to create a fresh home's registry store crash.
            from resources import build_resources

            build_resources()["registry"].open()
        console.print(
            f"Serving on http://{host}:{port} with {workers} worker(s) ({paths.home})",
            soft_wrap=True,
        )
        from dagster_project.service_app import APP_FACTORY

        run_service(sockets, functools.partial(serve_app, APP_FACTORY))


def spark_jars(
    destination: Annotated[Path, typer.Argument(help="Folder to copy the jars into.")],
) -> None:
    """Fetch the Delta jars Spark needs (Maven Central) into a folder, for offline machines and
    images: then set SANDS_SPARK_JARS to that folder."""
    from sands.engines.spark import seed_jars

    with console.status("Resolving io.delta jars through a Spark session..."):
        jars = seed_jars(str(destination))
    for jar in jars:
        console.print(f"  {jar}")
    console.print(f"{len(jars)} jars in {destination}: export SANDS_SPARK_JARS={destination}")
