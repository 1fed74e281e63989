"""The Manhattan rule on a case computed by hand, and the perceptron's wiring."""

from __future__ import annotations

import numpy as np

from crossbar_hil.seam import Pulse
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.network import (
    activation_slope,
    in_band,
    log_activation_slope,
    logic_currents,
    logic_weights,
    target_values,
)
from crossbar_hil.training.rules.manhattan import manhattan_signs, potentiation_pulses


def test_signs_match_a_hand_computed_case() -> None:
    # Neuron 0: pattern A (f=0.5, wants +1) -> delta = +0.375*beta; pattern B (f=0, wants -1)
    # -> delta = -beta. Sum over patterns of delta*V: input 0: 0.0375b + 0.1b > 0;
    # input 1: -0.0375b - 0.1b < 0. Neuron 1 is exactly on target: no update.
    # (Neuron 1's currents are so large that tanh rounds to exactly +-1.)
    beta = 6e6
    v = np.array([[0.1, -0.1], [-0.1, 0.1]])
    i = np.array([[np.arctanh(0.5), 50.0], [0.0, -50.0]]) / beta
    t = np.array([[1.0, 1.0], [-1.0, -1.0]])
    signs = manhattan_signs(v, i, t, beta)
    np.testing.assert_array_equal(signs, [[1, -1], [0, 0]])


def test_slope_is_computed_from_the_current_and_never_vanishes() -> None:
    beta = 3e8
    i = np.array([1e-9, 1e-7, 1e-6, 1e-4])  # beta * I = 0.3, 30, 300, 30000
    slope = activation_slope(i, beta)
    np.testing.assert_allclose(slope[:2], beta / np.cosh(beta * i[:2]) ** 2, rtol=1e-12)
    assert slope[1] > 0  # beta * (1 - tanh(30)**2) is exactly 0 in floating point
    assert np.all(np.isfinite(log_activation_slope(i, beta)))
    np.testing.assert_allclose(log_activation_slope(i[2:], beta), np.log(4 * beta) - 2 * beta * i[2:])


def test_saturated_wrong_patterns_still_steer_the_update_at_high_gain() -> None:
    # Pattern A is right and saturated; pattern B is wrong by a huge current: float tanh
    # gives f = -1 for B, and beta * (1 - f**2) = 0 would drop it; its sign must win.
    beta = 3e8
    v = np.array([[0.1, 0.1], [-0.1, 0.1]])
    i = np.array([[1e-6], [-1e-4]])  # A: class 1, f = +1; B: class 1 too, f = -1
    t = np.array([[1.0], [1.0]])
    np.testing.assert_array_equal(manhattan_signs(v, i, t, beta), [[-1, 1]])


def test_mask_removes_patterns_already_in_band() -> None:
    v = np.array([[0.1, -0.1], [-0.1, 0.1]])
    i = np.array([[np.arctanh(0.5)], [0.0]])
    t = np.array([[1.0], [-1.0]])
    only_b = manhattan_signs(v, i, t, 1.0, active=np.array([[False], [True]]))
    np.testing.assert_array_equal(only_b, [[1, -1]])  # from pattern B alone: -1 * (-0.1, 0.1)


def test_pulses_go_to_gplus_for_positive_and_gminus_for_negative() -> None:
    signs = np.array([[1, -1, 0, 0], [0, 0, -1, 1]], dtype=np.int8)
    pulses = potentiation_pulses(signs, 2.0, 1e-3)
    assert sorted(pulses) == sorted(
        [Pulse(0, 0, 2.0, 1e-3), Pulse(1, 1, 2.0, 1e-3), Pulse(2, 3, 2.0, 1e-3), Pulse(3, 2, 2.0, 1e-3)]
    )


def test_logic_weights_and_currents_are_differential_pairs() -> None:
    g = np.arange(16, dtype=float).reshape(4, 4)
    w = logic_weights(g, n_inputs=4, n_outputs=2)
    np.testing.assert_array_equal(w, np.full((2, 4), -1.0))  # G(2i) - G(2i+1) = -1 everywhere
    v = np.array([0.1, -0.1, 0.1, 0.1])
    np.testing.assert_allclose(logic_currents(v @ g, 2), w @ v)


def test_bands_and_target_values() -> None:
    cfg = TrainingConfig(f_plus=0.8, f_minus=-0.7, target_high=0.9, target_low=-0.9)
    f = np.array([[0.81, -0.69], [0.79, -0.71]])
    targets = np.array([[1, 0], [1, 0]], dtype=np.int8)
    np.testing.assert_array_equal(in_band(f, targets, cfg), [[True, False], [False, True]])
    np.testing.assert_array_equal(target_values(targets, cfg), [[0.9, -0.9], [0.9, -0.9]])
