"""Sign-only updates, online or batch: the loop every rule of this package shares.

For pattern n: ``delta_i(n) = (t_i(n) - f_i(n)) * f'(I_i(n))`` and
``Delta_ij(n) = delta_i(n) * V_j(n)``. A rule then changes each logic weight by
one conductance step in the direction ``dW_ij``:

* ``batch``: ``dW_ij = sgn(sum_n Delta_ij(n))``, once per epoch, from the
  forward pass made at the start of the epoch;
* ``online``: ``dW_ij = sgn(Delta_ij(n))`` after each pattern n, each from a
  forward pass of pattern n on the crossbar made just before (the epoch's own
  forward pass is reused while nothing has been sent since it).

What "one step in direction dW" means on the devices is the rule's
:meth:`SignRule.step`.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.training.device_access import DeviceAccess
from crossbar_hil.training.network import (
    activation,
    in_band,
    log_activation_slope,
    logic_currents,
    target_values,
)
from crossbar_hil.training.rules.base import EpochContext, UpdateRule


def manhattan_signs(
    voltages: NDArray[np.float64],
    currents: NDArray[np.float64],
    target_values: NDArray[np.float64],
    beta: float,
    active: NDArray[np.bool_] | None = None,
) -> NDArray[np.int8]:
    """Sign of the summed update per logic weight, shape (..., n_outputs, n_inputs), in {-1, 0, 1}.

    ``voltages`` (N, n_inputs) V; ``currents`` (..., N, n_outputs) logic currents (A),
    measured, with any leading batch axes (one per crossbar); ``target_values``
    (N, n_outputs) or broadcastable; ``active`` (..., N, n_outputs) masks the
    (pattern, neuron) pairs that contribute. The slope comes from the currents, and
    each neuron's deltas are scaled by one positive factor so that the largest is 1
    (which leaves the signs of the sums unchanged): exact signs at any gain, where
    ``beta * (1 - f**2)`` would be 0. The sum over patterns runs in pattern order, so
    a batch and a single crossbar give the same signs bit for bit.
    """
    err = target_values - activation(currents, beta)
    with np.errstate(divide="ignore"):
        log_mag = np.log(np.abs(err)) + log_activation_slope(currents, beta)
    if active is not None:
        log_mag = np.where(active, log_mag, -np.inf)
    top = np.max(log_mag, axis=-2, keepdims=True, initial=-np.inf)
    delta = np.sign(err) * np.exp(log_mag - np.where(np.isfinite(top), top, 0.0))
    total = delta[..., 0, :, None] * voltages[0]
    for n in range(1, voltages.shape[0]):
        total = total + delta[..., n, :, None] * voltages[n]
    return np.sign(total).astype(np.int8)


class SignRule(UpdateRule):
    """A rule that moves each logic weight by one step in the sign of its update."""

    def update(self, ctx: EpochContext, device: DeviceAccess) -> None:
        cfg = self.config
        self.begin_epoch(ctx, device)
        v = ctx.row_voltages[:, : ctx.n_inputs]
        t = target_values(ctx.targets, cfg)
        if cfg.update == "batch":
            active = ~ctx.record.in_band if cfg.ignore_in_band else None
            self._send(manhattan_signs(v, ctx.record.currents_a, t, cfg.beta, active), device)
            return
        n_outputs = ctx.targets.shape[1]
        for n in range(len(v)):
            if device.pulses == 0 and device.resets == 0:
                currents = ctx.record.currents_a[n : n + 1]
            else:
                currents = logic_currents(device.forward(ctx.row_voltages[n]), n_outputs)[None]
            f = activation(currents, cfg.beta)
            active = ~in_band(f, ctx.targets[n : n + 1], cfg) if cfg.ignore_in_band else None
            self._send(manhattan_signs(v[n : n + 1], currents, t[n : n + 1], cfg.beta, active), device)

    def _send(self, signs: NDArray[np.int8], device: DeviceAccess) -> None:
        if np.any(signs):
            self.step(signs, device)

    def begin_epoch(self, ctx: EpochContext, device: DeviceAccess) -> None:
        """Called once at the start of each update epoch, before any step (default: nothing)."""

    @abstractmethod
    def step(self, signs: NDArray[np.int8], device: DeviceAccess) -> None:
        """Move every logic weight (neuron i, input j) with ``signs[i, j] != 0`` one step that way."""
