"""Huang et al.'s LTP/LTD device on tiles, checked against the recursion of their supporting code."""

from __future__ import annotations

import numpy as np
import pytest

from crossbar_hil.emulator.network.huang_device import huang_device, pulses_full_range
from crossbar_hil.emulator.network.self_adaptive import SelfAdaptiveTile
from crossbar_hil.emulator.network.tiles import PLUS, Tile, TileConfig

G_MIN, G_MAX = 1e-7, 2e-7


def si_ltp(g: float, a_p: float, p_max: int) -> float:
    """One LTP pulse as the SI's SGD class writes it (with exact exponentials)."""
    b_p = 1.0 / (1.0 - np.exp(-a_p))
    return g + (1.0 - np.exp(-a_p / p_max)) * ((G_MAX - G_MIN) * b_p - (g - G_MIN))


def si_ltd(g: float, a_d: float, p_max: int) -> float:
    """One LTD pulse as the SI's SGD class writes it."""
    b_d = 1.0 / (1.0 - np.exp(-a_d))
    return g - (np.exp(a_d / p_max) - 1.0) * ((G_MAX - G_MIN) * b_d - (g - G_MIN))


def one_device(a_p: float, a_d: float, bits: int) -> Tile:
    return Tile(TileConfig(rows=1, cols=1, device=huang_device(a_p, a_d, bits), scale_k=1.0, depression=True))


@pytest.mark.parametrize(("a_p", "a_d", "bits"), [(1.0, -1.0, 8), (3.0, -5.0, 6), (0.01, -0.01, 4)])
def test_ltp_from_gmin_takes_2_pow_bits_minus_1_pulses_along_the_si_recursion(
    a_p: float, a_d: float, bits: int
) -> None:
    p_max = pulses_full_range(bits)
    assert p_max == 2**bits - 1
    tile = one_device(a_p, a_d, bits)
    assert tile.state.n_max == p_max  # 2**bits levels, 2**bits - 1 pulses from Gmin to Gmax
    g_si, seen, expected = G_MIN, [], []
    for _ in range(p_max + 2):  # two pulses past the top: it stays at Gmax
        tile.potentiate(np.ones((2, 1, 1), dtype=bool))
        seen.append(G_MIN + tile.conductances()[PLUS, 0, 0])
        g_si = min(si_ltp(g_si, a_p, p_max), G_MAX)
        expected.append(g_si)
    np.testing.assert_allclose(seen, expected, rtol=1e-9)
    assert seen[p_max - 1] == pytest.approx(G_MAX, rel=1e-12)
    assert seen[-1] == seen[p_max - 1]


@pytest.mark.parametrize(("a_p", "a_d", "bits"), [(1.0, -1.0, 8), (2.0, -4.0, 6)])
def test_ltd_from_gmax_follows_the_si_recursion_down_to_gmin(a_p: float, a_d: float, bits: int) -> None:
    p_max = pulses_full_range(bits)
    tile = one_device(a_p, a_d, bits)
    tile.potentiate(np.full((2, 1, 1), p_max))
    g_si, seen, expected = G_MAX, [], []
    for _ in range(p_max + 1):
        tile.depress(np.ones((2, 1, 1), dtype=bool))
        seen.append(G_MIN + tile.conductances()[PLUS, 0, 0])
        g_si = max(si_ltd(g_si, a_d, p_max), G_MIN)
        expected.append(g_si)
    np.testing.assert_allclose(seen, expected, rtol=1e-9, atol=1e-12 * G_MAX)
    assert seen[p_max - 1] == pytest.approx(G_MIN, abs=1e-9 * G_MIN)


def test_the_nonlinearity_sets_the_ratio_of_the_first_to_the_last_step() -> None:
    """Steps shrink as ``exp(-A_p k / P_max)``: the first LTP step is ``exp(A_p (P_max - 1) / P_max)``
    times the last; the LTD curve is its mirror for ``A_d = -A_p``."""
    for a_p in (1.0, 3.0):
        dev = huang_device(a_p, -a_p, 6)
        up = np.diff(dev.table())
        down = -np.diff(dev.depression_table())
        assert up[0] / up[-1] == pytest.approx(np.exp(a_p * 62 / 63), rel=1e-9)
        np.testing.assert_allclose(down, up, rtol=1e-9)


def test_a_sign_that_is_not_huangs_convention_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="a_d=1"):
        huang_device(1.0, 1.0)
    with pytest.raises(ValueError, match="a_p=-1"):
        huang_device(-1.0, -1.0)


@pytest.mark.parametrize("a", [1.0, 3.0, 5.0])
def test_a_self_adaptive_device_follows_the_si_through_alternating_ltd_and_ltp(a: float) -> None:
    """Every LTP after an LTD moves from the present conductance, as the SI's recursion does (a
    crossbar's position-wise LTP lands on the next table position instead: half a step short)."""
    p_max = pulses_full_range(8)
    t = SelfAdaptiveTile(TileConfig(rows=1, cols=1, device=huang_device(a, -a, 8), scale_k=1.0))
    t.program(np.ones((1, 1)), np.full((1, 1), 0.5), np.full((1, 1), 0.5))
    g_si = G_MIN + t.w2.conductances()[PLUS, 0, 0]  # w2 (scale 1) is the device followed
    rng = np.random.default_rng(0)
    for step in rng.choice([-1, 1], size=200, p=[0.5, 0.5]):
        t.move(np.zeros((1, 1), dtype=np.int8), np.full((1, 1), step, dtype=np.int8))
        g_si = si_ltp(g_si, a, p_max) if step > 0 else si_ltd(g_si, -a, p_max)
        g_si = min(max(g_si, G_MIN), G_MAX)
        assert G_MIN + t.w2.conductances()[PLUS, 0, 0] == pytest.approx(g_si, rel=1e-6)
