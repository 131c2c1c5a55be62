"""Artwork similarity: content and co-engagement make neighbours, never oneself."""

import numpy as np
import pyarrow as pa

from sands.models.similarity import (
    ClusterSearch,
    DistinctRows,
    SimilaritySpec,
    behaviour_vectors,
    clustered_neighbours,
    content_vectors,
    nearest_neighbours,
    neighbours_of,
    one_hot_columns,
    same_style_share,
    similarity_table,
)


def _artworks(rows):
    return pa.table(
        {
            "artwork_id": [r[0] for r in rows],
            "style": [r[1] for r in rows],
            "medium": [r[2] for r in rows],
            "colours": pa.array([r[3] for r in rows], pa.list_(pa.string())),
            "tags": pa.array([r[4] for r in rows], pa.list_(pa.string())),
            "description": [r[5] for r in rows],
        }
    )


ARTWORKS = _artworks(
    [
        ("a1", "cubism", "oil", ["red"], ["portrait"], "angular portrait in red"),
        ("a2", "cubism", "oil", ["red"], ["portrait"], "angular portrait in red"),
        ("a3", "pop-art", "digital", ["yellow"], ["city"], "bright city poster"),
        ("a4", "pop-art", "digital", ["yellow"], ["city"], "bright city poster"),
        ("a5", "minimalism", "ink", ["black"], ["calm"], "quiet lines"),
    ]
)
NO_ENGAGEMENT = pa.table(
    {
        "user_id": pa.array([], pa.string()),
        "artwork_id": pa.array([], pa.string()),
        "weight": pa.array([], pa.float64()),
    }
)


def test_identical_content_makes_nearest_neighbours():
    table = similarity_table(ARTWORKS, NO_ENGAGEMENT, SimilaritySpec(neighbours=2))
    neighbours = dict(
        zip(table["artwork_id"].to_pylist(), table["neighbour_ids"].to_pylist(), strict=True)
    )
    assert neighbours["a1"][0] == "a2" and neighbours["a3"][0] == "a4"
    assert all(a not in n for a, n in neighbours.items())
    embedding = np.array(table["embedding"].to_pylist()[0])
    assert np.linalg.norm(embedding) == np.float32(1.0) or abs(np.linalg.norm(embedding) - 1) < 1e-5


def test_co_engagement_pulls_artworks_of_different_content_together():
    # The same ten users engage with a1 and a5 only.
    users = [f"u{i}" for i in range(10)]
    engaged = pa.table(
        {
            "user_id": users * 2 + ["v1", "v2"],
            "artwork_id": ["a1"] * 10 + ["a5"] * 10 + ["a3", "a4"],
            "weight": [4.0] * 22,
        }
    )
    table = similarity_table(
        ARTWORKS, engaged, SimilaritySpec(neighbours=4, content_weight=0.3, behaviour_weight=1.0)
    )
    row = table["artwork_id"].to_pylist().index("a5")
    scores = dict(
        zip(
            table["neighbour_ids"].to_pylist()[row],
            table["neighbour_scores"].to_pylist()[row],
            strict=True,
        )
    )
    # a5 shares no content with anything; a2 looks exactly like a1 but nobody engaged with it.
    assert table["neighbour_ids"].to_pylist()[row][0] == "a1"
    assert scores["a1"] > scores["a2"] + 0.3


def test_nearest_neighbours_are_best_first_with_ties_broken_by_index():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    index, scores = nearest_neighbours(vectors, k=2, block=2)
    assert index[0].tolist() == [1, 3] and scores[0].tolist() == [1.0, 1.0]
    assert index[2].tolist() == [0, 1] and scores[2].tolist() == [0.0, 0.0]


def test_ties_at_the_kth_place_go_to_the_lower_indices_in_any_block_size():
    # Twenty identical rows: every row's two neighbours are the two lowest other indices.
    vectors = np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (20, 1))
    for block in (3, 1024):
        index, scores = nearest_neighbours(vectors, k=2, block=block)
        assert index[0].tolist() == [1, 2] and index[19].tolist() == [0, 1]
        assert index[5].tolist() == [0, 1] and np.allclose(scores, 1.0)


def assert_a_full_sort(vectors: np.ndarray, index: np.ndarray, scores: np.ndarray) -> None:
    """Each row's neighbours are what sorting every other row would give: best first, ties to
    the lower index."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    k = index.shape[1]
    for row in range(len(vectors)):
        expected = sorted(range(len(vectors)), key=lambda j: (-sims[row, j], j))[:k]
        assert index[row].tolist() == expected
        assert scores[row].tolist() == sims[row, expected].tolist()


def test_neighbours_equal_a_full_sort_of_every_row():
    # Small integers: every dot product is exact in any summation order, and many are equal,
    # so there are ties at every place, the k-th included.
    vectors = np.random.default_rng(3).integers(-2, 3, size=(340, 6)).astype(np.float32)
    index, scores = nearest_neighbours(vectors, k=7, block=64)
    assert_a_full_sort(vectors, index, scores)


def test_a_catalogue_of_many_alike_rows_gets_the_same_neighbours_as_a_full_sort():
    # Three kinds repeated (artworks without content or engagement) and some other rows: most
    # rows have hundreds of ties at their k-th place, a few have k above it, in one block.
    rng = np.random.default_rng(5)
    kinds = rng.integers(-2, 3, size=(3, 6))
    alike = kinds[rng.integers(0, 3, size=300)]
    vectors = np.vstack([alike, np.zeros((30, 6)), rng.integers(-2, 3, size=(40, 6))])
    vectors = vectors.astype(np.float32)[rng.permutation(370)]
    index, scores = nearest_neighbours(vectors, k=7, block=128)
    assert_a_full_sort(vectors, index, scores)


def test_behaviour_factors_ignore_engagement_with_artworks_outside_the_catalogue():
    ids = ARTWORKS["artwork_id"].to_pylist()
    users = [f"u{i}" for i in range(6)]
    inside = pa.table(
        {
            "user_id": users * 2,
            "artwork_id": ["a1"] * 6 + ["a5"] * 6,
            "weight": [float(i + 1) for i in range(12)],
        }
    )
    # Rows on an artwork the catalogue does not list, one of them by a user seen only there.
    outside = pa.table(
        {"user_id": ["u0", "w9"], "artwork_id": ["gone", "gone"], "weight": [50.0, 50.0]}
    )
    plain = behaviour_vectors(ids, inside, dims=3, seed=0)
    mixed = behaviour_vectors(ids, pa.concat_tables([outside, inside]), dims=3, seed=0)
    assert plain.shape == (5, 3)
    # Factors are defined up to sign: compare the artworks' cosine similarities.
    assert np.allclose(plain @ plain.T, mixed @ mixed.T, atol=1e-9)
    assert (plain @ plain.T)[0, 4] > 0.9  # a1 and a5 share all their users
    assert behaviour_vectors(ids, outside, dims=3, seed=0).shape == (5, 0)


def test_a_wide_vocabulary_is_reduced_and_shared_rare_words_still_make_neighbours():
    # 60 artworks in pairs, each pair sharing a word no other artwork uses and a tag of its
    # own: 63 content columns.
    rows = [
        (f"a{i:02d}", "cubism", "oil", ["red"], [f"tag{i // 2}"], f"common {WORDS[i // 2]}")
        for i in range(60)
    ]
    table = similarity_table(_artworks(rows), NO_ENGAGEMENT, SimilaritySpec(content_dims=40))
    assert len(table["embedding"][0].as_py()) == 40
    firsts = [ids[0] for ids in table["neighbour_ids"].to_pylist()]
    assert firsts == [f"a{i ^ 1:02d}" for i in range(60)]


def test_a_narrow_catalogue_keeps_every_content_column():
    table = similarity_table(ARTWORKS, NO_ENGAGEMENT, SimilaritySpec(content_dims=40))
    # Styles 3 + media 3 + colours 3 + tags 3 + description words 9 (two-letter and up).
    assert len(table["embedding"][0].as_py()) == 21


WORDS = [f"w{chr(97 + n // 26)}{chr(97 + n % 26)}" for n in range(30)]


def test_a_catalogue_of_repeated_content_is_reduced_as_its_every_row_would_be():
    # Styles A, B, C on 100, 10 and 1 artworks, each tagged with its style: three distinct rows,
    # seven columns, two kept. The two most common styles hold the two largest directions.
    counts = {"A": 100, "B": 10, "C": 1}
    styles = [style for style, n in counts.items() for _ in range(n)]
    rows = [(f"a{i:03d}", s, "oil", [], [s], None) for i, s in enumerate(styles)]
    reduced = content_vectors(_artworks(rows), dims=2)
    # By hand: style (3), medium (1), tags (3) one-hot, each block of norm 1, over sqrt(4)
    # blocks (colours are empty); the exact rank-2 reduction of every row.
    full = np.zeros((len(styles), 7))
    for row, style in enumerate(styles):
        place = "ABC".index(style)
        full[row, [place, 3, 4 + place]] = 0.5
    u, sigma, _ = np.linalg.svd(full, full_matrices=False)
    exact = u[:, :2] * sigma[:2]
    assert reduced.shape == (111, 2) and reduced.flags.c_contiguous
    assert np.allclose(reduced @ reduced.T, exact @ exact.T, atol=1e-9)
    assert np.linalg.norm(reduced[-1]) < 0.5 < np.linalg.norm(reduced[0])


def test_one_hot_columns_count_a_repeated_value_once_and_skip_missing_ones():
    table = _artworks(
        [
            ("a1", "cubism", "oil", ["red", "red", "blue"], [], None),
            ("a2", "cubism", "ink", [], ["calm"], None),
            ("a3", "abstract", "oil", ["blue"], ["calm", "city"], None),
        ]
    )
    assert one_hot_columns(table["colours"]).toarray().tolist() == [
        [1, 1],
        [0, 0],
        [1, 0],
    ]  # blue, red
    assert one_hot_columns(table["style"]).toarray().tolist() == [[0, 1], [0, 1], [1, 0]]
    nulls = pa.chunked_array([pa.array([["x"], None, [None, "x"]], pa.list_(pa.string()))])
    assert one_hot_columns(nulls).toarray().tolist() == [[1], [0], [1]]


def test_behaviour_factors_do_not_depend_on_the_order_of_the_engagement_rows():
    ids = ARTWORKS["artwork_id"].to_pylist()
    rng = np.random.default_rng(4)
    engaged = pa.table(
        {
            "user_id": [f"u{i % 7}" for i in range(20)],
            "artwork_id": [ids[i % 5] for i in range(20)],
            "weight": rng.uniform(1, 9, 20),
        }
    )
    shuffled = engaged.take(rng.permutation(engaged.num_rows))
    same = behaviour_vectors(ids, shuffled, dims=3, seed=0)
    assert np.array_equal(behaviour_vectors(ids, engaged, dims=3, seed=0), same)


def _clustered_rows(groups: int, size: int, seed: int = 0) -> np.ndarray:
    """`groups` tight bunches of `size` unit rows, far apart: a catalogue of clear kinds."""
    rng = np.random.default_rng(seed)
    centres = np.eye(groups, 16, dtype=np.float32)
    rows = np.repeat(centres, size, axis=0) + rng.normal(0, 0.05, (groups * size, 16))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _alike_catalogue(seed: int, kinds: int = 3) -> np.ndarray:
    """Mostly copies of a few rows (items of a category, no engagement), zeros and some others."""
    rng = np.random.default_rng(seed)
    alike = rng.integers(-2, 3, size=(kinds, 6))[rng.integers(0, kinds, size=300)]
    vectors = np.vstack([alike, np.zeros((30, 6)), rng.integers(-2, 3, size=(40, 6))])
    return vectors.astype(np.float32)[rng.permutation(370)]


def test_repeated_rows_are_searched_once_and_get_the_lists_of_a_full_sort():
    for seed, k in [(5, 7), (6, 20), (7, 1)]:
        vectors = _alike_catalogue(seed)
        distinct = DistinctRows.of(vectors)
        assert len(distinct.vectors) < 0.2 * len(vectors)  # the distinct search is taken
        assert np.array_equal(distinct.vectors[distinct.inverse], vectors)
        index, scores = neighbours_of(vectors, SimilaritySpec(neighbours=k))
        assert_a_full_sort(vectors, index, scores)


def test_a_catalogue_of_few_distinct_rows_still_gets_k_neighbours_each():
    # Two distinct rows, one of them once: its neighbours are all copies of the other.
    vectors = np.array([[1.0, 0.0]] * 5 + [[0.0, 1.0]], dtype=np.float32)
    index, scores = neighbours_of(vectors, SimilaritySpec(neighbours=4))
    assert index[5].tolist() == [0, 1, 2, 3] and scores[5].tolist() == [0.0] * 4
    assert index[0].tolist() == [1, 2, 3, 4] and index[4].tolist() == [0, 1, 2, 3]
    assert_a_full_sort(vectors, index, scores)


def test_embeddings_without_columns_still_give_every_row_its_neighbours():
    # No content and no engagement yet: every artwork alike, neighbours by index.
    index, scores = neighbours_of(np.zeros((5, 0), np.float32), SimilaritySpec(neighbours=3))
    assert index.tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2], [0, 1, 2]]
    assert not scores.any()


def test_the_clustered_search_finds_the_exact_neighbours_where_kinds_are_clear():
    vectors = _clustered_rows(groups=12, size=40)
    exact, exact_scores = nearest_neighbours(vectors, k=10)
    # 65 clusters, about five to a kind: the row's own kind's are the nearest of those probed.
    found, scores = clustered_neighbours(vectors, k=10)
    assert np.array_equal(found, exact) and np.allclose(scores, exact_scores)
    assert not np.any(found == np.arange(len(vectors))[:, None])
    # Run again, the same lists: the k-means sample and its start are seeded.
    assert np.array_equal(clustered_neighbours(vectors, 10)[0], found)
    # Probing fewer clusters than a kind spans misses some: the search is approximate.
    fewer, _ = clustered_neighbours(vectors, k=10, search=ClusterSearch(probes=1))
    assert not np.array_equal(fewer, exact)


def test_the_clustered_search_orders_ties_by_index_and_widens_a_pool_too_small():
    # Twenty identical rows and one apart: ties everywhere, and a lone row whose own cluster
    # holds nobody else still gets k neighbours.
    vectors = np.vstack([np.tile([[0.6, 0.8]], (20, 1)), [[1.0, 0.0]]]).astype(np.float32)
    for block in (3, 1024):  # a cluster's rows compared a few at a time, or all at once
        search = ClusterSearch(probes=1, block=block)
        index, scores = clustered_neighbours(vectors, k=3, search=search)
        assert index[0].tolist() == [1, 2, 3] and index[19].tolist() == [0, 1, 2]
        assert index[20].tolist() == [0, 1, 2] and np.allclose(scores[20], 0.6)


def test_past_the_exact_size_the_table_comes_from_the_clustered_search():
    spec = SimilaritySpec(neighbours=1, exact_up_to=2)
    table = similarity_table(ARTWORKS, NO_ENGAGEMENT, spec)
    neighbours = dict(
        zip(table["artwork_id"].to_pylist(), table["neighbour_ids"].to_pylist(), strict=True)
    )
    assert neighbours["a1"] == ["a2"] and neighbours["a4"] == ["a3"]


def test_rows_without_kinds_to_cluster_get_the_exact_search():
    # Random directions: every row's probed clusters hold most of the catalogue.
    vectors = np.random.default_rng(5).normal(size=(400, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    found, scores = clustered_neighbours(vectors, k=5)
    exact, exact_scores = nearest_neighbours(vectors, k=5)
    assert np.array_equal(found, exact) and np.array_equal(scores, exact_scores)


def test_a_catalogue_of_one_artwork_gets_an_empty_list_and_its_embedding():
    table = similarity_table(ARTWORKS.slice(0, 1), NO_ENGAGEMENT, SimilaritySpec(neighbours=3))
    assert table["artwork_id"].to_pylist() == [ARTWORKS["artwork_id"][0].as_py()]
    assert table["neighbour_ids"].to_pylist() == [[]]
    assert table["neighbour_scores"].to_pylist() == [[]]
    assert len(table["embedding"].to_pylist()[0]) > 0


def test_same_style_share_averages_each_artworks_share_and_counts_no_neighbours_as_none():
    catalogue = pa.table(
        {"artwork_id": ["a", "b", "c", "d", "e"], "style": ["x", "x", "y", None, None]}
    )
    table = pa.table(
        {
            "artwork_id": ["a", "c", "d", "e"],
            "neighbour_ids": pa.array(
                [["b", "c"], ["a", "b", "c"], ["e"], []], pa.list_(pa.string())
            ),
        }
    )
    # a: 1 of 2 (b); c: 1 of 3 (itself, as listed); d: its one neighbour has no style either: 1;
    # e: none listed: 0.
    assert abs(same_style_share(table, catalogue) - (0.5 + 1 / 3 + 1.0 + 0.0) / 4) < 1e-12
    assert same_style_share(table.slice(0, 0), catalogue) == 0.0
