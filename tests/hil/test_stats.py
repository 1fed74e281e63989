"""Shares with confidence intervals: the Wilson score interval."""

from __future__ import annotations

import math

import pytest

from crossbar_hil.reports.stats import quantiles, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),  # textbook values (Newcombe 1998, 95 %)
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_interval_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4)
    assert hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_edge_cases() -> None:
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError, match="0 <= successes <= trials"):
        wilson_interval(3, 2)


def test_quantiles_of_nothing_are_nan() -> None:
    assert all(math.isnan(q) for q in quantiles([]))
    assert quantiles([1, 2, 3, 4, 5]) == [1.0, 2.0, 3.0, 4.0, 5.0]
