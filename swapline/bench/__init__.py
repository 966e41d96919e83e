"""Benchmarks: quality (identity, pose kept) and speed (per-stage medians on one frame)."""
