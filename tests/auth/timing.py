"""Comparing the time of alike operations on a busy shared machine.

Each round runs every case ``attempts`` times, interleaved in a random order (so a
burst of load from elsewhere hits all cases alike), and compares their medians.  A
noisy round is measured again, up to ``rounds`` times: a real difference (a leak of
the kind these tests look for is several-fold) fails every round.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable


def interleaved_medians(cases: dict[str, Callable[[int], object]], attempts: int
                        ) -> dict[str, float]:
    """Median seconds per case; each call gets the attempt's number."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for i in range(attempts):
        random.shuffle(order)
        for name in order:
            start = time.perf_counter()
            cases[name](i)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def assert_alike(cases: dict[str, Callable[[int], object]], *, attempts: int = 15,
                 max_ratio: float = 1.5, rounds: int = 3) -> dict[str, float]:
    """Fail unless, in some round, the slowest median is under ``max_ratio`` times the
    fastest; the medians of the passing round."""
    interleaved_medians(cases, 3)  # warm-up: dummy hashes, plans, caches
    seen = []
    for _ in range(rounds):
        medians = interleaved_medians(cases, attempts)
        if max(medians.values()) / min(medians.values()) < max_ratio:
            return medians
        seen.append({name: f"{1000 * t:.1f} ms" for name, t in medians.items()})
    raise AssertionError(f"medians differ by more than {max_ratio}x in every round: {seen}")
