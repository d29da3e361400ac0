"""Benchmarks: each prints JSON with ratios measured side by side in one run."""
