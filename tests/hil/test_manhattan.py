"""The Manhattan rule on a case computed by hand, and the perceptron's wiring."""

from __future__ import annotations

import numpy as np

from hil.seam import Pulse
from hil.training.config import TrainingConfig
from hil.training.network import in_band, logic_currents, logic_weights, target_values
from hil.training.rules.manhattan import manhattan_signs, potentiation_pulses


def test_signs_match_a_hand_computed_case() -> None:
    # Neuron 0: pattern A (f=0.5, wants +1) -> delta = +0.375*beta; pattern B (f=0, wants -1)
    # -> delta = -beta. Sum over patterns of delta*V: input 0: 0.0375b + 0.1b > 0;
    # input 1: -0.0375b - 0.1b < 0. Neuron 1 is exactly on target: no update.
    v = np.array([[0.1, -0.1], [-0.1, 0.1]])
    f = np.array([[0.5, 1.0], [0.0, -1.0]])
    t = np.array([[1.0, 1.0], [-1.0, -1.0]])
    signs = manhattan_signs(v, f, t, beta=6e6)
    np.testing.assert_array_equal(signs, [[1, -1], [0, 0]])


def test_mask_removes_patterns_already_in_band() -> None:
    v = np.array([[0.1, -0.1], [-0.1, 0.1]])
    f = np.array([[0.5], [0.0]])
    t = np.array([[1.0], [-1.0]])
    only_b = manhattan_signs(v, f, t, 1.0, active=np.array([[False], [True]]))
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
