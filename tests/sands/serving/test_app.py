"""The recommendation service as a real `sands serve` process over a hand-sized home."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from sands.features.offline import USER_FEATURES
from sands.features.online_store import SqliteOnlineStore
from sands.models import model_store
from sands.models.aliases import CHALLENGER, CHAMPION
from sands.models.candidates import USER_HISTORY
from sands.models.ranking import RankerParams, ranker_features, trained_features
from sands.models.registry import (
    InvalidSetting,
    NoChallenger,
    NothingToRollBack,
    RegistryError,
    UnknownVersion,
)
from sands.monitoring.online_quality import (
    OnlineReport,
    figures_uri,
    latest_figures,
    record_figures,
)
from sands.serving.config import ServiceConfig
from sands.serving.exploration import Exploration
from sands.serving.prediction_log import (
    impressions_uri,
    parse_sources,
    read_impressions,
    sources_key,
)
from sands.serving.routes import oip
from sands.serving.routes.common import BodyTooSlow, bounded_body, status_for
from sands.serving.snapshot import (
    ServingSnapshot,
    arm_for,
    data_versions,
    load_serving_data,
    recommend,
)
from sands.settings import SandsPaths
from tests.builders.models import planted_examples
from tests.builders.serving import (
    ADMIN_TOKEN,
    ARTWORKS,
    NEW_USER,
    QUIET_USER,
    STAMP,
    STYLES,
    USERS_WITH_FEATURES,
    Server,
    build_home,
    in_process,
    kill,
    register,
    registry_for,
    serving,
)

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> SandsPaths:
    return build_home(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="module")
def server(home: SandsPaths) -> Iterator[Server]:
    with serving(home) as running:
        yield running


@pytest.fixture(scope="module")
def app(home: SandsPaths) -> Iterator[TestClient]:
    with in_process(home) as client:
        yield client


def _style(artwork_id: str) -> str:
    return STYLES[ARTWORKS.index(artwork_id) % 3]


def test_a_user_with_history_gets_a_ranked_list_from_the_champion(server: Server) -> None:
    with server.client() as client:
        answer = client.get("/recommendations/u000", params={"k": 5})
    assert answer.status_code == 200
    body = answer.json()
    assert body["model_version"] == 1 and body["arm"] == CHAMPION
    assert body["strategy"] == "ranked" and body["fallback"] is False
    assert len(body["impression_id"]) == 32
    items = [i["artwork_id"] for i in body["items"]]
    assert [i["position"] for i in body["items"]] == [1, 2, 3, 4, 5]
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert "a004" not in items  # converted: never recommended again
    # u000's top style is abstract and the planted model learned to favour it.
    assert all(_style(a) == "abstract" for a in items[:3])


def test_exploring_slots_serve_the_next_ranks_and_log_each_item_s_propensity(
    home: SandsPaths, app: TestClient
) -> None:
    ranked = [i["artwork_id"] for i in app.get("/recommendations/u000?k=10").json()["items"]]
    top, pool = ranked[:5], ranked[5:]
    explore = Exploration(rate=0.5, pool=5, popular=0)
    config = ServiceConfig(poll_seconds=60, admin_token=ADMIN_TOKEN, exploration=explore)
    answers = {}
    with in_process(home, config) as client:
        for _ in range(40):
            body = client.get("/recommendations/u000", params={"k": 5}).json()
            answers[body["impression_id"]] = [
                (i["artwork_id"], i["propensity"]) for i in body["items"]
            ]
    explored = 0
    for items in answers.values():
        for position, (item, propensity) in enumerate(items):
            if item == top[position]:
                assert propensity == 0.5  # its own slot, when the slot did not explore
            else:
                assert (item in pool, propensity) == (True, 0.5 / 5)
                explored += 1
    assert 0 < explored < 40 * 5
    logged = read_impressions(impressions_uri(home.lake)).to_pylist()
    mine = {r["impression_id"]: r for r in logged if r["impression_id"] in answers}
    assert len(mine) == 40
    for impression_id, row in mine.items():
        assert row["policy"] == explore.name
        assert [(i["artwork_id"], i["propensity"]) for i in row["items"]] == answers[impression_id]
    assert {row["sources"] for row in mine.values()} == {sources_key(data_versions(home.lake))}


def test_a_logged_snapshot_loads_again_after_its_tables_moved_on(
    home: SandsPaths, tmp_path: Path
) -> None:
    """What lets off-policy estimates replay serving's candidates: the versions a list logged."""
    lake = str(tmp_path / "lake")  # a copy: the module's server watches the home's lake
    shutil.copytree(home.lake, lake)
    versions = data_versions(lake)
    before = load_serving_data(lake)
    popular = model_store.read_model_table(lake, model_store.POPULARITY)[0]
    popular = popular.sort_by("rank")
    flipped = popular.take(pa.array(range(popular.num_rows - 1, -1, -1)))
    reversed_ranks = flipped.set_column(
        flipped.schema.get_field_index("rank"), "rank", popular["rank"]
    )
    model_store.write_model_table(lake, model_store.POPULARITY, reversed_ranks, {})
    assert load_serving_data(lake).popular == before.popular[::-1]
    again = load_serving_data(lake, versions=parse_sources(sources_key(versions)))
    assert (again.popular, again.neighbours, again.segment_top, again.catalogue.ids) == (
        before.popular,
        before.neighbours,
        before.segment_top,
        before.catalogue.ids,
    )
    assert again.sources == before.sources == sources_key(versions)


def test_a_user_without_recent_engagement_gets_the_champion_s_ranking(server: Server) -> None:
    with server.client() as client:
        quiet = client.get(f"/recommendations/{QUIET_USER}", params={"k": 4}).json()
        new = client.get(f"/recommendations/{NEW_USER}", params={"k": 3}).json()
    # No seeds: the champion ranks the segment's favourites and popularity, and its learned
    # taste for the user's top style wins over the popularity order (a029 is another style).
    assert quiet["strategy"] == "ranked" and quiet["fallback"] is False
    assert quiet["model_version"] == 1
    items = [i["artwork_id"] for i in quiet["items"]]
    assert all(_style(a) == STYLES[1] for a in items[:3])
    assert [i["score"] for i in quiet["items"]] == sorted(
        (i["score"] for i in quiet["items"]), reverse=True
    )
    # No feature vector yet: the popularity list.
    assert new["strategy"] == "popularity" and new["model_version"] is None
    assert [i["artwork_id"] for i in new["items"]] == ["a029", "a028", "a027"]


def test_without_a_champion_every_user_gets_the_popularity_list(home: SandsPaths) -> None:
    data = load_serving_data(home.lake)
    store = SqliteOnlineStore(home.online_db)
    users = ["u000", QUIET_USER]
    vectors = store.get(USER_FEATURES.name, users)
    histories = store.get(USER_HISTORY, users)
    store.close()
    histories[1] = {"seeds": [], "converted": ["a029"]}  # bought the most popular artwork
    snapshot = ServingSnapshot(data, champion=None, challenger=None, canary_share=0.0)

    pairs = zip(users, vectors, histories, strict=True)
    served = [recommend(snapshot, u, v, h, 3, 200) for u, v, h in pairs]

    # The list every challenger is judged against, without what the user converted on.
    assert [s.strategy for s in served] == ["popularity", "popularity"]
    assert [s.artwork_ids for s in served] == [["a029", "a028", "a027"], ["a028", "a027", "a026"]]
    assert {s.model_version for s in served} == {None}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/recommendations/nobody", 404),
        ("/recommendations/u000?k=0", 422),
        ("/recommendations/u000?k=101", 422),
        ("/recommendations/u000?k=ten", 422),
        # Python's int() reads each of these as a number; a client that sends them has a bug.
        ("/recommendations/u000?k=5_0", 422),
        ("/recommendations/u000?k=%2B5", 422),
        ("/recommendations/u000?k=%205", 422),
        ("/recommendations/u000?k=%EF%BC%95", 422),
        ("/recommendations/u000?k=5.0", 422),
        ("/v2/models/other-model", 404),
    ],
)
def test_bad_requests_get_clear_4xx(server: Server, path: str, status: int) -> None:
    with server.client() as client:
        answer = client.get(path)
    assert answer.status_code == status
    assert answer.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"inputs": []}',
        b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}',
        b'{"inputs": [{"name": "x", "shape": [1, 29], "datatype": "BYTES", "data": []}]}',
        b'{"inputs": [{"name": "x", "shape": [2, 29], "datatype": "FP32", "data": [1, 2]}]}',
        b'{"inputs": [{"name": "x", "shape": [1, 29], "datatype": "FP32", "data": ["a"]}]}',
    ],
)
def test_malformed_inference_requests_are_400(server: Server, body: bytes) -> None:
    with server.client() as client:
        answer = client.post("/v2/models/sands-ranker/infer", content=body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("bad inference request")


INFER = "/v2/models/sands-ranker/infer"
WIDTH = len(trained_features(0, RankerParams()))  # the planted ranker's inputs (no segments)


def _tensor(shape: object, data: object, datatype: object = "FP32") -> dict[str, object]:
    return {"inputs": [{"name": "features", "shape": shape, "datatype": datatype, "data": data}]}


def _counted(client: TestClient | httpx.Client) -> Counter[str]:
    """`sands_requests_total` by status, summed over endpoints; /metrics's own requests left out."""
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "sands_requests_total" and sample.labels["endpoint"] != "metrics":
                counts[sample.labels["status"]] += int(sample.value)
    return counts


@pytest.mark.parametrize(
    "body",
    [
        _tensor([True, WIDTH], [0.5] * WIDTH),
        _tensor([False, WIDTH], []),
        _tensor([1, WIDTH], [True] + [0.5] * (WIDTH - 1)),
        _tensor([1, WIDTH], [None] * WIDTH),
        _tensor([1, WIDTH], ["1.5"] * WIDTH),
        _tensor([1, WIDTH], [1e39] * WIDTH),  # beyond FP32: would score as infinity
        _tensor([1, WIDTH], {"a": 1}),
        _tensor([1, WIDTH], [[[0.5]] * WIDTH]),
        # Ragged rows would be re-cut: the second row's first value as the first row's last.
        _tensor([2, WIDTH], [[0.5] * (WIDTH - 1), [1] * (WIDTH + 1)]),
    ],
)
def test_hostile_inference_bodies_are_counted_400s(app: TestClient, body: dict) -> None:
    before = _counted(app)
    answer = app.post(INFER, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith("bad inference request")
    assert _counted(app) - before == Counter({"400": 1})


def test_a_body_past_the_limit_is_a_counted_413_declared_or_streamed(home: SandsPaths) -> None:
    body = orjson.dumps(_tensor([2, WIDTH], [0.5] * 2 * WIDTH))
    config = ServiceConfig(poll_seconds=60, admin_token=ADMIN_TOKEN, max_body_bytes=len(body))
    with in_process(home, config) as client:
        assert client.post(INFER, content=body).status_code == 200
        too_big = orjson.dumps(_tensor([3, WIDTH], [0.5] * 3 * WIDTH))
        before = _counted(client)
        assert client.post(INFER, content=too_big).status_code == 413
        streamed = client.post(INFER, content=iter([too_big[:100], too_big[100:]]))
        assert streamed.status_code == 413 and "limit" in streamed.json()["error"]
        share = b'{"share": 0.5' + b" " * len(body) + b"}"
        assert client.put("/admin/canary", content=share, headers=AUTH).status_code == 413
        assert _counted(client) - before == Counter({"413": 3})


def test_a_client_leaving_mid_body_is_counted_as_closed_not_as_a_server_error(
    server: Server,
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with server.client() as client:
        before = _counted(client)
        with socket.create_connection((host, int(port))) as leaving:
            leaving.sendall(
                f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                'Content-Length: 1000\r\n\r\n{"inputs": ['.encode()
            )
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while (counted := _counted(client) - before) == Counter() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert counted == Counter({"499": 1})
        assert client.get("/v2/health/ready").status_code == 200


def test_a_body_that_does_not_arrive_in_time_is_refused_as_too_slow() -> None:
    async def trickle() -> dict[str, object]:
        await asyncio.sleep(0.3)  # each chunk late: the whole body never arrives in time
        return {"type": "http.request", "body": b"{", "more_body": True}

    request = Request({"type": "http", "method": "POST", "headers": []}, trickle)
    with pytest.raises(BodyTooSlow, match=r"within 0\.5 s") as refused:
        asyncio.run(bounded_body(request, 1_000, seconds=0.5))
    assert status_for(refused.value) == 408


def test_scoring_an_inference_body_leaves_the_event_loop_to_other_requests(
    app: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, released, waited = threading.Event(), threading.Event(), []
    matrix = oip._oip_matrix

    def slow(body: object, features: int) -> np.ndarray:
        entered.set()
        waited.append(released.wait(10))  # False: nothing else ran while this held the loop
        return matrix(body, features)

    monkeypatch.setattr(oip, "_oip_matrix", slow)
    scoring = threading.Thread(
        target=lambda: app.post(INFER, json=_tensor([1, WIDTH], [0.5] * WIDTH))
    )
    scoring.start()
    assert entered.wait(10)
    assert app.get("/v2/health/live").status_code == 200
    released.set()
    scoring.join()
    assert waited == [True]


def test_zero_rows_and_rows_as_lists_are_valid_tensors(app: TestClient) -> None:
    empty = app.post(INFER, json=_tensor([0, WIDTH], []))
    flat = app.post(INFER, json=_tensor([2, WIDTH], [0.5] * WIDTH + [1] * WIDTH))
    rows = app.post(INFER, json=_tensor([2, WIDTH], [[0.5] * WIDTH, [1] * WIDTH]))
    assert empty.status_code == 200 and empty.json()["outputs"][0]["data"] == []
    assert rows.status_code == 200 and rows.json()["outputs"] == flat.json()["outputs"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("DELETE", "/v2/health/live", 405),
        ("POST", "/recommendations/u000", 405),
        ("GET", "/recommendations/u000?k=ten", 422),
        ("GET", "/recommendations/u000?k=0", 422),
        ("GET", "/recommendations/nobody", 404),
        ("GET", "/v2/models/other-model/ready", 404),
        ("POST", "/admin/reload", 401),
    ],
)
def test_every_error_is_a_counted_json_error(
    app: TestClient, method: str, path: str, status: int
) -> None:
    before = _counted(app)
    answer = app.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert set(answer.json()) == {"error"} and answer.json()["error"]
    assert _counted(app) - before == Counter({str(status): 1})


def test_a_server_fault_is_a_counted_json_500_and_the_service_stays_up(
    app: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("calibration exploded")

    monkeypatch.setattr("sands.serving.routes.oip.platt_probabilities", broken)
    before = _counted(app)
    answer = app.post(INFER, json=_tensor([1, WIDTH], [0.5] * WIDTH))
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert "internal" in error and "exploded" not in error  # details go to the log only
    assert _counted(app) - before == Counter({"500": 1})
    monkeypatch.undo()
    assert app.post(INFER, json=_tensor([1, WIDTH], [0.5] * WIDTH)).status_code == 200


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (ADMIN_TOKEN, 401),
        (f"Token {ADMIN_TOKEN}", 401),
        (f"Bearer {ADMIN_TOKEN}x", 401),
        ("Bearer", 401),
        ("Bearer \u00e9".encode(), 401),  # non-ASCII: hmac refuses to compare such str
        (f"bearer {ADMIN_TOKEN}", 200),  # the scheme is case-insensitive (RFC 7235)
        (f"Bearer {ADMIN_TOKEN}", 200),
    ],
)
def test_admin_needs_the_bearer_scheme(
    app: TestClient, authorization: str | bytes, status: int
) -> None:
    answer = app.post("/admin/reload", headers={"Authorization": authorization})
    assert answer.status_code == status
    assert status == 200 or "Bearer" in answer.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/recommendations/" + "u" * 10_000, None),
        ("GET", "/v2/models/" + "m" * 10_000, None),
        ("GET", "/" + "x" * 10_000, None),
        ("POST", INFER, _tensor([1, WIDTH], [], datatype="D" * 10_000)),
        ("POST", INFER, _tensor([1, WIDTH], ["x" * 10_000] * WIDTH)),
    ],
)
def test_errors_echo_only_a_short_prefix_of_the_input(
    app: TestClient, method: str, path: str, body: dict | None
) -> None:
    answer = app.request(method, path, json=body)
    assert 400 <= answer.status_code < 500
    assert len(answer.json()["error"]) < 200


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
NUMBERS = st.integers(-5, 5) | st.floats(-1e6, 1e6)  # SCALARS has the huge ones


@st.composite
def _shaped(draw: st.DrawFn) -> dict[str, object]:
    """A tensor whose shape and data agree: only the values (and the datatype) can be wrong."""
    rows = draw(st.integers(0, 3))
    size = rows * WIDTH
    values = draw(
        st.lists(NUMBERS, min_size=size, max_size=size)
        | st.lists(NUMBERS | SCALARS, min_size=size, max_size=size)
    )
    datatype = draw(st.sampled_from(["FP32", "FP64", "BYTES"]))
    return _tensor([rows, WIDTH], values, datatype)


TENSORS = st.fixed_dictionaries(
    {
        "name": st.text(max_size=8),
        "shape": st.lists(st.integers(-1, WIDTH + 1) | SCALARS, max_size=3),
        "datatype": st.sampled_from(["FP32", "FP64", "INT8"]) | JSON,
        "data": st.lists(NUMBERS | SCALARS, max_size=WIDTH * 2) | JSON,
    }
)
BODIES = (
    _shaped()
    | st.fixed_dictionaries({"inputs": st.lists(TENSORS | JSON, max_size=2)}, optional={"id": JSON})
    | JSON
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES | st.binary(max_size=64))
def test_no_inference_body_gets_a_5xx_and_every_answer_is_counted(
    app: TestClient, body: object
) -> None:
    before = _counted(app)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = app.post(INFER, content=content)
    event(f"status {answer.status_code}")
    assert answer.status_code in (200, 400), answer.text
    assert answer.headers["content-type"] == "application/json"
    if answer.status_code == 200:  # only JSON numbers are features
        data = body["inputs"][0]["data"]
        assert all(type(v) in (int, float) for v in data), data
    else:
        assert answer.json()["error"]
    assert _counted(app) - before == Counter({str(answer.status_code): 1})
    assert app.get("/v2/health/ready").status_code == 200


def test_open_inference_protocol_round_trip(server: Server) -> None:
    rows = planted_examples(users=3, artworks=30, days=1)
    with server.client() as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").json() == {"ready": True}
        meta = client.get("/v2/models/sands-ranker").json()
        # A client sends the inputs the metadata names, in its order.
        inputs = ranker_features(rows, None)[meta["parameters"]["feature_names"]].to_numpy()
        answer = client.post(
            "/v2/models/sands-ranker/infer",
            json={
                "id": "req-1",
                "inputs": [
                    {
                        "name": "features",
                        "shape": list(inputs.shape),
                        "datatype": "FP32",
                        "data": inputs.ravel().tolist(),
                    }
                ],
            },
        ).json()
    assert meta["inputs"][0]["shape"] == [-1, inputs.shape[1]]
    assert meta["versions"] == ["1"]
    assert answer["id"] == "req-1" and answer["model_version"] == "1"
    expected = registry_for(server.paths).load_ranker(1).scores(rows)
    scores = next(o for o in answer["outputs"] if o["name"] == "score")
    assert scores["shape"] == [rows.num_rows]
    np.testing.assert_allclose(scores["data"], expected, rtol=1e-6, atol=1e-6)


def test_admin_endpoints_need_the_bearer_token(server: Server) -> None:
    with server.client() as client:
        assert client.post("/admin/reload").status_code == 401
        wrong = {"Authorization": "Bearer guess"}
        assert client.put("/admin/canary", json={"share": 0.5}, headers=wrong).status_code == 401
        assert client.post("/admin/reload", headers=AUTH).status_code == 200
        assert client.put("/admin/canary", json={"share": 2}, headers=AUTH).status_code == 400
        assert client.put("/admin/canary", content=b"{", headers=AUTH).status_code == 400
        for share in (True, "0.5", None, [0.5]):  # `true` is no share of 1
            assert (
                client.put("/admin/canary", json={"share": share}, headers=AUTH).status_code == 400
            )


def test_a_second_serve_on_the_same_port_refuses_to_start(server: Server, tmp_path: Path) -> None:
    port = str(httpx.URL(server.url).port)
    second = subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", "serve", "--port", port],
        env={**os.environ, "SANDS_HOME": str(tmp_path)},  # another home: it must not answer
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1
    assert (second.stdout + second.stderr).strip().splitlines() == [
        f"error: 127.0.0.1:{port} is already in use (another sands serve?)"
    ]
    with server.client() as client:
        assert {client.get("/v2/health/ready").status_code for _ in range(20)} == {200}


def test_metrics_are_prometheus_text(server: Server) -> None:
    with server.client() as client:
        client.get("/recommendations/u000")
        text = client.get("/metrics").text
    for family in (
        "sands_requests_total",
        "sands_request_latency_seconds_bucket",
        'sands_model_version{arm="champion"} 1.0',
        "sands_canary_share",
        "sands_fallback_ratio",
        "sands_recommendations_total",
    ):
        assert family in text


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
    }


def test_metrics_show_swaps_freshness_the_log_queue_and_online_figures(
    app: TestClient, home: SandsPaths
) -> None:
    """What the chart's dashboard and alerts read besides traffic (tests/helm/test_monitoring.py
    holds their queries to these names)."""
    started = time.time()
    by_arm = pa.Table.from_pylist(
        [
            {"arm": CHAMPION, "model_version": 1, "impressions": 400, "ctr": 0.06, "rate": 0.02},
            {"arm": CHAMPION, "model_version": 0, "impressions": 90, "ctr": 0.01, "rate": 0.0},
            {"arm": CHALLENGER, "model_version": 2, "impressions": 80, "ctr": 0.09, "rate": 0.03},
        ]
    ).rename_columns(["arm", "model_version", "impressions", "ctr", "conversion_rate"])
    as_of = datetime(2026, 9, 8, 12, tzinfo=UTC)
    report = OnlineReport(by_arm, 1, None, 0.06, 400, True, "undecided", as_of)
    uri = figures_uri(home.lake)
    assert record_figures(uri, report, datetime.now(UTC)) == 3
    assert app.app.state.watcher.refresh_figures()
    samples = _samples(app)
    assert samples[("sands_snapshot_swaps_total", ())] >= 1
    assert started - 60 < samples[("sands_snapshot_checked_timestamp_seconds", ())] <= time.time()
    for arm in (CHAMPION, CHALLENGER):  # a registration time for each arm that serves a model
        registered = samples.get(("sands_model_registered_timestamp_seconds", (("arm", arm),)))
        if samples[("sands_model_version", (("arm", arm),))] > 0:
            assert started - 3600 < registered <= time.time()
        else:
            assert registered is None
    assert samples[("sands_features_timestamp_seconds", ())] == STAMP.timestamp()
    assert samples[("sands_prediction_log_queue_depth", ())] >= 0
    # Only the version serving each arm when online_performance ran (no challenger then).
    online = {k: v for k, v in samples.items() if k[0].startswith("sands_online_")}
    champion = (("arm", CHAMPION), ("version", "1"))
    assert online == {
        ("sands_online_ctr", champion): 0.06,
        ("sands_online_conversion_rate", champion): 0.02,
        ("sands_online_impressions", champion): 400,
        ("sands_online_as_of_timestamp_seconds", ()): as_of.timestamp(),
    }
    assert latest_figures(uri).num_rows == 1
    assert not app.app.state.watcher.refresh_figures()  # unchanged table: not read again


def _hammer(server: Server, stop: threading.Event, seen: list[tuple[int, int | None]]) -> None:
    with server.client() as client:
        n = 0
        while not stop.is_set():
            user = USERS_WITH_FEATURES[n % len(USERS_WITH_FEATURES)]
            n += 1
            try:
                answer = client.get(f"/recommendations/{user}")
                seen.append((answer.status_code, answer.json().get("model_version")))
            except Exception:  # a refused or broken connection is a failed request too
                seen.append((0, None))


def test_a_new_champion_is_swapped_in_under_load_without_failures(server: Server) -> None:
    registry = registry_for(server.paths)
    stop, seen = threading.Event(), []
    workers = [threading.Thread(target=_hammer, args=(server, stop, seen)) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    version = register(registry, seed=7, promote=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(v == version for _, v in seen[-50:]):
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for worker in workers:
        worker.join()
    statuses = Counter(status for status, _ in seen)
    assert statuses == {200: len(seen)}, statuses
    versions = [v for _, v in seen if v is not None]
    first_new = versions.index(version)
    assert set(versions[:first_new]) == {1}
    assert versions[-1] == version


def test_canary_routes_a_stable_share_of_users_to_the_challenger(server: Server) -> None:
    registry = registry_for(server.paths)
    challenger = register(registry, seed=11, promote=False)
    with server.client() as client:
        set_share = client.put("/admin/canary", json={"share": 0.5}, headers=AUTH)
        assert set_share.status_code == 200 and set_share.json()["challenger"] == challenger
        first = {u: client.get(f"/recommendations/{u}").json() for u in USERS_WITH_FEATURES}
        again = {u: client.get(f"/recommendations/{u}").json()["arm"] for u in USERS_WITH_FEATURES}
        metrics = client.get("/metrics").text
        client.put("/admin/canary", json={"share": 0.0}, headers=AUTH)
    assert {u: b["arm"] for u, b in first.items()} == again  # stable per user
    assert again == {u: arm_for(u, 0.5) for u in USERS_WITH_FEATURES}
    arms = Counter(again.values())
    assert 15 <= arms[CHALLENGER] <= 45  # about half of 60
    ranked = [b for b in first.values() if b["strategy"] == "ranked"]
    assert {b["model_version"] for b in ranked if b["arm"] == CHALLENGER} <= {challenger}
    assert "sands_canary_share 0.5" in metrics


def test_production_reads_features_from_redis(tmp_path: Path, redis_url: str) -> None:
    paths = build_home(tmp_path, redis_url)
    assert not Path(paths.online_db).exists()  # nothing embedded to fall back on
    with serving(paths, redis_url=redis_url) as running, running.client() as client:
        ranked = client.get("/recommendations/u000", params={"k": 3}).json()
        quiet = client.get(f"/recommendations/{QUIET_USER}").json()
    assert ranked["strategy"] == "ranked" and ranked["model_version"] == 1
    assert "a004" not in [i["artwork_id"] for i in ranked["items"]]  # history came from Redis
    assert quiet["strategy"] == "ranked"


def test_the_log_survives_kill_9_with_every_flushed_impression(tmp_path: Path) -> None:
    paths = build_home(tmp_path)
    with serving(paths, flush_seconds=0.2) as running:
        with running.client() as client:
            early = [client.get(f"/recommendations/{u}").json() for u in USERS_WITH_FEATURES]
            time.sleep(1.5)  # past the flush deadline: these are committed
            late = [client.get(f"/recommendations/{u}").json() for u in USERS_WITH_FEATURES[:10]]
        kill(running)
    logged = read_impressions(impressions_uri(paths.lake))
    ids = logged["impression_id"].to_pylist()
    assert len(ids) == len(set(ids))  # nothing twice
    assert {b["impression_id"] for b in early} <= set(ids)  # nothing flushed was lost
    assert set(ids) <= {b["impression_id"] for b in early + late}  # nothing made up
    row = next(r for r in logged.to_pylist() if r["impression_id"] == early[0]["impression_id"])
    assert row["user_id"] == USERS_WITH_FEATURES[0] and row["arm"] == CHAMPION
    assert [i["artwork_id"] for i in row["items"]] == [i["artwork_id"] for i in early[0]["items"]]
    assert [i["position"] for i in row["items"]] == list(range(1, 11))


def test_a_connection_that_sends_no_whole_request_in_time_is_closed(tmp_path: Path) -> None:
    paths = build_home(tmp_path)
    with serving(paths, SANDS_SERVE_HEADER_TIMEOUT_SECONDS="1") as running:
        host, port = running.url.removeprefix("http://").split(":")
        silent = socket.create_connection((host, int(port)))
        dribbling = socket.create_connection((host, int(port)))
        dribbling.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")  # no blank line
        for held in (silent, dribbling):
            held.settimeout(10)
            assert held.recv(1) == b""  # closed by the server, not answered
            held.close()
        with running.client() as client:  # whoever sends a request in time is served
            assert client.get("/v2/health/live").status_code == 200


def test_the_serving_guard_switches_the_champion_arm_to_popularity_and_back(
    server: Server,
) -> None:
    registry = registry_for(server.paths)

    def strategy() -> str:
        with server.client() as client:
            return client.get("/recommendations/u000", params={"k": 5}).json()["strategy"]

    def wait_for(expected: str) -> str:
        deadline, seen = time.monotonic() + 30, strategy()
        while seen != expected and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = strategy()
        return seen

    assert wait_for("ranked") == "ranked"
    registry.set_serving_policy("popularity", "test", "popularity beat the champion")
    assert wait_for("popularity") == "popularity"
    # A champion that passes the gate serves again, with no human switching the guard off.
    version = register(registry, seed=21, promote=True)
    assert registry.serving_policy() == "champion"
    assert wait_for("ranked") == "ranked"
    actions = [c.action for c in registry.history()]
    assert actions[-3:] == ["serving_policy_popularity", "promote", "serving_policy_champion"]
    assert registry.champion_version() == version


def test_each_typed_registry_error_maps_to_one_http_status() -> None:
    assert status_for(NoChallenger("no challenger")) == 409
    assert status_for(NothingToRollBack("nothing")) == 409
    assert status_for(UnknownVersion("no version 9")) == 404
    assert status_for(InvalidSetting("share 2")) == 400
    assert status_for(ValueError("bad body")) == 400
    assert status_for(RegistryError("untyped")) == 500
    assert status_for(KeyError("a bug")) == 500
