"""Small helpers shared by the benchmarks."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, nearest-rank."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def latency_summary(latencies_s: list[float]) -> dict[str, float]:
    """p50/p99/max in milliseconds."""
    ordered = sorted(latencies_s)
    return {
        "p50_ms": round(percentile(ordered, 50) * 1000, 4),
        "p99_ms": round(percentile(ordered, 99) * 1000, 4),
        "max_ms": round((ordered[-1] if ordered else float("nan")) * 1000, 4),
    }
