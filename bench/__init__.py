"""Benchmarks: plain Python, figures printed as rows/s or as ratios against a named peer."""
