"""The Manhattan rule: one sign-only step per logic weight per epoch (batch).

For each training pattern n: ``delta_i(n) = (t_i(n) - f_i(n)) * f'(I_i(n))`` and
``Delta_ij(n) = delta_i(n) * V_j(n)``; then ``dW_ij = sgn(sum_n Delta_ij(n))``.
Only potentiation is used: dW > 0 pulses G+ of the pair once, dW < 0 pulses G-.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hil.seam import Pulse
from hil.training.device_access import DeviceAccess
from hil.training.network import activation_slope, minus_col, plus_col, target_values
from hil.training.rules.base import EpochContext, UpdateRule


def manhattan_signs(
    voltages: NDArray[np.float64],
    activations: NDArray[np.float64],
    target_values: NDArray[np.float64],
    beta: float,
    active: NDArray[np.bool_] | None = None,
) -> NDArray[np.int8]:
    """Sign of the summed update per logic weight, shape (n_outputs, n_inputs), in {-1, 0, 1}.

    ``voltages`` (N, n_inputs) V; ``activations`` and ``target_values`` (N, n_outputs);
    ``active`` (N, n_outputs) masks the (pattern, neuron) pairs that contribute.
    """
    delta = (target_values - activations) * activation_slope(activations, beta)
    if active is not None:
        delta = np.where(active, delta, 0.0)
    return np.sign(delta.T @ voltages).astype(np.int8)


def potentiation_pulses(signs: NDArray[np.int8], amplitude_v: float, width_s: float) -> list[Pulse]:
    """One potentiating pulse per nonzero sign: on G+ for +1, on G- for -1 (row = input j)."""
    neurons, rows = np.nonzero(signs)
    return [
        Pulse(int(j), plus_col(int(i)) if signs[i, j] > 0 else minus_col(int(i)), amplitude_v, width_s)
        for i, j in zip(neurons, rows, strict=True)
    ]


class Manhattan(UpdateRule):
    """Batch Manhattan rule: after each epoch, one potentiating pulse per nonzero summed sign."""

    name = "manhattan"

    def update(self, ctx: EpochContext, device: DeviceAccess) -> None:
        cfg = self.config
        active = ~ctx.record.in_band if cfg.ignore_in_band else None
        signs = manhattan_signs(
            ctx.row_voltages[:, : ctx.n_inputs],
            ctx.record.activations,
            target_values(ctx.targets, cfg),
            cfg.beta,
            active,
        )
        device.potentiate(potentiation_pulses(signs, cfg.pulse_v, cfg.pulse_width_s))
