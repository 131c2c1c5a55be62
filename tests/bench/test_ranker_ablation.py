"""The ranker ablation: its paired gap, the variants' params, frozen mode and one-line refusals."""

from datetime import date

import pyarrow as pa
import pytest

from bench.ranker_ablation import Lake, Variant, converting_days, main, paired_gap, variant_params


def test_paired_gap_is_the_mean_difference_with_its_standard_error() -> None:
    # Differences 0.2 and 0.3: mean 0.25, sd 0.0707, standard error 0.0707 / sqrt(2) = 0.05.
    assert paired_gap([0.3, 0.5], [0.1, 0.2]) == "+0.2500 ± 0.0500"


def test_paired_gap_of_one_day_has_no_standard_error() -> None:
    assert paired_gap([0.1], [0.3]) == "-0.2000"


def test_converting_days_are_the_landing_days_with_a_favourite_or_purchase() -> None:
    events = pa.table(
        {
            "event_type": ["view", "purchase", "click", "favourite", "purchase"],
            "landing_date": [date(1997, 9, d) for d in (20, 21, 22, 24, 21)],
        }
    )
    assert converting_days(events) == [date(1997, 9, 21), date(1997, 9, 24)]


def test_a_variant_changes_only_what_it_names_in_the_rankers_params() -> None:
    from sands.models.ranking import RankerParams

    default = variant_params(Variant("4 uniform", 0, 0, 4))
    assert default.popularity_prior == RankerParams().popularity_prior
    assert default.trees == RankerParams().trees
    more = variant_params(Variant("more trees", 0, 0, 4, trees=RankerParams().trees + 200))
    assert more.trees == RankerParams().trees + 200
    assert more.popularity_prior == default.popularity_prior
    assert more.max_depth == default.max_depth == RankerParams().max_depth
    deeper = variant_params(Variant("deeper", 0, 0, 4, max_depth=RankerParams().max_depth + 2))
    assert deeper.max_depth == RankerParams().max_depth + 2 and deeper.trees == default.trees
    without = variant_params(Variant("no prior", 0, 0, 4, popularity_prior=0.0))
    assert without.popularity_prior == 0.0 and without.trees == default.trees


def test_a_home_without_a_history_is_told_in_one_line(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--home", str(tmp_path)])
    assert stop.value.code == 2
    assert "holds no history: fill it with `sands replay` first" in capsys.readouterr().err


def test_frozen_trains_each_variant_once_on_the_eve_of_the_first_day(monkeypatch) -> None:
    from rich.console import Console

    from bench import ranker_ablation

    trained, judged = [], []

    def train_before(data, day, variant):
        trained.append((day, variant.name))
        return f"{variant.name} before {day}"

    def judge_day(data, day, variant, model=None):
        judged.append((day, variant.name, model))
        return {"ranker": 0.5, "popularity": 0.25, "users": 3}

    monkeypatch.setattr(ranker_ablation, "train_before", train_before)
    monkeypatch.setattr(ranker_ablation, "judge_day", judge_day)
    days = [date(2026, 10, 2), date(2026, 10, 3)]
    chosen = [Variant("a", 0, 0, 4), Variant("b", 0, 0, 4, trees=300)]
    console = Console(quiet=True)
    results, popularity = ranker_ablation.judge_days(console, "h", None, days, chosen, frozen=True)
    assert trained == [(days[0], "a"), (days[0], "b")]
    assert [model for *_, model in judged] == [f"{v} before {days[0]}" for v in "abab"]
    assert results[("h", "b")] == [0.5, 0.5] and popularity["h"] == [0.25, 0.25]
    judged.clear()
    ranker_ablation.judge_days(console, "h", None, days, chosen)  # retrained each day
    assert [model for *_, model in judged] == [None] * 4


def test_a_home_without_a_converting_day_or_no_days_asked_is_told_in_one_line(
    tmp_path, capsys, monkeypatch
) -> None:
    from bench import ranker_ablation

    with pytest.raises(SystemExit) as stop:
        main(["--home", str(tmp_path), "--last-days", "0"])
    assert stop.value.code == 2
    assert "--last-days: 0 is not at least 1" in capsys.readouterr().err

    (tmp_path / "lake" / "bronze" / "interactions").mkdir(parents=True)
    views = pa.table({"event_type": ["view"], "landing_date": [date(1997, 9, 20)]})
    monkeypatch.setattr(ranker_ablation, "read_lake", lambda home: Lake(views, *[None] * 3))
    with pytest.raises(SystemExit) as stop:
        main(["--home", str(tmp_path), "--frozen"])
    assert stop.value.code == 2
    assert "has no landed day with a conversion to judge" in capsys.readouterr().err
