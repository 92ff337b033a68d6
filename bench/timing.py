"""Timing loops shared by the benchmarks; standard library only, so that ``ort_worker.py`` can use
them in a process without TensorFlow."""

from __future__ import annotations

import statistics
import time


def timed(fn) -> float:
    """Seconds one call of ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def latency_ms(fn, x, runs: int) -> tuple[float, float]:
    """Median and 99th percentile, in ms, of ``runs`` calls ``fn(x)`` (after one warm-up call)."""
    fn(x)
    times = sorted(timed(lambda: fn(x)) * 1e3 for _ in range(runs))
    return statistics.median(times), times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]


def throughput(fn, x, seconds: float = 1.0) -> float:
    """Images per second of calls ``fn(x)`` repeated for ``seconds`` (after one warm-up call)."""
    fn(x)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(x)
        done += len(x)
    return done / (time.perf_counter() - start)
