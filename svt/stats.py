"""Uncertainty of a reproduced top-1: how far a number over N test videos can be trusted.

- `wilson`: the 95% Wilson score interval of one accuracy (k of n videos correct). Unlike the normal
  approximation it stays inside [0, 100] and is accurate at small n and near 0 or 100%.
- `newcombe`: the 95% interval of the difference of two accuracies (Newcombe 1998, method 10: the hybrid score
  interval built from the two Wilson intervals). It treats the two runs as independent samples; two models scored
  on the same test videos are positively correlated, so for them the interval is conservative (wider than a
  paired test's): a difference it calls real is real.
- `compare`: "above" / "below" when the interval of the difference excludes 0, "within" otherwise.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054
METHOD = "95% Wilson score interval over the test videos"
DIFFERENCE_METHOD = ("95% Newcombe hybrid score interval of the difference (independent-samples, conservative "
                     "for two models scored on the same test videos)")


def correct(top1: float, n: int) -> int:
    """Number of correctly classified videos behind a top-1 percentage."""
    return int(round(top1 * n / 100.0))


def top1_interval(top1: float, n: int) -> tuple[int, float, float]:
    """Correct videos behind a top-1 over n test videos and its Wilson interval (%)."""
    k = correct(top1, n)
    return (k, *wilson(k, n))


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Interval (%, low, high) of the proportion k / n."""
    if n <= 0:
        raise ValueError(f"an interval needs at least one test video, got n = {n}")
    if not 0 <= k <= n:
        raise ValueError(f"correct count {k} is not within 0..{n}")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """Interval (percentage points) of p1 - p2."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = (x / 100.0 for x in wilson(k1, n1, z))
    l2, u2 = (x / 100.0 for x in wilson(k2, n2, z))
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return 100.0 * low, 100.0 * high


def compare(interval: tuple[float, float], reference: float = 0.0) -> str:
    """Where an interval lies relative to a reference value."""
    low, high = interval
    return "above" if low > reference else "below" if high < reference else "within"
