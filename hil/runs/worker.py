"""A run's worker: it owns the instrument from the check to the close.

The run manager admits a run (registry name, path policy, busy or queued, emergency-stop
latch) and starts a worker for it, in a thread or (the service's choice) in a process of
its own; the manager's process never opens a device. The worker, over one duplex pipe:

1. opens the backend (the instrument's one handshake of the run) and makes the checks that
   need it (limits, the rule's needs, the task's shape); answers ``("ready", identity)``,
   ``("refused", {field: message})`` or ``("unavailable", message)``;
2. waits for ``("go", run_id)`` (the run is now in the store) or ``("cancel",)``;
3. trains (:func:`crossbar_hil.runs.execute.execute`), relaying ``("event", seq)`` for each
   event it commits, closes the backend (0 V, the run's one ABOR at its end) and says
   ``("released", end)``: the manager frees the instrument, records the end and answers
   ``("recorded",)``; without an answer (the service died: the pipe ended) the worker records
   the end itself, at once: a run that its worker stopped at 0 V is recorded ``stopped``.

Meanwhile it hears ``("wake",)``: a request (stop, pause, resume) was written in the store,
read it now; and ``("abort",)``: 0 V now (the emergency stop). Requests are facts in the store,
the pipe only rings: one channel per fact.

In a process of its own the worker ends its run safely when the service dies: the end of
the pipe, or SIGTERM (sent by Linux when the service's thread that started it ends,
PR_SET_PDEATHSIG), sets the run's stop (before the next pulse; abort; 0 V; history kept).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Any

from pydantic import ValidationError

from crossbar_hil.runs.control import ControlTimes, RunControl
from crossbar_hil.runs.errors import BackendUnavailable, InvalidRun
from crossbar_hil.runs.execute import RunEnd, execute, finish
from crossbar_hil.runs.store import RunStore, StoreError, process_owner
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.seam.errors import LimitError, reply_free_reason
from crossbar_hil.seam.registry import create_backend
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import Outcome
from crossbar_hil.training.rules import make_rule
from crossbar_hil.training.stop import StopSignal
from crossbar_hil.training.trainer import Trainer

log = logging.getLogger(__name__)

BackendBuilder = Callable[[str, Mapping[str, Any]], CrossbarBackend]


def main(
    database: str, config_json: str, times_json: str, conn: Connection, parent_pid: int | None = None
) -> None:
    """The worker in a process of its own (spawned by the manager's process, ``parent_pid``);
    builds through the registry."""
    # Ctrl-C in the service's terminal reaches its whole process group: the service decides how
    # its runs end (it stops them at 0 V); a KeyboardInterrupt here cut a command and lost the end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = StopSignal()
    _stop_on_sigterm(stop)
    _term_with_parent(parent_pid)
    if stop.is_set:  # The service is gone already: open nothing (a new one may run on the instrument).
        return
    serve(conn, database, config_json, times_json, create_backend, stop)


def serve(
    conn: Connection,
    database: str,
    config_json: str,
    times_json: str,
    build: BackendBuilder,
    stop: StopSignal | None = None,
) -> None:
    """Check, then (on ``go``) run the config given as JSON, recording in the store at ``database``."""
    stop = stop or StopSignal()
    send = _Sender(conn)
    config = RunConfig.model_validate_json(config_json)
    try:
        backend = open_checked(config, build)
    except InvalidRun as e:
        send(("refused", e.errors))
        return
    except BackendUnavailable as e:
        send(("unavailable", str(e)))
        return
    try:
        send(("ready", backend.info.identity))
        try:
            message = conn.recv()
        except (EOFError, OSError):  # The manager is gone before the run existed.
            message = ("cancel",)
    except BaseException:
        backend.close()
        raise
    if message[0] != "go":  # Refused late: nothing was driven, so no ABOR (see CrossbarBackend.release).
        backend.release()
        return
    run_id = str(message[1])
    store = RunStore(database, on_event=lambda rid, seq: send(("event", seq)))
    try:  # Held while this process runs, whatever becomes of the service's (hil runs, hil train).
        store.set_worker(run_id, process_owner())
    except (sqlite3.Error, StoreError) as e:
        log.warning("run %s: its worker's process not recorded: %s", run_id, e)
    control = RunControl(store, run_id, stop, ControlTimes.model_validate_json(times_json))
    listening = _Listening()
    threading.Thread(target=_listen, args=(conn, control, backend, listening), daemon=True).start()
    try:
        end = execute(
            store, run_id, config, backend, control, lambda: build(config.backend.name, config.backend.params)
        )
        # Released: the manager frees the instrument, then records the end; without a manager
        # (the service died: its pipe ended) the worker records it at once.
        send(("released", end))
        if not listening.settled.wait(RECORD_WAIT_S) or not listening.recorded:
            finish(store, run_id, end)
    finally:
        store.close()


def open_checked(config: RunConfig, build: BackendBuilder) -> CrossbarBackend:
    """The backend of ``config``, open and checked to fit (closed again when it does not).

    Raises :class:`InvalidRun` naming the field, or :class:`BackendUnavailable`.
    """
    spec = config.backend
    try:
        backend = build(spec.name, spec.params)
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
        raise BackendUnavailable(f"cannot open the {spec.name!r} backend: {reply_free_reason(e)}") from e
    try:
        check_fits(config, backend)
    except BaseException:
        backend.close()
        raise
    return backend


def check_fits(config: RunConfig, backend: CrossbarBackend) -> None:
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


RECORD_WAIT_S = 10.0
"""How long (s) a worker waits for the manager to record its run's end before it records it
(at once when the service is gone: the end of its pipe)."""


class _Listening:
    """What the run's end waits for: the manager's ``recorded``, or the end of the pipe (the
    service is gone; nobody else will record the end)."""

    def __init__(self) -> None:
        self.settled = threading.Event()
        self.recorded = False


def _listen(
    conn: Connection, control: RunControl, backend: CrossbarBackend, listening: _Listening | None = None
) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # The service is gone: end the run safely.
            if not control.stop.is_set:
                control.stop.set("the service ended")
            control.wake()
            if listening is not None:
                listening.settled.set()
            return
        if message[0] == "recorded" and listening is not None:
            listening.recorded = True
            listening.settled.set()
        elif message[0] == "wake":
            control.wake()
        elif message[0] == "abort":
            try:
                (control.backend or backend).abort()
            except Exception as e:  # The run's own abort reports it; this one is extra.
                log.warning("emergency abort failed: %s", e)


class _Sender:
    """Sends on the pipe from any thread of the worker, one message at a time."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def __call__(self, message: tuple[object, ...]) -> None:
        with self.lock, suppress(OSError, ValueError, BrokenPipeError):  # Nobody listens: the store has it.
            self.conn.send(message)


def failed(error: str) -> RunEnd:
    """The end of a run whose worker could not report one."""
    return RunEnd.of(Outcome.FAULT, error)


def _stop_on_sigterm(stop: StopSignal) -> None:
    """SIGTERM sets ``stop``: the run ends before its next pulse, at 0 V, its history kept.

    Several can come at once (one per thread of a killed service); the handler takes no lock
    (see :class:`StopSignal`), so one that runs inside another cannot wedge the worker."""

    def handler(signum: int, frame: object) -> None:
        stop.set("the service ended (SIGTERM)")

    signal.signal(signal.SIGTERM, handler)


def _term_with_parent(parent_pid: int | None = None) -> None:
    """Ask Linux to send SIGTERM to this process when the thread that started it ends
    (PR_SET_PDEATHSIG); if the parent (``parent_pid``, else the one seen now) is already gone,
    stop at once: a service killed while its worker started up sends no signal."""
    if sys.platform.startswith("linux"):
        parent = os.getppid() if parent_pid is None else parent_pid
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
        except (OSError, AttributeError):
            log.debug("PR_SET_PDEATHSIG unavailable")
        if os.getppid() != parent:  # Died before the request took effect.
            os.kill(os.getpid(), signal.SIGTERM)
