"""`RunManager`: admission of training runs, a queue per instrument, and their workers.

The manager admits a run (the backend name is registered, no file path among its params
when ``allow_path_params=False``, the instrument free or the run queued, the emergency stop
not latched) and hands it to a worker (:mod:`crossbar_hil.runs.worker`), in a thread of this
process or, with ``isolation="process"`` (the service's choice), in a process of its own.
The worker owns the instrument from the check to the close: it opens the backend (one
handshake), makes the checks that need it (a refusal comes back as :class:`InvalidRun`
naming the field, an instrument that does not answer as :class:`BackendUnavailable`), and
only then is the run created in the store and told to go. This process never opens a device,
and never waits for one while its lock is held.

**Queues.** Every run belongs to a queue: its instrument (a backend given a ``resource`` or
``port``, or any backend other than the emulator: one run at a time), or ``emulator``
(up to ``max_emulator_runs`` side by side). A run for a busy queue is refused
(:class:`InstrumentBusy`, :class:`TooManyRuns`) unless it asks to wait (``if_busy="queue"``):
then it is stored ``queued`` with a ``queue_position`` and started when its turn comes and
the queue is ``started``. A stopped queue lets its current run finish and starts no more; a
run that fails (or is interrupted) stops its queue unless it says ``on_failure="continue"``.
The queues live in the store; at start-up (:meth:`recover`) every queue with runs waiting is
stopped: a person starts it again (:meth:`start_queue`).

**Requests** (stop, pause, resume) are written in the store, then the worker is rung to read
them at once (the worker also reads them every 0.2 s, so ``hil runs stop`` from another
process works too). The emergency stop stops every run, sends an abort (0 V) to every
instrument in use at once, and latches (kept in the store): no run starts until it is
cleared.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from crossbar_hil.runs import worker
from crossbar_hil.runs.control import ControlTimes
from crossbar_hil.runs.device_key import device_key
from crossbar_hil.runs.errors import (
    BackendUnavailable,
    EmergencyStopLatched,
    InstrumentBusy,
    InvalidRun,
    NotControllable,
    RunRefused,
    TooManyRuns,
)
from crossbar_hil.runs.execute import RunEnd, finish
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import OnFailure, PauseWhen, Run, RunNotFound, RunStore, now, process_owner
from crossbar_hil.runs.trace_library import TraceLibrary, resolve_trace_name
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.seam.registry import available_backends, backend_factory, create_backend
from crossbar_hil.training.config import BackendSpec, RunConfig
from crossbar_hil.training.history import Outcome

__all__ = [
    "BackendUnavailable",
    "EmergencyStopLatched",
    "InstrumentBusy",
    "InvalidRun",
    "NotControllable",
    "RunManager",
    "RunRefused",
    "TooManyRuns",
    "instrument_key",
    "queue_key",
]

log = logging.getLogger(__name__)

EMULATOR = "emulator"
ESTOP_SETTING = "emergency_stop"
IfBusy = Literal["refuse", "queue"]
"""What a start does when its queue is busy: refuse (409/429), or wait in the queue."""


def instrument_key(spec: BackendSpec) -> str | None:
    """What a run holds exclusively: its ``resource`` or ``port``, else the backend name; None for
    an emulator (emulator runs share nothing)."""
    for key in ("resource", "port"):
        if spec.params.get(key):
            return str(spec.params[key])
    return None if spec.name == EMULATOR else f"backend:{spec.name}"


def path_params(spec: BackendSpec) -> list[str]:
    """The dotted names (``backend.params.…``) of the file paths among ``spec``'s params, as its
    backend's ``params_model`` reads them; none when the params do not validate (opening the
    backend then reports them) or the backend declares no model."""
    try:
        model = getattr(getattr(backend_factory(spec.name), "__self__", None), "params_model", None)
    except Exception:  # An unknown name is reported by the caller.
        return []
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    try:
        params = model.model_validate(dict(spec.params))
    except (ValidationError, ValueError, TypeError):
        return []
    return _paths_in(params, "backend.params")


def _paths_in(value: object, at: str) -> list[str]:
    if isinstance(value, PurePath):
        return [at]
    if isinstance(value, BaseModel):
        return [
            p for name in type(value).model_fields for p in _paths_in(getattr(value, name), f"{at}.{name}")
        ]
    if isinstance(value, list | tuple):
        return [p for k, v in enumerate(value) for p in _paths_in(v, f"{at}.{k}")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths_in(v, f"{at}.{k}")]
    return []


PATH_REFUSED = (
    "file paths are not accepted here (the service's files are not a client's to read or write); "
    "run it with the CLI on the machine instead"
)


def queue_key(spec: BackendSpec) -> str:
    """The queue a run of ``spec`` belongs to: its instrument, or ``emulator``. An instrument
    named by an address is keyed on the device, not the spelling
    (:func:`~crossbar_hil.runs.device_key.device_key`): ``/dev/pts/3`` and
    ``ASRL/dev/pts/3::INSTR`` are one queue, so one run at a time."""
    for name in ("resource", "port"):
        if spec.params.get(name):
            return device_key(str(spec.params[name]))
    return instrument_key(spec) or EMULATOR


_KEYED = ("tcp:", "serial:", "visa:", "other:", "backend:")


def queue_named(name: str) -> str:
    """The queue ``name`` means, in any spelling of its instrument (``TCPIP::host::5025::SOCKET``,
    ``socket://host:5025``, a serial path...): its device key; ``emulator`` and a key as they are."""
    text = name.strip()
    if text == EMULATOR or text.startswith(_KEYED):
        return text
    return device_key(text)


@dataclass
class _Active:
    """A run this manager has handed to a worker (created in the store before, so that it holds its
    instrument before the worker opens it)."""

    queue: str
    instrument: str | None
    run_id: str | None
    fresh: bool = False
    """Created for a start request (withdrawn when its worker refuses it), not taken from its queue."""
    conn: Connection | None = None
    checked: threading.Event = field(default_factory=threading.Event)
    refusal: RunRefused | None = None
    created: Run | None = None
    """The run as created, before its worker was told to go."""
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def send(self, message: tuple[object, ...]) -> None:
        """Tell the worker (nothing when it has ended)."""
        with self.lock:
            if self.conn is not None:
                with suppress(OSError, ValueError, BrokenPipeError):
                    self.conn.send(message)


BackendBuilder = Callable[[str, Mapping[str, Any]], CrossbarBackend]


class RunManager:
    """Admits, queues, starts and stops the runs of one process, recorded in ``store``."""

    def __init__(
        self,
        store: RunStore,
        *,
        max_emulator_runs: int = 8,
        build_backend: BackendBuilder = create_backend,
        backend_names: Callable[[], Iterable[str]] = lambda: available_backends().keys(),
        isolation: Literal["thread", "process"] = "thread",
        allow_path_params: bool = True,
        trace_library: TraceLibrary | None = None,
        times: ControlTimes | None = None,
    ) -> None:
        if isolation not in ("thread", "process"):
            raise ValueError(f"isolation must be 'thread' or 'process', not {isolation!r}")
        if isolation == "process" and build_backend is not create_backend:
            raise ValueError("a run in its own process builds its backend through the registry")
        self.isolation = isolation
        if max_emulator_runs < 0:
            raise ValueError(f"max_emulator_runs={max_emulator_runs} must be >= 0")
        self.store = store
        self.allow_path_params = allow_path_params
        self.trace_library = trace_library
        """Traces an emulator run may name (``backend.params.trace_name``): ``hil serve --trace-dir``."""
        self.max_emulator_runs = max_emulator_runs
        self.times = times or ControlTimes()
        self.owner = process_owner()
        self._build_backend = build_backend
        self._backend_names = backend_names
        self._lock = threading.RLock()
        self._active: dict[str, _Active] = {}
        """By token: every run handed to a worker and not yet ended."""
        self._threads: dict[str, threading.Thread] = {}
        """By run id: every run thread not yet waited for (it outlives its entry in ``_active``)."""
        self._closed = False
        self._shut = threading.Event()
        self._watcher: threading.Thread | None = None

    # ------------------------------------------------------------------ admission
    def start(
        self,
        config: RunConfig,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        if_busy: IfBusy = "refuse",
        on_failure: OnFailure = "stop",
    ) -> tuple[Run, bool]:
        """Start a run, or queue it (``if_busy="queue"``) when its queue is busy; returns it and
        whether it is new (False: the run of ``idempotency_key``).

        Raises :class:`InvalidRun` (naming the field), :class:`InstrumentBusy`,
        :class:`TooManyRuns`, :class:`EmergencyStopLatched` or :class:`BackendUnavailable`.
        """
        key = queue_key(config.backend)  # May ask DNS: never under the lock the e-stop takes.
        with self._lock:
            if idempotency_key is not None:
                earlier = self.store.find_by_idempotency_key(idempotency_key)
                if earlier is not None:
                    if request_hash is not None and earlier.request_hash != request_hash:
                        raise InvalidRun(
                            {"Idempotency-Key": "already used for a different request; use a new key"}
                        )
                    return earlier, False
            self._admit(config)
            config = resolve_trace_name(config, self.trace_library)  # a library name, never a client path
            fields = {
                "instrument": instrument_key(config.backend),
                "idempotency_key": idempotency_key,
                "request_hash": request_hash,
                "owner": self.owner,
                "queue": key,
                "on_failure": on_failure,
            }
            busy = self._busy(key)
            created: Run | None = None
            if busy is None:
                try:  # Held in the store before the worker opens it (atomic against a hil train).
                    created = self.store.create_run(config, exclusive=key != EMULATOR, **fields)  # type: ignore[arg-type]
                except InstrumentBusy as e:
                    busy = e
            if created is None:
                assert busy is not None
                if if_busy == "refuse":
                    raise busy
                return self.store.create_run(config, wait=True, **fields), True  # type: ignore[arg-type]
            active = self._hand_over(key, config.backend, created.id, config, fresh=True)
            active.created = created
        active.checked.wait()
        if active.refusal is not None:
            raise active.refusal
        assert active.created is not None
        return active.created, True

    def _admit(self, config: RunConfig) -> None:
        """What is checked without the device: open for business, no latch, a known name, no paths."""
        if self._closed:
            raise RunRefused("the run manager is shut down")
        if self.emergency_stop_state() is not None:
            raise EmergencyStopLatched(self._latched_message())
        name = config.backend.name
        known = sorted(self._backend_names())
        if name not in known:
            raise InvalidRun(
                {"backend.name": f"{name!r} is not a registered backend; known: {', '.join(known)}"}
            )
        if not self.allow_path_params:
            paths = path_params(config.backend)
            if paths:
                raise InvalidRun(dict.fromkeys(paths, PATH_REFUSED))

    def _busy(self, key: str) -> RunRefused | None:
        """Why queue ``key`` cannot start a run now (runs wait in it, or it is full); None if it can."""
        holding = [a for a in self._active.values() if a.queue == key]
        waiting = self.store.queued(key)
        if key == EMULATOR:
            if len(holding) >= self.max_emulator_runs or waiting:
                return TooManyRuns(
                    f"{len(holding)} emulator runs are going, the most allowed side by side "
                    f"(max_emulator_runs={self.max_emulator_runs}), and {len(waiting)} wait; wait for "
                    'one to end, or queue this run ("if_busy": "queue")'
                )
            return None
        if holding:  # Named as its holder named it.
            return InstrumentBusy(holding[0].instrument or key, holding[0].run_id or "(being checked)")
        if waiting:
            return InstrumentBusy(waiting[0].instrument or key, waiting[0].id)
        if (other := self.store.holder(key, besides_owner=self.owner)) is not None:  # hil train's run
            return InstrumentBusy(other.instrument or key, other.id)
        return None

    def _hand_over(
        self,
        key: str,
        spec: BackendSpec,
        run_id: str,
        config: RunConfig,
        fresh: bool = False,
    ) -> _Active:
        """Reserve the queue's place and start the run's thread (its worker checks, then runs)."""
        active = _Active(key, instrument_key(spec), run_id, fresh)
        active.thread = threading.Thread(
            target=self._run, args=(active, config), name=f"run-{key}", daemon=True
        )
        self._active[active.token] = active
        active.thread.start()
        return active

    # ------------------------------------------------------------------ one run's thread
    def _run(self, active: _Active, config: RunConfig) -> None:
        """Start the worker, relay its check, create (or start) the run, relay its events, record the end."""
        conn, worker_conn = multiprocessing.Pipe(duplex=True)
        process: multiprocessing.process.BaseProcess | None = None
        args = (str(self.store.path), config.model_dump_json(), self.times.model_dump_json())
        if self.isolation == "process":
            ctx = multiprocessing.get_context("spawn")
            process = ctx.Process(
                target=worker.main, args=(*args, worker_conn, os.getpid()), name="run-worker", daemon=True
            )
            process.start()
            worker_conn.close()
            runner: threading.Thread | None = None
        else:
            runner = threading.Thread(
                target=self._serve_here, args=(worker_conn, *args), name="run-worker", daemon=True
            )
            runner.start()
        try:
            if not self._begin(active, conn):
                return
            while True:
                try:
                    kind, value = conn.recv()
                except (EOFError, OSError):
                    break
                if kind == "event":
                    self.store.note_event(str(active.run_id), int(value))
                elif kind == "released":  # Instrument at 0 V and released: free it, record the end.
                    with self._lock:
                        self._active.pop(active.token, None)
                    try:
                        finish(self.store, str(active.run_id), value)
                    except Exception:  # Not answered: the end of the pipe tells the worker to record it.
                        log.exception(
                            "run %s: recording its end failed; its worker records it", active.run_id
                        )
                    else:
                        active.send(("recorded",))
                    break
        finally:
            with active.lock:
                active.conn = None
            conn.close()
            if process is not None:
                process.join()
            if runner is not None:
                runner.join()
            active.checked.set()
            self._done(active, None if process is None else process.exitcode)

    def _serve_here(self, conn: Connection, database: str, config_json: str, times_json: str) -> None:
        try:
            worker.serve(conn, database, config_json, times_json, self._build_backend)
        finally:
            conn.close()

    def _begin(self, active: _Active, conn: Connection) -> bool:
        """The worker's check; then ``go``. False when it does not go (its worker releases the
        instrument without an ABOR: it drove nothing)."""
        try:
            answer = conn.recv()
        except (EOFError, OSError):
            answer = ("unavailable", "the run's worker ended before it answered the check")
        refusal: RunRefused | None = None
        if answer[0] == "refused":
            refusal = InvalidRun(answer[1])
        elif answer[0] != "ready":
            refusal = BackendUnavailable(str(answer[1]))
        with self._lock:
            if refusal is None and self.emergency_stop_state() is not None:  # Latched meanwhile.
                refusal = EmergencyStopLatched(self._latched_message())
            if refusal is None and self._closed:
                refusal = RunRefused("the run manager is shut down")
            if refusal is not None:
                with suppress(OSError, ValueError, BrokenPipeError):
                    conn.send(("cancel",))
                if active.run_id is not None and active.fresh:  # Refused: it never was a run.
                    self.store.withdraw(active.run_id, str(refusal))
                elif active.run_id is not None:
                    self._refused_from_queue(active.run_id, refusal)
                active.refusal = refusal
                return False
            assert active.run_id is not None
            with active.lock:
                active.conn = conn
            self._threads = {k: t for k, t in self._threads.items() if t.is_alive()}
            if active.thread is not None:
                self._threads[active.run_id] = active.thread
        active.send(("go", active.run_id))
        active.checked.set()
        return True

    def _refused_from_queue(self, run_id: str, refusal: RunRefused) -> None:
        """Record a run taken from its queue and refused before it ran: failed (naming why) when
        the run or its instrument is at fault; back first in its queue when this manager shuts
        down (waiting runs stay queued); stopped otherwise (the emergency stop)."""
        with suppress(ValueError):
            if isinstance(refusal, InvalidRun | BackendUnavailable):
                self.store.transition(run_id, RunStatus.FAILED, outcome=Outcome.FAULT, error=str(refusal))
                return
            if not isinstance(refusal, EmergencyStopLatched) and self.store.requeue(run_id):
                return
            self.store.request_stop(run_id, str(refusal))
            finish(self.store, run_id, RunEnd.of(Outcome.STOPPED, str(refusal)))

    def _done(self, active: _Active, exitcode: int | None) -> None:
        """The worker has ended (its instrument released): record an end it could not, start the next."""
        with self._lock:
            self._active.pop(active.token, None)
        try:
            run = None
            if active.run_id is not None:
                with suppress(RunNotFound):  # Deleted once ended.
                    run = self.store.get_run(active.run_id)
            if run is not None:
                if not run.status.finished and active.refusal is None:
                    error = f"the run's worker ended without recording an end (exit code {exitcode})"
                    finish(self.store, run.id, worker.failed(error))
                    run = self.store.get_run(run.id)
                failed = run.status in (RunStatus.FAILED, RunStatus.INTERRUPTED)
                if failed and run.on_failure == "stop" and self.store.queued(active.queue):
                    why = f"run {run.id} {run.status}: {run.error or ''}".strip()
                    self.store.set_queue_state(active.queue, "stopped", why)
            self.advance(active.queue)
        except Exception:
            log.exception("run %s: recording its end failed", active.run_id)
        finally:
            self.store.release_thread()

    # ------------------------------------------------------------------ queues
    def advance(self, key: str) -> list[str]:
        """Start the next runs waiting in queue ``key`` while it is started and has room; their ids."""
        started = []
        with self._lock:
            while not self._closed and self.emergency_stop_state() is None:
                if self.store.queue_state(key) != "started":
                    break
                holding = sum(1 for a in self._active.values() if a.queue == key)
                if holding >= (self.max_emulator_runs if key == EMULATOR else 1):
                    break
                if key != EMULATOR and self.store.holder(key, besides_owner=self.owner) is not None:
                    break  # Another process's run (hil train) holds the instrument: started when it ends.
                waiting = self.store.queued(key)
                if not waiting:
                    break
                try:  # It holds the instrument from here, before its worker opens it.
                    run = self.store.transition_out_of_queue(waiting[0].id, exclusive=key != EMULATOR)
                except InstrumentBusy:
                    break  # Another process's run took the instrument meanwhile: started when it ends.
                self._hand_over(key, run.run_config.backend, run.id, run.run_config)
                started.append(run.id)
        return started

    def watch_queues(self, period_s: float = 1.0) -> None:
        """Look at every queue with runs waiting each ``period_s`` (s) from now until shutdown and
        start what may start: a queue started from another process (``hil runs queue start``)
        goes on without a request to this one."""

        def watch() -> None:
            try:
                while not self._shut.wait(period_s):
                    try:
                        for name in sorted({r.queue for r in self.store.queued() if r.queue}):
                            self.advance(name)
                    except Exception:  # A busy store: the next look tries again.
                        log.exception("watching the queues failed")
            finally:
                self.store.release_thread()

        self._watcher = threading.Thread(target=watch, name="queue-watch", daemon=True)
        self._watcher.start()

    def start_queue(self, key: str) -> list[str]:
        """Start queue ``key`` (any spelling of its instrument): its next runs start now and when
        runs end; returns those started now."""
        if self._closed:
            raise RunRefused("the run manager is shut down")
        if self.emergency_stop_state() is not None:
            raise EmergencyStopLatched(self._latched_message())
        key = queue_named(key)
        self.store.set_queue_state(key, "started")
        return self.advance(key)

    def stop_queue(self, key: str, reason: str = "stopped on request") -> None:
        """Stop queue ``key`` (any spelling of its instrument): its current run finishes, no other starts."""
        self.store.set_queue_state(queue_named(key), "stopped", reason)

    def remove(self, run_id: str) -> None:
        """Take a waiting run out of its queue and delete it; :class:`NotControllable` otherwise."""
        try:
            self.store.delete_run(run_id)
        except ValueError as e:
            raise NotControllable(str(e), run_id) from e

    def move(self, run_id: str, position: int) -> Run:
        """Put a waiting run at ``position`` (1 = next) of its queue."""
        try:
            return self.store.move(run_id, position)
        except ValueError as e:
            raise NotControllable(str(e), run_id) from e

    # ------------------------------------------------------------------ requests
    def _ring(self, run_id: str) -> None:
        with self._lock:
            actives = [a for a in self._active.values() if a.run_id == run_id]
        for active in actives:
            active.send(("wake",))

    def stop(self, run_id: str, reason: str = "stop requested") -> Run:
        """Stop a run before its next pulse (a waiting run never starts). Idempotent; a finished
        run is returned unchanged."""
        run = self.store.request_stop(run_id, reason)  # A waiting run (no worker) ends stopped here.
        self._ring(run_id)
        return run

    def release(self, run_id: str, reason: str = "released on request") -> Run:
        """Mark ``interrupted`` a run no process is seen holding (gone, or on another host): its
        instrument is free (:meth:`RunStore.release`); :class:`NotControllable` while its process
        is seen running, or while it waits in its queue."""
        try:
            return self.store.release(run_id, reason)
        except ValueError as e:
            raise NotControllable(str(e), run_id) from e

    def pause(self, run_id: str, when: PauseWhen = "after_epoch") -> Run:
        """Ask a running run to pause (after the epoch in flight, or before the next operation)."""
        try:
            self.store.request_pause(run_id, when)
        except ValueError as e:
            raise NotControllable(str(e), run_id) from e
        self._ring(run_id)
        return self.store.get_run(run_id)

    def resume(self, run_id: str) -> Run:
        """Resume a paused run (it re-reads the crossbar, then goes on)."""
        try:
            self.store.request_resume(run_id)
        except ValueError as e:
            raise NotControllable(str(e), run_id) from e
        self._ring(run_id)
        return self.store.get_run(run_id)

    def emergency_stop(self, reason: str = "emergency stop") -> list[str]:
        """Latch, stop every run and bring every instrument in use to 0 V now, and stop every queue
        with runs waiting (``reason`` says why: clearing the latch starts none of them, a person
        starts each again); returns the run ids."""
        with self._lock:
            actives = [a for a in self._active.values() if a.run_id is not None]
        for active in actives:  # 0 V now, before any store write (one may wait for a checkpoint).
            active.send(("abort",))
        self.store.set_setting(ESTOP_SETTING, {"reason": reason, "at": now()})
        why = reason if reason.lower().startswith("emergency stop") else f"emergency stop: {reason}"
        self.store.stop_waiting_queues(f"{why}: start the queue to go on")
        with self._lock:  # Runs handed over since (they check the latch first).
            aborted = {id(a) for a in actives}
            actives += [a for a in self._active.values() if a.run_id is not None and id(a) not in aborted]
        for active in actives:
            self.stop(str(active.run_id), why)
        # Runs of other processes in the store (hil train): they read the stop within poll_s.
        others = [r.id for r in self.store.active_runs() if r.owner != self.owner]
        for run_id in others:
            self.store.request_stop(run_id, why)
        return [str(a.run_id) for a in actives] + others

    def clear_emergency_stop(self) -> None:
        """Release the latch: runs may start again; the queues the emergency stop stopped stay
        stopped until a person starts them (:meth:`start_queue`)."""
        self.store.set_setting(ESTOP_SETTING, None)

    def emergency_stop_state(self) -> dict[str, Any] | None:
        """The latched emergency stop (reason, time), or None."""
        state: dict[str, Any] | None = self.store.get_setting(ESTOP_SETTING)
        return state

    def _latched_message(self) -> str:
        state = self.emergency_stop_state() or {}
        return (
            f"the emergency stop is latched (since {state.get('at')}: {state.get('reason')}); "
            "clear it before starting a run"
        )

    # ------------------------------------------------------------------ life cycle
    def recover(
        self, alive: Callable[[str], bool] | None = None, *, workers: bool = True, grace_s: float = 0.0
    ) -> list[str]:
        """At start-up: mark ``interrupted`` the runs left active by a process that is gone
        (``alive(owner)`` tells, and ``workers`` whether a run's own worker counts:
        :meth:`RunStore.recover`), and stop every queue with runs waiting
        (a person starts it again). Returns the interrupted ids.

        First, for up to ``grace_s`` (s), it waits for the runs whose worker still runs though
        their service is gone (:meth:`RunStore.finishing`): such a worker stops its run at 0 V and
        records it ``stopped`` within moments; interrupted instead, the run would read "not
        confirmed at 0 V" though its instrument answered ABOR."""
        deadline = time.monotonic() + grace_s
        if finishing := self.store.finishing(alive) if grace_s > 0 else []:
            log.warning(
                "waiting up to %g s for the workers of %d run(s) of an earlier service to record their end",
                grace_s,
                len(finishing),
            )
        while finishing and time.monotonic() < deadline:
            time.sleep(0.05)
            finishing = self.store.finishing(alive)
        lost = self.store.recover(alive, workers=workers)
        for name in self.store.stop_waiting_queues("the service restarted: start the queue to go on"):
            log.warning(
                "queue %s has runs waiting; stopped until started (POST /queue/start, hil runs queue start)",
                name,
            )
        return lost

    def held(self) -> dict[str, str]:
        """The instruments in use, by device key (a queue other than the emulator's), and the run
        holding each: this manager's (one being checked too) and other processes' (hil train)."""
        out = {r.queue: r.id for r in self.store.active_runs() if r.queue not in (None, EMULATOR)}
        with self._lock:
            out |= {
                a.queue: a.run_id or "(being checked)" for a in self._active.values() if a.queue != EMULATOR
            }
        return {str(k): v for k, v in out.items()}

    def active_runs(self) -> list[str]:
        """Ids of the runs this manager is running."""
        with self._lock:
            return [a.run_id for a in self._active.values() if a.run_id is not None]

    def wait(self, run_id: str, timeout_s: float | None = None) -> bool:
        """Wait for a run of this manager to end, its end recorded; True when it has (or was not
        running here)."""
        with self._lock:
            thread = self._threads.get(run_id)
        if thread is None:
            return True
        thread.join(timeout_s)
        if thread.is_alive():
            return False
        with self._lock:
            self._threads.pop(run_id, None)
        return True

    def close_admission(self) -> list[str]:
        """Start no run from now on (a start is refused, waiting runs stay queued, a run taken from
        its queue and still checked goes back first in it); returns the ids of the runs going,
        for the caller to stop. The first step of a shutdown: a run stopped after it would
        otherwise start the next one of its queue."""
        with self._lock:
            self._closed = True
            return [a.run_id for a in self._active.values() if a.run_id is not None and a.conn is not None]

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Stop every run (0 V) and wait for them; no run starts afterwards (waiting runs stay
        queued). False when a run thread is still going after ``timeout_s`` (s) (then leave the
        store open)."""
        self._shut.set()
        if self._watcher is not None:  # Off the store before anyone closes it.
            self._watcher.join(timeout_s)
        with self._lock:
            going = self.close_admission()
            threads = {a.thread for a in self._active.values() if a.thread is not None}
            threads |= set(self._threads.values())
        for run_id in going:
            self.stop(run_id, "the service is shutting down")
        ended = True
        for thread in threads:  # Also those recording an end after their instrument was released.
            thread.join(timeout_s)
            if thread.is_alive():
                log.error("run thread %s did not stop within %s s", thread.name, timeout_s)
                ended = False
        return ended
