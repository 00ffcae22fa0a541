"""Benchmarks: each runs the suite and its baseline side by side in one run and reports ratios."""
