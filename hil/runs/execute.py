"""Executing one stored run: the same steps in the manager's thread or in a process of its own.

:func:`execute` marks the run ``running`` (:func:`begin`), calls
:func:`crossbar_hil.procedures.training.run_training` with a
:class:`~crossbar_hil.runs.recorder.StoreRecorder` and a :class:`~crossbar_hil.runs.control.RunControl`
(the backend wrapped in a :class:`~crossbar_hil.runs.control.ControlledBackend` for pause and
suspend, the recorder listening to its pulses and resets for the pulse log:
:meth:`~crossbar_hil.seam.CrossbarBackend.add_listener`) and says how it ended. The backend
is closed (0 V) whatever happens, before the end is recorded (:func:`finish`). ``hil train``
records its run with the same steps (:func:`recorded`, :func:`begin`, :func:`ended`,
:func:`finish`): :mod:`crossbar_hil.runs.local`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from crossbar_hil.procedures.training import TrainingRun, run_training
from crossbar_hil.runs.calibrations import Calibrations
from crossbar_hil.runs.control import STORE_STOP, ControlledBackend, RunControl
from crossbar_hil.runs.recorder import StoreRecorder
from crossbar_hil.runs.status import RunStatus, TransitionError, status_of_outcome
from crossbar_hil.runs.store import RunStore
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import Outcome
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.stop import StopSignal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunEnd:
    """How a run ended, to be recorded (by :func:`finish`) once its instrument is released."""

    status: RunStatus
    fields: dict[str, Any]

    @classmethod
    def of(cls, outcome: Outcome, error: str | None, **more: Any) -> RunEnd:
        """The end of a run whose training ended with ``outcome``: its status follows from it."""
        return cls(status_of_outcome(outcome), {"outcome": outcome, "error": error, **more})


@dataclass(frozen=True)
class Recorded:
    """A stored run's wiring around its open backend: what the training uses and observes."""

    backend: ControlledBackend
    """The backend to train on: paused and suspended as the run's control says, its pulses and
    resets heard by the recorder (the pulse log)."""
    recorder: StoreRecorder
    control: RunControl

    @property
    def observers(self) -> list[TrainingObserver]:
        """The recorder, then the control (a pause after the epoch comes once the epoch is committed)."""
        return [self.recorder, self.control]


@contextmanager
def recorded(
    store: RunStore,
    run_id: str,
    config: RunConfig,
    backend: CrossbarBackend,
    control: RunControl,
    reopen: Callable[[], CrossbarBackend] | None = None,
) -> Iterator[Recorded]:
    """Run ``run_id``'s backend wired for the store (the same for a service's worker and ``hil
    train``); on exit the control's poll ends and the backend is closed (0 V, released)."""
    recorder = StoreRecorder(store, run_id)
    control.read_v = config.training.read_v
    control.flush = recorder.flush
    controlled = ControlledBackend(backend, control, reopen)
    controlled.add_listener(recorder)
    try:
        yield Recorded(controlled, recorder, control)
    finally:
        control.close()
        controlled.remove_listener(recorder)
        controlled.close()  # 0 V first; then the epochs still held (a run ended by an exception).
        control.flush_before_change()


def begin(store: RunStore, run_id: str, wired: Recorded) -> RunEnd | None:
    """Mark the run ``running`` (with its instrument's identity) and start reading its requests;
    the run's end instead when it was stopped (or ended) before it began: then nothing is sent."""
    stop = wired.control.stop
    try:
        store.transition(run_id, RunStatus.RUNNING, identity=wired.backend.info.identity)
    except TransitionError as e:
        # Stopped while queued (by this process or by `hil runs stop` from another): nothing
        # is sent, not even the start-state resets. The stop's reason is the stored one (the
        # service shutting down, an emergency stop), not a generic "stop requested".
        wired.control.sync()
        if not stop.is_set:
            stop.set(STORE_STOP)
        if e.current.finished:
            return RunEnd(e.current, {})
        return RunEnd.of(Outcome.STOPPED, stop.reason)
    wired.control.sync()
    wired.control.start_polling()
    return None


def ended(store: RunStore, run_id: str, run: TrainingRun) -> RunEnd:
    """Keep the settings ``run`` used (a calibrated gain included) and say how it ended."""
    store.record_settings(run_id, run.config)
    result = run.result
    return RunEnd.of(result.outcome, result.error_message, result=run.to_dict(with_history=False))


def execute(
    store: RunStore,
    run_id: str,
    config: RunConfig,
    backend: CrossbarBackend,
    control: RunControl | StopSignal,
    reopen: Callable[[], CrossbarBackend] | None = None,
) -> RunEnd:
    """Train run ``run_id`` on ``backend`` (open), recording it in ``store``, obeying ``control``
    (the requests stored for the run; its stop ends it early; a bare :class:`StopSignal` is read
    as the control of the run with that stop); ``reopen`` opens the instrument again after a link
    drop (None: a link error ends the run).

    The backend is closed (0 V, released) before this returns, whatever happened; the caller
    then records the end, so that a run seen finished never still holds its instrument.
    """
    if isinstance(control, StopSignal):
        control = RunControl(store, run_id, control)
    with recorded(store, run_id, config, backend, control, reopen) as wired:
        try:
            early = begin(store, run_id, wired)
            if early is not None:
                return early
            newest = Calibrations(store).newest
            run = run_training(
                config,
                backend=wired.backend,
                observers=wired.observers,
                stop=control.stop,
                calibrations=newest,
            )
            return ended(store, run_id, run)
        except Exception as e:
            log.exception("run %s failed", run_id)
            return RunEnd.of(Outcome.FAULT, f"{type(e).__name__}: {e}")


_HELD = (RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.SUSPENDED)
"""Statuses of a run whose worker holds its instrument."""


def finish(store: RunStore, run_id: str, end: RunEnd) -> None:
    """Record the end of a run (through ``stopping`` for a stop), if it is still active."""
    current = store.get_run(run_id).status
    if current is end.status and current.finished:  # Ended before it ran (e.g. interrupted).
        return
    if end.status is RunStatus.STOPPED and current in _HELD:
        store.transition(run_id, RunStatus.STOPPING)
    try:
        store.transition(run_id, end.status, **end.fields)
    except TransitionError:
        log.error("run %s: cannot record its end as %s (it is %s)", run_id, end.status, current)
