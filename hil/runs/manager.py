"""`RunManager`: training runs in the background, one per physical instrument at a time.

A run is started from a :class:`~crossbar_hil.training.config.RunConfig`: its backend is
built by name through the registry and opened at once (so a bad parameter, an
unreachable instrument or a pulse above the instrument's limits is refused before
the run exists), then trained by :func:`crossbar_hil.runs.execute.execute` (which calls
:func:`crossbar_hil.procedures.training.run_training`, recording into the store) in a
thread of this process, or, with ``isolation="process"`` (the service's choice),
in a process of its own (:mod:`crossbar_hil.runs.worker`) that opens the backend again and
that a thread here watches. The end of a run is recorded after its instrument is
released.

Runs on a physical instrument (a backend given a ``resource`` or ``port``, or any
backend other than the emulator) are exclusive: a second start on the same
instrument is refused with the run that holds it. Emulator runs can go side by
side, up to ``max_emulator_runs``.

With ``allow_path_params=False`` (the service's choice) a backend parameter that is
a file path (a driver's ``traffic_log``, the emulator's ``trace``, a trace device's
``path``: any field its ``params_model`` types as a path) is refused, naming the
field: the server's files are not for a client to read or write.

Stopping is idempotent and takes effect before the run's next pulse; the
procedure then leaves the instrument at 0 V. The emergency stop stops every run,
sends an abort (0 V) to every instrument in use at once, and latches (kept in
the store): no run starts until it is cleared.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import PurePath
from typing import Any, Literal

from crossbar_hil.runs.execute import RunEnd, execute, finish
from crossbar_hil.runs.store import Run, RunStore, now, process_owner
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.seam.errors import HilError, LimitError
from crossbar_hil.seam.registry import available_backends, backend_factory, create_backend
from crossbar_hil.training.config import BackendSpec, RunConfig
from crossbar_hil.training.history import Outcome
from crossbar_hil.training.rules import make_rule
from crossbar_hil.training.stop import StopSignal
from crossbar_hil.training.trainer import Trainer
from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

EMULATOR = "emulator"
ESTOP_SETTING = "emergency_stop"


class RunRefused(HilError):
    """A run was not started; the message says why."""


class InvalidRun(RunRefused, ValueError):
    """The config cannot run: ``errors`` maps each offending field (dotted path) to what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class InstrumentBusy(RunRefused):
    """Another run holds the instrument."""

    def __init__(self, instrument: str, run_id: str) -> None:
        self.instrument, self.run_id = instrument, run_id
        super().__init__(
            f"instrument {instrument!r} is in use by run {run_id}; stop it or wait for it to end"
        )


class TooManyRuns(RunRefused):
    """The limit of emulator runs side by side is reached."""


class EmergencyStopLatched(RunRefused):
    """The emergency stop is latched: nothing starts until it is cleared."""


class BackendUnavailable(RunRefused):
    """The backend could not be opened (instrument unreachable, refused, wrong answer)."""


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


@dataclass
class _Active:
    run_id: str
    instrument: str | None
    stop: StopSignal
    backend: CrossbarBackend | None
    """The open backend (thread mode); None when the run's worker process holds it."""
    thread: threading.Thread | None = None
    commands: Connection | None = None
    """The pipe to the run's worker process (process mode)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request_stop(self, reason: str) -> None:
        """End the run before its next pulse."""
        self.stop.set(reason)
        self._send(("stop", reason))

    def abort(self) -> None:
        """0 V now (waits for an operation in flight)."""
        if self.backend is not None:
            _abort_quietly(self.backend)
        self._send(("abort",))

    def _send(self, message: tuple[object, ...]) -> None:
        with self.lock:
            if self.commands is not None:
                with suppress(OSError, ValueError):  # The worker has ended.
                    self.commands.send(message)


BackendBuilder = Callable[[str, Mapping[str, Any]], CrossbarBackend]


class RunManager:
    """Starts, tracks and stops the runs of one process, recorded in ``store``."""

    def __init__(
        self,
        store: RunStore,
        *,
        max_emulator_runs: int = 8,
        build_backend: BackendBuilder = create_backend,
        backend_names: Callable[[], Iterable[str]] = lambda: available_backends().keys(),
        isolation: Literal["thread", "process"] = "thread",
        allow_path_params: bool = True,
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
        self.max_emulator_runs = max_emulator_runs
        self.owner = process_owner()
        self._build_backend = build_backend
        self._backend_names = backend_names
        self._lock = threading.RLock()
        self._active: dict[str, _Active] = {}
        self._threads: dict[str, threading.Thread] = {}
        """Every run thread not yet waited for (it outlives its entry in ``_active`` while it
        records the run's end)."""
        self._closed = False

    # ------------------------------------------------------------------ starting
    def start(
        self, config: RunConfig, *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> tuple[Run, bool]:
        """Start a run; returns it and whether it is new (False: the run of ``idempotency_key``).

        Raises :class:`InvalidRun` (naming the field), :class:`InstrumentBusy`,
        :class:`TooManyRuns`, :class:`EmergencyStopLatched` or :class:`BackendUnavailable`.
        """
        with self._lock:
            if idempotency_key is not None:
                earlier = self.store.find_by_idempotency_key(idempotency_key)
                if earlier is not None:
                    if request_hash is not None and earlier.request_hash != request_hash:
                        raise InvalidRun(
                            {"Idempotency-Key": "already used for a different request; use a new key"}
                        )
                    return earlier, False
            self._check_startable(config)
            backend = self._open(config)
            try:
                self._check_fits(config, backend)
                if self.emergency_stop_state() is not None:  # Latched while the backend opened.
                    raise EmergencyStopLatched(self._latched_message())
                run = self.store.create_run(
                    config,
                    instrument=instrument_key(config.backend),
                    idempotency_key=idempotency_key,
                    request_hash=request_hash,
                    owner=self.owner,
                )
            except BaseException:
                backend.close()
                raise
            if self.isolation == "process":
                backend.close()  # Checked; the run's own process opens it again.
                active = _Active(run.id, instrument_key(config.backend), StopSignal(), None)
                target: Callable[..., None] = self._run_process
            else:
                active = _Active(run.id, instrument_key(config.backend), StopSignal(), backend)
                target = self._run_thread
            active.thread = threading.Thread(
                target=target, args=(active, config), name=f"run-{run.id[:8]}", daemon=True
            )
            self._active[run.id] = active
            self._threads = {k: t for k, t in self._threads.items() if t.is_alive()}
            self._threads[run.id] = active.thread
            active.thread.start()
            return run, True

    def _check_startable(self, config: RunConfig) -> None:
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
        key = instrument_key(config.backend)
        if key is not None:
            for other in self._active.values():
                if other.instrument == key:
                    raise InstrumentBusy(key, other.run_id)
        else:
            emulators = sum(1 for a in self._active.values() if a.instrument is None)
            if emulators >= self.max_emulator_runs:
                raise TooManyRuns(
                    f"{emulators} emulator runs are going, the most allowed side by side "
                    f"(max_emulator_runs={self.max_emulator_runs}); wait for one to end"
                )

    def _open(self, config: RunConfig) -> CrossbarBackend:
        spec = config.backend
        try:
            return self._build_backend(spec.name, spec.params)
        except ValidationError as e:
            raise InvalidRun(
                {
                    ".".join(["backend.params", *(str(p) for p in err["loc"])]): err["msg"]
                    for err in e.errors(include_url=False)
                }
            ) from e
        except (ValueError, TypeError, FileNotFoundError) as e:
            raise InvalidRun({"backend.params": f"{type(e).__name__}: {e}"}) from e
        except Exception as e:  # Unreachable instrument, refused connection, wrong answer, driver bug.
            raise BackendUnavailable(f"cannot open the {spec.name!r} backend: {type(e).__name__}: {e}") from e

    @staticmethod
    def _check_fits(config: RunConfig, backend: CrossbarBackend) -> None:
        """The checks the trainer makes before sending anything, made before the run exists."""
        try:
            make_rule(config.training).check_backend(backend)
        except ValueError as e:  # The rule needs what this backend lacks (a reset, depression).
            raise InvalidRun({"training.rule": str(e)}) from e
        try:
            Trainer(backend, config.task, config.training)
        except LimitError as e:
            raise InvalidRun({e.field: str(e)}) from e
        except ValueError as e:  # The task does not fit the crossbar.
            raise InvalidRun({"task": str(e)}) from e

    # ------------------------------------------------------------------ running
    def _run_thread(self, active: _Active, config: RunConfig) -> None:
        """The run, in this thread (the backend is already open)."""
        assert active.backend is not None
        end = RunEnd.of(Outcome.FAULT, "the run thread ended early")
        try:
            end = execute(self.store, active.run_id, config, active.backend, active.stop)
        finally:
            self._done(active, end)

    def _run_process(self, active: _Active, config: RunConfig) -> None:
        """The run, in a process of its own (see :mod:`crossbar_hil.runs.worker`); this thread relays."""
        from crossbar_hil.runs import worker

        ctx = multiprocessing.get_context("spawn")
        commands_in, commands = ctx.Pipe(duplex=False)
        notes, notes_out = ctx.Pipe(duplex=False)
        args = (str(self.store.path), active.run_id, config.model_dump_json(), commands_in, notes_out)
        process = ctx.Process(target=worker.main, args=args, name=f"run-{active.run_id[:8]}", daemon=True)
        end: RunEnd | None = None
        try:
            with active.lock:
                process.start()
                commands_in.close()
                notes_out.close()
                active.commands = commands
            if active.stop.is_set:  # Stopped while the process started.
                active.request_stop(active.stop.reason)
            while True:
                try:
                    kind, value = notes.recv()
                except (EOFError, OSError):
                    break
                if kind == "event":
                    self.store.note_event(active.run_id, value)
                elif kind == "end":
                    end = value
            process.join()
        finally:
            with active.lock:
                commands.close()
                active.commands = None
            notes.close()
            if end is None:
                error = f"the run's process ended without reporting an end (exit code {process.exitcode})"
                end = RunEnd.of(Outcome.FAULT, error)
            self._done(active, end)

    def _done(self, active: _Active, end: RunEnd) -> None:
        """Release the instrument, then record the end: a run seen finished holds nothing."""
        with self._lock:
            self._active.pop(active.run_id, None)
        try:
            finish(self.store, active.run_id, end)
        finally:
            self.store.release_thread()

    # ------------------------------------------------------------------ stopping
    def stop(self, run_id: str, reason: str = "stop requested") -> Run:
        """Stop a run before its next pulse. Idempotent; a finished run is returned unchanged."""
        self.store.request_stop(run_id)
        with self._lock:
            active = self._active.get(run_id)
        if active is not None:
            active.request_stop(reason)
        return self.store.get_run(run_id)

    def emergency_stop(self, reason: str = "emergency stop") -> list[str]:
        """Latch, stop every run and bring every instrument in use to 0 V now; returns the run ids."""
        self.store.set_setting(ESTOP_SETTING, {"reason": reason, "at": now()})
        with self._lock:
            actives = list(self._active.values())
        for active in actives:
            self.stop(active.run_id, f"emergency stop: {reason}")
            # 0 V now, not only at the run's next check (waits for an operation in flight).
            threading.Thread(target=active.abort, daemon=True).start()
        return [a.run_id for a in actives]

    def clear_emergency_stop(self) -> None:
        """Release the latch: runs may start again."""
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
    def recover(self) -> list[str]:
        """Mark ``interrupted`` the runs left active by a process that is gone (call at start-up)."""
        return self.store.recover()

    def active_runs(self) -> list[str]:
        """Ids of the runs this manager is running."""
        with self._lock:
            return list(self._active)

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

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Stop every run (0 V) and wait for them; no run starts afterwards. False when a run
        thread is still going after ``timeout_s`` (s) (then leave the store open)."""
        with self._lock:
            self._closed = True
            ids = list(self._active)
        for run_id in ids:
            self.stop(run_id, "the service is shutting down")
        with self._lock:
            waiting = list(self._threads)
        ended = True
        for run_id in waiting:
            if not self.wait(run_id, timeout_s):
                log.error("run %s did not stop within %s s", run_id, timeout_s)
                ended = False
        return ended


def _abort_quietly(backend: CrossbarBackend) -> None:
    try:
        backend.abort()
    except Exception as e:  # The run's own abort reports it; this one is extra.
        log.warning("emergency abort of %s failed: %s", backend, e)
