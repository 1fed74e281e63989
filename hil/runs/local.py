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
the training still runs: said in one line, with what keeps its history (the files asked for, or
nothing). A store that fails midway (busy for a while) costs no record: the epochs not committed
are kept and tried again (every :data:`~crossbar_hil.runs.recorder.RETRY_S`, each try waiting
:data:`RETRY_WAIT_S` for the lock) and at the end with the full wait; the run is recorded with its
real outcome and result. Only when the store still fails at the end (or more than
:data:`MOST_HELD_EPOCHS` epochs wait) is recording given up: the gap is said, in the run's error
when the store takes its end (a stopped run stays stopped), and on the terminal with what keeps
the history from that epoch (its files, or nothing: then it is lost). A run whose end the store
never took is marked ``interrupted`` by the next open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
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
from crossbar_hil.runs.recorder import StoreRecorder
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

RETRY_WAIT_S = 0.05
"""How long (s) a retried commit waits for the lock while the store is busy (the training is not
held up by a store someone keeps locked)."""

MOST_HELD_EPOCHS = 50_000
"""Most epochs kept for a store that keeps failing; past them recording gives up (the records are
the run's own history objects; their pulse logs are what this costs in memory)."""

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

    def __init__(
        self,
        store: RunStore,
        config: RunConfig,
        stop: StopSignal,
        warn: Callable[[str], None],
        files: Sequence[str] = (),
    ):
        self.store = store
        self.config = config
        self.stop = stop
        self.warn = warn
        self.files = list(files)
        """The files the run writes its history to (said when the store cannot keep it)."""
        self.queue = queue_key(config.backend)
        self.run: Run | None = None
        """The run in the store, once created (:meth:`begin`)."""
        self.lost: str | None = None
        """Why recording stopped midway, if it did."""
        self.early: RunEnd | None = None
        """Its end, when it was stopped (or ended) before it began: then nothing is to be sent."""
        self.lost_from: int | None = None
        """The first epoch recording stopped at (the stored history ends before it), if it did."""
        self.behind: str | None = None
        """Why the epochs held are not committed yet (a store that fails for now), while it fails."""
        self._wired: Recorded | None = None
        self._exit = ExitStack()

    @classmethod
    def open(
        cls,
        path: Path,
        config: RunConfig,
        stop: StopSignal,
        warn: Callable[[str], None],
        files: Sequence[str] = (),
    ) -> LocalRun | None:
        """The run's record in the store at ``path`` (created if need be); None, after saying why
        (and what keeps its history: ``files``, or nothing), when the store cannot be used (the run
        then goes on unrecorded)."""
        store: RunStore | None = None
        try:
            store = RunStore(path, busy_timeout_s=BUSY_TIMEOUT_S)
            store.recover()  # Runs left active by a process that is gone (SIGKILL): interrupted.
        except STORE_FAILURES as e:
            if store is not None:
                store.close()
            warn(f"not recorded: the run store {path} cannot be used ({_one_line(e)}); {goes_on(files)}")
            return None
        return cls(store, config, stop, warn, files)

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
        control.tell = self.warn  # Paused, resumed, suspended, reconnected: said on the terminal.
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

    def _held(self) -> list[int]:
        """Epochs heard but not committed yet."""
        return [] if self._wired is None or self.lost is not None else self._wired.recorder.unsaved

    def _held_back(self, error: BaseException) -> None:
        """The recorder's commit failed: its epochs are kept and tried again (said once); past
        :data:`MOST_HELD_EPOCHS` recording gives up."""
        held = self._held()
        if len(held) > MOST_HELD_EPOCHS:
            self._lose(error)
            return
        if self.behind is None:
            self.behind = _one_line(error)
            self.store.set_busy_timeout(RETRY_WAIT_S)
            self.warn(
                f"recording in the run store {self.store.path}{self._which} is behind from epoch "
                f"{held[0] if held else '?'} ({self.behind}); the training goes on, its records are kept "
                "and tried again"
            )

    def _caught_up(self) -> None:
        """The epochs held back are committed: said, and writes wait the full time again."""
        if self.behind is not None and not self._held():
            self.behind = None
            self.store.set_busy_timeout(BUSY_TIMEOUT_S)
            self.warn(f"recording in the run store{self._which} caught up: no epoch lost")

    @property
    def _which(self) -> str:
        return "" if self.run is None else f" (run {self.run.id})"

    def _lose(self, error: BaseException) -> None:
        """Stop recording (once), saying why and what keeps the history from here; the training goes on."""
        if self.lost is not None:
            return
        if self._wired is not None:
            self.lost_from = self._wired.recorder.first_unsaved
        self.lost = _one_line(error)
        self.warn(
            f"recording in the run store {self.store.path}{self._which} stopped"
            f"{'' if self.lost_from is None else f' at epoch {self.lost_from}'}: {self.lost}; "
            f"{goes_on(self.files, self.lost_from)}"
        )
        if self._wired is not None:
            self._wired.backend.remove_listener(self._wired.recorder)
            self._wired.control.flush = _nothing
            self._wired.control.close()

    @property
    def gap(self) -> str | None:
        """What the stored history lacks, for the run's error: None when it lacks nothing."""
        if self.lost is None:
            return None
        since = "" if self.lost_from is None else f"; the stored history ends before epoch {self.lost_from}"
        kept = f": see its files ({', '.join(self.files)})" if self.files else " (no files were written)"
        return f"recording stopped midway ({self.lost}){since}{kept}"

    # ------------------------------------------------------------------ the end
    def end(self, run: TrainingRun | None, error: str | None = None) -> None:
        """Record how the run ended, once its backend is closed: as ``run`` says (its settings and
        result kept), or, without one, stopped when it was stopped, else failed with ``error``;
        the epochs still held are committed first (with the store's full wait), any gap said in
        the run's error."""
        if self._wired is not None:
            self._wired.control.flush = _nothing  # Committed below, with the full wait.
        self._exit.close()
        if self.run is None:
            return
        try:
            self.store.set_busy_timeout(BUSY_TIMEOUT_S)
            if self._wired is not None and self.lost is None and self.early is None:
                self._wired.recorder.on_end(None)  # What is held, and what was sent after the last epoch.
                self._caught_up()
        except STORE_FAILURES as e:
            self._lose(e)
        try:
            if self.early is not None:  # Stopped before it began: as begin() said.
                finish(self.store, self.run.id, self.early)
            elif run is not None:
                end = ended(self.store, self.run.id, run)
                finish(self.store, self.run.id, _with_gap(end, self.gap))
            elif self.stop.is_set:
                finish(
                    self.store, self.run.id, RunEnd.of(Outcome.STOPPED, _joined(self.stop.reason, self.gap))
                )
            else:
                why = _joined(error or "ended without a result", self.gap)
                finish(self.store, self.run.id, RunEnd.of(Outcome.FAULT, why))
        except STORE_FAILURES as e:
            lost = "" if self.lost_from is None else f"; {goes_on(self.files, self.lost_from, going=False)}"
            self.warn(
                f"the end of run {self.run.id} is not recorded ({_one_line(e)}); the next open marks it "
                f"interrupted{lost}"
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


def goes_on(files: Sequence[str], lost_from: int | None = None, *, going: bool = True) -> str:
    """What keeps a run's history that the store does not (from epoch ``lost_from``): its files, or
    nothing (then it says plainly that the history is lost)."""
    if files:
        return "the training goes on and its files are written" if going else "its files have it"
    lost = "its history" if lost_from is None else f"its history from epoch {lost_from}"
    said = f"no files were asked for (--json, --plots): {lost} is lost"
    return f"the training goes on; {said}" if going else said


def _joined(first: str | None, gap: str | None) -> str | None:
    return "; ".join(x for x in (first, gap) if x) or None


def _with_gap(end: RunEnd, gap: str | None) -> RunEnd:
    """``end`` with the stored history's gap said in its error."""
    if gap is None:
        return end
    return RunEnd(end.status, {**end.fields, "error": _joined(end.fields.get("error"), gap)})


def _nothing() -> None:
    """Recording stopped: nothing held to commit."""


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
                if isinstance(self.inner, StoreRecorder):
                    self.owner._held_back(e)  # Its records are kept and tried again.
                else:
                    self.owner._lose(e)
            else:
                if isinstance(self.inner, StoreRecorder):
                    self.owner._caught_up()

    def on_start(self, *args: Any, **kwargs: Any) -> None:
        self._call("on_start", *args, **kwargs)

    def on_epoch(self, record: Any) -> None:
        self._call("on_epoch", record)

    def on_end(self, result: Any) -> None:
        self._call("on_end", result)
