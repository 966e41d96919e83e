"""Fixed-size latency histograms: constant memory however long a live session runs."""

from __future__ import annotations

import math

import numpy as np

_LOW_MS = 0.01
_HIGH_MS = 100_000.0
_GROWTH = 1.02  # bucket width 2%: percentiles are good to about 1%


class LatencyHistogram:
    """Log-spaced buckets from 10 us to 100 s, plus exact count, sum and max."""

    _edges = _LOW_MS * _GROWTH ** np.arange(int(math.log(_HIGH_MS / _LOW_MS, _GROWTH)) + 2)

    def __init__(self) -> None:
        self.counts = np.zeros(len(self._edges) + 1, np.int64)
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, ms: float) -> None:
        self.counts[int(np.searchsorted(self._edges, ms))] += 1
        self.count += 1
        self.total += ms
        self.max = max(self.max, ms)

    def percentile(self, p: float) -> float:
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(self.count * p / 100.0))
        bucket = int(np.searchsorted(np.cumsum(self.counts), rank))
        if bucket == 0:
            return float(self._edges[0])
        # geometric middle of the bucket, never beyond the true max
        upper = self._edges[min(bucket, len(self._edges) - 1)]
        lower = self._edges[bucket - 1]
        return float(min(math.sqrt(lower * upper), self.max))

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "count": self.count,
            "mean_ms": round(self.mean, 3),
            "p50_ms": round(self.percentile(50), 3),
            "p95_ms": round(self.percentile(95), 3),
            "p99_ms": round(self.percentile(99), 3),
            "max_ms": round(self.max, 3),
        }


class StageHistograms:
    """One histogram per stage name, created on first use."""

    def __init__(self) -> None:
        self.by_stage: dict[str, LatencyHistogram] = {}

    def add(self, timings: dict[str, float]) -> None:
        for stage, ms in timings.items():
            histogram = self.by_stage.get(stage)
            if histogram is None:
                histogram = self.by_stage[stage] = LatencyHistogram()
            histogram.add(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        return {stage: h.summary() for stage, h in self.by_stage.items()}
