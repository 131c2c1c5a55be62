"""Which version stands for the champion on a challenger's holdout: a refit only where it never
saw the labels, else the version the gate judged."""

from datetime import UTC, datetime

import pyarrow as pa
from deltalake import DeltaTable

from sands.evaluation.challenger import champion_reference, feature_rows_at, judged_users
from sands.evaluation.offline import entities_as_of
from sands.features.offline import USER_FEATURES, publish_snapshots
from sands.models.aliases import CHALLENGER
from sands.models.ranking import RankerParams, train_ranker
from tests.sands.features.test_offline import RESTATED_AT, snapshot
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


def test_the_judged_users_rows_alone_give_their_features_as_the_whole_log_does(tmp_path):
    lake = str(tmp_path)
    uri = USER_FEATURES.uri(lake)
    for day, values in [(1, {"a": 1.0, "b": 2.0, "c": 3.0}), (2, {"a": 4.0, "c": 5.0})]:
        publish_snapshots(uri, snapshot(day, values), "user_id", RESTATED_AT)
    version = DeltaTable(uri).version()
    since = datetime(2026, 9, 3, tzinfo=UTC)
    whole = feature_rows_at(USER_FEATURES, lake, version, since)
    keyed = feature_rows_at(
        USER_FEATURES, lake, version, since, None, pa.chunked_array([["c", "b"]])
    )
    assert sorted(keyed["user_id"].to_pylist()) == ["b", "c", "c"]
    at = datetime(2026, 9, 4, tzinfo=UTC)
    assert entities_as_of(["b", "c"], "user_id", keyed, at, "user_").to_pylist() == (
        entities_as_of(["b", "c"], "user_id", whole, at, "user_").to_pylist()
    )
    labels = pa.table({"user_id": ["a", "c"], "label_ts": [since, at]})
    assert judged_users(labels, at).to_pylist() == ["c"]
