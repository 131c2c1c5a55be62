"""Artwork nearest neighbours over a large catalogue: `sands.models.similarity` against
scikit-learn's brute-force cosine `NearestNeighbors`, the usual way to get them, in the same run.

Both are exact: the same neighbours and similarities, except where similarities tie at the k-th
place (ours takes the lower index, as the table says). Vectors are random unit rows of the width
the similarity model uses (content + behaviour), float32. Beside them, the clustered search the
model uses past `SimilaritySpec.exact_up_to` artworks, with the share of its neighbours at least
as similar as the exact k-th (recall). Random rows are its worst case (no kinds to cluster);
`--home` takes the embeddings of a home's catalogue instead, as `artwork_similarity` builds them.

    python -m bench similarity [--artworks 10000 50000] [--dims 160] [--neighbours 20]
    python -m bench similarity --home DIR      # e.g. after `python -m bench loop --artworks 100000`
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.neighbors import NearestNeighbors

from sands.models.similarity import (
    SimilaritySpec,
    clustered_neighbours,
    embeddings,
    nearest_neighbours,
    similarity_inputs,
)


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def peer(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn, brute force by cosine distance, itself excluded."""
    model = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute", n_jobs=-1)
    distances, indices = model.fit(vectors).kneighbors(vectors)
    own = indices == np.arange(len(vectors))[:, None]
    # Itself is normally first; where a tie put it elsewhere (or out), the first k others.
    keep = ~own & (np.cumsum(~own, axis=1) <= k)
    return indices[keep].reshape(len(vectors), k), 1.0 - distances[keep].reshape(len(vectors), k)


def recall(scores: np.ndarray, exact_scores: np.ndarray) -> float:
    """Share of found neighbours at least as similar as the exact k-th (ties count as found)."""
    return float(np.mean(scores >= exact_scores[:, -1:] - 1e-5))


def run(samples: list[tuple[str, np.ndarray]], k: int) -> Table:
    table = Table(
        "artworks",
        "ours s",
        "scikit-learn s",
        "ours vs peer",
        "rows with the same neighbours",
        "largest similarity difference",
        "clustered s",
        "clustered recall",
        title=f"{k} nearest neighbours by cosine, float32",
    )
    for label, vectors in samples:
        (ours, our_scores), ours_s = _timed(lambda v=vectors: nearest_neighbours(v, k))
        (theirs, their_scores), peer_s = _timed(lambda v=vectors: peer(v, k))
        (_, clustered), clustered_s = _timed(lambda v=vectors: clustered_neighbours(v, k))
        same = np.mean([set(a) == set(b) for a, b in zip(ours, theirs, strict=True)])
        table.add_row(
            label,
            f"{ours_s:.2f}",
            f"{peer_s:.2f}",
            f"{peer_s / ours_s:.1f}x faster",
            f"{same:.4%}",
            f"{np.abs(our_scores - their_scores).max():.1e}",
            f"{clustered_s:.2f} ({ours_s / clustered_s:.1f}x ours)",
            f"{recall(clustered, our_scores):.2%}",
        )
    return table


def random_rows(n: int, dims: int) -> np.ndarray:
    vectors = np.random.default_rng(0).normal(size=(n, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def home_rows(home: str) -> tuple[str, np.ndarray]:
    """The embeddings `artwork_similarity` would build in `home` now."""
    from sands.ingest.contract import ARTWORKS, INTERACTIONS
    from sands.lake.layout import bronze
    from sands.settings import SandsPaths

    lake = SandsPaths.from_env({"SANDS_HOME": home}).lake
    from assets.models import SimilarityConfig

    catalogue, engaged, _ = similarity_inputs(
        bronze(lake, INTERACTIONS.name),
        bronze(lake, ARTWORKS.name),
        SimilarityConfig().engagement_days,
    )
    vectors = embeddings(catalogue.sort_by("artwork_id"), engaged, SimilaritySpec())
    return f"{len(vectors):,} ({home}, {vectors.shape[1]} dims)", vectors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artworks", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--dims", type=int, default=160)
    parser.add_argument("--neighbours", type=int, default=20)
    parser.add_argument("--home", help="a SANDS_HOME whose catalogue's embeddings to use")
    args = parser.parse_args(argv or [])
    if args.neighbours < 1 or args.dims < 1 or min(args.artworks) <= args.neighbours:
        parser.error(
            f"--artworks {min(args.artworks)} must exceed --neighbours {args.neighbours} (>= 1), "
            f"and --dims {args.dims} be at least 1"
        )
    if args.home:
        samples = [home_rows(args.home)]
    else:
        samples = [(f"{n:,}", random_rows(n, args.dims)) for n in args.artworks]
    Console().print(run(samples, args.neighbours))
