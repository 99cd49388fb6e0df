"""Matching records to people: features, the probabilistic model, scoring, clustering."""
