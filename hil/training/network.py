"""The differential perceptron on a crossbar (ARCHITECTURE.md section 1).

Neuron i uses the column pair (2i, 2i+1): logic weight ``W_ij = G_j,2i - G_j,2i+1``
(S), logic current ``I_i = I_2i - I_2i+1`` (A), output ``f_i = tanh(beta * I_i)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hil.training.config import TrainingConfig


def plus_col(neuron: int) -> int:
    """Column of the device that adds to neuron's weight (G+)."""
    return 2 * neuron


def minus_col(neuron: int) -> int:
    """Column of the device that subtracts from neuron's weight (G-)."""
    return 2 * neuron + 1


def logic_weights(g: NDArray[np.float64], n_inputs: int, n_outputs: int) -> NDArray[np.float64]:
    """Logic weights (S), shape (n_outputs, n_inputs), from a rows x cols conductance map."""
    used = g[:n_inputs, : 2 * n_outputs]
    return (used[:, 0::2] - used[:, 1::2]).T


def logic_currents(col_currents: NDArray[np.float64], n_outputs: int) -> NDArray[np.float64]:
    """Logic currents (A), ``I_2i - I_2i+1``, over the last axis of column currents."""
    used = col_currents[..., : 2 * n_outputs]
    return used[..., 0::2] - used[..., 1::2]


def activation(currents: NDArray[np.float64], beta: float) -> NDArray[np.float64]:
    """Neuron outputs ``tanh(beta * I)``."""
    return np.tanh(beta * currents)


def activation_slope(f: NDArray[np.float64], beta: float) -> NDArray[np.float64]:
    """``df/dI = beta * (1 - f**2)`` (1/A), from the outputs f."""
    return beta * (1.0 - f**2)


def in_band(f: NDArray[np.float64], targets: NDArray[np.int8], cfg: TrainingConfig) -> NDArray[np.bool_]:
    """True where an output is inside its target band: f > f+ for class 1, f < f- for class 0."""
    return np.where(targets == 1, f > cfg.f_plus, f < cfg.f_minus)


def target_values(targets: NDArray[np.int8], cfg: TrainingConfig) -> NDArray[np.float64]:
    """Target output values used in the error: ``target_high`` for class 1, ``target_low`` for 0."""
    return np.where(targets == 1, cfg.target_high, cfg.target_low)
