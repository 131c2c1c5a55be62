"""Offline evaluation: metrics, behaviour tests, the challenger's gate, reports and backtests."""
