"""`python -m dagster_project.cli`: the `sands` command without its console script."""

from dagster_project.cli import main

# Guarded: `sands serve --workers N` spawns processes that import the main module again.
if __name__ == "__main__":
    main()
