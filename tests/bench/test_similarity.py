import numpy as np

from bench.similarity import peer, recall
from sands.models.similarity import nearest_neighbours


def test_the_peer_finds_the_same_neighbours_without_the_artwork_itself():
    vectors = np.random.default_rng(1).normal(size=(200, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    theirs, their_scores = peer(vectors, 5)
    ours, our_scores = nearest_neighbours(vectors, 5)
    assert theirs.shape == (200, 5) and not (theirs == np.arange(200)[:, None]).any()
    assert (np.sort(theirs, axis=1) == np.sort(ours, axis=1)).all()
    assert np.allclose(np.sort(their_scores, axis=1), np.sort(our_scores, axis=1), atol=1e-6)


def test_recall_counts_found_neighbours_at_least_as_similar_as_the_exact_kth():
    exact = np.array([[0.9, 0.6], [0.8, 0.8]], dtype=np.float32)
    found = np.array([[0.9, 0.5], [0.8, 0.8]], dtype=np.float32)  # one miss, one tie found
    assert recall(found, exact) == 0.75
