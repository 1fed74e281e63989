"""A run of this process kept in the run store as the service keeps its runs: ``hil train``.

One store for every run, as QCoDeS keeps every measurement: a bench run started from a
terminal is listed by ``hil runs`` and the service beside the service's own, with its status,
epochs, pulse log, events, outcome and the settings it used. It is recorded by the steps a
service's worker takes (:func:`~crossbar_hil.runs.execute.recorded`, ``begin``, ``ended``,
``finish``: the same :class:`~crossbar_hil.runs.recorder.StoreRecorder` and
:class:`~crossbar_hil.runs.control.RunControl`), so ``hil runs stop``, ``pause`` and ``resume``
and the service's stop act on it too (read from the store every 0.2 s).

One run per instrument: the run is created (:meth:`LocalRun.reserve`) before the instrument is
opened, and the store refuses to create it while a live process (the service's worker, another
``hil train``) holds the same instrument (atomically: :meth:`RunStore.create_run` ``exclusive``),
so nothing is sent to an instrument another run drives; a reservation that does not go (the
instrument does not answer, the config does not fit it) is withdrawn. A run
left active by a process that is gone (SIGKILL) is marked ``interrupted`` when the store is
opened here (:meth:`RunStore.recover`). A latched emergency stop refuses the run too.

**When the store cannot be used** (busy beyond :data:`BUSY_TIMEOUT_S`, damaged, unwritable),
the training still runs and its files are still written: recording stops, said in one line.
A run whose recording stopped midway is marked ``interrupted`` (``stopped`` when it was stopped;
its epochs so far kept, the gap said in its error) if the store takes that last write, else
``interrupted`` by the next open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from crossbar_hil.procedures.training import CalibrationLookup, TrainingRun
from crossbar_hil.runs.calibrations import Calibrations
from crossbar_hil.runs.control import RunControl
from crossbar_hil.runs.errors import InstrumentBusy, RunRefused
from crossbar_hil.runs.execute import Recorded, RunEnd, begin, ended, finish, recorded
from crossbar_hil.runs.manager import EMULATOR, ESTOP_SETTING, instrument_key, queue_key
from crossbar_hil.runs.owner import Liveness, Owner, judge
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import Run, RunNotFound, RunStore, StoreError
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import Outcome
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.stop import StopSignal

BUSY_TIMEOUT_S = 5.0
"""How long (s) a write waits for another writer's lock before recording gives up (the service's
writes take milliseconds; a training never waits longer than this per epoch for its record)."""

STORE_FAILURES: tuple[type[BaseException], ...] = (sqlite3.Error, StoreError, OSError)
"""What a store that cannot be used raises: locked, damaged, read-only, a full disk."""


class NotStarted(RunRefused):
    """The run may not start: its instrument is held by another live run, or the emergency stop
    is latched; the message says which, and what to do."""


def _one_line(error: BaseException) -> str:
    text = str(error) if isinstance(error, StoreError) else f"{type(error).__name__}: {error}"
    return " ".join(text.split())


class LocalRun:
    """Run of ``config`` in this process, recorded in ``store``; ``warn`` says, in one line each,
    why it is not (or no longer) recorded."""

    def __init__(self, store: RunStore, config: RunConfig, stop: StopSignal, warn: Callable[[str], None]):
        self.store = store
        self.config = config
        self.stop = stop
        self.warn = warn
        self.queue = queue_key(config.backend)
        self.run: Run | None = None
        """The run in the store, once created (:meth:`begin`)."""
        self.lost: str | None = None
        """Why recording stopped midway, if it did."""
        self.early: RunEnd | None = None
        """Its end, when it was stopped (or ended) before it began: then nothing is to be sent."""
        self._wired: Recorded | None = None
        self._exit = ExitStack()

    @classmethod
    def open(
        cls, path: Path, config: RunConfig, stop: StopSignal, warn: Callable[[str], None]
    ) -> LocalRun | None:
        """The run's record in the store at ``path`` (created if need be); None, after saying why,
        when the store cannot be used (the run then goes on unrecorded)."""
        store: RunStore | None = None
        try:
            store = RunStore(path, busy_timeout_s=BUSY_TIMEOUT_S)
            store.recover()  # Runs left active by a process that is gone (SIGKILL): interrupted.
        except STORE_FAILURES as e:
            if store is not None:
                store.close()
            warn(f"not recorded: the run store {path} cannot be used ({_one_line(e)}); {GOES_ON}")
            return None
        return cls(store, config, stop, warn)

    # ------------------------------------------------------------------ admission
    def reserve(self) -> NotStarted | None:
        """Create the run before its instrument is opened, holding the instrument; why it may not
        start instead (a latched emergency stop, its instrument held by another live run). A store
        that fails here stops recording, not the run."""
        try:
            latched = self.store.get_setting(ESTOP_SETTING)
            if latched is not None:
                return NotStarted(
                    f"the emergency stop is latched (since {latched.get('at')}: {latched.get('reason')}); "
                    "clear it (hil estop --clear) before starting a run"
                )
            held = None if self.queue == EMULATOR else self.store.holder(self.queue)  # Also this process's.
            if held is not None:
                return _busy(held)
            self.run = self.store.create_run(
                self.config,
                instrument=instrument_key(self.config.backend),
                queue=self.queue,
                exclusive=self.queue != EMULATOR,
            )
        except InstrumentBusy as e:
            try:
                return _busy(self.store.get_run(e.run_id))
            except (sqlite3.Error, StoreError, OSError, RunNotFound) as unread:
                return NotStarted(
                    f"instrument {e.instrument!r} is in use by run {e.run_id} (its record cannot be read: "
                    f"{_one_line(unread)}): wait for it to end, or see hil runs show {e.run_id}"
                )
        except STORE_FAILURES as e:
            self._lose(e)
        return None

    def begin(self, backend: CrossbarBackend) -> CrossbarBackend:
        """Mark the reserved run ``running`` and wire ``backend`` for the store; returns the backend
        to train on (``backend`` itself when the store failed). When the run was stopped since
        its reservation, :attr:`early` says how it ended: train nothing, :meth:`end` it."""
        if self.lost is not None or self.run is None:  # The store failed at the admission already.
            return backend
        control = RunControl(self.store, self.run.id, self.stop)
        self._wired = self._exit.enter_context(
            recorded(self.store, self.run.id, self.config, backend, control)
        )
        try:  # Stopped meanwhile: its stop is set, and nothing is to be sent.
            self.early = begin(self.store, self.run.id, self._wired)
        except STORE_FAILURES as e:
            self._lose(e)
        return self._wired.backend

    # ------------------------------------------------------------------ during the run
    @property
    def observers(self) -> list[TrainingObserver]:
        """The recorder and the control, each stopping the recording (not the run) if the store fails."""
        return [] if self._wired is None else [_Guarded(o, self) for o in self._wired.observers]

    def calibrations(self) -> CalibrationLookup | None:
        """The store's newest-calibration lookup (``hil characterize --all`` keeps them here)."""
        return None if self.lost is not None else Calibrations(self.store).newest

    def _lose(self, error: BaseException) -> None:
        """Stop recording (once), saying why; the training goes on."""
        if self.lost is not None:
            return
        self.lost = _one_line(error)
        where = "" if self.run is None else f" (run {self.run.id})"
        self.warn(f"recording in the run store {self.store.path}{where} stopped: {self.lost}; {GOES_ON}")
        if self._wired is not None:
            self._wired.backend.remove_listener(self._wired.recorder)
            self._wired.control.close()

    # ------------------------------------------------------------------ the end
    def end(self, run: TrainingRun | None, error: str | None = None) -> None:
        """Record how the run ended, once its backend is closed: as ``run`` says (its settings kept),
        or, without one, stopped when it was stopped, else failed with ``error``."""
        self._exit.close()
        if self.run is None:
            return
        try:
            if self.early is not None:  # Stopped before it began: as begin() said.
                finish(self.store, self.run.id, self.early)
            elif self.lost is not None:  # Its history here has a gap: said; a stopped run stays stopped.
                gap = f"recording stopped midway ({self.lost}); the run went on: see its files"
                stopped = self.stop.is_set if run is None else run.result.outcome is Outcome.STOPPED
                if stopped:
                    finish(self.store, self.run.id, RunEnd.of(Outcome.STOPPED, f"{self.stop.reason}; {gap}"))
                else:
                    self.store.transition(self.run.id, RunStatus.INTERRUPTED, error=gap)
            elif run is not None:
                finish(self.store, self.run.id, ended(self.store, self.run.id, run))
            elif self.stop.is_set:
                finish(self.store, self.run.id, RunEnd.of(Outcome.STOPPED, self.stop.reason))
            else:
                finish(self.store, self.run.id, RunEnd.of(Outcome.FAULT, error or "ended without a result"))
        except STORE_FAILURES as e:
            self.warn(
                f"the end of run {self.run.id} is not recorded ({_one_line(e)}); the next open marks it"
            )
        except ValueError as e:  # Ended already (a transition the table refuses): nothing more to add.
            self.warn(f"the end of run {self.run.id} is not recorded: {e}")

    def close(self) -> None:
        """Withdraw the run if it never began (its instrument could not be opened or checked), and
        close the store's connections."""
        self._exit.close()
        if self.run is not None and self._wired is None and self.lost is None:
            try:
                self.store.withdraw(self.run.id, self.stop.reason or "stopped before it began")
            except STORE_FAILURES as e:
                self.warn(
                    f"run {self.run.id} could not be withdrawn ({_one_line(e)}); the next open marks it"
                )
        self.store.close()


GOES_ON = "the training goes on and its files are written"


def _busy(held: Run) -> NotStarted:
    who = Owner.parse(held.owner)
    if judge(held.owner) is Liveness.ALIVE:
        what = "wait for it to end" if held.status is RunStatus.STOPPING else "wait for it to end, or stop it"
        todo = f"{what} (hil runs stop {held.id})"
    else:  # Nothing here is seen acting on it: a stop alone may never end it.
        todo = (
            f"{who.describe()} cannot be seen from here (another host, or recorded without its start "
            f"time): if it still runs, stop the run there; if it is gone, release the instrument "
            f"(hil runs stop --force {held.id})"
        )
    return NotStarted(
        f"instrument {held.instrument or held.queue!r} is in use by run {held.id} ({held.status}, "
        f"{who.describe()}): {todo}"
    )


class _Guarded(TrainingObserver):
    """``inner``, whose store failures stop ``owner``'s recording instead of the run."""

    def __init__(self, inner: TrainingObserver, owner: LocalRun) -> None:
        self.inner = inner
        self.owner = owner

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self.owner.lost is None:
            try:
                getattr(self.inner, method)(*args, **kwargs)
            except STORE_FAILURES as e:
                self.owner._lose(e)

    def on_start(self, *args: Any, **kwargs: Any) -> None:
        self._call("on_start", *args, **kwargs)

    def on_epoch(self, record: Any) -> None:
        self._call("on_epoch", record)

    def on_end(self, result: Any) -> None:
        self._call("on_end", result)
