from sands.monitoring.popularity_window import WindowChoice, WindowRule, choose_window

RULE = WindowRule(min_users=4)


def _scores(**windows: list[float]) -> dict[int, dict[str, float]]:
    """Per-window NDCG@10 of the same user-days (`d1`, `d2`, ...)."""
    return {int(w[1:]): {f"d{i}": v for i, v in enumerate(vs)} for w, vs in windows.items()}


def test_a_window_replaces_seven_days_only_when_it_ranked_better_beyond_chance():
    # 28 days better on every user-day: chosen, with the gain over 7 days.
    window, gain = choose_window(_scores(w1=[0.0] * 6, w7=[0.1] * 6, w28=[0.3, 0.4] * 3), RULE)
    assert window == 28 and round(gain.mean, 6) == 0.25 and gain.low > 0
    # Better on the mean by one lucky user-day of six: within chance, so 7 days stays.
    window, gain = choose_window(
        _scores(w1=[0.0] * 6, w7=[0.2] * 6, w28=[0.9, 0.19, 0.19, 0.19, 0.19, 0.19]), RULE
    )
    assert (window, gain) == (7, None)


def test_of_two_windows_better_beyond_chance_the_larger_gain_wins():
    window, _ = choose_window(_scores(w1=[0.5] * 5, w7=[0.1] * 5, w28=[0.3, 0.2] * 2 + [0.3]), RULE)
    assert window == 1


def test_the_choice_says_what_it_rests_on():
    choice = WindowChoice(7, 7, 0, 0, {}, None)
    assert choice.describe() == "7 days (the default: no labelled day to judge by yet)"
    _, gain = choose_window(_scores(w7=[0.1] * 6, w28=[0.3, 0.4] * 3), RULE)
    chosen = WindowChoice(28, 7, 6, 2, {7: 0.1, 28: 0.35}, gain)
    assert chosen.describe().startswith("28 days (over 7: gain +0.2500 (90% CI")
    assert chosen.describe().endswith("6 user-days of 2 label days)")
    assert "| 28 days (served) | 0.3500 |" in chosen.markdown()
