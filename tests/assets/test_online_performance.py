"""`online_performance` on hand-made impressions and clicks: SLO check, canary rollback/record."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import materialize
from deltalake import write_deltalake

from assets.monitoring import ONLINE_CHECK, online_performance
from resources import build_resources
from sands.ingest.bronze import bronze_uri
from sands.ingest.contract import ARTWORKS, INTERACTIONS, LANDING_DAY_COLUMN
from sands.models.aliases import CHALLENGER
from sands.models.tags import CANARY_VERDICT_TAG
from sands.monitoring.online_quality import figures_uri, latest_figures
from sands.serving.prediction_log import Impression, impressions_table, impressions_uri
from sands.settings import SandsPaths
from tests.builders.serving import register, registry_for
from tests.conftest import events_table

SERVED = datetime(2026, 9, 1, 10, tzinfo=UTC)


def _impressions(arm: str, version: int, n: int, clicked: int, start: int) -> tuple[list, list]:
    """n impressions of one artwork each; the first `clicked` get a click an hour later."""
    shown, events = [], []
    for i in range(start, start + n):
        user, artwork = f"u{i}", f"a{i % 7}"
        shown.append(Impression(f"i{i}", user, [artwork], [1.0], version, arm, SERVED))
        if i - start < clicked:
            events.append((f"e{i}", user, artwork, "click", SERVED + timedelta(hours=1), None))
    return shown, events


def _home(tmp_path: Path, champion: tuple[int, int], challenger: tuple[int, int]) -> SandsPaths:
    paths = SandsPaths.from_env({"SANDS_HOME": str(tmp_path)})
    paths.ensure_local_dirs()
    registry = registry_for(paths)
    register(registry, seed=0, promote=True)
    register(registry, seed=1, promote=False)
    registry.set_canary_share(0.5, "tests", "canary on")
    a, a_events = _impressions("champion", 1, champion[0], champion[1], 0)
    b, b_events = _impressions(CHALLENGER, 2, challenger[0], challenger[1], 10_000)
    write_deltalake(impressions_uri(paths.lake), impressions_table(a + b))
    # A late event closes every window (as_of is the newest interaction).
    late = ("late", "u-late", "a0", "view", SERVED + timedelta(days=2), None)
    events = events_table([*a_events, *b_events, late])
    events = events.append_column(
        LANDING_DAY_COLUMN, pa.array([date(2026, 9, 3)] * events.num_rows, pa.date32())
    )
    write_deltalake(bronze_uri(paths.lake, INTERACTIONS), events)
    write_deltalake(bronze_uri(paths.lake, ARTWORKS), pa.table({"artwork_id": ["a0"]}))
    return paths


def _run(paths: SandsPaths, min_ctr: float):
    env = {"SANDS_HOME": paths.home}
    return materialize(
        [online_performance],
        resources=build_resources(env),
        run_config={"ops": {"online_performance": {"config": {"min_ctr": min_ctr}}}},
    )


def _check(result) -> bool:
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == ONLINE_CHECK
    return evaluation.passed


def test_a_clearly_worse_canary_is_rolled_back_and_recorded(tmp_path: Path) -> None:
    paths = _home(tmp_path, champion=(600, 120), challenger=(600, 30))  # 20 % vs 5 % CTR
    result = _run(paths, min_ctr=0.1)
    assert result.success and _check(result)  # 20 % meets 10 %
    registry = registry_for(paths)
    assert registry.canary_share() == 0.0
    assert registry.version(2).tags[CANARY_VERDICT_TAG] == "worse"
    assert [c.action for c in registry.history()][-2:] == ["canary", "canary_worse"]
    metadata = result.asset_materializations_for_node("online_performance")[0].metadata
    assert "| champion | 1 | 600 | 0.2000 |" in metadata["by_arm"].value
    # The figures the service publishes as sands_online_* gauges.
    figures = latest_figures(figures_uri(paths.lake)).sort_by("arm").to_pylist()
    assert [(f["arm"], f["model_version"], f["impressions"], f["ctr"]) for f in figures] == [
        (CHALLENGER, 2, 600, 0.05),
        ("champion", 1, 600, 0.2),
    ]


def test_a_better_canary_is_recorded_and_keeps_its_traffic(tmp_path: Path) -> None:
    paths = _home(tmp_path, champion=(600, 30), challenger=(600, 120))
    result = _run(paths, min_ctr=0.1)
    assert result.success and not _check(result)  # 5 % is below 10 %: the degradation trigger
    registry = registry_for(paths)
    assert registry.canary_share() == pytest.approx(0.5)
    assert registry.version(2).tags[CANARY_VERDICT_TAG] == "better"
