"""Drift statistics, column by column, with Evidently's methods and defaults.

Per column (Evidently's `DataDriftPreset` choice): with at most 1,000 reference rows, numeric
columns with more than 5 distinct values use the two-sample KS test and the rest chi-square, both
drifting at p < 0.05; above 1,000 rows, numeric columns use the Wasserstein distance normed by
the reference standard deviation and the rest the Jensen-Shannon distance, both drifting at
>= 0.1. PSI (bands 0.1 / 0.25) is reported alongside. Binning follows Evidently: Sturges edges
over both samples for numeric columns with more than 20 distinct values, categories otherwise.

Everything runs on numpy arrays of one column; each column is sorted once and reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

SMALL_SAMPLE = 1_000
DISTANCE_THRESHOLD = 0.1
P_VALUE_THRESHOLD = 0.05
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict: the method used, its statistic, and PSI for reference."""

    column: str
    kind: str  # "numeric" or "categorical"
    method: str
    statistic: float
    threshold: float
    drifted: bool
    psi: float

    @property
    def psi_band(self) -> str:
        if self.psi >= PSI_SIGNIFICANT:
            return "significant"
        return "moderate" if self.psi >= PSI_MODERATE else "stable"


def _sorted_numbers(values: np.ndarray | pa.Array) -> np.ndarray:
    numbers = np.asarray(values, dtype=np.float64)
    return np.sort(numbers[~np.isnan(numbers)])


def wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> float:
    """Earth mover's distance between the two samples over the reference's std (floor 0.001)."""
    ref, cur = _sorted_numbers(reference), _sorted_numbers(current)
    return _wasserstein_sorted(ref, cur) / max(float(np.std(ref)), 0.001)


def _wasserstein_sorted(ref: np.ndarray, cur: np.ndarray) -> float:
    # Integrate |F_ref - F_cur| between consecutive points of the pooled sample (as scipy does).
    # A stable sort of two sorted runs is a linear merge.
    pooled = np.sort(np.concatenate([ref, cur]), kind="stable")
    deltas = np.diff(pooled)
    ref_cdf = np.searchsorted(ref, pooled[:-1], side="right") / len(ref)
    cur_cdf = np.searchsorted(cur, pooled[:-1], side="right") / len(cur)
    return float(np.sum(np.abs(ref_cdf - cur_cdf) * deltas))


def _distinct_sorted(values: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(values))) + 1 if len(values) else 0


def _fill_zeroes(percents: np.ndarray) -> np.ndarray:
    # Evidently's rule, so log ratios stay finite: a tiny share where a bin is empty.
    nonzero = percents[percents != 0]
    floor = nonzero.min() / 10**6 if len(nonzero) and nonzero.min() <= 0.0001 else 0.0001
    return np.where(percents == 0, floor, percents)


def category_counts(
    reference: Sequence | pa.Array, current: Sequence | pa.Array
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each value on both sides over the union of values (missing values left out),
    by hashing (dictionary encoding) rather than sorting."""
    ref = pa.array(reference).drop_null().cast(pa.string())
    cur = pa.array(current).drop_null().cast(pa.string())
    encoded = pa.concat_arrays([ref, cur]).dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    size = len(encoded.dictionary)
    return (
        np.bincount(codes[: len(ref)], minlength=size).astype(float),
        np.bincount(codes[len(ref) :], minlength=size).astype(float),
    )


def _numeric_shares(ref_sorted: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if _distinct_sorted(ref_sorted) > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref_sorted, cur]), bins="sturges")
        return (
            np.histogram(ref_sorted, edges)[0] / len(ref_sorted),
            np.histogram(cur, edges)[0] / len(cur),
        )
    keys, codes = np.unique(np.concatenate([ref_sorted, cur]), return_inverse=True)
    return (
        np.bincount(codes[: len(ref_sorted)], minlength=len(keys)) / len(ref_sorted),
        np.bincount(codes[len(ref_sorted) :], minlength=len(keys)) / len(cur),
    )


def binned_shares(
    reference: np.ndarray, current: np.ndarray, numeric: bool, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Shares of each sample per bin: Sturges bins for many-valued numbers, else per value."""
    if numeric:
        ref, cur = _numeric_shares(_sorted_numbers(reference), _sorted_numbers(current))
    else:
        ref_counts, cur_counts = category_counts(reference, current)
        ref, cur = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    if fill_zeroes:
        ref, cur = _fill_zeroes(ref), _fill_zeroes(cur)
    return ref, cur


def _jensen_shannon_shares(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        right = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(np.sqrt(max((left + right) / 2, 0.0)))


def _psi_shares(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = _fill_zeroes(ref), _fill_zeroes(cur)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def jensen_shannon(reference: np.ndarray, current: np.ndarray, numeric: bool) -> float:
    """Jensen-Shannon distance (natural log, as scipy) between the binned shares."""
    return _jensen_shannon_shares(*binned_shares(reference, current, numeric, fill_zeroes=False))


def psi(reference: np.ndarray, current: np.ndarray, numeric: bool) -> float:
    """Population stability index over the binned shares (empty bins filled as Evidently)."""
    return _psi_shares(*binned_shares(reference, current, numeric, fill_zeroes=False))


def ks_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov p-value."""
    from scipy.stats import ks_2samp  # imported on use: scipy.stats is slow to import

    return float(ks_2samp(reference, current).pvalue)


def _chi_square_counts(ref: np.ndarray, cur: np.ndarray) -> float:
    from scipy.stats import chisquare  # imported on use

    if len(ref) < 2:
        return 1.0  # one category on both sides: nothing can have moved
    expected = ref * cur.sum() / ref.sum()
    return float(chisquare(cur, expected).pvalue)


def chi_square_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """Chi-square p-value of current counts against reference shares scaled to the current size."""
    return _chi_square_counts(*category_counts(reference, current))


def _numeric_drift(name: str, reference, current) -> ColumnDrift:
    ref, cur = _sorted_numbers(reference), _sorted_numbers(current)
    if len(ref) == 0 or len(cur) == 0:
        return ColumnDrift(name, "numeric", "empty", float("nan"), 0.0, False, float("nan"))
    shares = _numeric_shares(ref, cur)
    many_values = _distinct_sorted(ref) > 5
    if len(ref) <= SMALL_SAMPLE:
        if many_values:
            method, stat = "ks", ks_p_value(ref, cur)
        else:
            method = "chisquare"
            stat = _chi_square_counts(shares[0] * len(ref), shares[1] * len(cur))
        drifted, threshold = stat < P_VALUE_THRESHOLD, P_VALUE_THRESHOLD
    else:
        if many_values:
            method = "wasserstein"
            stat = _wasserstein_sorted(ref, cur) / max(float(np.std(ref)), 0.001)
        else:
            method, stat = "jensenshannon", _jensen_shannon_shares(*shares)
        drifted, threshold = stat >= DISTANCE_THRESHOLD, DISTANCE_THRESHOLD
    return ColumnDrift(name, "numeric", method, stat, threshold, drifted, _psi_shares(*shares))


def _categorical_drift(name: str, reference, current) -> ColumnDrift:
    ref_counts, cur_counts = category_counts(reference, current)
    ref_total, cur_total = ref_counts.sum(), cur_counts.sum()
    if ref_total == 0 or cur_total == 0:
        return ColumnDrift(name, "categorical", "empty", float("nan"), 0.0, False, float("nan"))
    shares = (ref_counts / ref_total, cur_counts / cur_total)
    if ref_total <= SMALL_SAMPLE:
        method, stat = "chisquare", _chi_square_counts(ref_counts, cur_counts)
        drifted, threshold = stat < P_VALUE_THRESHOLD, P_VALUE_THRESHOLD
    else:
        method, stat = "jensenshannon", _jensen_shannon_shares(*shares)
        drifted, threshold = stat >= DISTANCE_THRESHOLD, DISTANCE_THRESHOLD
    return ColumnDrift(name, "categorical", method, stat, threshold, drifted, _psi_shares(*shares))


def column_drift(name: str, reference, current, numeric: bool) -> ColumnDrift:
    """Evidently's default test for the column, with its threshold; PSI alongside."""
    if numeric:
        return _numeric_drift(name, reference, current)
    return _categorical_drift(name, reference, current)


@dataclass(frozen=True)
class DatasetDrift:
    """Columns, and per group the share that drifted against the group's threshold."""

    columns: list[ColumnDrift]
    groups: dict[str, tuple[float, float, bool]]  # group -> (share drifted, threshold, drifted)

    @property
    def drifted(self) -> bool:
        return any(verdict for _, _, verdict in self.groups.values())


def dataset_drift(
    columns: Sequence[ColumnDrift],
    groups: dict[str, list[str]],
    share_thresholds: dict[str, float] | None = None,
    default_share: float = 0.5,
) -> DatasetDrift:
    """Per feature group: drifted when the share of drifted columns reaches its threshold."""
    by_name = {c.column: c for c in columns if c.method != "empty"}
    verdicts = {}
    for group, names in groups.items():
        members = [by_name[n] for n in names if n in by_name]
        share = sum(c.drifted for c in members) / len(members) if members else 0.0
        threshold = (share_thresholds or {}).get(group, default_share)
        verdicts[group] = (share, threshold, bool(members) and share >= threshold)
    return DatasetDrift(columns=list(columns), groups=verdicts)


@dataclass(frozen=True)
class SchemaDrift:
    """Columns and categories present on one side only."""

    new_columns: list[str]
    missing_columns: list[str]
    new_categories: dict[str, list[str]]

    @property
    def drifted(self) -> bool:
        return bool(self.new_columns or self.missing_columns or self.new_categories)


def schema_drift(
    reference_columns: Sequence[str],
    current_columns: Sequence[str],
    reference_categories: dict[str, set[str]],
    current_categories: dict[str, set[str]],
) -> SchemaDrift:
    """What the current data has that the reference lacks, and the reverse for columns."""
    new_categories = {
        column: sorted(current_categories[column] - reference_categories.get(column, set()))
        for column in current_categories
        if current_categories[column] - reference_categories.get(column, set())
    }
    return SchemaDrift(
        new_columns=sorted(set(current_columns) - set(reference_columns)),
        missing_columns=sorted(set(reference_columns) - set(current_columns)),
        new_categories=new_categories,
    )
