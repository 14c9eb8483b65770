"""Benchmarks: figures, not pass/fail. Each module prints its table; BENCHMARKS.md records them."""
