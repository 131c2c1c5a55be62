"""`python -m bench [name ...]`: run the benchmarks (all by default) and print their figures."""

from __future__ import annotations

import sys

from bench import ingestion

BENCHMARKS = {"ingestion": ingestion.main}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(BENCHMARKS):
        BENCHMARKS[name]()
