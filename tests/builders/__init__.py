"""Builders of test data: bronze tables, model inputs and a hand-sized serving home."""
