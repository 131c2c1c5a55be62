"""Serving: the recommendation service, its snapshot, watcher, process, metrics, prediction log."""
