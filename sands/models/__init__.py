"""Models: ranker, segments, similarity, popularity, candidates; the MLflow registry and lineage."""
