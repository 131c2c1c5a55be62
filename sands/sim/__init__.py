"""Simulation: the synthetic marketplace that writes landing drops and the replay of its days."""
