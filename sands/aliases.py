"""The MLflow aliases the platform moves: spelled once, importable without importing MLflow."""

CHAMPION = "champion"  # the version serving users
CHALLENGER = "challenger"  # the last version trained
