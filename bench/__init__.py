"""Benchmark harness: ganga_like vs Ganga vs the machine's limits (see README.md)."""
