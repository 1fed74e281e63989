"""The Manhattan rule: one potentiating pulse per nonzero sign, nothing else.

Only potentiation is used: dW > 0 pulses G+ of the pair once, dW < 0 pulses G-.
A saturated device is pulsed all the same (the rule does not look): the update
is then lost. Batch (the reference) or online, see :mod:`.sign_update`; the
batch update also has a batched form for emulated batches of crossbars.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.seam import Pulse
from crossbar_hil.training.device_access import DeviceAccess
from crossbar_hil.training.network import minus_col, plus_col, target_values
from crossbar_hil.training.rules.base import BatchEpochContext, BatchPulses
from crossbar_hil.training.rules.sign_update import SignRule, manhattan_signs

__all__ = ["Manhattan", "manhattan_signs", "potentiation_pulses", "pulse_mask", "pulse_order"]


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


class Manhattan(SignRule):
    """Manhattan rule: one potentiating pulse per nonzero sign, sent as one batch."""

    name = "manhattan"

    def step(self, signs: NDArray[np.int8], device: DeviceAccess) -> None:
        cfg = self.config
        device.send(potentiation_pulses(signs, cfg.pulse_v, cfg.pulse_width_s))

    def batched_pulses(self, ctx: BatchEpochContext) -> BatchPulses:
        cfg = self.config
        if cfg.update != "batch":
            raise NotImplementedError(
                "rule 'manhattan' has a batched form for update='batch' only; train online "
                "updates one crossbar at a time with Trainer"
            )
        signs = manhattan_signs(
            ctx.row_voltages[:, : ctx.n_inputs],
            ctx.currents,
            target_values(ctx.targets, cfg),
            cfg.beta,
            ~ctx.in_band if cfg.ignore_in_band else None,
        )
        rows, cols = ctx.row_voltages.shape[1], ctx.cols
        return BatchPulses(pulse_mask(signs, rows, cols), pulse_order(rows, cols))
