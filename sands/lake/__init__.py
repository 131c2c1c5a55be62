"""The Delta lake: table reads and writes, time travel and writer locks."""
