"""The evaluation report: one self-contained HTML file (inline SVG plots) and a markdown summary."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import datetime

import matplotlib.pyplot as plt

from sands.evaluation.behaviour import BehaviourResult
from sands.evaluation.gate import GateDecision
from sands.evaluation.offline import Evaluation
from sands.evaluation.policy_value import CTR, DR_COLUMNS, LOGGED_CHAMPION, OffPolicyComparison
from sands.html import STYLE, svg, table

RANKING_ROWS = ("ndcg_at_10", "recall_at_10", "map_at_10", "hit_rate_at_10")
SHAPE_ROWS = ("catalogue_coverage", "popularity_bias")
POINTWISE_ROWS = ("auc", "log_loss", "brier")
MISSING = "n/a"
COLOURS = {"challenger": "#1f77b4", "champion": "#ff7f0e", "popularity": "#7f7f7f"}


@dataclass
class ReportInputs:
    """Everything the report shows."""

    title: str
    challenger: Evaluation
    champion: Evaluation | None
    baseline: Evaluation
    decision: GateDecision
    behaviour: list[BehaviourResult]
    split: datetime
    catalogue_size: int
    lineage: dict[str, str]
    flagged: list[tuple[str, str, float, float]]
    notes: list[str] = field(default_factory=list)
    history: list[tuple[str, float]] = field(default_factory=list)
    off_policy: OffPolicyComparison | None = None
    labelled_users: int | None = None  # users with a positive, before any sampling

    @property
    def evaluations(self) -> list[Evaluation]:
        return [e for e in (self.challenger, self.champion, self.baseline) if e is not None]


def _value(evaluation: Evaluation | None, name: str) -> float:
    if evaluation is None:
        return math.nan
    return evaluation.overall.get(name, evaluation.pointwise.get(name, math.nan))


def _fmt(value: float) -> str:
    return MISSING if value is None or math.isnan(value) else f"{value:.4f}"


def _delta(a: float, b: float) -> str:
    return MISSING if math.isnan(a) or math.isnan(b) else f"{a - b:+.4f}"


def comparison_rows(inputs: ReportInputs) -> list[list[str]]:
    """Metric, challenger, champion, popularity, and the challenger's deltas."""
    rows = []
    for name in (*RANKING_ROWS, *SHAPE_ROWS, *POINTWISE_ROWS):
        mine = _value(inputs.challenger, name)
        champ = _value(inputs.champion, name)
        base = _value(inputs.baseline, name)
        rows.append(
            [name, _fmt(mine), _fmt(champ), _fmt(base), _delta(mine, champ), _delta(mine, base)]
        )
    return rows


COMPARISON_HEADER = ["metric", "challenger", "champion", "popularity", "Δ champion", "Δ popularity"]


def summary_markdown(inputs: ReportInputs) -> str:
    """The side-by-side table and the verdict, for Dagster metadata."""
    lines = ["| " + " | ".join(COMPARISON_HEADER) + " |", "|---|" + "---:|" * 5]
    lines += ["| " + " | ".join(row) + " |" for row in comparison_rows(inputs)]
    verdict = "passed" if inputs.decision.passed else "**failed**"
    lines += ["", f"Gate {verdict} against **{inputs.decision.reference}**."]
    if inputs.flagged:
        worse = ", ".join(f"{d}={v}" for d, v, _, _ in inputs.flagged)
        lines.append(f"Slices where the challenger is worse than the champion: {worse}.")
    if inputs.off_policy is not None and inputs.off_policy.estimates:
        lines += ["", "Online estimates from the champion's logged lists:", ""]
        lines.append(inputs.off_policy.markdown())
    return "\n".join(lines)


def off_policy_plot(comparison: OffPolicyComparison) -> str:
    """Each policy's estimated clicks per list with its interval, beside what the log earned."""
    names = list(comparison.estimates)
    estimates = [comparison.estimates[n][CTR] for n in names]
    figure, axis = plt.subplots(figsize=(6, 0.5 * len(names) + 1.5))
    values = [e.value for e in estimates]
    errors = [[e.value - e.low for e in estimates], [e.high - e.value for e in estimates]]
    axis.errorbar(
        values, range(len(names)), xerr=errors, fmt="o", capsize=4, label=comparison.estimator
    )
    rows = [i for i, n in enumerate(names) if n in comparison.dr]
    if rows:
        dr = [comparison.dr[names[i]] for i in rows]
        spread = [[e.value - e.low for e in dr], [e.high - e.value for e in dr]]
        at = [i + 0.2 for i in rows]
        axis.errorbar([e.value for e in dr], at, xerr=spread, fmt="s", capsize=4, label="dr")
    axis.axvline(comparison.logged[CTR], linestyle="--", color="#bbbbbb", label="logged")
    axis.set_yticks(range(len(names)), names)
    axis.set(xlabel=f"{CTR} (95 % interval)")
    axis.legend()
    return svg(figure)


def _judged(inputs: ReportInputs) -> str:
    """'284 users', or how the sample relates to everyone with a positive."""
    judged = int(inputs.challenger.overall.get("users", 0))
    if inputs.labelled_users is None or inputs.labelled_users <= judged:
        return f"{judged:,} users"
    return (
        f"{judged:,} users, a stable sample of the {inputs.labelled_users:,} with a positive "
        "(past `EvaluationSpec.max_scored_pairs` scored pairs, never fewer than "
        "`min_sampled_users`)"
    )


def off_policy_section(comparison: OffPolicyComparison | None) -> list[str]:
    """The online estimates from logged traffic, or why there are none."""
    head = "<h2>Online estimate from logged traffic (off-policy)</h2>"
    if comparison is None:
        return [head, "<p>No champion lists were logged after the challenger's cut-off.</p>"]
    facts = (
        f"{comparison.lists:,} lists the champion served on {', '.join(comparison.days)} "
        f"({comparison.explored_share:.1%} of slots explored); position bias "
        f"{comparison.examination_source}."
    )
    why_not = comparison.unjudged_reason
    verdict = f" Not judged by the gate: {why_not}." if why_not else ""
    if not comparison.estimates:
        return [head, f"<p>{html.escape(facts + verdict)}</p>"]
    rows = [
        [
            policy,
            *(e.interval() for e in by.values()),
            *comparison.dr_cells(policy),
            f"{by[CTR].effective_lists:,.0f}",
            str(by[CTR].clipped),
            f"{comparison.support.get(policy, float('nan')):.0%}",
        ]
        for policy, by in comparison.estimates.items()
    ]
    outcomes = list(next(iter(comparison.estimates.values())))
    agreement = (
        f" The recomputed champion reproduces {comparison.champion_agreement:.0%} of its "
        f"logged greedy slots; '{LOGGED_CHAMPION}' must agree with the logged figure."
    )
    differences = [
        f"Challenger - champion, {CTR}: {d.describe()}."
        for d in (
            comparison.difference,
            comparison.dr_difference,
            comparison.extrapolated_difference,
        )
        if d is not None
    ]
    if differences and why_not is None:
        gate = f"{comparison.reach_note} The gate reads {comparison.judged_by}."
        differences.append(gate.lstrip())
    return [
        head,
        f"<p>{html.escape(facts + agreement + verdict)}</p>",
        table(
            ["policy", *outcomes, *DR_COLUMNS, "effective lists", "clipped", "log support"], rows
        ),
        f"<p>{html.escape(' '.join(differences))}</p>" if differences else "",
        off_policy_plot(comparison),
    ]


def reliability_plot(inputs: ReportInputs) -> str:
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot([0, 1], [0, 1], linestyle="--", color="#bbbbbb", label="perfect")
    for evaluation in inputs.evaluations:
        if evaluation.reliability:
            axis.plot(
                [b.mean_predicted for b in evaluation.reliability],
                [b.observed_rate for b in evaluation.reliability],
                marker="o",
                color=COLOURS.get(evaluation.name),
                label=evaluation.name,
            )
    axis.set(xlabel="mean predicted probability", ylabel="observed positive rate")
    axis.set_title("Reliability (held-out labelled rows)")
    axis.legend()
    return svg(figure)


def slice_plot(inputs: ReportInputs, dimension: str) -> str:
    values = [s.value for s in inputs.challenger.slices if s.dimension == dimension]
    figure, axis = plt.subplots(figsize=(max(5, 0.7 * len(values) + 2), 3.5))
    width = 0.8 / len(inputs.evaluations)
    for i, evaluation in enumerate(inputs.evaluations):
        by_value = {s.value: s.ndcg for s in evaluation.slices if s.dimension == dimension}
        axis.bar(
            [x + i * width for x in range(len(values))],
            [by_value.get(v, 0.0) for v in values],
            width=width,
            color=COLOURS.get(evaluation.name),
            label=evaluation.name,
        )
    axis.set_xticks([x + width * (len(inputs.evaluations) - 1) / 2 for x in range(len(values))])
    axis.set_xticklabels(values, rotation=30, ha="right")
    axis.set(ylabel="NDCG@10", title=f"NDCG@10 by {dimension}")
    axis.legend()
    return svg(figure)


def over_time_plot(inputs: ReportInputs) -> str:
    figure, (by_day, by_version) = plt.subplots(1, 2, figsize=(10, 3.5))
    for evaluation in inputs.evaluations:
        days = [d.isoformat() for d, _, _ in evaluation.by_day]
        by_day.plot(
            days,
            [v for _, _, v in evaluation.by_day],
            marker="o",
            color=COLOURS.get(evaluation.name),
            label=evaluation.name,
        )
    by_day.set(ylabel="NDCG@10", title="By evaluation day")
    by_day.legend()
    if inputs.history:
        by_version.plot(
            [label for label, _ in inputs.history], [v for _, v in inputs.history], marker="o"
        )
    by_version.set(ylabel="NDCG@10", title="Each version when it was evaluated")
    for axis in (by_day, by_version):
        axis.set_ylim(bottom=0, top=max(axis.get_ylim()[1] * 1.15, 0.01))
        axis.ticklabel_format(axis="y", useOffset=False, style="plain")
    return svg(figure)


def render_html(inputs: ReportInputs) -> str:
    """The whole report as one HTML document with no external resources."""
    decision = inputs.decision
    verdict = (
        '<h2 class="pass">Gate passed</h2>'
        if decision.passed
        else '<h2 class="fail">Gate failed</h2>'
    )
    criteria = table(
        ["criterion", "result", "detail"],
        [[c.name, "pass" if c.passed else "FAIL", c.detail] for c in decision.criteria],
    )
    slice_rows = []
    champion = inputs.champion.slice_map() if inputs.champion else {}
    baseline = inputs.baseline.slice_map()
    flagged = {(d, v) for d, v, _, _ in inputs.flagged}
    for s in inputs.challenger.slices:
        other = champion.get((s.dimension, s.value))
        base = baseline.get((s.dimension, s.value))
        slice_rows.append(
            [
                s.dimension,
                s.value,
                str(s.users),
                _fmt(s.ndcg),
                _fmt(other.ndcg) if other else MISSING,
                _fmt(base.ndcg) if base else MISSING,
                _fmt(s.recall),
                "worse than champion" if (s.dimension, s.value) in flagged else "",
            ]
        )
    dimensions = sorted({s.dimension for s in inputs.challenger.slices})
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(inputs.title)}"
        f"</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(inputs.title)}</h1>",
        f"<p>Temporal split at {inputs.split.isoformat()}: trained before it, evaluated after it. "
        f"Full-catalogue ranking of {inputs.catalogue_size:,} artworks for "
        f"{_judged(inputs)}.</p>",
        *[f"<p class='note'>{html.escape(n)}</p>" for n in inputs.notes],
        verdict,
        criteria,
        *(off_policy_section(inputs.off_policy) if inputs.champion else []),
        "<h2>Challenger vs champion vs popularity</h2>",
        table(COMPARISON_HEADER, comparison_rows(inputs)),
        "<h2>Calibration</h2>",
        reliability_plot(inputs),
        "<h2>Metric over time</h2>",
        over_time_plot(inputs),
        "<h2>Slices</h2>",
        *[slice_plot(inputs, d) for d in dimensions],
        table(
            [
                "dimension",
                "value",
                "users",
                "NDCG@10",
                "champion",
                "popularity",
                "recall@10",
                "flag",
            ],
            slice_rows,
        ),
        "<h2>Behaviour tests</h2>",
        table(
            ["test", "result", "value", "expectation"],
            [
                [b.name, "pass" if b.passed else "FAIL", f"{b.value:.4f}", b.expectation]
                for b in inputs.behaviour
            ],
        ),
        "<h2>Lineage</h2>",
        table(["tag", "value"], [[k, v] for k, v in sorted(inputs.lineage.items())]),
        "</body></html>",
    ]
    return "\n".join(parts)
