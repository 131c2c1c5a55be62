"""A hand-sized SANDS_HOME ready to serve, and a real `sands serve` process (or the service in
this process) over it.

Thirty artworks (styles cycle abstract, cubism, pop-art), users u000-u059 with feature vectors,
a ranker trained on `planted_examples` (users convert on their top style) registered and promoted
in a real MLflow SQLite store, and the candidate sources serving reads.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake
from fastapi.testclient import TestClient

from dagster_project.cli.ops import SERVE_COMMAND
from sands.features.offline import ARTWORK_FEATURES, USER_FEATURES
from sands.features.online_store import RedisOnlineStore, SqliteOnlineStore
from sands.ingest.bronze import bronze_uri
from sands.ingest.contract import USERS
from sands.models import model_store
from sands.models.candidates import USER_HISTORY
from sands.models.ranking import RankerParams, train_ranker
from sands.models.registry import Registry
from sands.models.segments import assignments, fit_segments
from sands.serving.app import create_app
from sands.serving.config import ServiceConfig
from sands.serving.process import RunningService, running_service
from sands.settings import SandsPaths
from tests.builders.models import (
    ARTWORK_DEFAULTS,
    STYLES,
    USER_DEFAULTS,
    artwork_vector,
    planted_examples,
    user_vector,
    vectors_table,
)

FEATURE_DAY = date(2026, 9, 7)
STAMP = datetime(2026, 9, 8, tzinfo=UTC)
ARTWORKS = [f"a{j:03d}" for j in range(30)]
USERS_WITH_FEATURES = [f"u{i:03d}" for i in range(60)]
NEW_USER = "u999"  # signed up, no feature vector yet: popularity fallback
QUIET_USER = "u001"  # features, but no engagement: no seeds for candidates
HISTORY = {"u000": (["a001", "a004"], ["a004"]), "u002": (["a002"], [])}
ADMIN_TOKEN = "s3cret"


def _stamped(rows: list[dict[str, object]], defaults: dict[str, object]) -> pa.Table:
    stamped = [
        {**r, "feature_date": FEATURE_DAY, "feature_ts": STAMP, "created_ts": STAMP} for r in rows
    ]
    return vectors_table(stamped, defaults)


def user_vectors() -> list[dict[str, object]]:
    return [
        user_vector(f"u{i:03d}", top_style=STYLES[i % 3], gender=("female", "male")[i % 2])
        for i in range(60)
    ]


def artwork_vectors() -> list[dict[str, object]]:
    return [
        artwork_vector(a, style=STYLES[j % 3], n_view_7d=10 + j) for j, a in enumerate(ARTWORKS)
    ]


def registry_for(paths: SandsPaths) -> Registry:
    return Registry(
        tracking_uri=paths.mlflow_tracking_uri,
        history_uri=str(Path(paths.lake, "registry", "champion_history")),
        artifact_location=paths.mlflow_artifacts,
    )


def register(registry: Registry, seed: int, promote: bool) -> int:
    """Train the planted ranker with `seed`, register it (challenger) and maybe promote it."""
    examples = planted_examples(users=60, artworks=30, days=4)
    model = train_ranker(examples, None, RankerParams(trees=40, max_depth=4, seed=seed))
    version = int(
        registry.register_ranker(model, model.inputs(examples), {}, {}, {}, f"seed {seed}").version
    )
    if promote:
        registry.promote(version, "tests", "serving fixture")
    return version


def build_home(home: Path, redis_url: str | None = None) -> SandsPaths:
    """Write everything `sands serve` reads under `home` (online vectors in Redis when a URL is
    given); the champion is version 1."""
    paths = SandsPaths.from_env({"SANDS_HOME": str(home)})
    paths.ensure_local_dirs()
    users = _stamped(user_vectors(), USER_DEFAULTS)
    art = _stamped(artwork_vectors(), ARTWORK_DEFAULTS)
    write_deltalake(ARTWORK_FEATURES.uri(paths.lake), art, partition_by=["feature_date"])
    write_deltalake(USER_FEATURES.uri(paths.lake), users, partition_by=["feature_date"])
    write_deltalake(
        bronze_uri(paths.lake, USERS), pa.table({"user_id": [*USERS_WITH_FEATURES, NEW_USER]})
    )
    segments = fit_segments(users, 2)
    model_store.write_segments(paths.lake, assignments(users, segments), segments, {})
    # Each artwork's neighbours: the next two of the same style.
    neighbours = [[ARTWORKS[(j + 3) % 30], ARTWORKS[(j + 6) % 30]] for j in range(30)]
    model_store.write_model_table(
        paths.lake,
        model_store.ARTWORK_SIMILARITY,
        pa.table({"artwork_id": ARTWORKS, "neighbour_ids": neighbours}),
        {},
    )
    popular = list(reversed(ARTWORKS))  # a029 is the most popular
    model_store.write_model_table(
        paths.lake,
        model_store.POPULARITY,
        pa.table(
            {
                "artwork_id": popular,
                "score": [float(30 - r) for r in range(30)],
                "rank": pa.array(range(1, 31), pa.int32()),
            }
        ),
        {},
    )
    model_store.write_model_table(
        paths.lake,
        model_store.SEGMENT_FAVOURITES,
        pa.table(
            {
                "segment": pa.array(range(segments.k), pa.int32()),
                "artwork_ids": [[ARTWORKS[s], ARTWORKS[s + 10]] for s in range(segments.k)],
            }
        ),
        {},
    )
    store = RedisOnlineStore(redis_url) if redis_url else SqliteOnlineStore(paths.online_db)
    store.write(USER_FEATURES.name, "user_id", users)
    store.write(ARTWORK_FEATURES.name, "artwork_id", art)
    store.write(
        USER_HISTORY,
        "user_id",
        pa.table(
            {
                "user_id": list(HISTORY),
                "seeds": [seeds for seeds, _ in HISTORY.values()],
                "converted": [converted for _, converted in HISTORY.values()],
                # The pair input: each seed engaged with once.
                "engaged": [seeds for seeds, _ in HISTORY.values()],
                "engaged_n": [[1.0] * len(seeds) for seeds, _ in HISTORY.values()],
            }
        ),
    )
    store.close()
    register(registry_for(paths), seed=0, promote=True)
    return paths


Server = RunningService


def kill(server: RunningService) -> None:
    """SIGKILL: no shutdown hooks, no final flush."""
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


@contextmanager
def serving(
    paths: SandsPaths, flush_seconds: float = 0.3, redis_url: str = "", **more_env: str
) -> Iterator[RunningService]:
    """`sands serve` over `paths`, polling the registry and lake every 0.3 s."""
    env = {
        **more_env,
        "SANDS_ADMIN_TOKEN": ADMIN_TOKEN,
        "SANDS_SERVE_POLL_SECONDS": "0.3",
        "SANDS_SERVE_LOG_FLUSH_SECONDS": str(flush_seconds),
        "SANDS_MLFLOW_TRACKING_URI": "",
        "SANDS_REDIS_URL": redis_url,
    }
    with running_service(paths, SERVE_COMMAND, env) as server:
        yield server


@contextmanager
def in_process(paths: SandsPaths, config: ServiceConfig | None = None) -> Iterator[TestClient]:
    """The service over `paths` in this process, without sockets: cheap per request, so a fuzzer
    can throw hundreds of bodies at it. Server faults come back as responses, not exceptions."""
    config = config or ServiceConfig(poll_seconds=60, admin_token=ADMIN_TOKEN)
    app = create_app(
        registry_for(paths), lambda: SqliteOnlineStore(paths.online_db), paths.lake, config=config
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
