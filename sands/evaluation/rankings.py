"""Top-k lists of a model on an evaluation setup, kept in the lake and computed once.

The gate ranks the champion on the challenger's holdout, and champion monitoring ranks it on the
newest labelled day: often the same users, catalogue and day. Ranking the full catalogue is most
of either step's time, so the lists are stored under a digest of everything they depend on (the
model's bytes and the setup's users, catalogue, exclusions and cut-off), never under a version
number a reset registry could reuse.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pyarrow.compute as pc

from sands.evaluation.offline import Evaluation, EvaluationSetup, RankerRecommender, evaluate, top_k
from sands.lake import delta
from sands.lake.layout import model_output

RANKINGS_TABLE = "ranked_lists"
KEY = "ranking_key"
SCHEMA = pa.schema(
    [(KEY, pa.string()), ("user_id", pa.string()), ("artwork_ids", pa.list_(pa.string()))]
)


def rankings_uri(lake_root: str) -> str:
    return model_output(lake_root, RANKINGS_TABLE)


def _table_digest(table: pa.Table, digest: hashlib.blake2b) -> None:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    digest.update(sink.getvalue().to_pybytes())


def ranking_key(model_bytes: bytes, setup: EvaluationSetup) -> str:
    """A digest of the model (`RankerModel.scoring_bytes`) and of every input its top-k lists on
    `setup` depend on."""
    digest = hashlib.blake2b(model_bytes, digest_size=20)
    digest.update(f"{setup.split.isoformat()}|{setup.spec.k}".encode())
    _table_digest(setup.users, digest)
    _table_digest(setup.catalogue, digest)
    excluded = {u: sorted(items) for u, items in setup.exclude.items() if u in setup.relevant}
    digest.update(json.dumps(excluded, sort_keys=True).encode())
    return digest.hexdigest()


def _read(uri: str, key: str, storage_options: dict[str, str] | None) -> dict[str, list[str]]:
    table = delta.open_table(uri, storage_options)
    if table is None:
        return {}
    rows = table.to_pyarrow_dataset().to_table(filter=pc.field(KEY) == key)
    return dict(zip(rows["user_id"].to_pylist(), rows["artwork_ids"].to_pylist(), strict=True))


def cached_top_k(
    recommender: RankerRecommender,
    setup: EvaluationSetup,
    lake_root: str,
    storage_options: dict[str, str] | None = None,
) -> dict[str, list[str]]:
    """`top_k(recommender, setup)`, read from the lake when this model ranked this setup before."""
    uri = rankings_uri(lake_root)
    key = ranking_key(recommender.model.scoring_bytes(), setup)
    ranked = _read(uri, key, storage_options)
    if set(ranked) == set(setup.relevant):
        return ranked
    ranked = top_k(recommender, setup)
    users = sorted(ranked)
    rows = pa.table(
        {
            KEY: pa.array([key] * len(users), pa.string()),
            "user_id": pa.array(users, pa.string()),
            "artwork_ids": pa.array([ranked[u] for u in users], pa.list_(pa.string())),
        },
        schema=SCHEMA,
    )
    delta.replace_partition(uri, rows, KEY, key, storage_options)
    return ranked


def evaluate_stored(
    recommender: RankerRecommender,
    setup: EvaluationSetup,
    lake_root: str,
    storage_options: dict[str, str] | None = None,
) -> Evaluation:
    """`evaluate`, with the top-k lists from `cached_top_k`."""
    ranked = cached_top_k(recommender, setup, lake_root, storage_options)
    return evaluate(recommender, setup, ranked)
