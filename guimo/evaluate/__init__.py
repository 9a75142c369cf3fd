"""Metrics shared by scenarios: language modelling, ranking, classification."""
