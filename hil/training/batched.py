"""Many complete trainings at once, on a batch of independent crossbars.

The loop is :class:`~crossbar_hil.training.trainer.Trainer`'s, epoch for epoch, with a
leading batch axis: a forward pass of every training pattern, one conductance
read, the rule's update (its batched form, :meth:`UpdateRule.batched_pulses`),
until every pattern is in its band, the devices stopped moving (patience) or the
epoch limit. Crossbar b of the batch
follows exactly the trajectory a single Trainer run on crossbar b would.

The batch is anything with the :class:`BatchedCrossbars` methods (the emulator's
:class:`crossbar_hil.emulator.batched.CrossbarBatch`); this module needs arrays only. It is for
emulated Monte-Carlo studies: there is no stop signal, no fault handling and no
per-pulse limit check as on hardware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.network import activation, in_band, logic_currents, target_values
from crossbar_hil.training.rules import make_rule
from crossbar_hil.training.rules.base import BatchEpochContext
from crossbar_hil.training.stop import StallWatch
from crossbar_hil.training.task import Task


class BatchedCrossbars(Protocol):
    """B independent crossbars. ``members`` (B,) selects the crossbars that take part."""

    @property
    def batch_size(self) -> int:
        """Number of crossbars B."""
        ...

    @property
    def rows(self) -> int:
        """Rows of each crossbar."""
        ...

    @property
    def cols(self) -> int:
        """Columns of each crossbar."""
        ...

    def apply(
        self, row_v: NDArray[np.float64], members: NDArray[np.bool_] | None = None
    ) -> NDArray[np.float64]:
        """Column currents (A), (B, N, cols), for the N row-voltage vectors ``row_v`` (N, rows) V."""
        ...

    def read_conductances(self, members: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
        """Conductances (S) as read, (B, rows, cols)."""
        ...

    def potentiate(self, mask: NDArray[np.bool_], amplitude_v: float, order: NDArray[np.intp]) -> None:
        """One pulse of ``amplitude_v`` V on each device of ``mask`` (B, rows, cols), sent in ``order``.

        ``order``: flat device indices (row * cols + col) in sending order.
        """
        ...


@dataclass(frozen=True)
class BatchHistory:
    """Per-epoch records of every crossbar, with a leading epoch axis (E = max_epochs + 1).

    Entries after a crossbar's last epoch (``epoch > epochs[b]``) repeat nothing
    meaningful: mask them with :meth:`BatchResult.recorded`.
    """

    conductances_siemens: NDArray[np.float64]
    """(E, B, rows, cols) S, read at the start of each epoch."""
    currents_a: NDArray[np.float64]
    """(E, B, N, n_outputs) logic currents, A."""
    activations: NDArray[np.float64]
    """(E, B, N, n_outputs)."""
    in_band: NDArray[np.bool_]
    """(E, B, N, n_outputs)."""
    error: NDArray[np.float64]
    """(E, B) half mean squared error against the target values."""
    pulses: NDArray[np.int64]
    """(E, B) pulses sent in each epoch."""


@dataclass(frozen=True)
class BatchResult:
    """How each of B trainings ended."""

    converged: NDArray[np.bool_]
    """(B,) every training pattern reached its band."""
    epochs: NDArray[np.int64]
    """(B,) update epochs performed (as :attr:`TrainingResult.epochs`)."""
    pulses: NDArray[np.int64]
    """(B,) pulses sent over the run."""
    conductances_siemens: NDArray[np.float64]
    """(B, rows, cols) S, the last read of each run."""
    history: BatchHistory | None = None
    stalled: NDArray[np.bool_] | None = None
    """(B,) the run ended because its devices stopped moving (patience); None: none did."""

    @property
    def outcomes(self) -> list[str]:
        """Per crossbar: "converged", "stalled" or "max_epochs"."""
        stalled = self.stalled if self.stalled is not None else np.zeros_like(self.converged)
        return [
            "converged" if c else "stalled" if st else "max_epochs"
            for c, st in zip(self.converged, stalled, strict=True)
        ]

    def recorded(self) -> NDArray[np.bool_]:
        """(E, B): True where epoch e was part of run b."""
        assert self.history is not None, "run with record_history=True"
        e = np.arange(self.history.error.shape[0])[:, None]
        return e <= self.epochs[None, :]


def train_batch(
    crossbars: BatchedCrossbars,
    task: Task,
    config: TrainingConfig | None = None,
    record_history: bool = False,
) -> BatchResult:
    """Train every crossbar of the batch on ``task``; see the module docstring.

    Raises :class:`NotImplementedError` naming the rule when ``config.rule`` has
    no batched form, and naming the field for a configuration whose single run it
    would not reproduce (train those with :class:`~crossbar_hil.training.trainer.Trainer`).
    Not reproduced: a device curve (``device_curve_siemens``: the single run's check
    before training reads the crossbar once more and, with ``gain="calibrated"``,
    changes beta). Both start states are reproduced on a fresh batch: its devices
    are at their reset state, where the single run's start-state reset leaves them.
    """
    cfg = config or TrainingConfig()
    if cfg.device_curve_siemens is not None:
        raise NotImplementedError(
            f"train_batch does not reproduce training.device_curve_siemens (gain={cfg.gain!r}): the "
            "check before training (a read, the calibrated gain) has no batched form; train such "
            "configurations one crossbar at a time with Trainer"
        )
    rule = make_rule(cfg)
    n_b, n_out = crossbars.batch_size, task.n_outputs
    if task.n_inputs > crossbars.rows or 2 * n_out > crossbars.cols:
        raise ValueError(
            f"task needs {task.n_inputs} rows and {2 * n_out} columns; "
            f"the crossbars have {crossbars.rows} x {crossbars.cols}"
        )
    row_v = np.zeros((len(task.train), crossbars.rows))
    row_v[:, : task.n_inputs] = task.voltages("train")
    targets = task.targets("train")
    wanted = target_values(targets, cfg)

    running = np.ones(n_b, dtype=bool)
    converged = np.zeros(n_b, dtype=bool)
    stalled = np.zeros(n_b, dtype=bool)
    watch = StallWatch(cfg.patience, cfg.stall_rel_tol)
    epochs = np.full(n_b, cfg.max_epochs, dtype=np.int64)
    pulses = np.zeros(n_b, dtype=np.int64)
    last_g = np.zeros((n_b, crossbars.rows, crossbars.cols))
    records: list[tuple[NDArray, ...]] = []
    for epoch in range(cfg.max_epochs + 1):
        members = None if running.all() else running
        currents = logic_currents(crossbars.apply(row_v, members), n_out)
        f = activation(currents, cfg.beta)
        g = crossbars.read_conductances(members)
        np.copyto(last_g, g, where=running[:, None, None])
        band = in_band(f, targets, cfg)
        done = running & band.all(axis=(1, 2))
        stuck = running & ~done & watch.still(g).all(axis=(1, 2)) if cfg.patience else np.zeros_like(done)
        update = running & ~done & ~stuck
        sent = np.zeros(n_b, dtype=np.int64)
        if epoch < cfg.max_epochs and update.any():
            ctx = BatchEpochContext(currents, f, band, row_v, targets, task.n_inputs, crossbars.cols, cfg)
            step = rule.batched_pulses(ctx)
            mask = step.mask & update[:, None, None]
            crossbars.potentiate(mask, cfg.pulse_v, step.order)
            sent = np.count_nonzero(mask.reshape(n_b, -1), axis=1)
        pulses += sent
        if record_history:
            err = 0.5 * np.mean((wanted - f) ** 2, axis=(1, 2))
            records.append((g, currents, f, band, err, sent))
        converged |= done
        stalled |= stuck
        epochs[done | stuck] = epoch
        running &= ~(done | stuck)
        if not running.any():
            break
    history = None
    if record_history:
        history = _stack(records, cfg.max_epochs + 1)
    return BatchResult(converged, epochs, pulses, last_g, history, stalled)


def _stack(records: list[tuple[NDArray, ...]], n_epochs: int) -> BatchHistory:
    """The per-epoch records as arrays with a leading epoch axis, padded to ``n_epochs``."""
    arrays = [np.stack(field) for field in zip(*records, strict=True)]
    pad = n_epochs - len(records)
    if pad:
        arrays = [np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]) for a in arrays]
    return BatchHistory(*arrays)
