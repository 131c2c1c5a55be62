"""The summary of a replay or scenario play: per-day records to CSV, JSON and one HTML page.

A play's days are dataclass records (`dagster_project.scenario.DayRecord`); this module reads
them generically (`dataclasses.asdict`), so fields added to the record flow into the CSV and
JSON by themselves, and uses the fields it knows (`day`, `serving`, `champion_ndcg`, ...) only
where it has to (the means, the per-day table, the plot), tolerating any that are missing.

A day whose labels were missing (a sparse history: no user of that day has a label yet) has no
score: it is left out of every mean and counted, and shown as "-", never as `nan`.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from sands.html import STYLE, svg, table
from sands.lake.files import atomic_write_text

# The three next-day NDCG@10 series: the record field, and what the reports call it.
SERIES = (
    ("served_ndcg", "served"),
    ("frozen_ndcg", "frozen"),
    ("popularity_ndcg", "popularity"),
)
COLOURS = {"served": "#1f77b4", "frozen": "#ff7f0e", "popularity": "#7f7f7f"}
NO_LABELS = "no labels"
DRIFTED = "drift detected"  # the ranker's drift trigger (assets.automation.DRIFTED)
MISSING = "-"


def score(value: Any) -> float | None:
    """A usable score: a finite number, else None (a day without labelled users gives nan)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _get(record: Any, name: str, default: Any = None) -> Any:
    if name == "served_ndcg" and getattr(record, name, None) is None:
        # What served was the champion unless the record says otherwise (older records).
        return getattr(record, "champion_ndcg", default)
    return getattr(record, name, default)


def compared(record: Any) -> bool:
    """The day had both a serving champion and a frozen model to compare."""
    return _get(record, "serving") is not None and _get(record, "frozen") is not None


def unlabelled(record: Any) -> bool:
    """The day had models to score but no score came out: no labelled user that day."""
    if _get(record, "serving") is None and _get(record, "frozen") is None:
        return False
    return any(score(_get(record, name)) is None for name, _ in SERIES)


def without_labels(record: Any) -> bool:
    """No score for what served that day: no labelled user (no positive landed, or no training
    set yet; a replay names why in `unscored`)."""
    return score(_get(record, "served_ndcg")) is None


@dataclass(frozen=True)
class Backtest:
    """Mean next-day NDCG@10 over a run of days: the serving champion, the frozen model and
    popularity, on the days all three were scored; days compared but without labels are
    counted in `skipped` (and named in `skipped_days`), never averaged."""

    days: int
    champion: float
    frozen: float
    popularity: float
    skipped: int = 0
    skipped_days: tuple[str, ...] = field(default_factory=tuple)
    judged_users: int | None = None  # summed over the scored days, when the records say
    # (served, frozen, popularity) over every judged user-day (`per_user_day`), when counted.
    per_user: tuple[float, float, float] | None = None


def split(records: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """The compared days, as (scored on labels, without labels)."""
    both = [r for r in records if compared(r)]
    return [r for r in both if not unlabelled(r)], [r for r in both if unlabelled(r)]


def backtest(records: Sequence[Any]) -> Backtest | None:
    """Average the daily scores over the days that have a champion, a frozen model and labels;
    None when no such day exists."""
    scored, skipped = split(records)
    if not scored:
        return None

    def mean(name: str) -> float:
        return math.fsum(score(_get(r, name)) for r in scored) / len(scored)

    return Backtest(
        days=len(scored),
        champion=mean("served_ndcg"),
        frozen=mean("frozen_ndcg"),
        popularity=mean("popularity_ndcg"),
        skipped=len(skipped),
        skipped_days=tuple(str(_get(r, "day")) for r in skipped),
        judged_users=_judged_users(scored),
        per_user=_per_user_days(scored, ("served_ndcg", "frozen_ndcg", "popularity_ndcg")),
    )


def _per_user_days(scored: Sequence[Any], names: Sequence[str]) -> tuple[float, ...] | None:
    means = tuple(per_user_day(scored, name) for name in names)
    return None if None in means else means


def _judged_users(scored: Sequence[Any]) -> int | None:
    return _summed(scored, "judged_users")


def per_user_day(scored: Sequence[Any], name: str) -> float | None:
    """The mean over every judged user-day (each day weighted by its judged users), when the
    records count them: on sparse histories a day of one user weighs as much as a day of fifty
    in the mean of days."""
    total = _judged_users(scored)
    if not total:
        return None
    return math.fsum(score(_get(r, name)) * _get(r, "judged_users") for r in scored) / total


def _days(n: int) -> str:
    return f"{n} day" + ("" if n == 1 else "s")


def describe(records: Sequence[Any]) -> str:
    """One line on the means, never `nan`: "mean of 12 labelled days (2 without labels
    skipped; 1,830 user-days with a positive): served 0.1234, frozen 0.1100, popularity 0.1000"."""
    result = backtest(records)
    if result is None:
        _, skipped = split(records)
        if not skipped:
            return "no day had both a serving champion and a frozen model to compare"
        return f"no labelled day to score ({_days(len(skipped))} without labels skipped)"
    notes = [f"{result.skipped} without labels skipped"] if result.skipped else []
    if result.judged_users is not None:
        notes.append(f"{result.judged_users:,} user-days with a positive")
    note = f" ({'; '.join(notes)})" if notes else ""
    labelled = "labelled day" if result.days == 1 else "labelled days"
    line = (
        f"mean of {result.days} {labelled}{note}: served {result.champion:.4f}, "
        f"frozen {result.frozen:.4f}, popularity {result.popularity:.4f}"
    )
    if result.per_user is None:
        return line
    served, frozen, popularity = result.per_user
    return (
        f"{line}; over the user-days: served {served:.4f}, frozen {frozen:.4f}, "
        f"popularity {popularity:.4f}"
    )


@dataclass(frozen=True)
class ServedMeans:
    """What served against popularity on every labelled day, a champion or not: a history no
    challenger beat still says how well its users were served."""

    days: int
    served: float
    popularity: float
    popularity_served: int  # of those days, how many popularity served
    judged_users: int | None = None
    # Over every judged user-day (`per_user_day`), when the records count the users.
    served_per_user: float | None = None
    popularity_per_user: float | None = None
    # Of the judged user-days, those without an event in the 28 days before: no history to rank.
    without_history: int | None = None
    # Of the days popularity served, those whose list counted another window than the baseline's.
    other_windows: dict[int, int] = field(default_factory=dict)


def served_means(records: Sequence[Any]) -> ServedMeans | None:
    """Mean NDCG@10 of what served and of popularity over the days both were scored on; None
    when no day was."""
    scored = [
        r
        for r in records
        if score(_get(r, "served_ndcg")) is not None
        and score(_get(r, "popularity_ndcg")) is not None
    ]
    if not scored:
        return None
    return ServedMeans(
        days=len(scored),
        served=math.fsum(score(_get(r, "served_ndcg")) for r in scored) / len(scored),
        popularity=math.fsum(score(_get(r, "popularity_ndcg")) for r in scored) / len(scored),
        popularity_served=sum(1 for r in scored if _get(r, "served_policy") == "popularity"),
        judged_users=_judged_users(scored),
        served_per_user=per_user_day(scored, "served_ndcg"),
        popularity_per_user=per_user_day(scored, "popularity_ndcg"),
        without_history=_summed(scored, "without_history"),
        other_windows=_other_windows(scored),
    )


def _baseline_window() -> int:
    from sands.evaluation.offline import EvaluationSpec  # the scores' module: on use

    return EvaluationSpec.popularity_window_days


def _other_windows(scored: Sequence[Any]) -> dict[int, int]:
    """{window: days} of the days popularity served a list counting another window than the
    baseline's (the `popularity` column's): a gain there is the window's, not a model's."""
    windows = Counter(
        window
        for r in scored
        if _get(r, "served_policy") == "popularity"
        and (window := _get(r, "popularity_window")) not in (None, _baseline_window())
    )
    return dict(sorted(windows.items()))


def _summed(scored: Sequence[Any], name: str) -> int | None:
    counts = [_get(r, name) for r in scored]
    return sum(counts) if counts and all(isinstance(c, int) for c in counts) else None


def _ratio(served: float, popularity: float) -> str:
    return f" ({served / popularity:.2f}x)" if popularity > 0 else ""


def unscored_note(records: Sequence[Any]) -> str:
    """Why days went unscored, most common first (then alphabetically): " (no training set
    yet: 2 days)"."""
    reasons = Counter(_get(r, "unscored") for r in records if _get(r, "unscored"))
    if not reasons:
        return ""
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return f" ({'; '.join(f'{why}: {_days(n)}' for why, n in ranked)})"


def describe_served(records: Sequence[Any]) -> str:
    """One line on what served, never `nan`: "mean of 29 labelled days (249 user-days with a
    positive; popularity served on 29): served 0.1652, popularity 0.1652 (1.00x); over the
    user-days: served 0.1700, popularity 0.1700 (1.00x)"."""
    result = served_means(records)
    if result is None:
        return "no labelled day to score" + unscored_note(records)
    notes = (
        []
        if result.judged_users is None
        else [f"{result.judged_users:,} user-days with a positive"]
    )
    windows = " and ".join(f"{w}-day list on {n}" for w, n in result.other_windows.items())
    notes.append(
        f"popularity served on {result.popularity_served}"
        + (
            f", its {windows} of them (the popularity column: the {_baseline_window()}-day list)"
            if windows
            else ""
        )
    )
    labelled = "labelled day" if result.days == 1 else "labelled days"
    line = (
        f"mean of {result.days} {labelled} ({'; '.join(notes)}): served {result.served:.4f}, "
        f"popularity {result.popularity:.4f}{_ratio(result.served, result.popularity)}"
    )
    if result.served_per_user is None or result.popularity_per_user is None:
        return line
    return (
        f"{line}; over the user-days: served {result.served_per_user:.4f}, popularity "
        f"{result.popularity_per_user:.4f}"
        f"{_ratio(result.served_per_user, result.popularity_per_user)}{_history_note(result)}"
    )


def _history_note(result: ServedMeans) -> str:
    """How many judged user-days no model could rank from the user's own history."""
    if not result.without_history or not result.judged_users:
        return ""
    share = result.without_history / result.judged_users
    return (
        f"; {result.without_history:,} of those user-days ({share:.0%}) had no event in the 28 "
        "days before (in the history loaded: a first visit, or a return after a month): serving "
        "has no neighbours of their history to rank for them (a champion ranks their segment's "
        "favourites and popularity), and a model knows little more of them than their profile"
    )


def fmt(value: Any) -> str:
    """A score for people: four decimals, or "-" when there is none."""
    number = score(value)
    return MISSING if number is None else f"{number:.4f}"


# --- the summary ---------------------------------------------------------------------------------


def _means(records: Sequence[Any]) -> dict[str, Any]:
    result = backtest(records)
    scored, skipped = split(records)
    return {
        "days": len(records),
        "compared_days": len(scored) + len(skipped),
        "labelled_days": len(scored),
        # Every played day without a labelled user, a champion or not; and of the compared days.
        "days_without_labels": len(unlabelled_days := [r for r in records if without_labels(r)]),
        "days_without_labels_list": [str(_get(r, "day")) for r in unlabelled_days],
        "compared_days_without_labels": len(skipped),
        "served": result.champion if result else None,
        "frozen": result.frozen if result else None,
        "popularity": result.popularity if result else None,
        "line": describe(records),
        "every_labelled_day": _plain(asdict(every)) if (every := served_means(records)) else None,
        "served_line": describe_served(records),
    }


def summarise(
    records: Sequence[Any],
    shift: int | None = None,
    verdicts: Sequence[tuple[str, bool]] = (),
    **context: Any,
) -> dict[str, Any]:
    """The play in numbers: means over every day and (with a `shift` index) from the change
    on, retrain requests, gate verdicts, the scenario's promises and whatever `context` says
    (scenario, landing zone, ...)."""
    shifted = shift is not None and 0 <= shift < len(records)
    triggers = [_get(r, "triggers") or [] for r in records]
    summary: dict[str, Any] = {
        **context,
        "days": len(records),
        "first_day": str(_get(records[0], "day")) if records else None,
        "last_day": str(_get(records[-1], "day")) if records else None,
        "shift_day": shift if shifted else None,
        "shift_date": str(_get(records[shift], "day")) if shifted else None,
        "all_days": _means(records),
        "after_change": _means(records[shift:]) if shifted else None,
        "retrain_requests": sum(1 for t in triggers if t),
        "drift_retrain_days": [
            str(_get(r, "day")) for r, t in zip(records, triggers, strict=True) if DRIFTED in t
        ],
        "gate_passed": sum(1 for r in records if _get(r, "gate") is True),
        "gate_rejected": sum(1 for r in records if _get(r, "gate") is False),
        "failed_runs": sum(_get(r, "failed_runs", 0) or 0 for r in records),
        "verdicts": [{"claim": claim, "holds": bool(holds)} for claim, holds in verdicts],
    }
    return summary


# --- files ---------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-safe: nan and infinities become None, tuples lists, anything else odd a string."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def rows(records: Sequence[Any]) -> list[dict[str, Any]]:
    """Every field of every record, JSON-safe."""
    return [_plain(asdict(r) if is_dataclass(r) else dict(vars(r))) for r in records]


def columns(records: Sequence[Any]) -> list[str]:
    """The record fields in declaration order (the union, should records differ)."""
    names: list[str] = []
    for r in records:
        for name in (f.name for f in fields(r)) if is_dataclass(r) else vars(r):
            if name not in names:
                names.append(name)
    return names


def to_csv(records: Sequence[Any]) -> str:
    """One row per day, one column per record field; lists joined with ";", None empty."""

    def cell(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, list):
            return ";".join(str(v) for v in value)
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True)
        return value

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(records), lineterminator="\n")
    writer.writeheader()
    for row in rows(records):
        writer.writerow({k: cell(v) for k, v in row.items()})
    return buffer.getvalue()


def to_json(records: Sequence[Any], summary: dict[str, Any]) -> str:
    """The summary and every day's record; never `NaN` (strict JSON)."""
    document = {"summary": _plain(summary), "days": rows(records)}
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def _served_by(record: Any) -> str:
    policy = _get(record, "served_policy")
    if policy not in (None, ""):
        return f"v{policy}" if isinstance(policy, int) else str(policy)
    serving = _get(record, "serving")
    return f"v{serving}" if serving is not None else MISSING


def _version(value: Any) -> str:
    return f"v{value}" if value is not None else MISSING


def _flag(value: Any, yes: str, no: str) -> str:
    return {True: yes, False: no}.get(value, MISSING)


KNOWN = {
    "day",
    "runs",
    "failed_runs",
    "triggers",
    "drift",
    "gate",
    "champion",
    "serving",
    "served_policy",
    "serving_trained_until",
    "champion_ndcg",
    "frozen",
    "frozen_ndcg",
    "popularity_ndcg",
    "judged_users",
    "without_history",
    "positives",
    "online_ctr",
    "seconds",
    "run_ids",
}


def day_table(records: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    """The per-day table: the known fields, then any other scalar field as it is."""
    extra = [
        name
        for name in columns(records)
        if name not in KNOWN
        and all(isinstance(_get(r, name), str | int | float | bool | type(None)) for r in records)
    ]
    header = [
        "day",
        "served by",
        "champion after",
        "NDCG@10 served",
        "frozen",
        "popularity",
        "users (positives)",
        "retrain triggers",
        "drift",
        "gate",
        "online CTR",
        "runs",
        "s",
        *extra,
    ]
    body = []
    for r in records:
        frozen = _get(r, "frozen")
        # A day unscored for a reason it names shows it in its own column.
        note = f" ({NO_LABELS})" if without_labels(r) and not _get(r, "unscored") else ""
        body.append(
            [
                str(_get(r, "day", MISSING)),
                _served_by(r),
                _version(_get(r, "champion")),
                fmt(_get(r, "served_ndcg")) + note,
                f"{fmt(_get(r, 'frozen_ndcg'))} (v{frozen})" if frozen is not None else MISSING,
                fmt(_get(r, "popularity_ndcg")),
                _evidence(r),
                ", ".join(_get(r, "triggers") or []) or MISSING,
                _flag(_get(r, "drift"), "drifted", "ok"),
                _flag(_get(r, "gate"), "pass", "reject"),
                fmt(_get(r, "online_ctr")),
                str(_get(r, "runs", MISSING))
                + (f" ({_get(r, 'failed_runs')} failed)" if _get(r, "failed_runs") else ""),
                f"{score(_get(r, 'seconds')) or 0:.0f}",
                *(_cell(_get(r, name)) for name in extra),
            ]
        )
    return header, body


def _evidence(record: Any) -> str:
    """Users with a positive that day (what NDCG@10 averages over) and their positives."""
    users, positives = _get(record, "judged_users"), _get(record, "positives")
    return MISSING if users is None else f"{users:,} ({positives or 0:,})"


def _cell(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return fmt(value)
    return str(value)


def plot(records: Sequence[Any], shift: int | None = None, title: str = "") -> str:
    """NDCG@10 over the days for served, frozen and popularity (gaps on days without
    labels), the change day marked; inline SVG."""
    figure, axis = plt.subplots(figsize=(9, 3.8))
    x = list(range(len(records)))
    for name, label in SERIES:
        ys = [score(_get(r, name)) for r in records]
        if any(y is not None for y in ys):
            # matplotlib breaks the line at a missing value: a day without labels is a gap.
            values = [math.nan if y is None else y for y in ys]
            axis.plot(x, values, marker="o", label=label, color=COLOURS[label])
    if shift is not None and 0 <= shift < len(records):
        axis.axvline(shift, color="#cf222e", linestyle="--", linewidth=1)
        axis.annotate(
            f"change ({_get(records[shift], 'day')})",
            (shift, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            color="#cf222e",
            fontsize=8,
        )
    shaded = [i for i, r in enumerate(records) if without_labels(r)]
    for n, i in enumerate(shaded):
        axis.axvspan(
            i - 0.4, i + 0.4, color="#eeeeee", zorder=0, label=NO_LABELS if n == 0 else None
        )
    axis.set_xticks(x, [str(_get(r, "day"))[5:] for r in records], rotation=45, fontsize=8)
    axis.set_ylabel("next-day NDCG@10")
    axis.set_title(title or "NDCG@10 of the day's labels")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    return svg(figure)


def _served_row(
    label: str, means: dict[str, Any], every: dict[str, Any], served: str, popularity: str
) -> list[str]:
    """A row of what served on every labelled day (no frozen model to show)."""
    days = (str(means["days"]), str(every["days"]), str(means["days_without_labels"]))
    return [label, *days, fmt(every[served]), MISSING, fmt(every[popularity])]


def _summary_rows(summary: dict[str, Any]) -> list[list[str]]:
    out = []
    for key, when in (("all_days", "every played day"), ("after_change", "from the change on")):
        means = summary.get(key)
        if not means:
            continue
        every = means.get("every_labelled_day")
        if every and every["days"] > means["labelled_days"]:
            # Days without a champion (or a frozen model) still served someone: popularity.
            label = f"{when}, what served (popularity on {every['popularity_served']})"
            out.append(_served_row(label, means, every, "served", "popularity"))
        if every and every.get("served_per_user") is not None:
            label = f"{when}, what served, over the {every['judged_users']:,} user-days"
            out.append(_served_row(label, means, every, "served_per_user", "popularity_per_user"))
        out.append(
            [
                when,
                str(means["days"]),
                str(means["labelled_days"]),
                str(means["compared_days_without_labels"]),
                fmt(means["served"]),
                fmt(means["frozen"]),
                fmt(means["popularity"]),
            ]
        )
    return out


def to_html(records: Sequence[Any], summary: dict[str, Any], title: str) -> str:
    """One self-contained page: the summary table, the plot and the per-day table."""
    shift = summary.get("shift_day")
    facts = [
        f"{k.replace('_', ' ')}: {summary[k]}"
        for k in ("kind", "scenario", "landing", "created", "first_day", "last_day", "shift_date")
        if summary.get(k) not in (None, "")
    ]
    facts.append(
        f"retrain requests: {summary.get('retrain_requests', 0)}; drift-triggered on: "
        f"{', '.join(summary.get('drift_retrain_days') or []) or 'no day'}; gate passed "
        f"{summary.get('gate_passed', 0)}, rejected {summary.get('gate_rejected', 0)}"
    )
    skipped = (summary.get("all_days") or {}).get("days_without_labels_list") or []
    notes = (
        f'<p class="note">Days without labels ({", ".join(skipped)}) have no score: they are '
        "left out of every mean and shaded in the plot.</p>"
        if skipped
        else ""
    )
    verdicts = "".join(
        f'<li class="{"pass" if v["holds"] else "fail"}">{"✓" if v["holds"] else "✗"} '
        f"{html.escape(v['claim'])}</li>"
        for v in summary.get("verdicts") or []
    )
    header, body = day_table(records)
    return "\n".join(
        [
            "<!doctype html>",
            f'<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
            f"<style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            "<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in facts) + "</ul>",
            "<h2>Next-day NDCG@10, mean over labelled days</h2>",
            table(
                [
                    "days",
                    "played",
                    "labelled",
                    "without labels (skipped)",
                    "served",
                    "frozen",
                    "popularity",
                ],
                _summary_rows(summary),
            ),
            notes,
            f"<ul>{verdicts}</ul>" if verdicts else "",
            "<h2>NDCG@10 over the days</h2>",
            plot(records, shift, title),
            "<h2>Day by day</h2>",
            table(header, body),
            "</body></html>",
        ]
    )


def markdown(summary: dict[str, Any]) -> str:
    """The summary as a markdown table (for the Dagster UI)."""
    lines = [
        "| days | played | labelled | without labels | served | frozen | popularity |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _summary_rows(summary)]
    for v in summary.get("verdicts") or []:
        lines.append("")
        lines.append(f"- {'✓' if v['holds'] else '✗'} {v['claim']}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ReportFiles:
    """Where a play's summary was written."""

    csv: Path
    json: Path
    html: Path
    summary: dict[str, Any]

    @property
    def label(self) -> str:
        return self.html.stem


def label(kind: str, now: datetime | None = None) -> str:
    """`<kind>-<UTC timestamp>`, a file name stem."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in kind)
    return f"{safe}-{stamp}"


def write_report(
    directory: str | Path,
    records: Sequence[Any],
    kind: str,
    shift: int | None = None,
    verdicts: Sequence[tuple[str, bool]] = (),
    now: datetime | None = None,
    **context: Any,
) -> ReportFiles:
    """Write `<directory>/<kind>-<timestamp>.csv`, `.json` and `.html`, each atomically."""
    now = now or datetime.now(UTC)
    stem = label(kind, now)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarise(
        records, shift, verdicts, kind=kind, created=now.isoformat(timespec="seconds"), **context
    )
    files = ReportFiles(
        folder / f"{stem}.csv", folder / f"{stem}.json", folder / f"{stem}.html", summary
    )
    title = f"{kind}: {summary['first_day']} to {summary['last_day']}"
    atomic_write_text(files.csv, to_csv(records))
    atomic_write_text(files.json, to_json(records, summary))
    atomic_write_text(files.html, to_html(records, summary, title))
    return files
