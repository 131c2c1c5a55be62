"""One evaluation of the registered challenger: data pinned by its lineage, every comparison made,
the gate applied, the report rendered. Dagster's `evaluation_report` asset is a thin wrapper.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from sands.evaluation import policy_value
from sands.evaluation.behaviour import BehaviourResult, behaviour_tests
from sands.evaluation.gate import GateDecision, GateRules, decide, slice_regressions
from sands.evaluation.offline import (
    PRIMARY,
    Evaluation,
    EvaluationSetup,
    EvaluationSpec,
    PopularityRecommender,
    RankerRecommender,
    evaluate,
    evaluation_setup,
    labelled_between,
)
from sands.evaluation.policy_value import OffPolicyComparison, OffPolicySpec
from sands.evaluation.rankings import evaluate_stored
from sands.evaluation.report import ReportInputs
from sands.evaluation.served_candidates import ServedCandidates
from sands.features.engagement import events_before
from sands.features.offline import (
    ARTWORK_FEATURES,
    FEATURE_DATE,
    USER_FEATURES,
    FeatureTable,
    first_date_to_read,
)
from sands.features.training_store import label_events, open_training_set, read_training_set
from sands.ingest.bronze import bronze_uri
from sands.ingest.contract import ARTWORKS, INTERACTIONS
from sands.lake import delta
from sands.models import model_store
from sands.models.aliases import CHALLENGER
from sands.models.candidates import CandidateSpec
from sands.models.tags import (
    EVAL_CHAMPION_VERSION_TAG,
    GATE_REASONS_TAG,
    GATE_REFERENCE_TAG,
    GATE_TAG,
    OFF_POLICY_TAG,
    TRAIN_CUTOFF_TAG,
)
from sands.serving.prediction_log import impressions_uri, recent_impressions
from sands.serving.snapshot import load_serving_data

if TYPE_CHECKING:
    from sands.models.registry import Registry

# Feature rows this many days before the split are enough when days land daily: every entity has
# a row per landed day (after a longer pause, reading reaches back to the last snapshot).
FEATURE_LOOKBACK = timedelta(days=3)


def feature_rows_at(
    table: FeatureTable,
    lake_root: str,
    version: int,
    since: datetime,
    storage_options: dict[str, str] | None = None,
    keys: pa.Array | pa.ChunkedArray | None = None,
) -> pa.Table:
    """A feature log at a pinned version, from the snapshot current at `since` (or shortly
    before it) on; with `keys`, only those entities' rows, which is all an as-of lookup of
    them reads (`entities_as_of_each` looks each entity up alone, with no snapshot rule)."""
    log = delta.open_table(table.uri(lake_root), storage_options)
    if log is None:
        raise FileNotFoundError(f"no feature table at {table.uri(lake_root)}")
    log.load_as_version(version)
    first = first_date_to_read(log, since, FEATURE_LOOKBACK)
    files = delta.files_where(log, FEATURE_DATE, ">=", first)
    window = pc.field(FEATURE_DATE) >= first
    if keys is not None:
        # The user log holds a row per user per day: 1.5M rows read to judge 300 users took
        # 4.8 s at 338,000 users, most of an evaluation's reading.
        window = window & pc.field(table.key).isin(pc.unique(keys))
    return files.to_table(filter=window)


def judged_users(examples: pa.Table | ds.Dataset, since: datetime) -> pa.ChunkedArray:
    """The users of the labels from `since` on: every user an evaluation from then can judge."""
    return labelled_between(examples, since, None, ["user_id"])["user_id"]


@dataclass
class EvaluationRun:
    """Outcome of evaluating the challenger."""

    challenger_version: int
    champion_version: int | None
    setup: EvaluationSetup
    challenger: Evaluation
    champion: Evaluation | None
    baseline: Evaluation
    behaviour: list[BehaviourResult]
    decision: GateDecision
    report: ReportInputs


def _version_tag(tags: dict[str, str], name: str) -> int:
    return int(tags[f"sands.delta.{name}"])


def _pinned_features(
    tags: dict[str, str],
    lake_root: str,
    split: datetime,
    storage_options: dict[str, str] | None,
    users: pa.ChunkedArray,
) -> tuple[pa.Table, pa.Table]:
    """The feature rows the challenger's lineage pins, from shortly before `split` on: of
    `users`, and of every artwork."""
    return (
        feature_rows_at(
            USER_FEATURES,
            lake_root,
            _version_tag(tags, "user_features"),
            split,
            storage_options,
            users,
        ),
        feature_rows_at(
            ARTWORK_FEATURES,
            lake_root,
            _version_tag(tags, "artwork_features"),
            split,
            storage_options,
        ),
    )


def champion_reference(
    registry: Registry, champion: int, split: datetime
) -> tuple[int, str | None]:
    """The version that stands for the champion on a holdout from `split`, and its training
    cutoff: the champion, unless it is a refit that saw those labels; then the version the gate
    judged (trained before its own holdout, so a fair rival)."""
    cutoff = registry.version(champion).tags.get(TRAIN_CUTOFF_TAG)
    judged = registry.judged_version(champion)
    if judged == champion or (cutoff and datetime.fromisoformat(cutoff) <= split):
        return champion, cutoff
    return judged, registry.version(judged).tags.get(TRAIN_CUTOFF_TAG)


def evaluate_challenger(
    registry: Registry,
    lake_root: str,
    spec: EvaluationSpec,
    rules: GateRules,
    popularity_window_days: int,
    storage_options: dict[str, str] | None = None,
) -> EvaluationRun:
    """Evaluate the `challenger` against the `champion` and popularity on the challenger's data."""
    entry = registry.aliased(CHALLENGER)
    if entry is None:
        raise LookupError(f"{registry.model_name} has no challenger: materialize `ranker` first")
    version, tags = int(entry.version), dict(entry.tags)
    split = datetime.fromisoformat(tags[TRAIN_CUTOFF_TAG])
    examples, _, sources = open_training_set(
        lake_root, _version_tag(tags, "training_examples"), storage_options
    )
    users, works = _pinned_features(
        tags, lake_root, split, storage_options, judged_users(examples, split)
    )
    segments, _ = model_store.read_segment_model(
        lake_root, _version_tag(tags, "user_segments"), storage_options
    )
    events = events_before(lake_root, split, sources.interactions, storage_options)
    setup = evaluation_setup(examples, users, works, segments, split, spec, events=events)
    model = registry.load_ranker(version)
    # Stored: once promoted, the guard ranks it on this same setup at once (`deployed_ranker`).
    challenger = evaluate_stored(
        RankerRecommender("challenger", model), setup, lake_root, storage_options
    )
    challenger.version = version
    baseline = evaluate(PopularityRecommender(popularity_window_days), setup)
    champion_version = registry.champion_version()
    champion, notes = None, []
    if champion_version is not None and registry.judged_version(champion_version) == version:
        # The champion, or its refit: the gate judged this very model already.
        champion = replace(challenger, name="champion")
    elif champion_version is not None:
        reference, cutoff = champion_reference(registry, champion_version, split)
        if reference != champion_version:
            notes.append(
                f"The champion (v{champion_version}) refits v{reference} on the labels before "
                f"{registry.version(champion_version).tags[TRAIN_CUTOFF_TAG][:10]}, which "
                f"overlap the evaluation window: v{reference}, the recipe as the gate judged it, "
                "stands in for it here."
            )
        served = RankerRecommender("champion", registry.load_ranker(reference))
        # Champion monitoring ranks the champion on the same newest day: computed once.
        champion = evaluate_stored(served, setup, lake_root, storage_options)
        champion.version = champion_version
        if cutoff and datetime.fromisoformat(cutoff) > split:
            notes.append(
                f"The champion (v{champion_version}) was trained on labels up to {cutoff}, which "
                "overlaps the evaluation window: its figures here are optimistic."
            )
    else:
        notes.append("No champion yet: the first model must beat the popularity baseline.")
    behaviour = behaviour_tests(model.scores, setup.holdout)
    logged = tags.get(OFF_POLICY_TAG)
    off_policy = OffPolicyComparison.from_json(logged) if logged and champion else None
    decision = decide(challenger, champion, baseline, behaviour, rules, off_policy)
    flagged = slice_regressions(challenger, champion, rules) if champion else []
    history = [
        (f"v{v.version}", float(v.tags[f"sands.eval.{PRIMARY}"]))
        for v in registry.versions()
        if f"sands.eval.{PRIMARY}" in v.tags and int(v.version) != version
    ] + [(f"v{version}", challenger.overall[PRIMARY])]
    report = ReportInputs(
        title=f"{registry.model_name} v{version}: evaluation",
        challenger=challenger,
        champion=champion,
        baseline=baseline,
        decision=decision,
        behaviour=behaviour,
        split=split,
        catalogue_size=setup.catalogue.num_rows,
        labelled_users=setup.labelled_users,
        lineage={k: v for k, v in tags.items() if k.startswith(("sands.", "dagster."))},
        flagged=flagged,
        notes=notes,
        history=history,
        off_policy=off_policy,
    )
    return EvaluationRun(
        challenger_version=version,
        champion_version=champion_version,
        setup=setup,
        challenger=challenger,
        champion=champion,
        baseline=baseline,
        behaviour=behaviour,
        decision=decision,
        report=report,
    )


def evaluation_tags(run: EvaluationRun) -> dict[str, str]:
    """Version tags recording the gate verdict and the headline metrics."""
    reasons = "; ".join(run.decision.reasons)
    tags = {
        GATE_TAG: "passed" if run.decision.passed else "rejected",
        GATE_REFERENCE_TAG: run.decision.reference,
        GATE_REASONS_TAG: reasons[:4900],
        EVAL_CHAMPION_VERSION_TAG: str(run.champion_version or ""),
    }
    for name, value in {**run.challenger.overall, **run.challenger.pointwise}.items():
        tags[f"sands.eval.{name}"] = f"{value:.6f}"
    return tags


def estimate_off_policy(
    registry: Registry,
    lake_root: str,
    spec: OffPolicySpec,
    evaluation: EvaluationSpec,
    lookback_days: int,
    storage_options: dict[str, str] | None = None,
) -> OffPolicyComparison | None:
    """Off-policy estimates of the challenger, the champion and popularity from the champion's
    lists logged since the challenger's cut-off (None without a champion or a log)."""
    entry = registry.aliased(CHALLENGER)
    if entry is None:
        raise LookupError(f"{registry.model_name} has no challenger: materialize `ranker` first")
    champion_version = registry.champion_version()
    if champion_version is None:
        return None
    version, tags = int(entry.version), dict(entry.tags)
    split = datetime.fromisoformat(tags[TRAIN_CUTOFF_TAG])
    recent = recent_impressions(impressions_uri(lake_root), lookback_days, storage_options)
    impressions = policy_value.champion_lists(recent, champion_version, split)
    if impressions.num_rows == 0:
        return None
    events, as_of, served = _log_context(lake_root, impressions, lookback_days, storage_options)
    examples, _, _ = read_training_set(
        lake_root, _version_tag(tags, "training_examples"), storage_options
    )
    users, works = (
        feature_rows_at(table, lake_root, _version_tag(tags, name), split, storage_options)
        for table, name in (
            (USER_FEATURES, "user_features"),
            (ARTWORK_FEATURES, "artwork_features"),
        )
    )
    recommenders = {
        policy_value.CHALLENGER: RankerRecommender("challenger", registry.load_ranker(version)),
        policy_value.CHAMPION: RankerRecommender(
            "champion", registry.load_ranker(champion_version)
        ),
        policy_value.POPULARITY: PopularityRecommender(evaluation.popularity_window_days),
    }
    return policy_value.compare(
        impressions, events, as_of, recommenders, users, works, examples, spec, evaluation, served
    )


def estimate_popularity_lead(
    registry: Registry,
    lake_root: str,
    spec: OffPolicySpec,
    lookback_days: int,
    storage_options: dict[str, str] | None = None,
) -> policy_value.PopularityLead | None:
    """Popularity against the champion on the champion's lists of the newest `lookback_days`
    served days (None without a champion, or when the log cannot judge)."""
    champion = registry.champion_version()
    if champion is None:
        return None
    recent = recent_impressions(impressions_uri(lake_root), lookback_days, storage_options)
    impressions = policy_value.champion_lists(recent, champion)
    if impressions.num_rows < spec.min_lists:
        return None
    events, as_of, served = _log_context(lake_root, impressions, lookback_days, storage_options)
    return policy_value.popularity_lead(impressions, events, as_of, served, spec)


def _log_context(
    lake_root: str,
    impressions: pa.Table,
    lookback_days: int,
    storage_options: dict[str, str] | None,
) -> tuple[pa.Table, datetime, ServedCandidates]:
    """The logged users' events (with enough days before the log for the histories serving drew
    candidates from), the newest event time, and the replay of serving's candidates."""
    candidate_spec = CandidateSpec()
    events, _, _ = label_events(
        bronze_uri(lake_root, INTERACTIONS),
        bronze_uri(lake_root, ARTWORKS),
        lookback_days + candidate_spec.recent_days + 1,
        storage_options,
    )
    as_of = pc.max(events["event_ts"]).as_py()
    events = events.filter(pc.is_in(events["user_id"], pc.unique(impressions["user_id"])))
    served = ServedCandidates(
        lambda versions: load_serving_data(lake_root, storage_options, versions),
        events,
        candidate_spec,
    )
    return events, as_of, served
