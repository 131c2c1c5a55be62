"""The service's settings from the environment: numbers, or one line naming the variable."""

from __future__ import annotations

import pytest

from dagster_project.service_app import env_number


def test_settings_read_as_numbers_with_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDS_SERVE_EXPLORATION_RATE", "0.05")
    monkeypatch.delenv("SANDS_SERVE_EXPLORATION_POOL", raising=False)
    assert env_number("SANDS_SERVE_EXPLORATION_RATE", 0.0) == 0.05
    assert env_number("SANDS_SERVE_EXPLORATION_POOL", 40, int) == 40


@pytest.mark.parametrize(
    ("text", "kind", "says"),
    [("ten percent", float, "is not a number"), ("4.5", int, "is not a whole number")],
)
def test_a_setting_that_is_no_number_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, text: str, kind: type, says: str
) -> None:
    monkeypatch.setenv("SANDS_SERVE_EXPLORATION_POOL", text)
    with pytest.raises(ValueError, match=f"^SANDS_SERVE_EXPLORATION_POOL='{text}' {says}$"):
        env_number("SANDS_SERVE_EXPLORATION_POOL", 40, kind)
