"""Benchmarks: scripts that print a table against a baseline measured in the same run."""
