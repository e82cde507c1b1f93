"""Judges, similarity, rating aggregation, latency/cost analysis and charts."""
