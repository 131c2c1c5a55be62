"""Online quality: served lists joined with what users did next, as SLIs per arm and model.

An impression is clicked (converted) when its user clicked (favourited or bought) one of its
artworks within the attribution window after it was served. Only impressions whose window has
closed by the newest interaction count, so a young impression never reads as a miss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import write_deltalake

from sands.engines import duck
from sands.ingest.contract import CONVERSION_EVENTS
from sands.lake import delta, layout
from sands.serving.prediction_log import RANKED

BETTER, WORSE, UNDECIDED = "better", "worse", "undecided"


@dataclass(frozen=True)
class AttributionSpec:
    """How long after serving an action still counts, and which events are clicks/conversions."""

    # One hour: about a browsing session. Longer windows credit a list with the user's later
    # organic visits to the same (popular, on-taste) artworks: at 24 h that was most of its CTR.
    window_hours: float = 1.0
    clicks: tuple[str, ...] = ("click", "favourite", "purchase")
    conversions: tuple[str, ...] = CONVERSION_EVENTS


def sql_list(events: tuple[str, ...]) -> str:
    """Event types as a SQL `in (...)` list."""
    return ", ".join(f"'{e}'" for e in events)


def attributed_impressions(
    impressions: pa.Table, interactions: pa.Table, spec: AttributionSpec, as_of: datetime
) -> pa.Table:
    """One row per impression whose window closed by `as_of`: arm, model version, strategy, and
    whether it was clicked and converted."""
    con = duck.connect()
    con.register("impressions", impressions)
    con.register("events", interactions.select(["user_id", "artwork_id", "event_type", "event_ts"]))
    window = f"to_microseconds(cast({spec.window_hours * 3_600_000_000} as bigint))"
    return con.sql(
        f"""with mature as (
                select * from impressions where served_ts + {window} <= ?),
            shown as (
                select impression_id, user_id, served_ts, unnest(items).artwork_id as artwork_id
                from mature),
            acted as (
                select s.impression_id,
                       bool_or(e.event_type in ({sql_list(spec.clicks)})) as clicked,
                       bool_or(e.event_type in ({sql_list(spec.conversions)})) as converted
                from shown as s join events as e
                  on e.user_id = s.user_id and e.artwork_id = s.artwork_id
                 and e.event_ts > s.served_ts and e.event_ts <= s.served_ts + {window}
                group by s.impression_id)
            select m.impression_id, m.user_id, m.arm, m.model_version, m.strategy, m.served_date,
                   coalesce(a.clicked, false) as clicked, coalesce(a.converted, false) as converted
            from mature as m left join acted as a using (impression_id)
            order by m.served_ts, m.impression_id""",
        params=[as_of],
    ).to_arrow_table()


def quality_by_arm(attributed: pa.Table) -> pa.Table:
    """Impressions, clicks, CTR, conversions and conversion rate per arm and model version."""
    con = duck.connect()
    con.register("attributed", attributed)
    return con.sql(
        """select arm, model_version, count(*) as impressions,
                  count(*) filter (where clicked) as clicks,
                  count(*) filter (where clicked) / count(*) as ctr,
                  count(*) filter (where converted) as conversions,
                  count(*) filter (where converted) / count(*) as conversion_rate,
                  count(*) filter (where strategy != 'ranked') / count(*) as fallback_share
           from attributed group by arm, model_version order by arm, model_version"""
    ).to_arrow_table()


def two_proportion_z(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """z statistic of rate b minus rate a (pooled); 0 when either side is empty or rates are
    degenerate."""
    if n_a == 0 or n_b == 0:
        return 0.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return 0.0 if spread == 0 else (hits_b / n_b - hits_a / n_a) / spread


def canary_verdict(
    champion: tuple[int, int], challenger: tuple[int, int], min_impressions: int, z: float = 1.96
) -> str:
    """`worse`/`better` when the challenger's CTR (clicks, impressions) differs from the
    champion's at significance `z` with enough impressions on both sides; else `undecided`."""
    (c_hits, c_n), (k_hits, k_n) = champion, challenger
    if min(c_n, k_n) < min_impressions:
        return UNDECIDED
    statistic = two_proportion_z(c_hits, c_n, k_hits, k_n)
    if statistic <= -z:
        return WORSE
    if statistic >= z:
        return BETTER
    return UNDECIDED


@dataclass(frozen=True)
class OnlineObjective:
    """The click-through SLO of the serving champion and the canary's decision rule."""

    min_ctr: float = 0.05
    min_impressions: int = 200  # fewer mature impressions: no verdict either way
    canary_min_impressions: int = 500
    canary_z: float = 1.96


@dataclass(frozen=True)
class OnlineReport:
    """SLIs per arm and version, the champion's SLO verdict and the canary's."""

    by_arm: pa.Table
    champion: int | None
    challenger: int | None
    champion_ctr: float | None
    champion_impressions: int
    meets_objective: bool
    canary: str
    as_of: datetime | None

    def reason(self, objective: OnlineObjective) -> str:
        if self.champion_ctr is None or self.champion_impressions < objective.min_impressions:
            return (
                f"{self.champion_impressions} mature impressions of champion "
                f"v{self.champion}; at least {objective.min_impressions} needed for a verdict"
            )
        verb = "meets" if self.meets_objective else "is below"
        return (
            f"champion v{self.champion} CTR {self.champion_ctr:.4f} over "
            f"{self.champion_impressions} impressions {verb} the objective {objective.min_ctr}"
        )


def _hits(by_arm: pa.Table, arm: str, version: int | None) -> tuple[int, int]:
    rows = [r for r in by_arm.to_pylist() if r["arm"] == arm and r["model_version"] == version]
    return (rows[0]["clicks"], rows[0]["impressions"]) if rows else (0, 0)


def online_report(
    impressions: pa.Table,
    interactions: pa.Table,
    champion: int | None,
    challenger: int | None,
    spec: AttributionSpec,
    objective: OnlineObjective,
) -> OnlineReport:
    """Attribute, aggregate, and judge the champion against its SLO and the challenger
    against the champion (ranked lists only: fallbacks do not speak for a model)."""
    as_of = pc.max(interactions["event_ts"]).as_py() if interactions.num_rows else None
    if as_of is None:  # nothing to attribute yet: no verdict
        by_arm = quality_by_arm(
            attributed_impressions(impressions.slice(0, 0), interactions, spec, datetime.now(UTC))
        )
        return OnlineReport(by_arm, champion, challenger, None, 0, True, UNDECIDED, None)
    attributed = attributed_impressions(impressions, interactions, spec, as_of)
    by_arm = quality_by_arm(attributed.filter(pc.equal(attributed["strategy"], RANKED)))
    clicks, shown = _hits(by_arm, "champion", champion)
    ctr = clicks / shown if shown else None
    enough = shown >= objective.min_impressions
    meets = not enough or (ctr or 0.0) >= objective.min_ctr
    canary = UNDECIDED
    if challenger is not None and challenger != champion:
        canary = canary_verdict(
            (clicks, shown),
            _hits(by_arm, "challenger", challenger),
            objective.canary_min_impressions,
            objective.canary_z,
        )
    return OnlineReport(by_arm, champion, challenger, ctr, shown, meets, canary, as_of)


def markdown(by_arm: pa.Table) -> str:
    """SLIs per arm and model version as a markdown table."""
    lines = [
        "| arm | version | impressions | CTR | conversion |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in by_arm.to_pylist():
        lines.append(
            f"| {r['arm']} | {r['model_version']} | {r['impressions']} | {r['ctr']:.4f} | "
            f"{r['conversion_rate']:.4f} |"
        )
    return "\n".join(lines)


# The figures of each `online_performance` run, for the service to publish as Prometheus gauges:
# one row per arm and model version judged, `current` when that version still served the arm.
FIGURES = pa.schema(
    [
        pa.field("computed_ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("as_of", pa.timestamp("us", tz="UTC")),
        pa.field("arm", pa.string(), nullable=False),
        pa.field("model_version", pa.int64()),
        pa.field("current", pa.bool_(), nullable=False),
        pa.field("impressions", pa.int64(), nullable=False),
        pa.field("ctr", pa.float64()),
        pa.field("conversion_rate", pa.float64()),
    ]
)


def figures_uri(lake_root: str) -> str:
    """The Delta table of online quality figures, beside the prediction log."""
    return layout.online_quality(lake_root)


def record_figures(
    uri: str,
    report: OnlineReport,
    computed_at: datetime,
    storage_options: dict[str, str] | None = None,
) -> int:
    """Append the report's per-arm figures (nothing when no impression has matured yet); the
    number of rows written."""
    rows = report.by_arm.to_pylist()
    if not rows:
        return 0
    serving = {"champion": report.champion, "challenger": report.challenger}
    table = pa.Table.from_pylist(
        [
            {
                "computed_ts": computed_at.astimezone(UTC),
                "as_of": report.as_of,
                "arm": r["arm"],
                "model_version": r["model_version"],
                "current": r["model_version"] is not None
                and serving.get(r["arm"]) == r["model_version"],
                "impressions": r["impressions"],
                "ctr": r["ctr"],
                "conversion_rate": r["conversion_rate"],
            }
            for r in rows
        ],
        schema=FIGURES,
    )
    write_deltalake(uri, table, mode="append", storage_options=storage_options or None)
    return table.num_rows


def latest_figures(uri: str, storage_options: dict[str, str] | None = None) -> pa.Table | None:
    """The newest run's figures for the versions then serving, or None without a table."""
    table = delta.open_table(uri, storage_options)
    if table is None:
        return None
    figures = table.to_pyarrow_table()
    if figures.num_rows == 0:
        return figures
    newest = pc.equal(figures["computed_ts"], pc.max(figures["computed_ts"]))
    return figures.filter(pc.and_(newest, figures["current"]))
