"""The MLflow aliases the platform moves and the serving policies: spelled once, importable
without importing MLflow."""

CHAMPION = "champion"  # the version serving users
CHALLENGER = "challenger"  # the last version trained

# What the champion arm serves: the champion's ranked lists, or, while the serving guard finds
# popularity clearly better than the champion, the popularity baseline.
CHAMPION_POLICY = "champion"
POPULARITY_POLICY = "popularity"
SERVING_POLICIES = (CHAMPION_POLICY, POPULARITY_POLICY)
