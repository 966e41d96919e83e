"""swapline: low-latency face swapping; every output is labelled as AI-generated."""

__version__ = "0.1.0"
