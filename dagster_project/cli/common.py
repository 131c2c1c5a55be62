"""What every `sands` command shares: the console, one-line errors and exit codes, SANDS_HOME,
option parsing, and running jobs quietly with their failures told."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from sands.settings import SandsPaths, SettingError

console = Console()
stderr = Console(stderr=True)
# Set by `sands --debug`: an error shows its traceback instead of one line.
_debug = False


def _error(line: str) -> None:
    """One line on stderr, never wrapped, no markup: an error or a failed run."""
    stderr.print(f"error: {line}", style="red", markup=False, highlight=False, soft_wrap=True)


class Refusal(Exception):
    """A command that cannot go on (nothing to work on, say); its message is one line, exit 1."""


class SandsGroup(TyperGroup):
    """Every command ends an error in one line on stderr: exit 2 for a bad argument, 1 for
    anything else; `sands --debug` shows the traceback instead."""

    def invoke(self, ctx: typer.Context) -> object:
        given = [*ctx._protected_args, *ctx.args]  # the command line, before it is consumed
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, NoArgsIsHelpError):
            raise
        except UsageError as error:
            if _debug:
                raise
            where = error.ctx.command_path if error.ctx else ctx.command_path
            _error(f"{where}{_bad_value(error, given)}")
            raise typer.Exit(2) from None
        except (SettingError, Refusal) as error:
            if _debug:
                raise
            _error(str(error))
            raise typer.Exit(1) from None
        except Exception as error:
            if _debug:
                raise
            first = next(iter(str(error).strip().splitlines()), "")
            command = ctx.invoked_subcommand or ""
            _error(f"{type(error).__name__}: {first} (`sands --debug {command}` shows where)")
            raise typer.Exit(1) from None


def _bad_value(error: UsageError, given: list[str]) -> str:
    """`: message`, or ` --option value: message` when an option's value was out of range."""
    param = getattr(error, "param", None)
    if param is None or not getattr(param, "opts", None):
        return f": {getattr(error, 'message', None) or error.format_message()}"
    for index, arg in enumerate(given):
        for opt in param.opts:
            if arg.startswith(f"{opt}="):
                return f" {opt} {arg.split('=', 1)[1]}: {error.message}"
            if arg == opt and index + 1 < len(given):
                return f" {opt} {given[index + 1]}: {error.message}"
    return f": {error.format_message()}"


def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show the traceback, not one line.")
    ] = False,
) -> None:
    global _debug
    _debug = debug


def _paths(create: bool = True) -> SandsPaths:
    """SANDS_HOME's locations, once it is known to be a folder this process can write."""
    paths = SandsPaths.from_env()
    paths.require_home(create)
    return paths


def _day(value: str, option: str) -> date:
    """A YYYY-MM-DD option value, or a one-line usage error naming the option (exit 2)."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise typer.BadParameter(f"{option} {value!r} is not a day: expected YYYY-MM-DD")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _within_days(index: int | None, days: int, option: str) -> None:
    """A day index the played or simulated days reach: 0 to days - 1 (exit 2 otherwise)."""
    if index is not None and index >= days:
        raise typer.BadParameter(
            f"{option} {index} is past the last day index: expected 0..{days - 1} (--days {days})"
        )


def _materializations(result) -> dict[str, dict[str, object]]:
    return {
        e.materialization.asset_key.to_user_string(): {
            k: v.value for k, v in e.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }


def _quietly(paths: SandsPaths, label: str, run):
    """Run `run()` under a spinner, sending dbt's console output to SANDS_HOME/logs/dbt.log."""
    log = Path(paths.home, "logs", "dbt.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    # Bound to the terminal now, so the spinner keeps drawing while stdout goes to the log.
    live = Console(file=sys.stdout)
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=live) as progress:
        progress.add_task(label, total=None)
        _live.append(live)
        try:
            with log.open("a") as sink, redirect_stdout(sink):
                return run()
        finally:
            _live.pop()


# The terminal while `_quietly` sends stdout to the log: progress lines still reach the user.
_live: list[Console] = []


def _say(text: str) -> None:
    (_live[-1] if _live else console).print(text)


def _note(line: str) -> None:
    """A one-line notice (never wrapped, no markup): e.g. reference rows the contract rejected."""
    (_live[-1] if _live else console).print(
        line, style="yellow", markup=False, highlight=False, soft_wrap=True
    )


# "raw_interactions 1997-09-21: columns not in the contract ...": a note about one landing day.
_DAY_NOTE = re.compile(r"^(?P<feed>\S+) (?P<day>\d{4}-\d{2}-\d{2}): (?P<said>.*)$")


class RepeatedNotes:
    """Notes about one day each, said once per feed and wording: a history whose every file
    carries the same extra column said so on every one of its hundreds of days. The first is
    said as it comes; `close` names the other days it held back. A note of no day is said once."""

    def __init__(self, say: Callable[[str], None] = _note) -> None:
        self._say = say
        self._later: dict[tuple[str, str], list[str]] = {}
        self._said: set[str] = set()  # notes of no day (a reference feed's), said once

    def __call__(self, line: str) -> None:
        match = _DAY_NOTE.match(line)
        if match is None:
            if line not in self._said:  # a reference feed's files are read again every day
                self._said.add(line)
                self._say(line)
            return
        key = (match["feed"], match["said"])
        if key in self._later:
            self._later[key].append(match["day"])
        else:
            self._later[key] = []
            self._say(line)

    def close(self) -> None:
        """One line per note held back: the same on how many more days, from when to when."""
        for (feed, said), days in self._later.items():
            if days:
                span = days[0] if len(days) == 1 else f"{min(days)}..{max(days)}"
                more = "1 more day" if len(days) == 1 else f"{len(days):,} more days"
                self._say(f"{feed}: the same on {more} ({span}): {said}")
        self._later.clear()


@contextmanager
def _one_line_errors(*expected: type[Exception]) -> Iterator[None]:
    """An `expected` error (its message is one line) ends the command with it, exit 1."""
    try:
        yield
    except expected as error:
        if _debug:
            raise
        _error(str(error))
        raise typer.Exit(1) from None


@contextmanager
def _runs_checked(paths: SandsPaths) -> Iterator[None]:
    """Around a command that runs jobs: first fail the runs a killed `sands` left STARTED; at
    the end, one line per failed step or blocking check of the runs it launched, and exit 1."""
    from dagster_project.failures import LaunchedRuns, fail_orphaned_runs
    from dagster_project.runner import instance_for

    instance = instance_for(paths)
    for line in fail_orphaned_runs(instance):
        _note(line)
    launched = LaunchedRuns(instance)
    failures = []
    try:
        yield
    finally:
        failures = launched.failures(Path(paths.home, "logs", "runs"))
        for failure in failures:
            _error(failure.line())
    if failures:
        raise typer.Exit(1)
