"""Artwork embeddings from content and co-interactions, and nearest neighbours for candidates.

Content: style, medium, colours and tags as one-hot/multi-hot blocks plus TF-IDF of the
description, reduced together by a truncated SVD (latent semantic analysis) when wider than
`content_dims`: a real catalogue's descriptions hold tens of thousands of words, and one dense
column per word made 10k artworks cost 8 GB and two minutes. Behaviour: a truncated SVD of the
artwork x user engagement matrix, so artworks the same people engage with end up close. Each
block is L2-normalised and weighted, so no block wins by size alone; neighbours are by cosine
similarity.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sands.engines.cores import usable_cores

if TYPE_CHECKING:
    from scipy import sparse


@dataclass(frozen=True)
class SimilaritySpec:
    """Block weights, behaviour dimensions and how many neighbours to keep."""

    content_weight: float = 0.5
    behaviour_weight: float = 0.5
    behaviour_dims: int = 32
    # The simulator's catalogues need 110-120 content columns, so they are not reduced.
    content_dims: int = 128
    neighbours: int = 20
    seed: int = 0
    # Above this many artworks, neighbours come from a clustered search (`clustered_neighbours`):
    # the exact one grows with the square of the catalogue (54 s at 108k artworks, 2 cores), the
    # clustered one misses some co-engagement neighbours (3 % fewer next-day hits at 108k).
    exact_up_to: int = 100_000


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    # Rows that are zero up to solver noise (an artwork nobody engaged with) stay zero, rather
    # than that noise being blown up to unit length.
    tiny = norms < 1e-9
    return np.where(tiny, 0.0, matrix / np.where(tiny, 1.0, norms))


def one_hot_columns(column: pa.ChunkedArray) -> sparse.csr_matrix:
    """A 0/1 column per distinct value (sorted) of a string or list-of-strings column; a value
    listed twice in a row is still one. Arrow kernels: a Python loop took 2.6 s at 235k rows."""
    from scipy import sparse  # imported on use, as the other heavy modules here

    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):  # as some writers store a category
        array = array.cast(array.type.value_type)
    n = len(array)
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        rows, values = pc.list_parent_indices(array), pc.list_flatten(array)
    else:
        rows, values = pa.array(np.arange(n)), array
    valid = pc.is_valid(values)
    rows, values = rows.filter(valid), values.filter(valid)
    vocabulary = pc.unique(values)
    vocabulary = vocabulary.take(pc.array_sort_indices(vocabulary))
    width = len(vocabulary)
    cells = np.unique(
        rows.to_numpy().astype(np.int64) * width + pc.index_in(values, vocabulary).to_numpy()
    )
    return sparse.csr_matrix(
        (np.ones(len(cells)), (cells // max(width, 1), cells % max(width, 1))), shape=(n, width)
    )


def content_vectors(artworks: pa.Table, dims: int = 128, seed: int = 0) -> np.ndarray:
    """Concatenated, separately normalised content blocks, one row per artwork, at most `dims`
    columns (wider blocks are reduced together by a truncated SVD)."""
    blocks = [one_hot_columns(artworks[name]) for name in ("style", "medium", "colours", "tags")]
    # Imported on use: heavy, and the code location is loaded by every step process.
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [t or "" for t in artworks["description"].to_pylist()]
    if any(t.strip() for t in texts):
        tfidf = TfidfVectorizer(min_df=1, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
        blocks.append(tfidf.fit_transform(texts))
    scale, kept = np.sqrt(len(blocks)), [b for b in blocks if b.shape[1]]
    if not kept:  # no style, medium, colour, tag or word anywhere: behaviour alone
        return np.zeros((artworks.num_rows, 0))
    components = min(dims, min(artworks.num_rows, sum(b.shape[1] for b in kept)) - 1)
    if sum(b.shape[1] for b in kept) <= dims or components < 1:
        return np.hstack([_normalised(b.toarray()) for b in kept]) / scale
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    stacked = sparse.hstack([normalize(b) for b in kept], format="csr") / scale
    # Randomized, not arpack: half the time for 128 of 25k columns, and seeded, so repeatable.
    svd = TruncatedSVD(n_components=components, random_state=seed)
    first, inverse, counts = _distinct_sparse_rows(stacked)
    if len(first) > DEDUPLICATE_BELOW * stacked.shape[0]:
        return svd.fit_transform(stacked)
    # A catalogue whose content is mostly its category (Retailrocket-sized: 1,669 distinct rows
    # of 235,061) is fitted on its distinct rows, each weighted by the square root of its count:
    # the same Gram matrix, so the same factors (up to the randomized solver's own error), in a
    # tenth of a second instead of ten seconds.
    distinct = stacked[first]
    svd.fit(sparse.diags(np.sqrt(counts)) @ distinct)
    reduced = np.zeros((len(first), components))  # fewer distinct rows than columns: zeros pad
    reduced[:, : len(svd.components_)] = distinct @ svd.components_.T
    return reduced[inverse]


def _distinct_sparse_rows(matrix: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sparse matrix's distinct rows: the first index of each, each row's distinct row, and
    how many rows each stands for."""
    # A canonical copy (sorted indices, no repeats: equal rows are equal bytes); sorting the
    # caller's would change the order of its sums, and its SVD in the last bits.
    matrix = matrix.copy()
    matrix.sum_duplicates()
    pointers, columns, values = matrix.indptr, matrix.indices, matrix.data
    seen: dict[bytes, int] = {}
    inverse = np.empty(matrix.shape[0], np.int64)
    for row in range(matrix.shape[0]):
        start, end = pointers[row], pointers[row + 1]
        # Fixed widths (columns then values), so the key splits one way only.
        key = columns[start:end].tobytes() + values[start:end].tobytes()
        inverse[row] = seen.setdefault(key, len(seen))
    first = np.full(len(seen), matrix.shape[0], np.int64)
    np.minimum.at(first, inverse, np.arange(matrix.shape[0]))
    return first, inverse, np.bincount(inverse, minlength=len(seen))


def behaviour_vectors(
    artwork_ids: list[str], engagement: pa.Table, dims: int, seed: int
) -> np.ndarray:
    """Artwork factors of the artwork x user matrix of summed engagement `weight`."""
    # Imported on use: heavy, and the code location is loaded by every step process.
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD

    if engagement.num_rows == 0:
        return np.zeros((len(artwork_ids), 0))
    # Arrow lookups, not a Python loop: at 1M events a day the 28 days hold 4.5M pairs.
    users = pc.unique(engagement["user_id"])
    users = users.take(pc.array_sort_indices(users))
    row = pc.index_in(engagement["artwork_id"], value_set=pa.array(artwork_ids, pa.string()))
    known = pc.is_valid(row)
    if not pc.any(known).as_py():
        return np.zeros((len(artwork_ids), 0))
    r = row.filter(known).to_numpy()
    c = pc.index_in(engagement["user_id"].filter(known), value_set=users).to_numpy()
    w = engagement["weight"].filter(known).cast(pa.float64()).to_numpy()
    matrix = sparse.csr_matrix((np.log1p(w), (r, c)), shape=(len(artwork_ids), len(users)))
    components = min(dims, min(matrix.shape) - 1)
    if components < 1:
        return np.zeros((len(artwork_ids), 0))
    svd = TruncatedSVD(n_components=components, random_state=seed, algorithm="arpack")
    return _normalised(svd.fit_transform(matrix))


def embeddings(artworks: pa.Table, engagement: pa.Table, spec: SimilaritySpec) -> np.ndarray:
    """Unit-length artwork embeddings (float32), rows in `artworks` order."""
    content = spec.content_weight * _normalised(
        content_vectors(artworks, spec.content_dims, spec.seed)
    )
    behaviour = behaviour_vectors(
        artworks["artwork_id"].to_pylist(), engagement, spec.behaviour_dims, spec.seed
    )
    combined = np.hstack([content, spec.behaviour_weight * behaviour])
    return _normalised(combined).astype(np.float32)


def _empty_lists(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour indices and similarities to fill, k per row."""
    return np.zeros((n, max(k, 0)), dtype=np.int64), np.zeros((n, max(k, 0)), dtype=np.float32)


def nearest_neighbours(
    vectors: np.ndarray, k: int, block: int = 1024, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of each row's k nearest other rows, best first, ties to
    the lower index (also at the k-th place). Blocks of rows run on `threads` threads (default:
    the usable cores)."""
    n, k = len(vectors), min(k, len(vectors) - 1)
    indices, scores = _empty_lists(n, k)
    if k <= 0:
        return indices, scores

    def rows_from(start: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (start, *_block_neighbours(vectors, start, start + block, k))

    # numpy's matrix product, comparisons and partitions release the GIL: plain threads.
    with ThreadPoolExecutor(max_workers=max(1, threads or usable_cores())) as pool:
        for start, row, place, column, score in pool.map(rows_from, range(0, n, block)):
            indices[start + row, place] = column
            scores[start + row, place] = score
    return indices, scores


# Every NEIGHBOUR_SAMPLE-th column gives each row a floor under its k-th best similarity (the
# k-th best of a sample is never above the k-th best of all): only the few columns above it are
# sorted, not the whole catalogue per row, which took most of the time at 50k artworks.
NEIGHBOUR_SAMPLE = 8


def _block_neighbours(
    vectors: np.ndarray, start: int, stop: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For rows start..stop: (row in block, place, neighbour, similarity) of their k best."""
    n = len(vectors)
    sims = vectors[start:stop] @ vectors.T
    rows = np.arange(len(sims))
    sims[rows, start + rows] = -np.inf  # never your own neighbour
    sample = sims[:, :: NEIGHBOUR_SAMPLE if n // NEIGHBOUR_SAMPLE > k else 1]
    floor = np.partition(sample, sample.shape[1] - k, axis=1)[:, sample.shape[1] - k]
    row, column = np.nonzero(sims > floor[:, None])
    # Columns at the floor come after every column above it, by index: only the first few a row
    # still needs are kept. A catalogue of many alike artworks (no content, no engagement) puts
    # thousands at the floor of every row, which sorting whole took minutes at 50k artworks.
    needed = k - np.bincount(row, minlength=len(rows))
    short = np.nonzero(needed > 0)[0]  # most rows have k above the sample's floor already
    tied = (sims if len(short) == len(rows) else sims[short]) == floor[short, None]
    tied &= np.cumsum(tied, axis=1, dtype=np.int32) <= needed[short, None]
    tied_row, tied_column = np.nonzero(tied)
    row = np.concatenate([row, short[tied_row]])
    column = np.concatenate([column, tied_column])
    score = sims[row, column]
    # Per row: best first, ties by index; then the first k of each row.
    order = np.lexsort((column, -score, row))
    row, column, score = row[order], column[order], score[order]
    place = np.arange(len(row)) - np.searchsorted(row, rows)[row]
    keep = place < k
    return row[keep], place[keep], column[keep], score[keep]


@dataclass(frozen=True)
class ClusterSearch:
    """The clustered search's shape: `lists_per_root` x sqrt(n) clusters by spherical k-means on
    a sample, each row compared with the rows of its `probes` nearest clusters."""

    lists_per_root: float = 3.0
    # 8 probes were 5x faster than exact at 108k artworks but missed 6 % of the next-day positives
    # the exact neighbours held; 16: 2.7x and 3 %; 32: 1.4x and 1.4 % (docs/benchmarks.md).
    probes: int = 16
    iterations: int = 8
    sample_per_list: int = 64
    max_sample: int = 65_536  # k-means on more rows costs memory (rows x clusters) for little
    block: int = 1_024  # rows compared at once: a cluster of many alike artworks stays bounded


def _kmeans(vectors: np.ndarray, lists: int, search: ClusterSearch, seed: int) -> np.ndarray:
    """Unit-length centroids of a sample of the rows, by spherical k-means."""
    rng = np.random.default_rng(seed)
    size = min(len(vectors), search.sample_per_list * lists, max(search.max_sample, lists))
    sample = vectors[rng.choice(len(vectors), size, replace=False)]
    centroids = sample[rng.choice(len(sample), lists, replace=False)].copy()
    for _ in range(search.iterations):
        sums = np.zeros_like(centroids)
        np.add.at(sums, np.argmax(sample @ centroids.T, axis=1), sample)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        # A cluster left empty keeps its centroid.
        centroids = np.where(norms > 0, sums / np.where(norms > 0, norms, 1.0), centroids)
    return centroids


def _probed(vectors: np.ndarray, centroids: np.ndarray, probes: int) -> np.ndarray:
    """Per row, its `probes` nearest centroids, nearest first."""
    out = []
    for start in range(0, len(vectors), 8192):
        sims = vectors[start : start + 8192] @ centroids.T
        near = np.argpartition(-sims, probes - 1, axis=1)[:, :probes]
        order = np.lexsort((near, -np.take_along_axis(sims, near, axis=1)), axis=1)
        out.append(np.take_along_axis(near, order, axis=1))
    return np.concatenate(out)


def clustered_neighbours(
    vectors: np.ndarray,
    k: int,
    search: ClusterSearch | None = None,
    seed: int = 0,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """As `nearest_neighbours`, from the rows of each row's nearest clusters only (an inverted
    file): on 108k simulated artworks 2.7x faster, 98 % of the exact neighbours. Where the
    clusters would not save a third of the work, the exact search."""
    search = search or ClusterSearch()
    n, k = len(vectors), min(k, len(vectors) - 1)
    indices, scores = _empty_lists(n, k)
    if k <= 0:
        return indices, scores
    lists = max(1, min(n, int(search.lists_per_root * np.sqrt(n))))
    probed = _probed(vectors, _kmeans(vectors, lists, search, seed), min(search.probes, lists))
    order = np.argsort(probed[:, 0], kind="stable")
    bounds = np.searchsorted(probed[order, 0], np.arange(lists + 1))
    members = [order[bounds[c] : bounds[c + 1]] for c in range(lists)]
    # Per cluster, the union of what its rows probe: each row sees its own nearest clusters.
    pools = [
        np.sort(np.concatenate([members[p] for p in np.unique(probed[rows])]))
        if len(rows)
        else rows
        for rows in members
    ]
    # Rows without kinds to cluster (random ones) probe most of the catalogue: exact costs as
    # little then, and finds every neighbour.
    if sum(len(r) * len(p) for r, p in zip(members, pools, strict=True)) > n * n / 3:
        return nearest_neighbours(vectors, k, threads=threads)

    def cluster(c: int) -> None:
        pool = pools[c] if len(pools[c]) > k else np.arange(n)
        for start in range(0, len(members[c]), search.block):
            rows = members[c][start : start + search.block]
            sims = vectors[rows] @ vectors[pool].T
            sims[pool[None, :] == rows[:, None]] = -np.inf  # never your own neighbour
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            top, ids = np.take_along_axis(sims, part, axis=1), pool[part]
            best = np.lexsort((ids, -top), axis=1)  # best first, ties to the lower index
            indices[rows] = np.take_along_axis(ids, best, axis=1)
            scores[rows] = np.take_along_axis(top, best, axis=1)

    with ThreadPoolExecutor(max_workers=max(1, threads or usable_cores())) as workers:
        list(workers.map(cluster, range(lists)))
    return indices, scores


def neighbours_of(vectors: np.ndarray, spec: SimilaritySpec) -> tuple[np.ndarray, np.ndarray]:
    """Exact neighbours up to `spec.exact_up_to` rows searched, the clustered search past it;
    a catalogue of many repeated rows searches its distinct rows (`_neighbours_of_distinct`)."""
    if vectors.shape[1] == 0:  # no content and no engagement: every row alike, nothing to dedupe
        return _search(vectors, spec.neighbours, spec)
    distinct = DistinctRows.of(vectors)
    if len(distinct.vectors) <= DEDUPLICATE_BELOW * len(vectors):
        return _neighbours_of_distinct(distinct, spec.neighbours, spec)
    return _search(vectors, spec.neighbours, spec)


def _search(vectors: np.ndarray, k: int, spec: SimilaritySpec) -> tuple[np.ndarray, np.ndarray]:
    if len(vectors) > spec.exact_up_to:
        return clustered_neighbours(vectors, k, seed=spec.seed)
    return nearest_neighbours(vectors, k)


# Search distinct rows only when they are at most this share of the catalogue: a real catalogue
# lists many items with the same category and no engagement yet (Retailrocket-sized: 70,091
# distinct of 235,061), which are one row to the search; a simulated one repeats almost none.
DEDUPLICATE_BELOW = 0.8


@dataclass(frozen=True)
class DistinctRows:
    """A matrix's distinct rows, ordered by where each first occurs, and where its rows went."""

    vectors: np.ndarray  # (m, d): distinct rows, by first occurrence
    inverse: np.ndarray  # (n,): each row's distinct row

    @classmethod
    def of(cls, vectors: np.ndarray) -> DistinctRows:
        whole = np.dtype((np.void, vectors.dtype.itemsize * vectors.shape[1]))
        rows = np.ascontiguousarray(vectors).view(whole).ravel()
        _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        by_first = np.argsort(first, kind="stable")
        rank = np.empty_like(by_first)
        rank[by_first] = np.arange(len(by_first))
        return cls(vectors[first[by_first]], rank[inverse.ravel()])

    def lowest_rows(self, depth: int) -> np.ndarray:
        """Each distinct row's `depth` lowest row indices, ascending, padded with n."""
        n = len(self.inverse)
        order = np.argsort(self.inverse, kind="stable")  # rows by distinct row, then by index
        owner = self.inverse[order]
        place = np.arange(n) - np.searchsorted(owner, np.arange(len(self.vectors)))[owner]
        out = np.full((len(self.vectors), depth), n, np.int64)
        keep = place < depth
        out[owner[keep], place[keep]] = order[keep]
        return out


def _neighbours_of_distinct(
    distinct: DistinctRows, k: int, spec: SimilaritySpec, block: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k neighbours as the search over all rows gives them (up to float32 rounding of
    the similarities), from a search over the distinct rows. A row's k best others are among its
    distinct row's k + 1 best rows (itself included); those are rows of the distinct row itself
    or of its k best other distinct rows (ties to the first to occur), each through its k + 1
    lowest row indices."""
    n, m = len(distinct.inverse), len(distinct.vectors)
    k = min(k, n - 1)
    if k <= 0:
        return _empty_lists(n, k)
    others, other_scores = _search(distinct.vectors, min(k, m - 1), spec)
    own = np.einsum("ij,ij->i", distinct.vectors, distinct.vectors).astype(np.float32)
    near = np.hstack([np.arange(m)[:, None], others])
    near_scores = np.hstack([own[:, None], other_scores])
    lowest = distinct.lowest_rows(k + 1)
    top = np.empty((m, k + 1), np.int64)
    top_scores = np.empty((m, k + 1), np.float32)
    for start in range(0, m, block):  # bounded memory: candidates are (k + 1)^2 a row
        rows = lowest[near[start : start + block]].reshape(-1, near.shape[1] * (k + 1))
        scores = np.repeat(near_scores[start : start + block], k + 1, axis=1)
        scores[rows == n] = -np.inf  # padding: a distinct row with fewer rows
        best = np.lexsort((rows, -scores), axis=1)[:, : k + 1]  # best first, ties to lower rows
        top[start : start + block] = np.take_along_axis(rows, best, 1)
        top_scores[start : start + block] = np.take_along_axis(scores, best, 1)
    # A row's list is its distinct row's without the row itself.
    mine, mine_scores = top[distinct.inverse], top_scores[distinct.inverse]
    keep = np.argsort(mine == np.arange(n)[:, None], axis=1, kind="stable")[:, :k]
    return np.take_along_axis(mine, keep, 1), np.take_along_axis(mine_scores, keep, 1)


def similarity_table(artworks: pa.Table, engagement: pa.Table, spec: SimilaritySpec) -> pa.Table:
    """artwork_id, embedding, and the ids and scores of its nearest neighbours."""
    artworks = artworks.sort_by("artwork_id")
    vectors = embeddings(artworks, engagement, spec)
    index, scores = neighbours_of(vectors, spec)
    ids = artworks["artwork_id"].combine_chunks()
    return pa.table(
        {
            "artwork_id": ids,
            "embedding": _rows_as_lists(vectors.astype(np.float32, copy=False)),
            "neighbour_ids": _rows_as_lists(index, ids.cast(pa.string())),
            "neighbour_scores": _rows_as_lists(scores.astype(np.float32, copy=False)),
        }
    )


def _rows_as_lists(matrix: np.ndarray, values: pa.Array | None = None) -> pa.ListArray:
    """Each row of a matrix as one list (of `values` at its indices, if given), built in Arrow:
    a Python list per row took 1.8 s for 235k artworks' neighbour ids."""
    n, width = matrix.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int64) * width, pa.int32())  # raises past 2^31
    flat = matrix.ravel()
    return pa.ListArray.from_arrays(offsets, values.take(flat) if values is not None else flat)


def same_style_share(table: pa.Table, catalogue: pa.Table) -> float:
    """Mean over the table's artworks of the share of their neighbours in their own style (0 for
    an artwork without neighbours; a missing style matches a missing one)."""
    if table.num_rows == 0:
        return 0.0
    ids = catalogue["artwork_id"].cast(pa.string())  # delta-rs may read ids as string views
    style = pc.dictionary_encode(catalogue["style"].combine_chunks(), null_encoding="encode")
    code = style.indices.to_numpy(zero_copy_only=False)
    neighbours = table["neighbour_ids"].combine_chunks()
    row = pc.list_parent_indices(neighbours).to_numpy(zero_copy_only=False)
    flat = neighbours.flatten().cast(pa.string())
    theirs = code[pc.index_in(flat, value_set=ids).to_numpy(zero_copy_only=False)]
    mine = table["artwork_id"].cast(pa.string())
    own = code[pc.index_in(mine, value_set=ids).to_numpy(zero_copy_only=False)]
    same = np.bincount(row, weights=theirs == own[row], minlength=table.num_rows)
    lengths = pc.list_value_length(neighbours).to_numpy(zero_copy_only=False)
    return float(np.mean(same / np.maximum(lengths, 1)))


def similarity_inputs(
    interactions_uri: str,
    artworks_uri: str,
    engagement_days: int,
    storage_options: dict[str, str] | None = None,
) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """The catalogue, the summed engagement of its last `engagement_days` landing days, and the
    bronze versions both were read at."""
    from sands.features.training_store import label_events
    from sands.lake import delta
    from sands.models.popularity import engagement

    events, _, versions = label_events(
        interactions_uri, artworks_uri, engagement_days, storage_options
    )
    table = delta.open_table(artworks_uri, storage_options)
    table.load_as_version(versions["artworks"])
    return table.to_pyarrow_dataset().to_table(), engagement(events), versions
