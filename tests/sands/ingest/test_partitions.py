"""The daily partitions' range, derived from the landing zone (or pinned by a setting)."""

from datetime import date

import pytest

from sands.ingest.partitions import (
    EMPTY_LANDING_START,
    PartitionRange,
    PartitionsError,
    home_partition_range,
    landing_days,
    partition_range,
    require_before_today,
)
from sands.settings import SettingError, partitions_start
from sands.sim.marketplace import SimulationConfig
from tests.conftest import drop, events_table

TODAY = date(2026, 11, 30)
MAR = [date(2019, 3, 1), date(2019, 3, 2), date(2019, 3, 3)]


def test_the_start_is_the_first_landing_day_and_the_range_stays_open_for_live_days():
    covered = partition_range(reversed(MAR), {}, today=TODAY)
    assert covered == PartitionRange(date(2019, 3, 1), None, "the first landing day")
    assert covered.covers(date(2019, 3, 1), TODAY) and covered.covers(TODAY, TODAY)
    assert not covered.covers(date(2019, 2, 28), TODAY)
    assert not covered.covers(date(2026, 12, 1), TODAY)


def test_a_recorded_history_is_closed_on_its_last_day_and_future_days_extend_the_range():
    assert partition_range(MAR, {}, closed=True, today=TODAY).end == date(2019, 3, 3)
    future = [date(2027, 1, 1), date(2027, 1, 5)]
    assert partition_range(future, {}, today=TODAY) == PartitionRange(future[0], future[1])


def test_an_empty_landing_zone_starts_where_the_simulator_does():
    covered = partition_range([], {}, today=TODAY)
    assert covered.start == EMPTY_LANDING_START == SimulationConfig().start
    assert covered.end is None


def test_the_setting_pins_the_start_and_a_day_before_it_fails_in_one_line_naming_it():
    env = {"SANDS_PARTITIONS_START": "2019-03-02"}
    assert partitions_start(env) == date(2019, 3, 2)
    covered = partition_range(MAR, env, closed=True, today=TODAY)
    assert (covered.start, covered.end) == (date(2019, 3, 2), date(2019, 3, 3))
    with pytest.raises(PartitionsError) as error:
        covered.require(MAR, TODAY)
    message = str(error.value)
    assert "\n" not in message
    assert "2019-03-01" in message and "SANDS_PARTITIONS_START=2019-03-02" in message


@pytest.mark.parametrize("value", ["2019-3-1", "01/03/2019", "2019-02-30", "soon"])
def test_a_malformed_setting_is_a_one_line_error_naming_the_variable_and_the_form(value):
    with pytest.raises(SettingError) as error:
        partitions_start({"SANDS_PARTITIONS_START": value})
    message = str(error.value)
    assert "\n" not in message
    assert "SANDS_PARTITIONS_START" in message and "YYYY-MM-DD" in message and value in message


def test_landing_days_are_the_dated_interaction_folders(paths):
    assert landing_days(paths.landing) == []
    for day in (MAR[2], MAR[0]):
        drop(paths.landing, f"interactions/{day}/a.parquet", events_table([]))
    drop(paths.landing, "interactions/not-a-day/a.parquet", events_table([]))
    drop(paths.landing, "users/u.jsonl", [{"user_id": "u1"}])
    assert landing_days(paths.landing) == [MAR[0], MAR[2]]
    covered = home_partition_range(paths, env={}, upcoming=[date(2019, 2, 27)])
    assert covered.start == date(2019, 2, 27)


def test_a_replay_of_a_day_that_has_not_ended_fails_in_one_line():
    require_before_today(MAR, TODAY)
    require_before_today([date(2026, 11, 29)], TODAY)
    with pytest.raises(PartitionsError) as error:
        require_before_today([date(2026, 11, 29), TODAY, date(2031, 5, 1)], TODAY)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("2 day(s) to replay, from 2026-11-30 on, are not before today")
    assert message.endswith("replay days up to 2026-11-29")
