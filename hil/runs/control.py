"""What a run's worker obeys while it holds the instrument: stop, pause, and a link that drops.

The requests are facts kept in the run store (one channel each: a ``stopping`` status, a
``pause_request``); :class:`RunControl` reads them (every :attr:`ControlTimes.poll_s`, and at
once when :meth:`RunControl.wake` is rung by the service) and acts on them in the run's own
thread, through :class:`ControlledBackend`, the backend the run uses:

* **pause** ``after_epoch``: once the epoch in flight is recorded (:meth:`RunControl.on_epoch`);
  ``now``: before the next operation sent to the instrument. A paused run holds its instrument
  at 0 V (ABOR), its status ``paused``; it keeps its process, its backend and its history. On
  resume it re-reads every conductance and goes on (status ``running``, change ``resumed``):
  the same run, the next epoch numbered after the last. Not resumed within
  :attr:`ControlTimes.pause_timeout_s`, it ends as stopped. A stop while paused ends it at once.
* **suspend**: an operation that fails on the link (:class:`~crossbar_hil.seam.errors.CommunicationError`:
  a timeout, a closed connection) suspends the run (status ``suspended``): the worker closes the
  link and opens a new backend with back-off until :attr:`ControlTimes.suspend_timeout_s`. The
  instrument must answer with the same identity, shape, limits and capabilities, else the run
  fails (:class:`InstrumentChanged`); then every conductance is re-read (status ``running``,
  change ``reconnected``) and the run goes on. A read or VMM cut by the drop is asked again; a
  pulse or reset command cut by the drop is *not* resent (it may or may not have reached the
  device: the reconnected event says so, and the re-read shows where the devices are). Past the
  time the run fails, its history kept.

Times are in seconds of the worker's monotonic clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

from crossbar_hil.runs.status import RunStatus, TransitionError
from crossbar_hil.runs.store import Change, PauseWhen, RunStore
from crossbar_hil.seam import BackendInfo, CrossbarBackend, Pulse
from crossbar_hil.seam.errors import CommunicationError, HilError
from crossbar_hil.training.history import EpochRecord
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.stop import StopSignal

log = logging.getLogger(__name__)

T = TypeVar("T")

STORE_STOP = "stop requested"

EPOCH_SYNC_S = 0.02
"""Least time (s) between two reads of the stored requests at epoch ends (a slower run reads them
after every epoch; a fast one, every few dozen epochs and at every poll)."""


class ControlTimes(BaseModel):
    """How long a run waits paused or suspended, and how it polls and retries (s)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    pause_timeout_s: float = Field(
        3600.0, gt=0, le=7 * 86400, description="A paused run not resumed within this long ends as stopped."
    )
    suspend_timeout_s: float = Field(
        300.0,
        ge=0,
        le=86400,
        description="How long a run whose link dropped retries the connection before it fails.",
    )
    retry_first_s: float = Field(
        0.25,
        gt=0,
        le=60,
        description="First wait between reconnection attempts (doubled each time, up to retry_most_s).",
    )
    retry_most_s: float = Field(5.0, gt=0, le=600, description="Longest wait between reconnection attempts.")
    poll_s: float = Field(0.2, gt=0, le=10, description="How often the stored requests are read.")


class InstrumentChanged(HilError):
    """After a reconnection the instrument is not the one the run started on."""


class RunControl(TrainingObserver):
    """The stored requests of run ``run_id`` as the worker sees them, and the pause they ask for.

    As a training observer it pauses a run asked to pause ``after_epoch`` once the epoch's
    record is committed (put it after the store's recorder).
    """

    def __init__(
        self, store: RunStore, run_id: str, stop: StopSignal, times: ControlTimes | None = None
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.stop = stop
        self.times = times or ControlTimes()
        self.pause_request: PauseWhen | None = None
        self.read_v = 0.05
        """Read voltage (V) of the re-read at resume and reconnection (the run's ``read_v``)."""
        self.backend: ControlledBackend | None = None
        self.tell: Callable[[str], None] = _quiet
        """Says, in one line, that the run waits (paused, suspended) and that it goes on again:
        ``hil train`` prints it on stderr (the service's worker has its log and events)."""
        self.flush: Callable[[], None] = _nothing
        """Commits the epochs the run's recorder holds (:meth:`StoreRecorder.flush`); called before
        each status change of the run's own (paused, resumed, suspended, reconnected), so that a
        follower never sees a status ahead of the epochs before it."""
        self._synced_s = -float("inf")
        self._changed = threading.Condition()
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None

    # ------------------------------------------------------------------ the stored requests
    def sync(self) -> None:
        """Read the stored status and pause request; a ``stopping`` or finished run gets its stop."""
        status, pause, reason = self.store.control(self.run_id)
        self._synced_s = time.monotonic()
        if (status is RunStatus.STOPPING or status.finished) and not self.stop.is_set:
            self.stop.set(reason or STORE_STOP)
        with self._changed:
            self.pause_request = pause
            self._changed.notify_all()

    def wake(self) -> None:
        """A request was just written: read it now (the service rings this; the poll catches up anyway)."""
        try:
            self.sync()
        except Exception as e:  # A busy store: the poll reads it again.
            log.debug("run %s: wake failed: %s", self.run_id, e)

    def start_polling(self) -> None:
        """Read the requests every ``poll_s`` from now until :meth:`close` (a daemon thread)."""
        if self._poller is None and not self._closed.is_set():
            self._poller = threading.Thread(target=self._poll, name=f"poll-{self.run_id[:8]}", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        try:
            while not self._closed.wait(self.times.poll_s):
                self.wake()
        finally:
            self.store.release_thread()

    def close(self) -> None:
        """End the poll (idempotent)."""
        self._closed.set()
        with self._changed:
            self._changed.notify_all()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(5 * self.times.poll_s + 1)

    def flush_before_change(self) -> None:
        """:attr:`flush`, a store that fails it said in the log, not raised: the epochs stay held
        and are committed later; the change itself is recorded (or fails) as before."""
        try:
            self.flush()
        except Exception as e:
            log.warning("run %s: epochs not committed before a status change: %s", self.run_id, e)

    def _wait(self, timeout_s: float) -> None:
        with self._changed:
            self._changed.wait(min(timeout_s, self.times.poll_s))

    # ------------------------------------------------------------------ observer
    def on_epoch(self, record: EpochRecord) -> None:
        """Read the requests (at most every :data:`EPOCH_SYNC_S`: a read per epoch was a tenth of
        the cost of recording a fast emulated run; the poll and :meth:`wake` read them too); pause
        here when asked (either way) and the run goes on after this epoch."""
        if time.monotonic() - self._synced_s >= EPOCH_SYNC_S:
            self.sync()
        if self.pause_request is not None and not record.converged and self.backend is not None:
            self.backend.hold("after_epoch")

    def on_end(self, result: object) -> None:
        """The run ended: stop reading the store."""
        self.close()


class ControlledBackend(CrossbarBackend):
    """``inner``, paused and suspended as ``control`` says; ``reopen`` opens the instrument again
    after a link drop (None: a link error ends the run, as without this wrapper).

    Closing it closes the backend in use; aborting it aborts that one at once (no lock held
    while a run waits paused, so an emergency abort is never delayed).
    """

    def __init__(
        self, inner: CrossbarBackend, control: RunControl, reopen: Callable[[], CrossbarBackend] | None
    ) -> None:
        super().__init__()
        self.inner = inner
        self.control = control
        self.reopen = reopen
        control.backend = self

    # ------------------------------------------------------------------ identity
    @property
    def info(self) -> BackendInfo:
        return self.inner.info

    @property
    def close_warning(self) -> str | None:
        return self.inner.close_warning

    def device_curve_siemens(self) -> NDArray[np.float64] | None:
        """The instrument's device curve (S), if it knows one."""
        return self.inner.device_curve_siemens()

    # ------------------------------------------------------------------ operations, gated
    # Pulses and resets: the base class checks limits, chunks pulse batches and tells the listeners
    # (the pulse log); each then passes the gate here. Reads and VMMs (no listener) pass the gate
    # and go to the backend in use, which checks them. ``abort`` and ``close`` take no lock:
    # an emergency abort is never delayed by a run that waits paused.
    def read_conductances(self, read_v: float = 0.05) -> NDArray[np.float64]:
        """The backend in use's read (it checks ``read_v`` and the values), gated: not checked twice."""
        return self._guarded(lambda b: b.read_conductances(read_v), again=True)

    def apply(self, voltages: ArrayLike) -> NDArray[np.float64]:
        """The backend in use's VMM (it checks the voltages and the currents), gated: not checked twice
        (a run sends six a epoch; checking each in both layers cost a tenth of an emulated epoch)."""
        return self._guarded(lambda b: b.apply(voltages), again=True)

    def _read_conductances(self, read_v: float) -> ArrayLike:
        return self.read_conductances(read_v)

    def _apply(self, voltages: NDArray[np.float64]) -> ArrayLike:
        return self.apply(voltages)

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        what = f"PULS:LIST of {len(pulses)} pulse(s)"
        self._guarded(lambda b: b.pulse_many(pulses), again=False, what=what)

    def _reset(self, row: int, col: int) -> None:
        self._guarded(lambda b: b.reset(row, col), again=False, what=f"the reset of device ({row}, {col})")

    def _abort(self) -> None:
        self.inner.abort()

    def abort(self) -> None:
        """0 V now, on the backend in use (no gate, no wait for a pause)."""
        self.inner.abort()

    def close(self) -> None:
        """Close the backend in use (0 V, released). Idempotent."""
        if not self._closed:
            self._closed = True
            self.inner.close()

    def _guarded(self, op: Callable[[CrossbarBackend], T], *, again: bool, what: str = "") -> T:
        self.gate()
        try:
            return op(self.inner)
        except CommunicationError as e:
            if self.reopen is None:
                raise
            self._suspend(e, None if again else what)
        if again:
            return self._guarded(op, again=again, what=what)
        return None  # type: ignore[return-value]  # Not resent; pulse_many and reset return nothing.

    def _record(self, target: RunStatus, *, change: Change, detail: dict[str, Any] | None = None) -> None:
        """Record the worker's own status change (``paused`` -> ``running``, ``suspended``...). A stop
        written just before (the run is ``stopping`` already) raises the run's stop
        (:class:`~crossbar_hil.seam.errors.RunStopped`), so the run ends stopped, not failed."""
        c = self.control
        c.flush_before_change()
        try:
            c.store.transition(c.run_id, target, change=change, detail=detail)
        except TransitionError:
            c.sync()
            c.stop.check()
            raise

    # ------------------------------------------------------------------ pause
    def gate(self) -> None:
        """Before an operation: stop if asked, hold if asked to pause now."""
        self.control.stop.check()
        if self.control.pause_request == "now":
            self.hold("now")

    def hold(self, when: PauseWhen) -> None:
        """Pause here (``when``: ``after_epoch`` at an epoch's end, ``now`` before an operation): ABOR,
        record ``paused`` (its event says ``when`` as asked and ``paused_at`` where it paused), wait for
        resume (re-read, ``running``), a stop or the time out."""
        c = self.control
        c.stop.check()
        self._abort_to_pause()
        c.flush_before_change()
        try:
            # One vocabulary: ``when`` as asked, ``paused_at`` where it paused (an epoch's end may
            # come before the next operation of a pause asked ``now``).
            detail = {"when": c.pause_request or when, "paused_at": when}
            c.store.transition(c.run_id, RunStatus.PAUSED, change="paused", detail=detail)
        except ValueError:  # Stopped meanwhile: the stop below ends it.
            c.sync()
        c.tell(f"paused by a request (run {c.run_id}): resume with hil runs resume {c.run_id}")
        deadline = time.monotonic() + c.times.pause_timeout_s
        while c.pause_request is not None and not c.stop.is_set:
            left = deadline - time.monotonic()
            if left <= 0:
                c.stop.set(
                    f"paused for longer than pause_timeout_s={c.times.pause_timeout_s:g} s without a resume"
                )
                break
            c._wait(left)
        c.stop.check()
        self._record(RunStatus.RUNNING, change="resumed")
        c.tell("resumed")
        self.read_conductances(c.read_v)  # Where the devices are now, before anything more is sent.

    def _abort_to_pause(self) -> None:
        """The ABOR before a pause; a link that drops here suspends the run as any operation's
        drop does (reconnect, re-read), then the ABOR is sent on the new link."""
        try:
            self.inner.abort()
        except CommunicationError as e:
            if self.reopen is None:
                raise
            self._suspend(e, None)
            self._abort_to_pause()

    # ------------------------------------------------------------------ suspend
    def _suspend(self, error: CommunicationError, unsent: str | None) -> None:
        c, times = self.control, self.control.times
        log.warning("run %s: link lost (%s); suspended, reconnecting", c.run_id, error)
        self._record(
            RunStatus.SUSPENDED, change="suspended", detail={"reason": f"{type(error).__name__}: {error}"}
        )
        c.tell(
            f"suspended (run {c.run_id}): the instrument's link dropped ({error}); reconnecting for up to "
            f"{times.suspend_timeout_s:g} s"
        )
        old = self.inner
        old.close()  # Releases the link (the instrument serves one client); its ABOR may fail.
        deadline = time.monotonic() + times.suspend_timeout_s
        wait_s, attempts = times.retry_first_s, 0
        while True:
            c.stop.check()
            attempts += 1
            try:
                new = self.reopen()  # type: ignore[misc]
                break
            except Exception as e:  # Still down.
                last = e
            if time.monotonic() + wait_s > deadline:
                raise CommunicationError(
                    f"the instrument's link dropped ({error}) and did not come back within "
                    f"suspend_timeout_s={times.suspend_timeout_s:g} s ({attempts} attempts; last: {last})"
                ) from error
            c._wait(wait_s)
            wait_s = min(2 * wait_s, times.retry_most_s)
        if _identity(new.info) != _identity(old.info):
            new.close()
            raise InstrumentChanged(
                f"after reconnecting, the instrument answers {new.info.identity!r} "
                f"({new.info.rows}x{new.info.cols}, {new.info.limits}), not {old.info.identity!r} "
                f"({old.info.rows}x{old.info.cols}, {old.info.limits}) that the run started on: "
                "the run ends here, its history kept"
            )
        self.inner = new
        g = new.read_conductances(c.read_v)
        detail: dict[str, Any] = {"attempts": attempts, "conductances_siemens": g.tolist()}
        if unsent is not None:
            detail["not_resent"] = (
                f"{unsent} was cut by the drop: it may or may not have reached the device, and was not "
                "resent; the conductances above were read after reconnecting"
            )
        self._record(RunStatus.RUNNING, change="reconnected", detail=detail)
        c.tell(f"reconnected after {attempts} attempt(s): the conductances re-read, the run goes on")


def _quiet(text: str) -> None:
    """Nobody to tell (the service's worker: its events and log say it)."""


def _nothing() -> None:
    """No recorder: nothing held to commit."""


def _identity(info: BackendInfo) -> tuple[Any, ...]:
    """What must not change across a reconnection: identity, shape, limits, capabilities."""
    data = info.model_dump(mode="json")
    return (data.pop("identity"), tuple(sorted(data.items(), key=lambda kv: kv[0])))
