"""Summary statistics of many runs: shares with confidence intervals, distributions."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

Z_95 = 1.959963984540054
"""Two-sided 95 % standard-normal quantile."""


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial share ``successes / trials`` (default 95 %).

    Stays inside [0, 1] and is sensible at 0 and at ``trials`` successes. ``trials == 0``
    gives (nan, nan).
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return math.nan, math.nan
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials)) / (1 + z2n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def quantiles(values: ArrayLike, qs: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> list[float]:
    """The quantiles ``qs`` of ``values`` (nan for none)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return [math.nan] * len(qs)
    return [float(x) for x in np.quantile(v, qs)]
