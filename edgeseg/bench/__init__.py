"""Benchmarks: latency statistics (more arrives with the benchmark protocol)."""
