"""Constants the dbt project owns (its `vars`), read from `dbt_project.yml`, their one home."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DBT_PROJECT_FILE = Path(__file__).resolve().parents[2] / "dbt" / "dbt_project.yml"


@cache
def dbt_vars() -> dict[str, Any]:
    """The dbt project's `vars` block."""
    return yaml.safe_load(DBT_PROJECT_FILE.read_text())["vars"]


def event_weights() -> dict[str, float]:
    """Engagement weight per event type."""
    return {k: float(v) for k, v in dbt_vars()["event_weights"].items()}


def feature_windows() -> tuple[int, ...]:
    """Days of the trailing feature windows (`n_<event>_<days>d`), shortest first."""
    return tuple(sorted(int(w) for w in dbt_vars()["feature_windows"]))


def longest_feature_window() -> int:
    """Days of the longest trailing feature window: history that long makes features mature."""
    return feature_windows()[-1]


# The landing-day window a `dbt build` (re)builds, inclusive; `dbt/macros/windows.sql` reads them.
BUILD_MIN_DATE_ENV = "SANDS_BUILD_MIN_DATE"
BUILD_MAX_DATE_ENV = "SANDS_BUILD_MAX_DATE"


def build_window_env(first: date, last: date) -> dict[str, str]:
    """The environment that makes `dbt build` (re)build landing days `first`..`last`.

    Not `--vars`: dbt re-parses the whole project whenever those change, which is every run.
    """
    return {BUILD_MIN_DATE_ENV: first.isoformat(), BUILD_MAX_DATE_ENV: last.isoformat()}
