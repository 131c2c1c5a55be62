"""Drift statistics, column by column, with Evidently's methods and defaults.

Per column (Evidently's `DataDriftPreset` choice): with at most 1,000 reference rows, numeric
columns with more than 5 distinct values use the two-sample KS test and the rest chi-square, both
drifting at p < 0.05; above 1,000 rows, numeric columns use the Wasserstein distance normed by
the reference standard deviation and the rest the Jensen-Shannon distance, both drifting at
>= 0.1. PSI (bands 0.1 / 0.25) is reported alongside. Binning follows Evidently: Sturges edges
over both samples for numeric columns with more than 20 distinct values, categories otherwise.

Everything runs on numpy arrays of one column; each column is sorted once and reused.

`column_drift` is Evidently's verdict, kept score for score. `calibrated_drift` is the verdict
monitoring uses (`DriftRule`): the same distances (normed Wasserstein, Jensen-Shannon) as an
effect size at every sample size, flagged only when the effect is both larger than a floor
(Evidently's own 0.1) and larger than the `quantile` of its permutation null: the distances of
seeded random splits of the pooled rows into samples of the reference's and current's sizes. A
few hundred rows a day have a large distance by chance alone (a style with no positives in the
reference and one today is infinite chi-square to Evidently's small-sample test); the null
measures exactly that chance at the sizes compared, and the floor keeps huge samples from
flagging shifts too small to matter.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SMALL_SAMPLE = 1_000
DISTANCE_THRESHOLD = 0.1
P_VALUE_THRESHOLD = 0.05
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25
MAX_EXACT_CATEGORIES = 500  # up to this many, the categorical null is drawn from counts


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
    p_value: float = float("nan")  # permutation p-value of the calibrated rule

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
class DriftRule:
    """How a column's verdict is decided: Evidently's rule, or the effect size calibrated on a
    seeded permutation null at the sizes actually compared."""

    calibrated: bool = True
    quantile: float = 0.99
    min_effect: float = DISTANCE_THRESHOLD
    permutations: int = 200
    # Above this many pooled rows the null is drawn on a proportional subsample and scaled by
    # sqrt(effective size ratio): both distances shrink as 1 / sqrt(n) under the null.
    max_null_rows: int = 2_000
    seed: int = 0


def _category_codes(reference, current) -> tuple[np.ndarray, int]:
    """Codes in the values' sorted order, not first appearance: the null's draws index the
    codes, so the same rows read back in another order must give the same verdict."""
    ref = pa.array(reference).drop_null().cast(pa.string())
    cur = pa.array(current).drop_null().cast(pa.string())
    encoded = pa.concat_arrays([ref, cur]).dictionary_encode()
    ranks = pc.rank(encoded.dictionary, sort_keys="ascending", tiebreaker="first")
    codes = pc.take(pc.subtract(ranks, 1), encoded.indices)
    return codes.to_numpy(zero_copy_only=False).astype(np.int64), len(ref)


def _null_sample(
    pooled: np.ndarray, n_ref: int, rule: DriftRule, rng: np.random.Generator
) -> tuple[np.ndarray, int, float]:
    """The pooled rows the null is drawn from, the current size within them, and the factor
    that scales a null distance at that size to the real sizes."""
    n_cur = len(pooled) - n_ref
    if len(pooled) <= rule.max_null_rows:
        return pooled, n_cur, 1.0
    share = rule.max_null_rows / len(pooled)
    sub_ref, sub_cur = max(round(n_ref * share), 2), max(round(n_cur * share), 2)
    picked = rng.choice(len(pooled), sub_ref + sub_cur, replace=False)
    effective = n_ref * n_cur / (n_ref + n_cur)
    sub_effective = sub_ref * sub_cur / (sub_ref + sub_cur)
    return pooled[picked], sub_cur, float(np.sqrt(sub_effective / effective))


def _is_current(size: int, n_cur: int, rule: DriftRule, rng: np.random.Generator) -> np.ndarray:
    """One row per permutation: which of the pooled rows play the current sample (the n_cur
    smallest of uniform keys: a uniformly random subset, cheaper than shuffling)."""
    keys = rng.random((rule.permutations, size))
    return keys <= np.partition(keys, n_cur - 1, axis=1)[:, n_cur - 1 : n_cur]


def _null_wasserstein(
    pooled: np.ndarray, n_ref: int, rule: DriftRule, rng: np.random.Generator
) -> np.ndarray:
    values, n_cur, scale = _null_sample(pooled, n_ref, rule, rng)
    order = np.argsort(values, kind="stable")
    deltas = np.diff(values[order])
    current = _is_current(len(values), n_cur, rule, rng)[:, order]
    cur_cdf = np.cumsum(current, axis=1, dtype=np.int32)[:, :-1] / n_cur
    ref_cdf = np.cumsum(~current, axis=1, dtype=np.int32)[:, :-1] / (len(values) - n_cur)
    return np.abs(ref_cdf - cur_cdf) @ deltas * scale


def _jensen_shannon_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=1)
        right = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=1)
    return np.sqrt(np.maximum((left + right) / 2, 0.0))


def _null_jensen_shannon(
    codes: np.ndarray, n_ref: int, rule: DriftRule, rng: np.random.Generator
) -> np.ndarray:
    size = int(codes.max()) + 1
    if size <= MAX_EXACT_CATEGORIES:
        # Shuffling rows between the samples draws the current sample's counts from a
        # multivariate hypergeometric over the pooled counts: exact, at the real sizes.
        pooled = np.bincount(codes, minlength=size)
        cur = rng.multivariate_hypergeometric(pooled, len(codes) - n_ref, size=rule.permutations)
        return _jensen_shannon_rows((pooled - cur).astype(float), cur.astype(float))
    sample, n_cur, scale = _null_sample(codes, n_ref, rule, rng)
    current = _is_current(len(sample), n_cur, rule, rng)
    rows = np.broadcast_to(np.arange(rule.permutations)[:, None], current.shape)
    cells = rows * size + sample[None, :]
    shape = (rule.permutations, size)
    cur = np.bincount(cells[current], minlength=rule.permutations * size).reshape(shape)
    ref = np.bincount(cells[~current], minlength=rule.permutations * size).reshape(shape)
    return _jensen_shannon_rows(ref.astype(float), cur.astype(float)) * scale


def _null_jensen_shannon_clustered(
    codes: np.ndarray, n_ref: int, clusters: np.ndarray, rule: DriftRule, rng: np.random.Generator
) -> np.ndarray:
    """Whole clusters (a user's rows of one day) move between the samples together: rows of one
    cluster are alike (one buyer, one taste), so shuffling rows understates chance."""
    size, count = int(codes.max()) + 1, int(clusters.max()) + 1
    members = np.bincount(clusters * size + codes, minlength=count * size).reshape(count, size)
    sizes = members.sum(axis=1)
    order = np.argsort(rng.random((rule.permutations, count)), axis=1)
    ordered = sizes[order]
    # Clusters in random order until the current sample's size (a cluster joins when its middle
    # falls inside it), at least one.
    inside = np.cumsum(ordered, axis=1) - ordered / 2 <= len(codes) - n_ref
    inside[:, 0] = True
    chosen = np.zeros_like(inside)
    np.put_along_axis(chosen, order, inside, axis=1)
    cur = chosen.astype(float) @ members
    return _jensen_shannon_rows(members.sum(axis=0) - cur, cur)


def _calibrated(
    name: str, kind: str, method: str, effect: float, null: np.ndarray, psi_: float, rule: DriftRule
) -> ColumnDrift:
    bar = float(np.quantile(null, rule.quantile))
    p_value = float((1 + np.count_nonzero(null >= effect - 1e-12)) / (len(null) + 1))
    drifted = effect >= rule.min_effect and effect > bar
    threshold = round(max(bar, rule.min_effect), 4)
    return ColumnDrift(name, kind, method, effect, threshold, drifted, psi_, p_value)


def calibrated_drift(
    name: str,
    reference,
    current,
    numeric: bool,
    rule: DriftRule | None = None,
    clusters: tuple[np.ndarray, np.ndarray] | None = None,
) -> ColumnDrift:
    """The column's distance (Evidently's large-sample statistic, at any size) against a floor
    and its permutation null at the sizes compared; seeded by the rule and the column name.
    `clusters` (categorical columns): per reference and current row, the unit rows are drawn
    in (a user's rows of one day), permuted whole."""
    rule = rule or DriftRule()
    if not rule.calibrated:
        return column_drift(name, reference, current, numeric)
    rng = np.random.default_rng([rule.seed, zlib.crc32(name.encode())])
    kind = "numeric" if numeric else "categorical"
    if numeric:
        ref, cur = _sorted_numbers(reference), _sorted_numbers(current)
        if len(ref) == 0 or len(cur) == 0:
            return ColumnDrift(name, kind, "empty", float("nan"), 0.0, False, float("nan"))
        shares = _numeric_shares(ref, cur)
        psi_ = _psi_shares(*shares)
        pooled = np.concatenate([ref, cur])
        if _distinct_sorted(ref) > 5:
            std = max(float(np.std(ref)), 0.001)
            effect = _wasserstein_sorted(ref, cur) / std
            null = _null_wasserstein(pooled, len(ref), rule, rng) / std
            return _calibrated(name, kind, "wasserstein", effect, null, psi_, rule)
        codes = np.unique(pooled, return_inverse=True)[1].astype(np.int64)
    else:
        if clusters is not None:
            keep_ref, keep_cur = (pa.array(v).is_valid() for v in (reference, current))
            reference, current = (
                pa.array(reference).filter(keep_ref),
                pa.array(current).filter(keep_cur),
            )
            both = np.concatenate(
                [
                    np.asarray(clusters[0], dtype=object)[keep_ref.to_numpy(zero_copy_only=False)],
                    np.asarray(clusters[1], dtype=object)[keep_cur.to_numpy(zero_copy_only=False)],
                ]
            )
            unit = np.unique(both.astype(str), return_inverse=True)[1].astype(np.int64)
        codes, n_ref = _category_codes(reference, current)
        if n_ref == 0 or n_ref == len(codes):
            return ColumnDrift(name, kind, "empty", float("nan"), 0.0, False, float("nan"))
        size = int(codes.max()) + 1
        ref_counts = np.bincount(codes[:n_ref], minlength=size).astype(float)
        cur_counts = np.bincount(codes[n_ref:], minlength=size).astype(float)
        shares = (ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
        psi_ = _psi_shares(*shares)
        ref = codes[:n_ref]
    effect = _jensen_shannon_shares(*shares)
    if not numeric and clusters is not None:
        null = _null_jensen_shannon_clustered(codes, len(ref), unit, rule, rng)
    else:
        null = _null_jensen_shannon(codes, len(ref), rule, rng)
    return _calibrated(name, kind, "jensenshannon", effect, null, psi_, rule)


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
