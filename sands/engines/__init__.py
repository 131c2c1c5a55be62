"""Engines: DuckDB, and Spark for the PIT join, training and dbt; the parity between them."""
