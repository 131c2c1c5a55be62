"""Which version stands for the champion on a challenger's holdout: a refit only where it never
saw the labels, else the version the gate judged."""

from datetime import UTC, datetime

from sands.evaluation.challenger import champion_reference
from sands.models.aliases import CHALLENGER
from sands.models.ranking import RankerParams, train_ranker
from tests.sands.models.test_registry import EXAMPLES, registry  # noqa: F401 (the fixture)


def _log(reg, seed: int, tags: dict[str, str], alias: str | None) -> int:
    model = train_ranker(EXAMPLES, None, RankerParams(trees=5, max_depth=2, seed=seed))
    logged = reg.log_ranker(
        model, model.inputs(EXAMPLES), {}, {}, tags, f"seed {seed}", None, alias
    )
    return int(logged.version.version)


def test_a_refit_stands_for_itself_only_after_the_holdout_it_trained_on(registry):  # noqa: F811
    judged = _log(
        registry,
        7,
        {"sands.train_cutoff": "2026-10-05T00:00:00+00:00", "sands.holdout_until": "2026-10-07"},
        CHALLENGER,
    )
    refit = _log(
        registry,
        8,
        {"sands.train_cutoff": "2026-10-08T00:00:00+00:00", "sands.refit_of": str(judged)},
        None,
    )
    assert registry.aliases()[CHALLENGER] == judged  # a refit takes no alias
    assert (registry.judged_version(refit), registry.judged_version(judged)) == (judged, judged)
    # A holdout from 10-06 holds labels the refit trained on: the judged version stands in.
    inside = champion_reference(registry, refit, datetime(2026, 10, 6, tzinfo=UTC))
    assert inside == (judged, "2026-10-05T00:00:00+00:00")
    # From 10-08 on it never saw the labels: the refit that serves is judged itself.
    after = champion_reference(registry, refit, datetime(2026, 10, 8, tzinfo=UTC))
    assert after == (refit, "2026-10-08T00:00:00+00:00")
    assert champion_reference(registry, judged, datetime(2026, 10, 6, tzinfo=UTC))[0] == judged
