"""Artwork nearest neighbours over a large catalogue: `sands.models.similarity` against
scikit-learn's brute-force cosine `NearestNeighbors`, the usual way to get them, in the same run.

Both are exact: the same neighbours and similarities, except where similarities tie at the k-th
place (ours takes the lower index, as the table says). Vectors are random unit rows of the width
the similarity model uses (content + behaviour), float32.

    python -m bench similarity [--artworks 10000 50000] [--dims 160] [--neighbours 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.neighbors import NearestNeighbors

from sands.models.similarity import nearest_neighbours


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


def run(artworks: list[int], dims: int, k: int) -> Table:
    table = Table(
        "artworks",
        "ours s",
        "scikit-learn s",
        "ours vs peer",
        "rows with the same neighbours",
        "largest similarity difference",
        title=f"{k} nearest neighbours by cosine, {dims} float32 dimensions",
    )
    rng = np.random.default_rng(0)
    for n in artworks:
        vectors = rng.normal(size=(n, dims)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        (ours, our_scores), ours_s = _timed(lambda v=vectors: nearest_neighbours(v, k))
        (theirs, their_scores), peer_s = _timed(lambda v=vectors: peer(v, k))
        same = np.mean([set(a) == set(b) for a, b in zip(ours, theirs, strict=True)])
        table.add_row(
            f"{n:,}",
            f"{ours_s:.2f}",
            f"{peer_s:.2f}",
            f"{peer_s / ours_s:.1f}x faster",
            f"{same:.4%}",
            f"{np.abs(our_scores - their_scores).max():.1e}",
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artworks", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--dims", type=int, default=160)
    parser.add_argument("--neighbours", type=int, default=20)
    args = parser.parse_args(argv or [])
    if args.neighbours < 1 or args.dims < 1 or min(args.artworks) <= args.neighbours:
        parser.error(
            f"--artworks {min(args.artworks)} must exceed --neighbours {args.neighbours} (>= 1), "
            f"and --dims {args.dims} be at least 1"
        )
    Console().print(run(args.artworks, args.dims, args.neighbours))
