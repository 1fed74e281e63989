"""Safe stops from the command line: Ctrl-C, SIGTERM and SIGHUP all mean "stop".

One :class:`SignalStop` per command. While the command talks to the instrument
(training, a recording) a signal only *requests* the stop: the run ends before
its next pulse, the instrument goes to 0 V and the results are written. While
nothing can be harmed (connecting, plotting) a signal ends the phase at once.
A second signal interrupts the wait for the instrument's reply at once
(KeyboardInterrupt), saying what is still awaited: ABOR's confirmation of 0 V
and the results being written; a third quits without waiting (the outputs are
then not confirmed at 0 V). Every stop exits with :data:`EXIT_STOPPED`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType, TracebackType
from typing import Self

from crossbar_hil.seam.errors import RunStopped
from crossbar_hil.training.history import Outcome
from crossbar_hil.training.stop import StopSignal

EXIT_OK = 0
"""The command did what was asked (a run ended by itself: converged, epoch limit, stalled)."""
EXIT_INTERNAL = 1
"""An unexpected error (a bug; please report it with the traceback)."""
EXIT_BAD_INPUT = 2
"""Bad input: nothing was sent to the instrument."""
EXIT_FAULT = 3
"""The instrument could not be reached or reported a fault (``hil emulate``: cannot serve)."""
EXIT_STOPPED = 4
"""Stopped on request (Ctrl-C, SIGTERM, SIGHUP) wherever the stop landed; results kept."""


def exit_status(outcome: Outcome) -> int:
    """The exit status of a command whose run ended with ``outcome``: by itself (converged or not)
    0, stopped 4, a fault 3."""
    if outcome.finished:
        return EXIT_OK
    return EXIT_STOPPED if outcome is Outcome.STOPPED else EXIT_FAULT


SIGNALS: dict[int, str] = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGHUP"):
    SIGNALS[signal.SIGHUP] = "SIGHUP (terminal closed)"


class SignalStop:
    """Routes SIGINT, SIGTERM and SIGHUP to a :class:`StopSignal` for the ``with`` block.

    :meth:`phase` names what the command is doing and whether a signal may end it
    at once (``immediate``, raising :class:`RunStopped`) or only request a stop.
    Outside the main thread (tests calling ``main`` from a thread) it installs nothing.
    """

    def __init__(self, prog: str, stop: StopSignal | None = None) -> None:
        self.prog = prog
        self.stop = stop or StopSignal()
        self.signals = 0
        self._phase = "starting"
        self._immediate = True
        self._waiting: Callable[[], str] = lambda: "the current step to finish"
        self._previous: dict[int, object] = {}

    def phase(self, name: str, *, immediate: bool, waiting: Callable[[], str] | None = None) -> None:
        """Enter phase ``name``; ``waiting`` describes what a requested stop waits for."""
        self._phase = name
        self._immediate = immediate
        if waiting is not None:
            self._waiting = waiting
        if immediate:
            self.stop.check()  # A stop requested in the previous phase ends this one before it starts.

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if signum == getattr(signal, "SIGHUP", None):
            _leave_closed_terminal()
        name = SIGNALS.get(signum, f"signal {signum}")
        if self.signals == 1:
            self.stop.set(f"stopped by {name}")
            if self._immediate:
                raise RunStopped(f"stopped by {name} while {self._phase}")
            self._say(f"{name}: stopping before the next pulse; waiting for {self._waiting()}")
        elif self.signals == 2:
            self._say(
                f"{name} again: interrupting; still waiting for {self._waiting()}. Once more quits "
                "without waiting (the outputs are then NOT confirmed at 0 V)"
            )
            raise KeyboardInterrupt(f"interrupted by a second {name}")
        else:
            raise KeyboardInterrupt(f"quit by {name} without waiting")

    def _say(self, text: str) -> None:
        # SIGHUP: the terminal may be gone; RuntimeError: a second signal's handler printing
        # inside the first one's print (a reentrant call on the stream).
        with suppress(OSError, ValueError, RuntimeError):
            print(f"{self.prog}: {text}", file=sys.stderr, flush=True)


@contextmanager
def interrupting_signals() -> Iterator[None]:
    """For the ``with`` block of a command that holds no instrument (a sweep, an experiment):
    Ctrl-C, SIGTERM and SIGHUP all interrupt at once (KeyboardInterrupt, exit
    :data:`EXIT_STOPPED`), SIGINT too where the shell that started it left it ignored (a
    background job), as :class:`SignalStop` does; inside :func:`signals_held`, once it ends.
    Outside the main thread it installs nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            _leave_closed_terminal()
        message = f"stopped by {SIGNALS.get(signum, f'signal {signum}')}"
        if _HELD.depth:
            _HELD.pending = _HELD.pending or message
            return
        raise KeyboardInterrupt(message)

    previous = {signum: signal.signal(signum, interrupt) for signum in SIGNALS}
    try:
        yield
    finally:
        _HELD.pending = None
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Held:
    """The stop that :func:`interrupting_signals` holds back while a :func:`signals_held` block runs."""

    depth = 0
    pending: str | None = None


_HELD = _Held()


@contextmanager
def signals_held() -> Iterator[None]:
    """For a short step that must finish whole once begun (a result row written to its file): a
    stop (Ctrl-C, SIGTERM, SIGHUP under :func:`interrupting_signals`) that comes meanwhile is raised
    as the block ends. Held in the handler, not by a signal mask: in a process with threads (a
    process pool's) the kernel gives the signal to a thread that does not mask it."""
    _HELD.depth += 1
    try:
        yield
    finally:
        _HELD.depth -= 1
    if not _HELD.depth and _HELD.pending is not None:
        message, _HELD.pending = _HELD.pending, None
        raise KeyboardInterrupt(message)


def _leave_closed_terminal() -> None:
    """After SIGHUP the terminal is gone and writing to it fails: write to /dev/null instead
    (the results go to their files all the same)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        with suppress(OSError, ValueError):
            if stream.isatty():
                setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process


def instrument_wait(backend: object) -> Callable[[], str]:
    """What a requested stop waits for on ``backend``: the command in flight, then ABOR."""

    def describe() -> str:
        in_flight = getattr(backend, "in_flight", None)
        now = f"the instrument's reply to {in_flight}" if in_flight else "the operation in progress"
        return f"{now}, then ABOR (outputs to 0 V) and the results to be written"

    return describe
