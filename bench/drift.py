"""Drift: `sands.monitoring.drift` against Evidently's DataDriftPreset on the same data, same
methods.

1,000,000 reference rows x 200,000 current rows x 20 columns (12 numeric, 8 categorical); half the
columns drift by construction. Evidently 0.7 runs in the separate `.venv-evidently`
(`make evidently-venv`) with `num_method="wasserstein"`, `cat_method="jensenshannon"` (its
defaults above 1,000 rows, stated explicitly). Both are timed on data already in memory; every
column's distance is compared.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from sands.monitoring.drift import column_drift

REPO = Path(__file__).resolve().parent.parent
EVIDENTLY_PYTHON = REPO / ".venv-evidently" / "bin" / "python"
EVIDENTLY_STAMP = REPO / ".venv-evidently" / ".installed-stamp"
NUMERIC = [f"num_{i}" for i in range(12)]
CATEGORICAL = [f"cat_{i}" for i in range(8)]
TOLERANCE = 1e-9  # same algorithm and binning: only float summation order may differ
SPEEDUP_TARGET = 10.0
console = Console()


def frame(rows: int, drifted: bool, seed: int) -> pa.Table:
    """Numeric columns of several shapes and categorical ones of 3-50 values; when `drifted`,
    every other column moves (shift, scale, or category mix)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i, name in enumerate(NUMERIC):
        moved = drifted and i % 2 == 0
        shape = i % 3
        if shape == 0:
            values = rng.normal(0.3 if moved else 0.0, 1.0, rows)
        elif shape == 1:
            values = rng.lognormal(0.0, 1.2 if moved else 1.0, rows)
        else:
            values = rng.integers(0, 40 if moved else 30, rows).astype(float)
        columns[name] = pa.array(values)
    for i, name in enumerate(CATEGORICAL):
        size = 3 + 7 * i
        weights = np.linspace(1, 3, size)
        if drifted and i % 2 == 0:
            weights = weights[::-1]
        labels = np.array([f"{name}_v{k}" for k in range(size)], dtype=object)
        columns[name] = pa.array(labels[rng.choice(size, rows, p=weights / weights.sum())])
    return pa.table(columns)


def ours(reference: pa.Table, current: pa.Table) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    scores = {}
    for name in NUMERIC:
        scores[name] = column_drift(
            name, reference[name].to_numpy(), current[name].to_numpy(), True
        ).statistic
    for name in CATEGORICAL:
        scores[name] = column_drift(
            name, reference[name].combine_chunks(), current[name].combine_chunks(), False
        ).statistic
    return time.perf_counter() - started, scores


def evidently(reference_path: Path, current_path: Path) -> tuple[float, dict[str, float]]:
    if not (EVIDENTLY_PYTHON.exists() and EVIDENTLY_STAMP.exists()):
        console.print("building .venv-evidently (make evidently-venv)")
        subprocess.run(["make", "evidently-venv"], cwd=REPO, check=True)
    done = subprocess.run(
        [
            str(EVIDENTLY_PYTHON),
            str(REPO / "bench" / "evidently_drift.py"),
            str(reference_path),
            str(current_path),
            ",".join(NUMERIC),
            ",".join(CATEGORICAL),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["seconds"], answer["scores"]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench drift")
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--current-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="Best of N for our side.")
    args = parser.parse_args(argv)
    reference = frame(args.reference_rows, False, 1)
    current = frame(args.current_rows, True, 2)
    with tempfile.TemporaryDirectory() as folder:
        ref_path, cur_path = Path(folder, "reference.parquet"), Path(folder, "current.parquet")
        pq.write_table(reference, ref_path)
        pq.write_table(current, cur_path)
        peer_seconds, peer_scores = evidently(ref_path, cur_path)
    runs = [ours(reference, current) for _ in range(args.repeat)]
    seconds, scores = min(runs, key=lambda run: run[0])
    table = Table(
        "column", "sands.monitoring.drift", "Evidently", "|difference|", title="Drift scores"
    )
    worst = 0.0
    for name in (*NUMERIC, *CATEGORICAL):
        difference = abs(scores[name] - peer_scores[name])
        worst = max(worst, difference)
        table.add_row(name, f"{scores[name]:.6f}", f"{peer_scores[name]:.6f}", f"{difference:.1e}")
    console.print(table)
    ratio = peer_seconds / seconds
    console.print(
        f"{args.reference_rows:,} x {args.current_rows:,} rows, 20 columns: sands.monitoring.drift "
        f"{seconds:.2f} s, Evidently DataDriftPreset {peer_seconds:.2f} s -> {ratio:.1f}x "
        f"(target >= {SPEEDUP_TARGET:.0f}x); largest score difference {worst:.1e} "
        f"(tolerance {TOLERANCE:.0e})"
    )
    if worst > TOLERANCE:
        raise SystemExit("scores differ from Evidently's beyond the tolerance")
