"""Monitoring the champion: feature, prediction, label and schema drift against the exact rows
it was trained on, and its ranking quality on the latest labelled day against an objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from sands.evaluation.metrics import PairedGain
from sands.evaluation.offline import labelled_between
from sands.html import STYLE, svg, table
from sands.monitoring.drift import (
    ColumnDrift,
    DatasetDrift,
    DriftRule,
    SchemaDrift,
    calibrated_drift,
    dataset_drift,
    schema_drift,
)

GROUPS = ("user", "artwork")
# The label group: the positive rate and these artwork columns among positives.
LABEL_GROUP = "label"
POSITIVE_PROFILE = ("artwork_style", "artwork_medium")
# Bookkeeping, not features: when a row was stamped, and which snapshot it came from.
NOT_FEATURES = ("_feature_ts", "_created_ts", "_feature_date", "_artist_id")


def feature_columns(schema: pa.Schema) -> dict[str, list[tuple[str, bool]]]:
    """Per group, the joined feature columns of a training set and whether each is numeric."""
    groups: dict[str, list[tuple[str, bool]]] = {g: [] for g in GROUPS}
    for field in schema:
        group = field.name.split("_", 1)[0]
        if group not in groups or field.name in ("user_id", "artwork_id"):
            continue
        if field.name.endswith(NOT_FEATURES):
            continue
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        groups[group].append((field.name, numeric))
    return groups


def recent_window(
    examples: pa.Table | ds.Dataset, days: int, before: datetime | None = None
) -> pa.Table:
    """Rows labelled in the last `days` label days (of the rows labelled before `before`, when
    given); from a dataset, only those days are read."""
    times = labelled_between(examples, None, before, ["label_ts"])["label_ts"]
    last = pc.max(times).as_py()
    start = datetime.combine(last.date() - timedelta(days=days - 1), time(), tzinfo=UTC)
    return labelled_between(examples, start, before)


def label_drift_columns(
    reference: pa.Table, current: pa.Table, rule: DriftRule | None = None
) -> list[ColumnDrift]:
    """What the positives look like: the style and medium of converted artworks. A change of
    taste moves these at once, long before users' 28-day profiles catch up."""
    ref, cur = positives(reference), positives(current)
    units = (buyer_days(ref, "r"), buyer_days(cur, "c"))
    return [
        calibrated_drift(
            f"positives:{column}",
            _values(ref, column, False),
            _values(cur, column, False),
            False,
            rule,
            units if all(u is not None for u in units) else None,
        )
        for column in POSITIVE_PROFILE
        if column in reference.column_names and column in current.column_names
    ]


def buyer_days(rows: pa.Table, side: str) -> np.ndarray | None:
    """Per row, its user and label day: the unit a day's rows come in. One user converting on
    three works of one style in a session is one draw of taste, not three."""
    if "user_id" not in rows.column_names or "label_ts" not in rows.column_names:
        return None
    day = pc.cast(pc.cast(rows["label_ts"], pa.timestamp("us", tz="UTC")), pa.date32())
    keys = pc.binary_join_element_wise(
        pa.scalar(side),
        pc.fill_null(pc.cast(rows["user_id"], pa.string()), ""),
        pc.cast(day, pa.string()),
        "|",
    )
    return np.asarray(keys.to_pylist(), dtype=object)


def positives(rows: pa.Table) -> pa.Table:
    """The rows labelled positive."""
    return rows.filter(pc.equal(rows["label"], 1))


def entity_rows(rows: pa.Table, group: str) -> pa.Table:
    """One row per entity and feature time of a group (`user` or `artwork`): a training set
    repeats each user in every negative, and drift is about the population, not the sampling.
    Fewer rows also means Evidently's small-sample tests apply where they should."""
    key, stamp = f"{group}_id", f"{group}_feature_ts"
    if key not in rows.column_names or stamp not in rows.column_names:
        return rows
    keys = pc.binary_join_element_wise(
        rows[key], pc.fill_null(pc.cast(rows[stamp], pa.string()), ""), "|"
    )
    first = pc.index_in(pc.unique(keys), value_set=keys)
    return rows.take(first)  # unique() keeps first-seen order, so these ascend


def _values(rows: pa.Table, column: str, numeric: bool) -> np.ndarray:
    if numeric:
        return np.asarray(
            rows[column].cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float
        )
    return np.asarray(rows[column].to_pylist(), dtype=object)


def _categories(rows: pa.Table, columns: list[str]) -> dict[str, set[str]]:
    return {c: {v for v in rows[c].to_pylist() if v is not None} for c in columns}


@dataclass
class DriftResult:
    """Every drift verdict for one comparison of current rows against the training reference."""

    features: DatasetDrift
    prediction: ColumnDrift
    label: ColumnDrift
    schema: SchemaDrift
    positive_rates: tuple[float, float]
    rows: tuple[int, int]

    @property
    def drifted(self) -> bool:
        """Dataset-level drift: some group's (user, artwork, label) share of drifted columns
        reached its threshold."""
        return self.features.drifted

    def verdict(self, prediction_counts: bool) -> bool:
        """The retraining verdict: feature drift, or also prediction drift when it counts."""
        return self.drifted or (prediction_counts and self.prediction.drifted)

    def reason(self, prediction_counts: bool) -> str:
        """The verdict in one line: which groups drifted, or that none did."""
        groups = [g for g, (_, _, moved) in self.features.groups.items() if moved]
        if prediction_counts and self.prediction.drifted:
            groups.append("predictions")
        columns = sorted(c.column for c in self.features.columns if c.drifted)
        head = f"drift in {', '.join(groups)}" if groups else "no drift beyond the thresholds"
        more = "..." if len(columns) > 4 else ""
        moved = f"; columns moved: {', '.join(columns[:4])}{more}" if columns else ""
        rows = f"{self.rows[1]:,} current rows vs {self.rows[0]:,} reference rows"
        return f"{head}{moved} ({rows})"

    def markdown(self) -> str:
        """Per-feature table for check metadata, drifted columns first."""
        lines = [
            "| column | kind | method | statistic | threshold | drifted | PSI |",
            "|---|---|---|---:|---:|---|---:|",
        ]
        for c in sorted(self.all_columns(), key=lambda c: (not c.drifted, c.column)):
            lines.append(
                f"| {c.column} | {c.kind} | {c.method} | {c.statistic:.4f} | {c.threshold} | "
                f"{'**yes**' if c.drifted else 'no'} | {c.psi:.4f} ({c.psi_band}) |"
            )
        return "\n".join(lines)

    def all_columns(self) -> list[ColumnDrift]:
        """Every compared column once: features, the label group and the prediction."""
        return [*self.features.columns, self.prediction]


def compare(
    reference: pa.Table,
    current: pa.Table,
    reference_scores: np.ndarray,
    current_scores: np.ndarray,
    share_thresholds: dict[str, float] | None = None,
    rule: DriftRule | None = None,
) -> DriftResult:
    """Drift of current labelled rows against reference rows, feature by feature and overall,
    each column judged by `rule` (default: effect size calibrated on a permutation null)."""
    groups = feature_columns(reference.schema)
    columns, names = [], {}
    for group, members in groups.items():
        names[group] = [name for name, _ in members]
        ref_rows, cur_rows = entity_rows(reference, group), entity_rows(current, group)
        for name, numeric in members:
            if name in current.column_names:
                columns.append(
                    calibrated_drift(
                        name,
                        _values(ref_rows, name, numeric),
                        _values(cur_rows, name, numeric),
                        numeric,
                        rule,
                    )
                )
    categorical = [n for members in groups.values() for n, numeric in members if not numeric]
    shared = [c for c in categorical if c in current.column_names]
    ref_labels = reference["label"].to_numpy(zero_copy_only=False).astype(str).astype(object)
    cur_labels = current["label"].to_numpy(zero_copy_only=False).astype(str).astype(object)
    units = (buyer_days(reference, "r"), buyer_days(current, "c"))
    label = calibrated_drift(
        "label",
        ref_labels,
        cur_labels,
        False,
        rule,
        units if all(u is not None for u in units) else None,
    )
    concept = label_drift_columns(reference, current, rule)
    names[LABEL_GROUP] = [c.column for c in [label, *concept]]
    return DriftResult(
        features=dataset_drift([*columns, label, *concept], names, share_thresholds),
        prediction=calibrated_drift("prediction", reference_scores, current_scores, True, rule),
        label=label,
        schema=schema_drift(
            reference.column_names,
            current.column_names,
            _categories(reference, shared),
            _categories(current, shared),
        ),
        positive_rates=(
            float(pc.mean(reference["label"]).as_py() or 0.0),
            float(pc.mean(current["label"]).as_py() or 0.0),
        ),
        rows=(reference.num_rows, current.num_rows),
    )


def _distribution_plot(name: str, reference: np.ndarray, current: np.ndarray, numeric: bool) -> str:
    figure, axis = plt.subplots(figsize=(4.5, 2.8))
    if numeric:
        ref, cur = reference[~np.isnan(reference)], current[~np.isnan(current)]
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=30)
        # One filled outline per side, not a rectangle per bin: half the time to draw and save.
        for values, label in ((ref, "reference"), (cur, "current")):
            axis.hist(values, edges, density=True, alpha=0.5, label=label, histtype="stepfilled")
    else:
        texts = {
            label: np.array([str(v) for v in values])
            for values, label in ((reference, "reference"), (current, "current"))
        }
        keys = sorted(set(texts["reference"]) | set(texts["current"]))[:15]
        x = np.arange(len(keys))
        for offset, (label, values) in enumerate(texts.items()):
            share = [float(np.mean(values == k)) if len(values) else float("nan") for k in keys]
            axis.bar(x + offset * 0.4, share, width=0.4, label=label)
        axis.set_xticks(x + 0.2)
        axis.set_xticklabels(keys, rotation=30, ha="right")
    axis.set_title(name)
    axis.legend()
    return svg(figure)


def _compared_values(
    rows: pa.Table, entities: dict[str, pa.Table], column: str, numeric: dict[str, bool]
) -> np.ndarray:
    """The values a drift column compared: per entity for features (`entities`: `entity_rows` of
    `rows` per group), positives for the profile."""
    if column == "label":
        return rows["label"].to_numpy(zero_copy_only=False).astype(str).astype(object)
    if column.startswith("positives:"):
        return _values(positives(rows), column.split(":", 1)[1], False)
    group = column.split("_", 1)[0]
    table = entities[group] if group in entities else entity_rows(rows, group)
    return _values(table, column, numeric[column])


def render_drift_html(
    title: str,
    result: DriftResult,
    reference: pa.Table,
    current: pa.Table,
    reference_scores: np.ndarray,
    current_scores: np.ndarray,
    plots: int = 12,
) -> str:
    """The drift report: verdicts, per-column table, and distribution plots of the most drifted."""
    groups = feature_columns(reference.schema)
    numeric = {name: kind for members in groups.values() for name, kind in members}
    ranked = sorted(
        result.features.columns,
        key=lambda c: (
            not c.drifted,
            -(c.statistic if c.method in ("wasserstein", "jensenshannon") else 0),
        ),
    )[:plots]
    # Deduplicated once per side and group, not once per plotted column (seconds at 100k rows).
    entities = [{g: entity_rows(rows, g) for g in GROUPS} for rows in (reference, current)]
    figures = [
        _distribution_plot("prediction (champion score)", reference_scores, current_scores, True)
    ] + [
        _distribution_plot(
            c.column,
            _compared_values(reference, entities[0], c.column, numeric),
            _compared_values(current, entities[1], c.column, numeric),
            numeric.get(c.column, False),
        )
        for c in ranked
    ]
    group_rows = [
        [g, f"{share:.2f}", f"{threshold:.2f}", "DRIFTED" if drifted else "ok"]
        for g, (share, threshold, drifted) in result.features.groups.items()
    ]
    column_rows = [
        [
            c.column,
            c.kind,
            c.method,
            f"{c.statistic:.4f}",
            str(c.threshold),
            "yes" if c.drifted else "no",
            f"{c.psi:.4f}",
            c.psi_band,
        ]
        for c in sorted(result.all_columns(), key=lambda c: (not c.drifted, c.column))
    ]
    schema = result.schema
    return "\n".join(
        [
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{STYLE}</style></head><body><h1>{title}</h1>",
            f"<p>Reference: {result.rows[0]:,} rows the champion was trained on; current: "
            f"{result.rows[1]:,} rows. Positive rate {result.positive_rates[0]:.3f} → "
            f"{result.positive_rates[1]:.3f}.</p>",
            "<h2>Verdicts</h2>",
            table(["feature group", "share drifted", "threshold", "verdict"], group_rows),
            f"<p>Prediction drift: {'yes' if result.prediction.drifted else 'no'} "
            f"({result.prediction.method} {result.prediction.statistic:.4f}). Label drift: "
            f"{'yes' if result.label.drifted else 'no'}. Schema: new columns "
            f"{schema.new_columns or 'none'}, missing {schema.missing_columns or 'none'}, new "
            f"categories {schema.new_categories or 'none'}.</p>",
            "<h2>Distributions</h2>",
            "<div>" + "".join(figures) + "</div>",
            "<h2>Every column</h2>",
            table(
                ["column", "kind", "method", "statistic", "threshold", "drifted", "PSI", "band"],
                column_rows,
            ),
            "</body></html>",
        ]
    )


@dataclass(frozen=True)
class Objective:
    """What the champion must keep doing on the newest labelled days, and how old it may get;
    how much evidence a verdict needs; and when popularity should serve instead."""

    min_ndcg: float = 0.02
    min_ratio_to_popularity: float = 1.0
    max_age_days: int = 14
    # Judge on the newest label days after the champion's training cutoff, adding days until
    # they hold this many positives (one sparse day is too few to judge), at most `max_days`.
    min_positives: int = 300
    max_days: int = 7
    # The serving guard: popularity serves as soon as it leads the champion by more than the
    # margin on the evidence window (a cheap, reversible switch to the safe baseline); the
    # champion returns only when its own lead is significant at this level (paired bootstrap),
    # or a new champion passes the gate. The asymmetry keeps noisy days from flip-flopping.
    guard_margin: float = 0.0
    guard_confidence: float = 0.9
    # The evidence window also grows until it holds this many users with a positive (counted
    # per day): a verdict averages over users, and a ratings history packs 300 positives into
    # 20 of them.
    min_users: int = 100


@dataclass(frozen=True)
class QualityVerdict:
    """The champion's NDCG@10 on the newest labelled days against popularity and the objective,
    the evidence behind it, and its age."""

    day: str
    ndcg: float
    popularity_ndcg: float
    users: int
    age_days: int
    objective: Objective
    positives: int = 0
    days: int = 1
    popularity_gain: PairedGain | None = None  # popularity minus champion, per user and day
    # The same on the newest label day alone: a change of taste shows there first, while the
    # pooled window still leans on the days before it.
    newest_gain: PairedGain | None = None

    @property
    def floor(self) -> float:
        ratio = self.objective.min_ratio_to_popularity
        return max(self.objective.min_ndcg, self.popularity_ndcg * ratio)

    @property
    def meets_objective(self) -> bool:
        return self.ndcg >= self.floor

    @property
    def fresh(self) -> bool:
        return self.age_days <= self.objective.max_age_days

    @property
    def popularity_should_serve(self) -> bool:
        """Popularity leads the champion by more than the guard margin on the evidence window,
        or beyond chance (and the margin) on the newest label day alone."""
        margin = self.objective.guard_margin
        pooled, newest = self.popularity_gain, self.newest_gain
        if pooled is not None and pooled.users and pooled.mean > margin:
            return True
        return newest is not None and newest.significant() and newest.mean > margin

    @property
    def champion_clearly_better(self) -> bool:
        """The champion leads popularity beyond chance (the whole interval below zero)."""
        gain = self.popularity_gain
        return gain is not None and gain.users > 0 and gain.high < 0

    def evidence(self) -> str:
        return f"{self.users} users, {self.positives} positives over {self.days} label day(s)"

    def reason(self) -> str:
        objective = self.objective
        return (
            f"NDCG@10 up to {self.day} {self.ndcg:.4f} ({self.evidence()}) vs objective "
            f"{self.floor:.4f} (the larger of {objective.min_ndcg} and "
            f"{objective.min_ratio_to_popularity} x popularity {self.popularity_ndcg:.4f})"
        )

    def guard_reason(self) -> str:
        gain = self.popularity_gain
        level = self.objective.guard_confidence
        detail = gain.describe(level) if gain else "not compared"
        newest = self.newest_gain
        if newest is not None and self.days > 1:
            detail += f"; {self.day} alone: {newest.describe(level)}"
        return (
            f"popularity {self.popularity_ndcg:.4f} vs champion {self.ndcg:.4f} NDCG@10 up to "
            f"{self.day}: {detail}, margin {self.objective.guard_margin}"
        )


def data_age_days(train_cutoff: datetime, examples: pa.Table) -> int:
    """Days from the end of the champion's training labels to the newest label: data time, not
    wall-clock time, so replays and simulations age models the way production would."""
    newest = pc.max(examples["label_ts"]).as_py()
    return max((newest.date() - train_cutoff.date()).days, 0)
