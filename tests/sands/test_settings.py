import os
import re
from pathlib import Path

import pytest

from sands.settings import SandsPaths, SettingError, environment, storage_options_from_env


def test_everything_lives_under_sands_home_by_default(tmp_path):
    paths = SandsPaths.from_env({"SANDS_HOME": str(tmp_path)})
    for location in (paths.landing, paths.lake, paths.warehouse, paths.mlflow, paths.dagster_home):
        assert Path(location).is_relative_to(tmp_path)


def test_object_store_locations_and_credentials_come_from_the_environment(tmp_path):
    env = {
        "SANDS_HOME": str(tmp_path),
        "SANDS_LAKE_URI": "s3://bucket/lake",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ACCESS_KEY_ID": "k",
    }
    paths = SandsPaths.from_env(env)
    assert paths.lake == "s3://bucket/lake" and Path(paths.landing).is_relative_to(tmp_path)
    assert storage_options_from_env(env) == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_ALLOW_HTTP": "true",
    }


def test_sands_home_must_be_a_folder_this_process_can_write(tmp_path):
    SandsPaths.from_env({"SANDS_HOME": str(tmp_path / "new")}).require_home()
    assert (tmp_path / "new").is_dir()
    (tmp_path / "file").write_text("x")
    for home, told in [
        (tmp_path / "file", "is a file: expected a folder"),
        (tmp_path / "file" / "below", "is not a writable folder (Not a directory)"),
        (Path("/proc"), "is not a writable folder"),  # read-only even for root
    ]:
        with pytest.raises(SettingError, match=re.escape(f"SANDS_HOME={home} {told}")):
            SandsPaths.from_env({"SANDS_HOME": str(home)}).require_home()
    with pytest.raises(SettingError, match="does not exist"):
        SandsPaths.from_env({"SANDS_HOME": str(tmp_path / "typo")}).require_home(create=False)
    assert not (tmp_path / "typo").exists()


def test_environment_sets_values_for_the_block_and_restores_them_after_a_failure(monkeypatch):
    monkeypatch.setenv("SANDS_TEST_KEPT", "before")
    monkeypatch.delenv("SANDS_TEST_NEW", raising=False)
    with pytest.raises(RuntimeError), environment({"SANDS_TEST_KEPT": "x", "SANDS_TEST_NEW": "y"}):
        assert os.environ["SANDS_TEST_KEPT"] == "x" and os.environ["SANDS_TEST_NEW"] == "y"
        raise RuntimeError
    assert os.environ["SANDS_TEST_KEPT"] == "before" and "SANDS_TEST_NEW" not in os.environ
