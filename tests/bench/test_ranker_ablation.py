"""The ablation's paired gap: mean day-by-day difference and its standard error over days."""

from bench.ranker_ablation import paired_gap


def test_paired_gap_is_the_mean_difference_with_its_standard_error() -> None:
    # Differences 0.2 and 0.3: mean 0.25, sd 0.0707, standard error 0.0707 / sqrt(2) = 0.05.
    assert paired_gap([0.3, 0.5], [0.1, 0.2]) == "+0.2500 ± 0.0500"


def test_paired_gap_of_one_day_has_no_standard_error() -> None:
    assert paired_gap([0.1], [0.3]) == "-0.2000"
