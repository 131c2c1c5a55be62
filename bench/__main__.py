"""`python -m bench [name ...]`: run the benchmarks (all by default) and print their figures."""

from __future__ import annotations

import sys

from bench import feature_build, ingestion, pit

BENCHMARKS = {"ingestion": ingestion.main, "pit": pit.main, "feature_build": feature_build.main}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(BENCHMARKS):
        BENCHMARKS[name]()
