"""Ingestion: the data contract, landing files, validation, quarantine, bronze Delta tables."""
