"""Huang et al.'s self-adaptive weight on tiles and their four updating modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossbar_hil.emulator.network.data import digits
from crossbar_hil.emulator.network.huang_device import huang_device
from crossbar_hil.emulator.network.mlp import NetworkConfig
from crossbar_hil.emulator.network.self_adaptive import (
    MODES,
    Mode,
    ModeRule,
    SelfAdaptiveMLP,
    SelfAdaptiveTile,
)
from crossbar_hil.emulator.network.tiles import MINUS, PLUS, TileConfig

DEVICE = huang_device(1.0, -1.0, bits=6)
K = 10.0


def tile(rows: int = 3, cols: int = 4) -> SelfAdaptiveTile:
    return SelfAdaptiveTile(TileConfig(rows=rows, cols=cols, device=DEVICE, scale_k=K))


def rise(position: int) -> float:
    """Conductance rise (S) of a scale-K device ``position`` pulses from reset."""
    table = DEVICE.table()
    return K * (table[position] - table[0])


def test_the_weight_is_the_two_pairs_combined_with_w1_at_twice_the_scale_of_w2() -> None:
    t = tile(2, 2)
    rng = np.random.default_rng(0)
    p1, p2 = rng.integers(0, 64, size=(2, 2, 2, 2))  # (side, row, col) positions of w1 and w2
    t.program_positions(p1)
    t.w2.program_positions(p2)
    t._changed()
    r = np.vectorize(rise)
    expected = (2 * r(p1[PLUS]) - r(p2[PLUS])) - (2 * r(p1[MINUS]) - r(p2[MINUS]))
    np.testing.assert_allclose(t.weights_siemens(), expected, rtol=1e-12)
    v = rng.normal(size=(5, 2))
    np.testing.assert_allclose(t.forward(v), v @ expected, rtol=1e-12)
    np.testing.assert_allclose(t.backward(v), v @ expected.T, rtol=1e-12)
    assert t.g_span_siemens == pytest.approx(rise(63))  # the weight unit: one w2 device's span


@pytest.mark.parametrize(("mode", "w2_moves"), [("mode1", +1), ("mode2", -1), ("mode3", 0), ("mode4", 0)])
def test_each_mode_pulses_the_active_pair_as_the_si_defines_it(mode: Mode, w2_moves: int) -> None:
    """Signs +1 raise W: on a P weight (sign +1) w1 goes up; on an N weight (sign -1) w1 goes down
    (W = -(w1 - w2)). w2 moves with w1 (mode1), against it (mode2) or not at all (modes 3, 4);
    the other pair is never touched."""
    t = tile(1, 2)
    t.program(np.array([[1, -1]]), np.full((1, 2), 0.5), np.full((1, 2), 0.5))
    p1, p2 = t.positions(), t.w2.positions()
    rule = ModeRule(t, mode)
    rule.update(np.array([[1, 1]], dtype=np.int8))
    d1, d2 = t.positions() - p1, t.w2.positions() - p2
    assert d1[PLUS, 0, 0] > 0 and d1[MINUS, 0, 1] < 0  # w1: up on the P weight, down on the N weight
    assert np.sign(d2[PLUS, 0, 0]) == w2_moves and np.sign(d2[MINUS, 0, 1]) == -w2_moves
    assert d1[MINUS, 0, 0] == d2[MINUS, 0, 0] == d1[PLUS, 0, 1] == d2[PLUS, 0, 1] == 0
    assert rule.counts.pulses == 2 * (1 + abs(w2_moves))
    assert t.weights_siemens()[0, 0] > 2 * rise(p1[PLUS, 0, 0]) - rise(p2[PLUS, 0, 0])


def test_mode1_at_equal_states_moves_the_weight_one_w2_step() -> None:
    t = tile(1, 1)
    t.program(np.ones((1, 1)), np.full((1, 1), 0.3), np.full((1, 1), 0.3))
    m = int(t.positions()[PLUS, 0, 0])
    assert t.w2.positions()[PLUS, 0, 0] == m
    before = t.weights_siemens()[0, 0]
    ModeRule(t, "mode1").update(np.ones((1, 1), dtype=np.int8))
    assert t.weights_siemens()[0, 0] - before == pytest.approx(rise(m + 1) - rise(m), rel=1e-12)


def test_mode4_holds_w2_at_the_reference_half_of_its_range() -> None:
    net = NetworkConfig(sizes=(8, 5, 3), seed=4)
    mlp = SelfAdaptiveMLP(net, "mode4", {"device": DEVICE, "scale_k": K})
    t = mlp.tiles[0]
    assert isinstance(t, SelfAdaptiveTile)
    g2 = t.w2.conductances()
    active = t.active(np.ones(t.shape, dtype=bool))
    np.testing.assert_allclose(g2[active], rise(int(np.argmin(np.abs(DEVICE.table() - 1.5e-7)))))
    assert np.all(g2[~active] == 0.0)
    before = g2.copy()
    mlp.step(np.ones((1, 8)), np.eye(3)[[1]])
    np.testing.assert_array_equal(t.w2.conductances(), before)
    assert mlp.rules[0].counts.pulses > 0


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_learns_digits_well_above_chance(mode: Mode) -> None:
    """64-32-10 on 600 digits, three epochs online: chance is 10 %; seeds 0..2 reach 49-77 %."""
    d = digits()
    net = NetworkConfig(
        sizes=(64, 32, 10), hidden_c=2.0, output_gain=4.0, output_dead_zone=0.1, epochs=3, seed=0
    )
    mlp = SelfAdaptiveMLP(net, mode, {"device": huang_device(1.0, -1.0, 8)})
    result = mlp.fit(d.x_train[:600], d.y_train[:600], d.x_test, d.y_test)
    assert result.test_accuracy > 0.4


def test_a_device_without_a_depression_curve_is_refused(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("1e-7\n2e-7\n3e-7\n")
    with pytest.raises(ValueError, match="depression"):
        SelfAdaptiveTile(TileConfig(rows=1, cols=1, trace=trace))
