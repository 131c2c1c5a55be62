"""The day-by-day table a replay or a scenario prints: as many columns as the terminal holds.

Thirteen columns in an 80-column terminal left every cell at two characters (`19…`); the columns
a reader needs first (the day, what served and how it scored against popularity, on how many
users) come first, and the rest are left out, said so, rather than cut. The CSV and the HTML page
always hold every column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table
from rich.text import Text

from sands.models.aliases import POPULARITY_POLICY

SHORT_TRIGGERS = {
    "scheduled": "cron",
    "new training data": "data",
    "champion missing, below objective or stale": "quality",
    "drift detected": "drift",
    "online CTR below objective": "online",
}
# In table order; `PRIORITY` says which to keep when they do not all fit.
COLUMNS = (
    "day",
    "runs",
    "retrain trigger",
    "drift",
    "gate",
    "champion",
    "served by",
    "NDCG@10",
    "frozen",
    "popularity",
    "users (positives)",
    "online CTR",
    "s",
)
PRIORITY = (
    "day",
    "served by",
    "NDCG@10",
    "popularity",
    "users (positives)",
    "gate",
    "champion",
    "frozen",
    "retrain trigger",
    "drift",
    "online CTR",
    "runs",
    "s",
)
# A cell's padding and its border in rich's default box.
_CELL_EXTRA = 3


def day_cells(r: Any) -> dict[str, str]:
    """One played day as the table's cells (rich markup); a day without labels reads `-`."""
    from sands.evaluation.backtest import fmt, without_labels

    served = fmt(r.served_ndcg if r.served_ndcg is not None else r.champion_ndcg)
    served += " (no labels)" if without_labels(r) and not r.unscored else ""
    return {
        "day": str(r.day),
        "runs": f"{r.runs}" + (f" ({r.failed_runs}!)" if r.failed_runs else ""),
        "retrain trigger": ", ".join(SHORT_TRIGGERS.get(t, t) for t in r.triggers) or "-",
        "drift": {None: "-", True: "[red]drifted[/]", False: "ok"}[r.drift],
        "gate": {None: "-", True: "[green]pass[/]", False: "[yellow]reject[/]"}[r.gate],
        "champion": f"v{r.champion}" if r.champion else "-",
        "served by": _served_by(r),
        "NDCG@10": served,
        "frozen": f"{fmt(r.frozen_ndcg)} (v{r.frozen})" if r.frozen else "-",
        "popularity": fmt(r.popularity_ndcg),
        "users (positives)": (
            "-" if r.judged_users is None else f"{r.judged_users:,} ({r.positives:,})"
        ),
        "online CTR": fmt(r.online_ctr),
        "s": f"{r.seconds:.0f}",
    }


def _served_by(r: Any) -> str:
    """The policy that served: `v3`, `popularity`, or `popularity (28 d)` when its list counted
    other than the baseline's 7 days."""
    from sands.monitoring.popularity_window import DEFAULT_WINDOW  # heavy: on use, not at `--help`

    if not r.served_policy:
        return f"v{r.serving}" if r.serving else "-"
    window = getattr(r, "popularity_window", None)
    if r.served_policy == POPULARITY_POLICY and window not in (None, DEFAULT_WINDOW):
        return f"popularity ({window} d)"
    return r.served_policy


def fitting(widths: dict[str, int], width: int) -> list[str]:
    """The columns to show, in table order: by `PRIORITY` while their cells fit in `width`
    (the first always)."""
    kept: set[str] = set()
    used = 1  # the table's left border
    for name in PRIORITY:
        need = widths[name] + _CELL_EXTRA
        if not kept or used + need <= width:
            kept.add(name)
            used += need
    return [name for name in COLUMNS if name in kept]


@dataclass
class Timeline:
    """The played days, rendered at the end for the terminal's width."""

    title: str
    rows: list[dict[str, str]] = field(default_factory=list)

    def add(self, record: Any) -> None:
        self.rows.append(day_cells(record))

    def widths(self) -> dict[str, int]:
        """Each column's widest cell (or header), in terminal cells."""
        return {
            name: max([len(name), *(Text.from_markup(row[name]).cell_len for row in self.rows)])
            for name in COLUMNS
        }

    def render(self, width: int) -> tuple[Table, list[str]]:
        """The table for a terminal `width` columns wide, and the columns left out."""
        shown = fitting(self.widths(), width)
        table = Table(*shown, title=self.title)
        for row in self.rows:
            table.add_row(*(row[name] for name in shown))
        return table, [name for name in COLUMNS if name not in shown]
