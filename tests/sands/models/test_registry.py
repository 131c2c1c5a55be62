"""The registry on a real MLflow SQLite store: versions, aliases, promote and rollback, logged."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from typer.testing import CliRunner

from dagster_project.cli import app
from sands.models.aliases import CHALLENGER, CHAMPION
from sands.models.ranking import RankerParams, train_ranker
from sands.models.registry import NothingToRollBack, Registry, UnknownVersion
from sands.serving.process import wait_until_ready
from tests.builders.models import planted_examples
from tests.conftest import free_port

EXAMPLES = planted_examples(users=20, days=2)
LINEAGE = {"sands.delta.training_examples": "3", "sands.git_commit": "abc123"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Three registered versions of a small ranker (seeds 0, 1, 2) in a fresh store."""
    home = tmp_path_factory.mktemp("registry")
    reg = Registry(
        tracking_uri=f"sqlite:///{home}/mlflow.db",
        history_uri=str(home / "lake" / "registry" / "champion_history"),
        artifact_location=(home / "artifacts").as_uri(),
    )
    for seed in range(3):
        model = train_ranker(EXAMPLES, None, RankerParams(trees=5, max_depth=2, seed=seed))
        reg.register_ranker(
            model,
            example=model.inputs(EXAMPLES),
            params={"seed": seed},
            metrics={"train_auc": 0.7, "not_a_number": float("nan")},
            tags={**LINEAGE, "seed": str(seed)},
            run_name=f"seed {seed}",
        )
    return reg


def test_each_registration_is_a_version_with_tags_and_the_last_is_challenger(registry):
    assert [int(v.version) for v in registry.versions()] == [1, 2, 3]
    assert registry.aliases() == {CHALLENGER: 3}
    assert registry.version(2).tags["sands.delta.training_examples"] == "3"
    info = registry.model_info(2)
    assert info.signature.inputs.input_names() == registry.load_ranker(2).spec.features
    assert info.saved_input_example_info is not None


def test_registering_an_identical_model_again_reuses_its_version(registry):
    same = train_ranker(EXAMPLES, None, RankerParams(trees=5, max_depth=2, seed=0))
    again = registry.register_ranker(same, same.inputs(EXAMPLES), {}, {}, {}, "rerun")
    assert int(again.version) == 1
    assert registry.aliases()[CHALLENGER] == 1
    assert [int(v.version) for v in registry.versions()] == [1, 2, 3]
    registry.client.set_registered_model_alias(registry.model_name, CHALLENGER, "3")


def test_a_loaded_version_scores_exactly_like_the_trained_model(registry):
    trained = train_ranker(EXAMPLES, None, RankerParams(trees=5, max_depth=2, seed=1))
    loaded = registry.load_ranker(2)
    assert loaded.model_bytes() == trained.model_bytes()
    assert np.array_equal(loaded.scores(EXAMPLES), trained.scores(EXAMPLES))
    assert loaded.spec.calibration == pytest.approx(trained.spec.calibration)


def test_promote_and_rollback_walk_the_champion_history(registry):
    with pytest.raises(NothingToRollBack, match="no earlier champion"):
        registry.rollback("tester", "nothing yet")
    for version in (1, 2, 3):
        registry.promote(version, "tester", f"promote {version}")
    assert registry.champion_version() == 3
    registry.record_rejection(1, "gate", "worse than the champion")
    assert registry.champion_version() == 3
    assert registry.rollback("tester", "bad canary").version == 2
    assert registry.rollback("tester", "still bad").version == 1
    with pytest.raises(NothingToRollBack):
        registry.rollback("tester", "no more")
    history = [(c.action, c.version, c.previous) for c in registry.history()]
    assert history == [
        ("promote", 1, None),
        ("promote", 2, 1),
        ("promote", 3, 2),
        ("gate_reject", 1, 3),
        ("rollback", 2, 3),
        ("rollback", 1, 2),
    ]
    assert all(c.actor == "tester" for c in registry.history() if c.action != "gate_reject")
    with pytest.raises(UnknownVersion, match="no version 9"):
        registry.promote(9, "tester", "typo")


def test_the_cli_promotes_and_rolls_back_by_hand(paths, monkeypatch):
    monkeypatch.delenv("SANDS_MLFLOW_TRACKING_URI", raising=False)
    from resources import build_resources

    reg = build_resources()["registry"].open()
    for seed in range(2):
        model = train_ranker(EXAMPLES, None, RankerParams(trees=3, max_depth=2, seed=seed))
        reg.register_ranker(model, model.inputs(EXAMPLES), {}, {}, {}, f"s{seed}")
    runner = CliRunner()
    before = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert "serves: popularity (no champion yet" in before.output
    assert "Popularity: no list yet" in before.output
    assert runner.invoke(app, ["promote", "1"]).exit_code == 0
    result = runner.invoke(app, ["promote", "2", "--reason", "hotfix"])
    assert result.exit_code == 0 and "v1 -> v2" in result.output
    assert reg.aliases()[CHAMPION] == 2
    result = runner.invoke(app, ["rollback", "--reason", "canary failed"])
    assert result.exit_code == 0 and "v2 -> v1" in result.output
    assert reg.aliases()[CHAMPION] == 1
    assert reg.history()[-1].reason == "canary failed"
    assert reg.history()[-1].actor.startswith("cli:")
    failed = runner.invoke(app, ["promote", "7"])
    assert failed.exit_code == 1 and "no version 7" in failed.output
    # Promoting the champion again changes and logs nothing; rollback only goes to a different one.
    again = runner.invoke(app, ["promote", "1"])
    assert again.exit_code == 0 and "v1 is already the champion" in again.output
    alone = runner.invoke(app, ["rollback"])
    assert alone.exit_code == 1 and "no earlier champion to roll back to" in alone.output
    assert [c.action for c in reg.history()][-2:] == ["promote", "rollback"]
    # A history that pushed one version twice in a row (before promote refused) counts it once.
    for _ in range(2):
        reg._move_champion(2, "promote", "old cli", "twice")
    result = runner.invoke(app, ["rollback"])
    assert result.exit_code == 0 and "v2 -> v1" in result.output
    listing = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert "champion" in listing.output and "challenger" in listing.output
    assert "The champion arm serves: champion" in listing.output


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` (SQLite backend, served artifacts) on a free loopback port."""
    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{home}/server.db",
        "--artifacts-destination",
        str(home / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # Its own process group: `mlflow server` runs uvicorn as a child, which must stop with it,
    # also when it never became ready.
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/health", server, timeout=90)
        yield url
    finally:
        _signal_group(server, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:  # its workers can be slow to stop on a loaded machine
            _signal_group(server, signal.SIGKILL)
            server.wait(timeout=20)


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group already exited
        os.killpg(process.pid, sig)


def test_a_tracking_server_works_the_same(mlflow_server, tmp_path):
    reg = Registry(tracking_uri=mlflow_server, history_uri=str(tmp_path / "history"))
    model = train_ranker(EXAMPLES, None, RankerParams(trees=5, max_depth=2))
    version = reg.register_ranker(model, model.inputs(EXAMPLES), {}, {}, LINEAGE, "srv")
    assert reg.aliases() == {CHALLENGER: int(version.version)}
    assert reg.load_ranker(int(version.version)).model_bytes() == model.model_bytes()
    reg.promote(int(version.version), "tester", "first")
    assert reg.champion_version() == int(version.version)
    assert reg.ui_link(1) == f"{mlflow_server}/#/models/sands-ranker/versions/1"
    assert reg.run_link(1).startswith(f"{mlflow_server}/#/experiments/")
