"""Benchmarks: side by side with lifetimes in the same run, reporting time ratios and peak memory."""
