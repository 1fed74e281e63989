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
from hil.training.rules.base import BatchEpochContext, BatchPulses, EpochContext, UpdateRule


def manhattan_signs(
    voltages: NDArray[np.float64],
    activations: NDArray[np.float64],
    target_values: NDArray[np.float64],
    beta: float,
    active: NDArray[np.bool_] | None = None,
) -> NDArray[np.int8]:
    """Sign of the summed update per logic weight, shape (..., n_outputs, n_inputs), in {-1, 0, 1}.

    ``voltages`` (N, n_inputs) V; ``activations`` (..., N, n_outputs) with any leading
    batch axes (one per crossbar); ``target_values`` (N, n_outputs) or broadcastable;
    ``active`` (..., N, n_outputs) masks the (pattern, neuron) pairs that contribute.
    The sum over patterns runs in pattern order, so a batch and a single crossbar
    give the same signs bit for bit.
    """
    delta = (target_values - activations) * activation_slope(activations, beta)
    if active is not None:
        delta = np.where(active, delta, 0.0)
    total = delta[..., 0, :, None] * voltages[0]
    for n in range(1, voltages.shape[0]):
        total = total + delta[..., n, :, None] * voltages[n]
    return np.sign(total).astype(np.int8)


def pulse_mask(signs: NDArray[np.int8], rows: int, cols: int) -> NDArray[np.bool_]:
    """Devices that the signs pulse once each, shape (..., rows, cols).

    ``signs`` (..., n_outputs, n_inputs): +1 pulses G+ of neuron i on row j (column
    :func:`plus_col`), -1 pulses G- (column :func:`minus_col`).
    """
    mask = np.zeros((*signs.shape[:-2], rows, cols), dtype=bool)
    n_out, n_in = signs.shape[-2:]
    by_row = np.swapaxes(signs, -1, -2)  # (..., n_inputs, n_outputs)
    mask[..., :n_in, plus_col(np.arange(n_out))] = by_row > 0
    mask[..., :n_in, minus_col(np.arange(n_out))] = by_row < 0
    return mask


def pulse_order(rows: int, cols: int) -> NDArray[np.intp]:
    """Flat device indices (row * cols + col) in the order the pulses of one epoch are sent.

    Neuron by neuron, then input row by row; the two devices of a pair share a place
    (at most one of them is pulsed).
    """
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.lexsort((c % 2, r, c // 2))


def potentiation_pulses(signs: NDArray[np.int8], amplitude_v: float, width_s: float) -> list[Pulse]:
    """One potentiating pulse per nonzero sign of one crossbar, in :func:`pulse_order`."""
    n_out, n_in = signs.shape
    rows, cols = n_in, 2 * n_out
    order = pulse_order(rows, cols)
    flat = order[pulse_mask(signs, rows, cols).ravel()[order]]
    return [Pulse(int(i // cols), int(i % cols), amplitude_v, width_s) for i in flat]


class Manhattan(UpdateRule):
    """Batch Manhattan rule: after each epoch, one potentiating pulse per nonzero summed sign."""

    name = "manhattan"

    def update(self, ctx: EpochContext, device: DeviceAccess) -> None:
        signs = self._signs(
            ctx.record.activations, ctx.record.in_band, ctx.row_voltages, ctx.targets, ctx.n_inputs
        )
        device.potentiate(potentiation_pulses(signs, self.config.pulse_v, self.config.pulse_width_s))

    def batched_pulses(self, ctx: BatchEpochContext) -> BatchPulses:
        signs = self._signs(ctx.activations, ctx.in_band, ctx.row_voltages, ctx.targets, ctx.n_inputs)
        rows, cols = ctx.row_voltages.shape[1], ctx.cols
        return BatchPulses(pulse_mask(signs, rows, cols), pulse_order(rows, cols))

    def _signs(
        self,
        activations: NDArray[np.float64],
        in_band: NDArray[np.bool_],
        row_voltages: NDArray[np.float64],
        targets: NDArray[np.int8],
        n_inputs: int,
    ) -> NDArray[np.int8]:
        """The update signs, for one crossbar or a batch (leading axes of the activations)."""
        cfg = self.config
        return manhattan_signs(
            row_voltages[:, :n_inputs],
            activations,
            target_values(targets, cfg),
            cfg.beta,
            ~in_band if cfg.ignore_in_band else None,
        )
