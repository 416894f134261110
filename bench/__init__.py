"""Benchmarks that print wall time, peak memory and ratios of nightjar against plain-Python baselines."""
