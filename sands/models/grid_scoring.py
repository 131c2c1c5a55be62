"""Exact full-catalogue scoring of the ranker's trees without building the pair matrix.

Ranking every judged user against the whole catalogue is most of an evaluation at volume: XGBoost
needs one row of inputs per (user, artwork) pair, built and then walked through every tree. Most
splits test one side only, a user's input or an artwork's, so their outcomes are computed once per
user and once per artwork as bit masks. Of the cross inputs, those with a few values per user (the
style and medium matches) split the catalogue into a few classes per user, decided once per class;
the rest (price against the user's spend) are compared for a whole row of artworks at a time. So a
pair's walk only reads bits: the trees are padded to full binary trees of one depth, a walk is a
fixed number of index steps, and the leaf values are summed in float32 in XGBoost's tree order from
its base score: the margins are bit-identical to `inplace_predict` on `grid_matrix`
(`tests/sands/models/test_grid_scoring.py`).
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import xgboost as xgb

# Compiled kernels are cached on disk, by default beside this file: read-only in the image (and
# with no writable fallback numba refuses to import the module), while a temp folder never is.
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "sands-numba"))
from numba import njit

# Node kinds: which side's inputs a split tests; PAD is a split padding a shallow leaf down.
USER, ARTWORK, CROSS, PAD = 0, 1, 2, 3
KINDS = {"user": USER, "artwork": ARTWORK, "cross": CROSS}
# Outcomes are bits of one uint64 per tree: depth 6 has 63 internal nodes.
MAX_DEPTH = 6
# Classes of artworks per user by their few-valued crosses (a style and a medium match make 4);
# a user with more is walked pair by pair, testing cross splits as they come.
MAX_CLASSES = 8


@dataclass(frozen=True)
class PaddedTrees:
    """Every tree as a full binary tree of `depth`: per internal node its input (a column of
    `grid_sides`' layout), threshold, missing direction and kind; per tree its leaves."""

    column: np.ndarray  # (trees, 2**depth - 1) int64
    threshold: np.ndarray  # float32
    default_left: np.ndarray  # bool
    kind: np.ndarray  # int8: USER, ARTWORK, CROSS or PAD
    cross: np.ndarray  # int64: index among the cross inputs (CROSS nodes), else 0
    leaf: np.ndarray  # (trees, 2**depth) float32
    depth: int
    base: np.float32


def padded_trees(
    booster: xgb.Booster, columns: np.ndarray | None, sides: list[str]
) -> PaddedTrees | None:
    """The booster's trees on `sides` (the side of each layout column; `columns`: the booster's
    inputs in that layout, None for all of it); None for what this cannot score exactly
    (categorical splits, several outputs, trees deeper than `MAX_DEPTH`)."""
    try:
        return _padded(json.loads(booster.save_raw("json"))["learner"], columns, sides)
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # a model format this does not know


def _padded(model: dict, columns: np.ndarray | None, sides: list[str]) -> PaddedTrees | None:
    params = model["learner_model_param"]
    booster_model = model["gradient_booster"]
    if booster_model.get("name") != "gbtree" or int(params.get("num_target", 1)) > 1:
        return None
    if int(params.get("num_class", 0)) > 1:
        return None
    trees = booster_model["model"]["trees"]
    if not trees or any(any(t["split_type"]) for t in trees):
        return None
    depth = max(_depth(t["left_children"], 0) for t in trees)
    if depth > MAX_DEPTH:
        return None
    depth = max(depth, 1)
    inner, count = 2**depth - 1, len(trees)
    where = np.arange(len(sides)) if columns is None else np.asarray(columns)
    cross_columns = [c for c, side in enumerate(sides) if side == "cross"]
    padded = PaddedTrees(
        column=np.zeros((count, inner), np.int64),
        threshold=np.zeros((count, inner), np.float32),
        default_left=np.ones((count, inner), np.bool_),
        kind=np.full((count, inner), PAD, np.int8),
        cross=np.zeros((count, inner), np.int64),
        leaf=np.zeros((count, inner + 1), np.float32),
        depth=depth,
        base=np.float32(float(params["base_score"].strip("[]"))),
    )
    for index, tree in enumerate(trees):
        _pad(padded, index, tree, where, sides, cross_columns)
    return padded


def _depth(left: list[int], node: int) -> int:
    if left[node] == -1:
        return 0
    # XGBoost keeps a node's right child next to its left one.
    return 1 + max(_depth(left, left[node]), _depth(left, left[node] + 1))


def _pad(
    padded: PaddedTrees,
    index: int,
    tree: dict,
    where: np.ndarray,
    sides: list[str],
    cross_columns: list[int],
) -> None:
    left, split = tree["left_children"], tree["split_indices"]
    # Leaf values are stored as the leaves' split conditions; float32 like XGBoost's own.
    conditions = np.asarray(tree["split_conditions"], np.float64).astype(np.float32)
    inner = 2**padded.depth - 1
    stack = [(0, 0, 0)]  # (XGBoost node, position in the full tree, depth)
    while stack:
        node, position, level = stack.pop()
        if left[node] == -1:
            # A shallow leaf: PAD splits always go left, so it sits at its leftmost descendant.
            while level < padded.depth:
                position, level = 2 * position + 1, level + 1
            padded.leaf[index, position - inner] = conditions[node]
            continue
        column = int(where[split[node]])
        kind = KINDS[sides[column]]
        padded.column[index, position] = column
        padded.threshold[index, position] = conditions[node]
        padded.default_left[index, position] = bool(tree["default_left"][node])
        padded.kind[index, position] = kind
        if kind == CROSS:
            padded.cross[index, position] = cross_columns.index(column)
        stack.append((left[node], 2 * position + 1, level + 1))
        stack.append((left[node] + 1, 2 * position + 2, level + 1))


@njit(nogil=True, cache=True)
def _goes_right(value: np.float32, threshold: np.float32, default_left: bool) -> bool:
    # XGBoost: missing follows the default direction, else left when value < threshold.
    if np.isnan(value):
        return not default_left
    return not value < threshold


@njit(nogil=True, cache=True)
def _side_bits(values, column, threshold, default_left, kind, want, out):  # pragma: no cover
    rows, trees, inner = values.shape[0], column.shape[0], column.shape[1]
    for r in range(rows):
        for t in range(trees):
            bits = np.uint64(0)
            for j in range(inner):
                value = values[r, column[t, j]]
                if kind[t, j] == want and _goes_right(value, threshold[t, j], default_left[t, j]):
                    bits |= np.uint64(1) << np.uint64(j)
            out[r, t] = bits


@njit(nogil=True, cache=True)
def _classes(cross_bits, grouped, u, classes, representative):  # pragma: no cover - jit
    """Number each artwork by its values of the `grouped` crosses for user `u` (bit patterns, so
    a NaN equals itself), first seen first; returns how many, or more than `representative`
    holds once past it."""
    count, limit = 0, representative.shape[0]
    for i in range(cross_bits.shape[2]):
        found = -1
        for c in range(count):
            same = True
            for x in range(cross_bits.shape[0]):
                if grouped[x] and cross_bits[x, u, i] != cross_bits[x, u, representative[c]]:
                    same = False
                    break
            if same:
                found = c
                break
        if found < 0:
            if count == limit:
                return limit + 1
            representative[count] = i
            found = count
            count += 1
        classes[i] = found
    return count


@njit(nogil=True, cache=True)
def _walk(
    user_bits, artwork_bits, crosses, u, cross, threshold, default_left, kind, leaf, depth, total
):  # pragma: no cover - jit
    """One user's margins by walking every pair, testing cross splits as they come."""
    artworks, trees, inner = artwork_bits.shape[1], kind.shape[0], kind.shape[1]
    for t in range(trees):
        mine = user_bits[u, t]
        for i in range(artworks):
            bits = mine | artwork_bits[t, i]
            node = 0
            for _ in range(depth):
                if kind[t, node] == CROSS:
                    value = crosses[cross[t, node], u, i]
                    right = _goes_right(value, threshold[t, node], default_left[t, node])
                    node = 2 * node + 1 + np.int64(right)
                else:
                    node = 2 * node + 1 + np.int64((bits >> np.uint64(node)) & np.uint64(1))
            total[i] += leaf[t, node - inner]


@njit(nogil=True, cache=True)
def _class_bits(
    user_bits,
    crosses,
    grouped,
    u,
    representative,
    count,
    cross,
    threshold,
    default_left,
    kind,
    combined,
):  # pragma: no cover - jit
    """Per tree and class of artworks, the outcomes of the user's splits and the grouped
    crosses' splits, decided on the class's first artwork."""
    trees, inner = kind.shape[0], kind.shape[1]
    for t in range(trees):
        for c in range(count):
            bits = np.uint64(user_bits[u, t])
            for j in range(inner):
                if kind[t, j] == CROSS and grouped[cross[t, j]]:
                    value = crosses[cross[t, j], u, representative[c]]
                    if _goes_right(value, threshold[t, j], default_left[t, j]):
                        bits |= np.uint64(1) << np.uint64(j)
            combined[t, c] = bits


@njit(nogil=True, cache=True)
def _pair_bits(row, threshold, default_left, node, paired):  # pragma: no cover - jit
    """One cross split's outcome for every artwork of a row, as bit `node` of `paired`: a loop
    of its own, which the compiler vectorises, not a branch inside the walk. The rule is
    `_goes_right`'s, written as two masks (called per element it ran 25 % slower)."""
    bit = np.uint64(1) << np.uint64(node)
    missing = np.uint64(not default_left) * bit
    for i in range(row.shape[0]):
        value = row[i]
        if np.isnan(value):
            paired[i] |= missing
        else:
            paired[i] |= np.uint64(not value < threshold) * bit


@njit(nogil=True, cache=True)
def _leaves(bits, nodes, depth, one):  # pragma: no cover - jit
    """Walk every artwork down one tree by its outcome bits, level by level: loops without
    branches over a row, which the compiler vectorises (`one` is 1 in the bits' type)."""
    nodes[:] = 0
    two = one + one
    for _ in range(depth):
        for i in range(bits.shape[0]):
            nodes[i] = two * nodes[i] + one + ((bits[i] >> nodes[i]) & one)


@njit(nogil=True, cache=True)
def _grid(
    user_bits,
    artwork_bits,
    crosses,
    cross_bits,
    grouped,
    pair_node,
    pair_count,
    first,
    last,
    cross,
    threshold,
    default_left,
    kind,
    leaf,
    depth,
    base,
    out,
    combined,
    bits,
    nodes,
    one,
):  # pragma: no cover - jit
    artworks, trees, inner = artwork_bits.shape[1], kind.shape[0], kind.shape[1]
    classes = np.empty(artworks, np.int8)
    representative = np.empty(MAX_CLASSES, np.int64)
    for u in range(first, last):
        total = out[u]
        total[:] = base
        count = _classes(cross_bits, grouped, u, classes, representative)
        if count > MAX_CLASSES:
            _walk(
                user_bits,
                artwork_bits,
                crosses,
                u,
                cross,
                threshold,
                default_left,
                kind,
                leaf,
                depth,
                total,
            )
            continue
        _class_bits(
            user_bits,
            crosses,
            grouped,
            u,
            representative,
            count,
            cross,
            threshold,
            default_left,
            kind,
            combined,
        )
        # Every split's outcome is a bit before the walk, so it never branches on a node's kind.
        for t in range(trees):
            for i in range(artworks):
                bits[i] = combined[t, classes[i]] | artwork_bits[t, i]
            for p in range(pair_count[t]):
                j = pair_node[t, p]
                _pair_bits(crosses[cross[t, j], u], threshold[t, j], default_left[t, j], j, bits)
            _leaves(bits, nodes, depth, one)
            for i in range(artworks):
                total[i] += leaf[t, nodes[i] - inner]


def few_valued(crosses: np.ndarray, sample: int = 16) -> np.ndarray:
    """Which cross inputs take at most two values per user on `sample` users spread over the
    batch (a match flag, or a share where the category matches): the kernel decides their splits
    once per class of artworks. A guess that only sets speed: a user whose values do not fit the
    classes is walked pair by pair, to the same margins."""
    bits = crosses.view(np.uint32)
    users = bits[:, :: max(1, bits.shape[1] // sample)]
    return np.array([all(np.unique(row).size <= 2 for row in cross) for cross in users])


def _outcome_type(trees: PaddedTrees) -> type:
    # The narrowest integer holding a tree's outcomes: the kernel streams them per artwork.
    return next(
        t for t in (np.uint16, np.uint32, np.uint64) if np.iinfo(t).bits >= 2**trees.depth - 1
    )


def artwork_outcomes(trees: PaddedTrees, artworks: np.ndarray, threads: int = 2) -> np.ndarray:
    """The artwork splits' outcomes, (trees, artworks) bit masks: `grid_margins` takes them so
    batches of users ranked against one catalogue compute them once."""
    # Trees outer: the kernel reads one tree's outcomes for every artwork in a row. Written in
    # place through the transposed view, parts at once (a copy to transpose took 1.4 s of the
    # 3.2 s at 235,061 artworks).
    bits = np.zeros((len(trees.kind), artworks.shape[0]), _outcome_type(trees))
    args = (trees.column, trees.threshold, trees.default_left, trees.kind, ARTWORK)
    bounds = np.linspace(0, artworks.shape[0], max(1, threads) + 1).astype(int)

    def part(first: int, last: int) -> None:
        _side_bits(artworks[first:last], *args, bits[:, first:last].T)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(part, bounds[:-1], bounds[1:]))
    return bits


@njit(nogil=True, cache=True)
def _margin_bounds(outcomes, kind, leaf, depth, out):  # pragma: no cover - jit
    trees, inner = kind.shape[0], kind.shape[1]
    stack = np.empty(2 * depth + 2, np.int64)
    for i in range(outcomes.shape[1]):
        total = 0.0
        for t in range(trees):
            bits, best, top = np.uint64(outcomes[t, i]), -np.inf, 1
            stack[0] = 0
            while top:  # every path the artwork's own splits leave open
                top -= 1
                node = stack[top]
                if node >= inner:
                    best = max(best, np.float64(leaf[t, node - inner]))
                elif kind[t, node] == ARTWORK:
                    stack[top] = 2 * node + 1 + np.int64((bits >> np.uint64(node)) & np.uint64(1))
                    top += 1
                elif kind[t, node] == PAD:
                    stack[top] = 2 * node + 1
                    top += 1
                else:
                    stack[top], stack[top + 1] = 2 * node + 1, 2 * node + 2
                    top += 2
            total += best
        out[i] = total


def margin_bounds(trees: PaddedTrees, outcomes: np.ndarray) -> np.ndarray:
    """Per artwork, a margin no user reaches: each tree's best leaf among those the artwork's
    splits (`artwork_outcomes`) leave open, summed, plus the most the float32 sum can round up."""
    out = np.empty(outcomes.shape[1], np.float64)
    _margin_bounds(outcomes, trees.kind, trees.leaf, trees.depth, out)
    # Each of the sum's roundings is at most 2**-24 of a partial sum, itself at most `largest`.
    largest = abs(float(trees.base)) + float(np.abs(trees.leaf).max(axis=1).sum())
    return out + float(trees.base) + (len(trees.kind) + 1) * 2.0**-23 * largest


def grid_margins(
    trees: PaddedTrees,
    users: np.ndarray,
    artworks: np.ndarray,
    crosses: np.ndarray,
    threads: int = 2,
    outcomes: np.ndarray | None = None,
) -> np.ndarray:
    """Margins of shape (users, artworks) from each side's inputs (rows of `grid_sides`' layout,
    float32) and the cross inputs (crosses, users, artworks), users split over `threads`;
    `outcomes`: `artwork_outcomes` of these artworks, if already computed."""
    args = (trees.column, trees.threshold, trees.default_left, trees.kind)
    user_bits = np.zeros((users.shape[0], len(trees.kind)), _outcome_type(trees))
    _side_bits(users, *args, USER, user_bits)
    artwork_bits = artwork_outcomes(trees, artworks) if outcomes is None else outcomes
    out = np.empty((users.shape[0], artworks.shape[0]), np.float32)
    crosses = crosses if crosses.size else np.zeros((1, *out.shape), np.float32)
    grouped = few_valued(crosses)
    per_pair = (trees.kind == CROSS) & ~grouped[trees.cross]
    pair_count = per_pair.sum(axis=1)
    pair_node = np.zeros((len(trees.kind), max(1, int(pair_count.max(initial=0)))), np.int64)
    for t, nodes in enumerate(per_pair):
        pair_node[t, : pair_count[t]] = np.flatnonzero(nodes)
    bounds = np.linspace(0, users.shape[0], max(1, threads) + 1).astype(int)

    # A pair's bits and node indices in the narrowest type the vectorised walk can use.
    walk = np.uint32 if 2**trees.depth - 1 <= 32 else np.uint64

    def part(first: int, last: int) -> None:
        _grid(
            user_bits,
            artwork_bits,
            crosses,
            crosses.view(np.uint32),
            grouped,
            pair_node,
            pair_count,
            first,
            last,
            trees.cross,
            trees.threshold,
            trees.default_left,
            trees.kind,
            trees.leaf,
            trees.depth,
            trees.base,
            out,
            np.empty((len(trees.kind), MAX_CLASSES), walk),  # scratch, per thread
            np.empty(artworks.shape[0], walk),
            np.empty(artworks.shape[0], walk),
            walk(1),  # 1 in the walk's type, so its arithmetic stays in that type
        )

    # The kernel releases the GIL: plain threads, which any caller may also run concurrently.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(part, bounds[:-1], bounds[1:]))
    return out
