"""Time Feast's point-in-time join (get_historical_features) on parquet files.

Runs in its own virtualenv (`make feast-venv`) because Feast's pins conflict with ours, so it
imports nothing from this repo: only the standard library, pandas, pyarrow and feast.

    .venv-feast/bin/python bench/feast_pit.py --features F.parquet --labels L.parquet \
        --ttl-seconds 2592000 --store duckdb --out OUT.parquet --workdir /tmp/feast-repo

Only get_historical_features plus materialising its result (to_arrow) is timed. With --repeats N
(N > 1) a warm-up call comes first and the fastest of the N calls after it counts, as for the
engines it is compared with. One JSON line goes to stdout: {"store": ..., "seconds": ...,
"rows": ..., "first": ..., "runs": [...]}, where rows is the row count of Feast's result and
first the time of the first (cold) call; --out always has one row per label (label_id, f0..f7,
null where no match).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = [f"f{i}" for i in range(8)]
KEYS = ["entity_id", "event_timestamp"]

if TYPE_CHECKING:
    from feast import FeatureStore


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--ttl-seconds", type=int, required=True)
    parser.add_argument("--store", choices=["file", "duckdb"], required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=1, help="timed calls; >1 adds a warm-up")
    args = parser.parse_args(argv)
    if args.ttl_seconds <= 0:  # Feast reads a zero TTL as "no TTL".
        parser.error("--ttl-seconds must be positive")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def _feature_store(args: argparse.Namespace) -> tuple[FeatureStore, list[str]]:
    """Apply a one-view Feast repo in --workdir and return the store and its feature refs."""
    os.environ["FEAST_USAGE"] = "False"  # before feast is imported
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.types import Float64, Int64

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="feast_pit",
        provider="local",
        registry=str(workdir / "registry.db"),
        online_store={"type": "sqlite", "path": str(workdir / "online.db")},
        offline_store={"type": args.store},
        repo_path=workdir,
        entity_key_serialization_version=3,
    )
    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
    source = FileSource(
        name="features",
        path=str(args.features.resolve()),
        timestamp_field="feature_ts",
        created_timestamp_column="created_ts",
    )
    view = FeatureView(
        name="fv",
        entities=[entity],
        ttl=timedelta(seconds=args.ttl_seconds),
        schema=[Field(name="entity_id", dtype=Int64)]
        + [Field(name=f, dtype=Float64) for f in FEATURES],
        source=source,
        online=False,
    )
    store = FeatureStore(config=config)
    store.apply([entity, view])
    return store, [f"fv:{f}" for f in FEATURES]


def _to_us_utc(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, utc=True).dt.as_unit("us")


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    labels = pq.read_table(args.labels, columns=["label_id", "entity_id", "label_ts"]).to_pandas()
    entity_df = labels.rename(columns={"label_ts": "event_timestamp"})
    # Feast and its libraries print progress; keep stdout for the one JSON line.
    with contextlib.redirect_stdout(sys.stderr):
        store, refs = _feature_store(args)
        timings = []
        for _ in range(args.repeats + (args.repeats > 1)):
            start = time.perf_counter()
            result = store.get_historical_features(entity_df=entity_df, features=refs).to_arrow()
            timings.append(time.perf_counter() - start)
        # The first of several calls only warms up (imports, registry, engine start-up).
        runs = timings[1:] if args.repeats > 1 else timings
        seconds = min(runs)

    # Map back on (entity_id, event_timestamp), not label_id: the file store keeps one row per
    # such pair and drops labels whose every candidate falls outside the TTL.
    found = result.select([*KEYS, *FEATURES]).to_pandas()
    found["event_timestamp"] = _to_us_utc(found["event_timestamp"])
    found = found.drop_duplicates(KEYS)
    entity_df["event_timestamp"] = _to_us_utc(entity_df["event_timestamp"])
    out = entity_df.merge(found, on=KEYS, how="left", validate="many_to_one")
    out = out.sort_values("label_id")[["label_id", *FEATURES]]
    schema = pa.schema([("label_id", pa.int64()), *((f, pa.float64()) for f in FEATURES)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(out, schema=schema, preserve_index=False), args.out)
    report = {
        "store": args.store,
        "seconds": round(seconds, 4),
        "rows": result.num_rows,
        "first": round(timings[0], 4),
        "runs": [round(r, 4) for r in runs],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
