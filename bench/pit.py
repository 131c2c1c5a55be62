"""Point-in-time join: `sands.features.pit` against a bare DuckDB ASOF JOIN and Feast, on Parquet
files.

200,000 labels against 1,000,000 feature rows (8 float features, 50,000 entities, one row per
entity on ~20 of 30 days, stamped at midnight like the dbt snapshots). Peers, timed in the same
run over the same files:
- a bare DuckDB ASOF JOIN (no TTL, no created-time cutoff, no label order): the floor;
- Feast 0.67 `get_historical_features` with the file and the duckdb offline stores, run in the
  separate `.venv-feast` (`make feast-venv`) by `bench/feast_pit.py`.
Every engine's values are checked label by label; a restated variant (5% of rows rewritten two
days later with new values) times the general path and is checked against a brute-force oracle.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from sands.features.pit import point_in_time_join

REPO = Path(__file__).resolve().parent.parent
FEAST_PYTHON = REPO / ".venv-feast" / "bin" / "python"
FEAST_STAMP = REPO / ".venv-feast" / ".installed-stamp"
FEATURES = [f"f{i}" for i in range(8)]
TS = pa.timestamp("us", tz="UTC")
START = datetime(2026, 9, 1, tzinfo=UTC)
DAY_US = 86_400_000_000
# Targets from the issue.
FEAST_FILE_SPEEDUP = 10.0
BARE_ASOF_RATIO = 1.5


@dataclass(frozen=True)
class Files:
    """The Parquet inputs every engine reads."""

    labels: Path
    features: Path
    restated: Path


def _timestamps(us: np.ndarray) -> pa.Array:
    return pa.array(us.astype(np.int64), TS)


def _feature_rows(rng: np.random.Generator, n_rows: int, n_entities: int, days: int) -> pa.Table:
    if n_rows > n_entities * days:
        raise ValueError("more feature rows than entity-days")
    # Distinct (entity, day) cells: ~n_rows / n_entities days per entity, no duplicate stamps.
    cells = rng.choice(n_entities * days, size=n_rows, replace=False)
    cells.sort()
    entity, day = cells // days, cells % days
    # Day-major like the feature log, which appends one feature date at a time.
    order = np.lexsort((entity, day))
    entity, day = entity[order], day[order]
    stamp = int(START.timestamp() * 1e6) + day * DAY_US
    values = rng.standard_normal((n_rows, len(FEATURES)))
    return pa.table(
        {
            "entity_id": pa.array(entity, pa.int64()),
            "feature_ts": _timestamps(stamp),
            "created_ts": _timestamps(stamp),
            **{name: pa.array(values[:, i]) for i, name in enumerate(FEATURES)},
        }
    )


def _restated(rng: np.random.Generator, features: pa.Table, share: float) -> pa.Table:
    """The features plus restatements of `share` of the rows, written two days later."""
    n = int(features.num_rows * share)
    picked = features.take(np.sort(rng.choice(features.num_rows, size=n, replace=False)))
    created = picked["feature_ts"].combine_chunks().cast(pa.int64()).to_numpy() + 2 * DAY_US
    values = rng.standard_normal((n, len(FEATURES)))
    columns = {
        **{name: picked[name] for name in picked.column_names},
        "created_ts": _timestamps(created),
        **{name: pa.array(values[:, i]) for i, name in enumerate(FEATURES)},
    }
    return pa.concat_tables([features, pa.table(columns)])


def _label_rows(
    rng: np.random.Generator, n_labels: int, n_entities: int, days: int, ttl: timedelta
) -> pa.Table:
    # The label period runs one TTL past the last feature day, so some labels outlive the TTL.
    span_us = int((days * 86_400 + ttl.total_seconds()) * 1e6)
    entity = rng.integers(0, n_entities, size=n_labels)
    stamp = int(START.timestamp() * 1e6) + rng.integers(0, span_us, size=n_labels)
    # A few unknown entities (no features at all) and repeated (entity, time) labels, which
    # Feast's file store would otherwise collapse.
    unknown = rng.random(n_labels) < 0.005
    entity[unknown] = n_entities + rng.integers(0, 1_000, size=int(unknown.sum()))
    repeat = np.flatnonzero(rng.random(n_labels) < 0.01)
    source = rng.integers(0, n_labels, size=len(repeat))
    entity[repeat], stamp[repeat] = entity[source], stamp[source]
    return pa.table(
        {
            "label_id": pa.array(np.arange(n_labels), pa.int64()),
            "entity_id": pa.array(entity, pa.int64()),
            "label_ts": _timestamps(stamp),
            "label": pa.array(rng.integers(0, 2, size=n_labels).astype(np.int8)),
        }
    )


def write_inputs(
    tmp: Path, n_labels: int, n_features: int, n_entities: int, days: int, ttl: timedelta
) -> Files:
    """Generate the labels, the features and the restated features as Parquet files."""
    rng = np.random.default_rng(7)
    features = _feature_rows(rng, n_features, n_entities, days)
    files = Files(tmp / "labels.parquet", tmp / "features.parquet", tmp / "restated.parquet")
    pq.write_table(features, files.features)
    pq.write_table(_restated(rng, features, 0.05), files.restated)
    pq.write_table(_label_rows(rng, n_labels, n_entities, days, ttl), files.labels)
    return files


@dataclass(frozen=True)
class Timing:
    """The fastest of several calls after a warm-up, and the first (cold) call."""

    best: float
    first: float


def best_of(fn: Callable[[], pa.Table], repeats: int) -> tuple[pa.Table, Timing]:
    """The result and timing of `repeats` calls after one warm-up call."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return value, Timing(min(times[1:]), times[0])


def ours(files: Files, features: Path, ttl: timedelta, snapshots: bool = False) -> pa.Table:
    """The join under test, straight from the Parquet paths."""
    return point_in_time_join(
        str(files.labels),
        str(features),
        key="entity_id",
        ttl=ttl,
        label_ts="label_ts",
        snapshots=snapshots,
    )


def bare_asof(files: Files) -> pa.Table:
    """The floor: DuckDB's ASOF JOIN alone, without TTL, created cutoff or label order."""
    con = duckdb.connect()
    query = f"""
        select l.*, f.feature_ts, f.created_ts, {", ".join(f"f.{c}" for c in FEATURES)}
        from read_parquet('{files.labels}') as l
        asof left join read_parquet('{files.features}') as f
            on l.entity_id = f.entity_id and l.label_ts >= f.feature_ts
    """
    return con.sql(query).to_arrow_table()


def _current_snapshot(features: pd.DataFrame, label_ts: pd.Series) -> pd.Series:
    """The newest feature_ts available at each label time (the snapshot rule's bound)."""
    available = np.maximum(features.feature_ts, features.created_ts)
    newest = features.feature_ts.groupby(available).max().sort_index().cummax()
    at = np.searchsorted(newest.index.to_numpy(), label_ts.to_numpy(), side="right") - 1
    values = newest.to_numpy()[np.maximum(at, 0)]
    return pd.Series(np.where(at >= 0, values, pd.NaT), index=label_ts.index)


def oracle(labels: Path, features: Path, ttl: timedelta, snapshots: bool = False) -> pd.DataFrame:
    """The rules applied literally (vectorised): every eligible row per label, then the max."""
    lab = pd.read_parquet(labels, columns=["label_id", "entity_id", "label_ts"])
    rows = pd.read_parquet(features)
    if snapshots:
        lab["current"] = _current_snapshot(rows, lab.label_ts)
    pairs = lab.merge(rows, on="entity_id")
    eligible = pairs[(pairs.feature_ts <= pairs.label_ts) & (pairs.created_ts <= pairs.label_ts)]
    winners = eligible.sort_values(["label_id", "feature_ts", "created_ts"]).drop_duplicates(
        "label_id", keep="last"
    )
    bound = winners.label_ts - ttl
    if snapshots:
        bound = np.minimum(bound, winners.pop("current"))
    stale = winners.feature_ts < bound
    winners.loc[stale, FEATURES] = np.nan
    winners.loc[stale, ["feature_ts", "created_ts"]] = pd.NaT
    out = lab[["label_id"]].merge(winners.drop(columns=["entity_id", "label_ts"]), how="left")
    return out.sort_values("label_id", ignore_index=True)


def _values(frame: pd.DataFrame) -> np.ndarray:
    return frame.sort_values("label_id")[FEATURES].to_numpy(dtype=float, na_value=np.nan)


def mismatches(ours_frame: pd.DataFrame, other: pd.DataFrame) -> int:
    """Labels whose f0..f7 differ between the two results (null equals null); every label
    counts as a mismatch if the two do not hold the same label ids."""
    if len(ours_frame) != len(other) or not np.array_equal(
        np.sort(ours_frame["label_id"].to_numpy()), np.sort(other["label_id"].to_numpy())
    ):
        return max(len(ours_frame), len(other))
    a, b = _values(ours_frame), _values(other)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return int((~same.all(axis=1)).sum())


def ensure_feast_venv(console: Console) -> None:
    """Build `.venv-feast` with `make feast-venv` when it is missing (it takes a few minutes)."""
    # The stamp too: a venv whose install was interrupted has a python but no feast.
    if FEAST_PYTHON.exists() and FEAST_STAMP.exists():
        return
    console.print(f"{FEAST_PYTHON} is missing or incomplete: running `make feast-venv` first")
    subprocess.run(["make", "feast-venv"], cwd=REPO, check=True)


def feast(
    files: Files, ttl: timedelta, store: str, repeats: int, tmp: Path
) -> tuple[Timing, pd.DataFrame]:
    """Feast's own timing of get_historical_features (warm-up, then best of `repeats`), and its
    values per label."""
    out = tmp / f"feast-{store}.parquet"
    done = subprocess.run(
        [
            str(FEAST_PYTHON),
            str(REPO / "bench" / "feast_pit.py"),
            "--features",
            str(files.features),
            "--labels",
            str(files.labels),
            "--ttl-seconds",
            str(int(ttl.total_seconds())),
            "--store",
            store,
            "--out",
            str(out),
            "--workdir",
            str(tmp / f"feast-{store}"),
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench/feast_pit.py --store {store} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Timing(float(report["seconds"]), float(report["first"])), pd.read_parquet(out)


def _frame(result: pa.Table) -> pd.DataFrame:
    return result.select(["label_id", *FEATURES]).to_pandas()


def run(
    n_labels: int,
    n_features: int,
    n_entities: int,
    days: int,
    ttl: timedelta,
    repeats: int,
    with_feast: bool,
    console: Console,
) -> list[Table]:
    """Generate the inputs, time and check every engine; return the figures and the checks."""
    figures = Table(
        "engine",
        f"seconds (best of {repeats})",
        "labels/s",
        "vs ours",
        "first call s",
        "label mismatches vs ours",
    )
    checks = Table("check", "result")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = write_inputs(tmp, n_labels, n_features, n_entities, days, ttl)
        joined, mine = best_of(lambda: ours(files, files.features, ttl), repeats)
        _, bare = best_of(lambda: bare_asof(files), repeats)
        restated, mine_restated = best_of(lambda: ours(files, files.restated, ttl), repeats)
        snapshot, mine_snapshot = best_of(lambda: ours(files, files.features, ttl, True), repeats)
        ours_frame = _frame(joined)

        def row(engine: str, timing: Timing, versus: str, wrong: str = "") -> None:
            figures.add_row(
                engine,
                f"{timing.best:.2f}",
                f"{n_labels / timing.best:,.0f}",
                versus,
                f"{timing.first:.2f}",
                wrong,
            )

        row("ours: sands.features.pit.point_in_time_join", mine, "1.0x")
        row(
            "peer: bare DuckDB ASOF JOIN (floor)",
            bare,
            f"ours is {mine.best / bare.best:.2f}x the bare ASOF time",
        )
        feast_file: Timing | None = None
        if with_feast:
            ensure_feast_venv(console)
            for store in ("file", "duckdb"):
                timing, values = feast(files, ttl, store, repeats, tmp)
                feast_file = timing if store == "file" else feast_file
                row(
                    f"peer: Feast {store} offline store",
                    timing,
                    f"Feast {store} is {timing.best / mine.best:.1f}x slower",
                    f"{mismatches(ours_frame, values):,}",
                )
        row(
            "ours, 5% restated rows (general path)",
            mine_restated,
            f"{mine_restated.best / mine.best:.2f}x ours on plain rows",
        )
        row(
            "ours, snapshot rule (training sets)",
            mine_snapshot,
            f"{mine_snapshot.best / mine.best:.2f}x ours on plain rows",
        )

        in_order = joined["label_id"].to_pylist() == list(range(n_labels))
        checks.add_row("ours returns every label once, in label order", "yes" if in_order else "NO")
        checks.add_row(
            "ours vs brute-force oracle (plain rows): label mismatches",
            f"{mismatches(ours_frame, oracle(files.labels, files.features, ttl)):,}",
        )
        checks.add_row(
            "ours vs brute-force oracle (5% restated): label mismatches",
            f"{mismatches(_frame(restated), oracle(files.labels, files.restated, ttl)):,}",
        )
        checks.add_row(
            "ours vs brute-force oracle (snapshot rule): label mismatches",
            f"{mismatches(_frame(snapshot), oracle(files.labels, files.features, ttl, True)):,}",
        )
        matched = int(joined["f0"].is_valid().to_numpy(zero_copy_only=False).sum())
        checks.add_row("labels with features (rest: no row yet, or older than TTL)", f"{matched:,}")
        if feast_file is not None:
            speedup = feast_file.best / mine.best
            checks.add_row(
                f"target: ours >= {FEAST_FILE_SPEEDUP:.0f}x faster than Feast file store",
                f"{_yes(speedup >= FEAST_FILE_SPEEDUP)} ({speedup:.1f}x)",
            )
        ratio = mine.best / bare.best
        checks.add_row(
            f"target: ours within {BARE_ASOF_RATIO}x of the bare ASOF JOIN",
            f"{_yes(ratio <= BARE_ASOF_RATIO)} ({ratio:.2f}x)",
        )
    return [figures, checks]


def _yes(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30, help="days the feature rows span")
    parser.add_argument("--ttl-days", type=float, default=7.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after a warm-up")
    parser.add_argument("--no-feast", action="store_true", help="skip the Feast peers")
    args = parser.parse_args(argv or [])
    console = Console()
    tables = run(
        args.labels,
        args.features,
        args.entities,
        args.days,
        timedelta(days=args.ttl_days),
        args.repeats,
        not args.no_feast,
        console,
    )
    for table in tables:
        console.print(table)
