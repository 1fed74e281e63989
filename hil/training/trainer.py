"""In-situ training of the differential perceptron on any :class:`CrossbarBackend`.

The trainer uses only backend operations: forward passes are VMMs on the
crossbar (:meth:`~CrossbarBackend.apply`), updates are pulses, and one
conductance read per epoch feeds the history. With the Manhattan rule (batch)
one epoch costs one VMM per training pattern, one batched pulse command and
one read-all; online updates add a VMM per pattern, and methods a, b, c add
resets and read-verify reads when a device saturates.

Ending: every training pattern inside its band (converged), the epoch limit,
a stop request (checked before any pulse is sent), or a fault. On a stop or a
fault the backend is aborted (0 V) and the history recorded so far is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from hil.seam import CrossbarBackend, Pulse
from hil.seam.errors import RunStopped
from hil.training.config import TrainingConfig
from hil.training.device_access import DeviceAccess, column_currents
from hil.training.history import EpochRecord, Evaluation, Outcome, TrainingResult
from hil.training.network import (
    activation,
    in_band,
    logic_currents,
    logic_weights,
    target_values,
)
from hil.training.observers import TrainingObserver
from hil.training.rules import EpochContext, make_rule
from hil.training.stop import StopSignal
from hil.training.task import Task

log = logging.getLogger(__name__)


class Trainer:
    """Runs one training of ``task`` on ``backend`` with ``config``."""

    def __init__(
        self,
        backend: CrossbarBackend,
        task: Task,
        config: TrainingConfig | None = None,
        observers: Iterable[TrainingObserver] = (),
        stop: StopSignal | None = None,
    ) -> None:
        self.backend = backend
        self.task = task
        self.config = config or TrainingConfig()
        self.observers = list(observers)
        self.stop = stop or StopSignal()
        info = backend.info
        if task.n_inputs > info.rows:
            raise ValueError(f"task has {task.n_inputs} inputs but the crossbar has {info.rows} rows")
        if 2 * task.n_outputs > info.cols:
            raise ValueError(
                f"task has {task.n_outputs} neurons, needing {2 * task.n_outputs} columns; "
                f"the crossbar has {info.cols}"
            )
        # Everything the run will send is checked once here, before the first operation.
        backend.check_pulse(Pulse(0, 0, self.config.pulse_v, self.config.pulse_width_s), "training pulse")
        info.limits.check_read_v("training.read_v", self.config.read_v)
        info.limits.check_read_v("task.v_low", task.v_low)
        info.limits.check_read_v("task.v_high", task.v_high)
        self._row_v = self._pad(task.voltages("train"))
        self._targets = task.targets("train")
        self.rule = make_rule(self.config)
        self.rule.check_backend(backend)

    # ------------------------------------------------------------------ run
    def run(self) -> TrainingResult:
        """Train until convergence, the epoch limit, a stop or a fault."""
        result = TrainingResult(outcome="max_epochs")
        for obs in self.observers:
            obs.on_start(self.task, self.config, self.backend.info.identity)
        try:
            result.outcome = self._loop(result.history)
            result.train = self.evaluate("train")
            if self.task.test:
                result.test = self.evaluate("test")
        except RunStopped as e:
            result.outcome, result.error_message = "stopped", str(e) + self._safe_abort()
        except Exception as e:
            log.error("training fault: %s", e)
            result.outcome = "fault"
            result.error_message = f"{type(e).__name__}: {e}" + self._safe_abort()
        except BaseException:  # Ctrl-C or interpreter exit: 0 V first, then let it through.
            self._safe_abort()
            raise
        for obs in self.observers:
            obs.on_end(result)
        return result

    def _loop(self, history: list[EpochRecord]) -> Outcome:
        cfg = self.config
        for epoch in range(cfg.max_epochs + 1):
            self.stop.check()
            record = self._measure(epoch)
            device = DeviceAccess(self.backend, self.stop, cfg.read_v, cfg.reset_time_s)
            try:
                if not record.converged and epoch < cfg.max_epochs:
                    ctx = EpochContext(record, self._row_v, self._targets, self.task.n_inputs, cfg)
                    self.rule.update(ctx, device)
            finally:
                # The record of the epoch is kept even when its update failed or was stopped.
                self._emit(history, record, device)
            if record.converged:
                return "converged"
        return "max_epochs"

    def _emit(self, history: list[EpochRecord], record: EpochRecord, device: DeviceAccess) -> None:
        sent = {
            "pulses": device.pulses,
            "reset_devices": tuple(device.reset_devices),
            "verify_pulses": device.verify_pulses,
            "reads": device.reads,
            "instrument_time_s": device.instrument_time_s,
        }
        done = EpochRecord(**{**record.__dict__, **sent})
        history.append(done)
        for obs in self.observers:
            obs.on_epoch(done)

    # ------------------------------------------------------------------ pieces
    def _measure(self, epoch: int) -> EpochRecord:
        """Forward pass of every training pattern on the crossbar and one conductance read."""
        cfg, task = self.config, self.task
        currents = self._logic_currents(self._row_v)
        f = activation(currents, cfg.beta)
        g = self.backend.read_conductances(cfg.read_v)
        err = 0.5 * float(np.mean((target_values(self._targets, cfg) - f) ** 2))
        return EpochRecord(
            epoch=epoch,
            conductances_siemens=g,
            weights_siemens=logic_weights(g, task.n_inputs, task.n_outputs),
            currents_a=currents,
            activations=f,
            in_band=in_band(f, self._targets, cfg),
            error=err,
        )

    def evaluate(self, split: str = "test") -> Evaluation:
        """Outputs of the network on ``split``, measured with VMMs on the backend."""
        v = self._pad(self.task.voltages(split))
        f = activation(self._logic_currents(v), self.config.beta)
        targets = self.task.targets(split)
        return Evaluation(self.task.patterns(split), targets, f, in_band(f, targets, self.config))

    def _logic_currents(self, row_v: NDArray[np.float64]) -> NDArray[np.float64]:
        return logic_currents(column_currents(self.backend, row_v), self.task.n_outputs)

    def _pad(self, v: NDArray[np.float64]) -> NDArray[np.float64]:
        """Row voltages for the whole crossbar: unused rows at 0 V."""
        out = np.zeros((v.shape[0], self.backend.info.rows))
        out[:, : v.shape[1]] = v
        return out

    def _safe_abort(self) -> str:
        """Outputs to 0 V; returns "" or, when that could not be confirmed, a warning to report."""
        try:
            self.backend.abort()
        except Exception as e:  # The link may be the thing that failed.
            log.error("abort after stop/fault failed: %s", e)
            return (
                f"; WARNING: the abort (outputs to 0 V) could not be confirmed ({type(e).__name__}: {e})"
                " - check the instrument"
            )
        return ""


def train(
    backend: CrossbarBackend,
    task: Task,
    config: TrainingConfig | None = None,
    observers: Sequence[TrainingObserver] = (),
    stop: StopSignal | None = None,
) -> TrainingResult:
    """One-call form of :class:`Trainer` for scripts."""
    return Trainer(backend, task, config, observers, stop).run()
