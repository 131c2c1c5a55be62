"""`sands` commands on models: train, retrain, list the registered versions, promote and roll
back the champion."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from dagster_project.cli.common import (
    _materializations,
    _one_line_errors,
    _paths,
    _quietly,
    _runs_checked,
    console,
)
from sands.models.tags import GATE_TAG, REFIT_OF_TAG, TRAIN_CUTOFF_TAG
from sands.settings import SandsPaths


def _failed_checks(result) -> list[str]:
    return [
        f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:"
        f"{e.asset_check_evaluation_data.check_name}"
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and not e.asset_check_evaluation_data.passed
    ]


def _check_outcomes(result, check: str) -> list[dict[str, object]]:
    return [
        {k: v.value for k, v in e.asset_check_evaluation_data.metadata.items()}
        | {"passed": e.asset_check_evaluation_data.passed}
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == check
    ]


def train(
    trees: Annotated[int | None, typer.Option(min=1, help="Boosting rounds (default 100).")] = None,
    segments: Annotated[int | None, typer.Option(min=1, help="User segments (default 6).")] = None,
    max_depth: Annotated[int | None, typer.Option(min=1, help="Tree depth (default 4).")] = None,
    shuffle_labels: Annotated[
        bool, typer.Option(help="Gate drill: train on shuffled labels; it must not be promoted.")
    ] = False,
) -> None:
    """Train, register, evaluate and (only if the gate passes) promote the ranker."""
    config: dict[str, dict] = {}
    if trees is not None or shuffle_labels:
        config["ranker"] = {"shuffle_labels": shuffle_labels}
        if trees is not None:
            config["ranker"]["trees"] = trees
    if max_depth is not None:
        config.setdefault("ranker", {})["max_depth"] = max_depth
    if segments is not None:
        config["user_segments"] = {"segments": segments}
    paths = _paths()
    with _runs_checked(paths):
        _train(paths, config)


def retrain() -> None:
    """On-demand retrain (trigger 1 of 5): monitoring, training, evaluation, gated promotion."""
    paths = _paths()
    with _runs_checked(paths):
        _train(paths, {}, tags={"sands/trigger": "on demand"})


MONITORING_ASSETS = ("feature_drift", "champion_performance")


def _train(paths: SandsPaths, config: dict[str, dict], tags: dict[str, str] | None = None) -> bool:
    """Run the model_training job; a gate rejection is an outcome, not an error."""
    from dagster_project.runner import instance_for, run_model_training

    instance = instance_for(paths)
    result = _quietly(
        paths,
        "segments, similarity, ranker, evaluation, promotion",
        lambda: run_model_training(instance, config, tags),
    )
    meta = _materializations(result)
    ranker = meta.get("ranker")
    if ranker:
        console.print(
            f"ranker: registered [bold]{ranker['model_uri']}[/] from {ranker['train_rows']:,} "
            f"rows before {ranker['train_cutoff']} (train AUC {ranker['train_auc']})"
        )
    report = meta.get("evaluation_report")
    if report:
        console.print(Markdown(report["summary"]))
        console.print(f"report: [bold]{report['report']}[/]")
    gate = _check_outcomes(result, "promotion_gate")
    rejected = bool(gate) and not gate[-1]["passed"]
    if rejected:
        console.print(Markdown(gate[-1]["criteria"]))
        console.print("[yellow]Gate rejected the challenger; the champion stays.[/]")
    deployed = meta.get("deployed_ranker")
    if deployed:
        console.print(f"[green]{deployed['decision']}[/]")
    signals = [c for c in _failed_checks(result) if c.split(":")[0] in MONITORING_ASSETS]
    if signals:
        console.print(f"monitoring signals (retraining triggers): {', '.join(signals)}")
    # A gate rejection fails the evaluation step by design; any other step failure is an error
    # (told with its run id by `_runs_checked`).
    errors = [
        event
        for event in result.get_step_failure_events()
        if not (rejected and event.step_key == "evaluation_report")
    ]
    return not errors and (result.success or rejected)


def _registry():
    from resources import build_resources

    _paths()  # the embedded MLflow store and the champion history live under it
    return build_resources()["registry"].open()


def models() -> None:
    """List registered ranker versions with their aliases, gate verdict and NDCG@10."""
    registry = _registry()
    table = Table("version", "aliases", "gate", "NDCG@10", "trained before", "created")
    aliases, _, policy = registry.serving_state()
    for version in registry.versions():
        tags = version.tags
        table.add_row(
            str(version.version),
            ", ".join(sorted(a for a, v in aliases.items() if v == int(version.version))),
            _gate_column(tags),
            tags.get("sands.eval.ndcg_at_10", "")[:6],
            tags.get(TRAIN_CUTOFF_TAG, "")[:10],
            datetime.fromtimestamp(version.creation_timestamp / 1000, UTC).strftime(
                "%Y-%m-%d %H:%M"
            ),
        )
    console.print(table)
    _version_links(registry, aliases)
    console.print(f"The champion arm serves: {_serving_line(registry, aliases, policy)}")
    console.print(_popularity_line())


def _popularity_line() -> str:
    """How many days the served popularity list counts over, as `popularity_baseline` chose."""
    from sands.models.model_store import served_popularity_window
    from sands.monitoring.popularity_window import days_text

    paths = _paths()
    window = served_popularity_window(paths.lake, paths.storage_options)
    if window is None:
        return "Popularity: no list yet (`popularity_baseline` writes it)"
    return (
        f"Popularity, where it serves, counts the last [bold]{days_text(window)}[/] (the window "
        "`popularity_baseline` chose by evidence: its window_choice metadata)"
    )


def _gate_column(tags: dict[str, str]) -> str:
    """The gate's verdict, or which judged version a refit serves for."""
    if REFIT_OF_TAG in tags:
        return f"refit of v{tags[REFIT_OF_TAG]}"
    return tags.get(GATE_TAG, "not evaluated")


def _serving_line(registry, aliases: dict[str, int], policy: str) -> str:
    """What the champion arm serves and why; with no champion yet, the fallbacks (whatever the
    guard's policy tag says: it only switches between a champion and popularity)."""
    from sands.models.aliases import CHAMPION

    if CHAMPION not in aliases:
        return "[bold]popularity[/] (no champion yet: no version has passed the gate)"
    guard = [c for c in registry.history() if c.action.startswith("serving_policy_")]
    why = f" since {guard[-1].ts:%Y-%m-%d %H:%M}: {guard[-1].reason}" if guard else ""
    return f"[bold]{policy}[/]{why}"


def _version_links(registry, aliases: dict[str, int]) -> None:
    """Where the champion and the challenger are in the MLflow UI, and the Dagster run that
    trained each (SANDS_MLFLOW_UI_URL, SANDS_DAGSTER_URL; default `sands mlflow`, `sands ui`)."""
    from sands.models.aliases import CHALLENGER, CHAMPION
    from sands.models.tags import DAGSTER_RUN_URL_TAG, EVALUATION_RUN_TAG

    by_version: dict[int, list[str]] = {}
    for alias in (CHAMPION, CHALLENGER):
        if alias in aliases:
            by_version.setdefault(aliases[alias], []).append(alias)
    for number, names in by_version.items():
        tags = registry.version(number).tags
        links = [
            ("MLflow model", registry.ui_link(number)),
            ("MLflow run", registry.run_link(number)),
        ]
        if tags.get(EVALUATION_RUN_TAG):
            links.append(("evaluation run", registry.run_url(tags[EVALUATION_RUN_TAG])))
        if tags.get(DAGSTER_RUN_URL_TAG):
            links.append(("Dagster run", tags[DAGSTER_RUN_URL_TAG]))
        console.print(f"{', '.join(names)} v{number}:")
        for label, url in links:
            console.print(
                f"  {label + ':':15} {url}", markup=False, highlight=False, soft_wrap=True
            )


def _v(version: int | None) -> str:
    return f"v{version}" if version is not None else "none"


def _actor() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "cli"


def promote(
    version: Annotated[int, typer.Argument(min=1, help="Registered version to make champion.")],
    reason: Annotated[str, typer.Option(help="Why, for the champion history.")] = "manual",
) -> None:
    """Move the `champion` alias to VERSION by hand (logged in the champion history)."""
    from sands.models.registry import RegistryError

    registry = _registry()
    with _one_line_errors(RegistryError):
        change = registry.promote(version, f"cli:{_actor()}", reason)
    if change is None:
        console.print(f"v{version} is already the champion: nothing changed")
        return
    console.print(f"champion: {_v(change.previous)} -> [bold]v{change.version}[/] ({reason})")


def rollback(
    reason: Annotated[str, typer.Option(help="Why, for the champion history.")] = "manual",
) -> None:
    """Give the `champion` alias back to the previous champion (logged)."""
    from sands.models.registry import RegistryError

    registry = _registry()
    with _one_line_errors(RegistryError):
        change = registry.rollback(f"cli:{_actor()}", reason)
    console.print(f"champion: {_v(change.previous)} -> [bold]v{change.version}[/] (rollback)")
