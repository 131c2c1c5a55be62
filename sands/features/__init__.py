"""Features: the offline feature logs, the online store, point-in-time joins and training sets."""
