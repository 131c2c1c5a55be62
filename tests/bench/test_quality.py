"""The quality benchmark's summaries: one run's means and timing, and runs pooled over seeds."""

from types import SimpleNamespace

from bench.quality import pooled, summarise, verdicts


def day(served, frozen, popularity, drift=False, policy="v1"):
    return SimpleNamespace(
        served_ndcg=served,
        frozen_ndcg=frozen,
        popularity_ndcg=popularity,
        drift=drift,
        served_policy=policy,
    )


def test_a_run_is_summarised_from_the_change_on_skipping_unlabelled_days():
    records = [
        day(0.2, None, 0.1, drift=True),  # a false alarm before the change
        day(0.2, None, 0.1),
        day(0.3, 0.2, 0.1),
        day(float("nan"), float("nan"), float("nan")),
        day(0.1, 0.2, 0.3, drift=True, policy="popularity"),
    ]
    r = summarise("taste-shift", records, 2, 1.0, seed=8)
    assert (r.days, r.unlabelled_days) == (3, 1)
    assert abs(r.served - 0.2) < 1e-12 and abs(r.frozen - 0.2) < 1e-12
    assert r.false_alarm_rate == 0.5 and r.detection_delay == 2
    assert r.popularity_served_days == 1 and r.label == "taste-shift (seed 8)"


def test_runs_pooled_over_seeds_average_their_means_and_detect_only_if_all_did():
    a = summarise("new-trend", [day(0.1, None, 0.1), day(0.3, 0.2, 0.1, drift=True)], 1, 2.0, 7)
    b = summarise("new-trend", [day(0.1, None, 0.1, drift=True), day(0.5, 0.2, 0.3)], 1, 3.0, 8)
    both = pooled([a, b])
    assert both.label == "new-trend (pooled)" and both.days == 2 and both.seconds == 5.0
    assert abs(both.served - 0.4) < 1e-12 and abs(both.popularity - 0.2) < 1e-12
    assert both.false_alarm_rate == 0.5 and both.detection_delay is None
    assert "new-trend (pooled): served 2.00x frozen (target >= 1.15x): met" in verdicts([both])
