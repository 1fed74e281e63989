"""The differential perceptron on a crossbar (ARCHITECTURE.md section 1).

Neuron i uses the column pair (2i, 2i+1): logic weight ``W_ij = G_j,2i - G_j,2i+1``
(S), logic current ``I_i = I_2i - I_2i+1`` (A), output ``f_i = tanh(beta * I_i)``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.training.config import TrainingConfig

IntOrArray = TypeVar("IntOrArray", int, NDArray[np.int_])
"""A neuron index, or an array of them (the column functions work on both)."""


def plus_col(neuron: IntOrArray) -> IntOrArray:
    """Column of the device that adds to neuron's weight (G+)."""
    return 2 * neuron


def minus_col(neuron: IntOrArray) -> IntOrArray:
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


def log_activation_slope(currents: NDArray[np.float64], beta: float) -> NDArray[np.float64]:
    """``log(df/dI)`` with ``df/dI = beta * sech(beta * I)**2``, from the currents I (A).

    ``sech(x)**2 = 4 e / (1 + e)**2`` with ``e = exp(-2 |x|)``, so the logarithm is
    ``log(4 beta) - 2 |x| - 2 log1p(e)``: finite at any gain and any current.
    """
    x = np.abs(beta * np.asarray(currents, dtype=float))
    return np.log(4.0 * beta) - 2.0 * x - 2.0 * np.log1p(np.exp(-2.0 * x))


def activation_slope(currents: NDArray[np.float64], beta: float) -> NDArray[np.float64]:
    """``df/dI = beta * sech(beta * I)**2`` (1/A), from the currents I (A).

    Computed from the current, not as the textbook ``beta * (1 - f**2)`` from the
    rounded output ``f``, which is exactly 0 once ``|beta I|`` passes about 19 and
    so silently drops saturated patterns from the update at high gain. (This form
    underflows only past ``|beta I|`` of about 370; the update rules work with
    :func:`log_activation_slope`, which never does.)
    """
    return np.exp(log_activation_slope(currents, beta))


def in_band(f: NDArray[np.float64], targets: NDArray[np.int8], cfg: TrainingConfig) -> NDArray[np.bool_]:
    """True where an output is inside its target band: f > f+ for class 1, f < f- for class 0."""
    return np.where(targets == 1, f > cfg.f_plus, f < cfg.f_minus)


def target_values(targets: NDArray[np.int8], cfg: TrainingConfig) -> NDArray[np.float64]:
    """Target output values used in the error: ``target_high`` for class 1, ``target_low`` for 0."""
    return np.where(targets == 1, cfg.target_high, cfg.target_low)
