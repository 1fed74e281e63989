"""A run in a process of its own, so that a busy service never slows the instrument's loop.

The run manager starts :func:`main` with the ``spawn`` method and talks to it
over two one-way pipes. Commands in: ``("stop", reason)`` (end before the next
pulse), ``("abort",)`` (0 V now, for the emergency stop). Notes out:
``("event", seq)`` after each commit to the store, so that the service's live
streams follow at once, and ``("end", RunEnd)`` once the instrument is released;
the manager records the end. The worker opens the backend itself (a connection to an
instrument cannot move between processes), records everything in the store
file, and is sent SIGTERM when the thread that started it ends (Linux,
PR_SET_PDEATHSIG): a killed service leaves no run going on behind its back, and
the run still ends safely — SIGTERM sets its stop, so the trainer stops before its
next pulse, aborts (0 V) and keeps its history. The end of the command pipe (the
service gone without a word) does the same.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from contextlib import suppress
from multiprocessing.connection import Connection

from crossbar_hil.runs.execute import RunEnd, execute
from crossbar_hil.runs.store import RunStore
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.seam.registry import create_backend
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import Outcome
from crossbar_hil.training.stop import StopSignal

log = logging.getLogger(__name__)


def main(database: str, run_id: str, config_json: str, commands: Connection, notes: Connection) -> None:
    """Run ``run_id`` of the store at ``database`` with the config given as JSON."""
    stop = StopSignal()
    _stop_on_sigterm(stop)
    _term_with_parent()
    store = RunStore(database, on_event=lambda rid, seq: _send(notes, ("event", seq)))
    config = RunConfig.model_validate_json(config_json)
    try:
        try:
            backend = create_backend(config.backend.name, config.backend.params)
        except Exception as e:
            error = f"cannot open the {config.backend.name!r} backend: {type(e).__name__}: {e}"
            _send(notes, ("end", RunEnd.of(Outcome.FAULT, error)))
            return
        threading.Thread(target=_listen, args=(commands, stop, backend), daemon=True).start()
        _send(notes, ("end", execute(store, run_id, config, backend, stop)))
    finally:
        store.close()


def _listen(commands: Connection, stop: StopSignal, backend: CrossbarBackend) -> None:
    while True:
        try:
            message = commands.recv()
        except (EOFError, OSError):  # The service is gone: end the run safely.
            stop.set("the service ended")
            return
        if message[0] == "stop":
            stop.set(message[1])
        elif message[0] == "abort":
            try:
                backend.abort()
            except Exception as e:  # The run's own abort reports it; this one is extra.
                log.warning("emergency abort failed: %s", e)


def _send(notes: Connection, message: tuple[object, ...]) -> None:
    with suppress(OSError, ValueError):  # Nobody listens any more; the store has it all.
        notes.send(message)


def _stop_on_sigterm(stop: StopSignal) -> None:
    """SIGTERM sets ``stop``: the run ends before its next pulse, at 0 V, its history kept."""

    def handler(signum: int, frame: object) -> None:
        stop.set("the service ended (SIGTERM)")

    signal.signal(signal.SIGTERM, handler)


def _term_with_parent() -> None:
    """Ask Linux to send SIGTERM to this process when the thread that started it ends
    (PR_SET_PDEATHSIG); if the parent is already gone, stop at once."""
    if sys.platform.startswith("linux"):
        parent = os.getppid()
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
        except (OSError, AttributeError):
            log.debug("PR_SET_PDEATHSIG unavailable")
        if os.getppid() != parent:  # Died before the request took effect.
            os.kill(os.getpid(), signal.SIGTERM)
