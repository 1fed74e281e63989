"""`CrossbarBackend`: the one seam between the core and any crossbar.

A backend is a rows x cols crossbar of two-terminal devices that can be read
(small read voltage, non-disturbing), used as an analog vector-matrix multiplier
(row voltages in, column currents out) and programmed with voltage pulses.
Real instruments (``drivers``) and the emulator (``emulator``) implement it.

Subclasses implement the underscore methods; the public methods check every
value against :attr:`BackendInfo.limits` first, so a request out of range
raises :class:`~crossbar_hil.seam.errors.LimitError` and nothing reaches the hardware.
This is the one place a pulse is limit-checked and a batch split into instrument
commands. Listeners (:meth:`CrossbarBackend.add_listener`) hear every chunk of pulses
and every reset the backend accepted, whoever sent it (a run's pulse log).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Protocol, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crossbar_hil.seam.errors import BackendClosed, DeviceFault, LimitError
from crossbar_hil.seam.limits import BackendInfo, Pulse

log = logging.getLogger(__name__)


class PulseListener(Protocol):
    """Told of every programming operation a :class:`CrossbarBackend` sent (after it was accepted)."""

    def on_pulses(self, pulses: Sequence[Pulse]) -> None:
        """``pulses`` (V, s) were sent, in this order: one instrument command."""

    def on_reset(self, row: int, col: int) -> None:
        """The device's reset pulse was sent to (row, col)."""


class CrossbarBackend(ABC):
    """Abstract crossbar. Use as a context manager: leaving it aborts (0 V) and closes.

    Implementations provide :attr:`info` and the ``_``-prefixed methods. They may
    assume their arguments have passed the limit checks here. Calls are serialised
    by a lock, so one thread at a time talks to an instrument.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closed = False
        self._close_warning: str | None = None
        self._listeners: list[PulseListener] = []
        self._driven = False

    # ----------------------------------------------------------------- listeners
    def add_listener(self, listener: PulseListener) -> None:
        """Report every chunk of pulses and every reset sent from now on to ``listener``."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: PulseListener) -> None:
        """Stop reporting to ``listener`` (nothing when it is not listening)."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # ----------------------------------------------------------------- identity
    @property
    @abstractmethod
    def info(self) -> BackendInfo:
        """Shape, limits, capabilities and identity of this backend."""

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    @property
    def close_warning(self) -> str | None:
        """None, or, when the abort (0 V) at :meth:`close` failed, the warning to report with the run."""
        return self._close_warning

    def device_curve_siemens(self) -> NDArray[np.float64] | None:
        """The characterised conductance gained per pulse position of the devices (S), if known.

        Element ``m`` is the conductance a device gains after ``m`` potentiating pulses from
        its reset state (so element 0 is 0), on this crossbar's scale: what
        ``TrainingConfig.device_curve_siemens`` holds. ``None`` (the default) when the
        backend does not know it; hardware users characterise it (``hil characterize``).
        """
        return None

    # ----------------------------------------------------------------- public API
    def read_conductances(self, read_v: float = 0.05) -> NDArray[np.float64]:
        """Read every device at ``read_v`` (V); returns a rows x cols array in S."""
        self.info.limits.check_read_v("read_v", read_v)
        with self._use():
            g = np.asarray(self._read_conductances(float(read_v)), dtype=float)
        return _finite(g, "read_conductances").reshape(self.info.shape)

    def apply(self, voltages: ArrayLike) -> NDArray[np.float64]:
        """Drive the rows with ``voltages`` (V, one per row); returns column currents (A).

        This is the analog vector-matrix multiply ``I_k = sum_j G_jk V_j``.
        """
        v = np.asarray(voltages, dtype=float)
        rows = self.info.rows
        if v.shape != (rows,):
            raise LimitError("voltages", f"shape {v.shape}", f"shape ({rows},)")
        self.info.limits.check_read_v("voltages", v)
        with self._use():
            i = np.asarray(self._apply(v), dtype=float)
        return _finite(i, "apply").reshape(self.info.cols)

    def pulse(self, row: int, col: int, amplitude_v: float, width_s: float) -> None:
        """Apply one pulse of ``amplitude_v`` (V) for ``width_s`` (s) to device (row, col)."""
        self.pulse_many([Pulse(row, col, amplitude_v, width_s)])

    def pulse_many(
        self,
        pulses: Iterable[Pulse | tuple[int, int, float, float]],
        before_chunk: Callable[[], None] | None = None,
        after_chunk: Callable[[Sequence[Pulse]], None] | None = None,
    ) -> int:
        """Apply a batch of pulses, in order; returns how many were sent.

        The whole batch is checked first: one bad pulse rejects the batch and none
        is sent. A batch longer than ``limits.max_batch`` goes out in consecutive
        chunks of at most that many pulses (one command each on an instrument).
        ``before_chunk`` is called before each chunk is sent (a stop check: what it
        raises ends the batch there); the listeners, then ``after_chunk``, hear each
        chunk once it was accepted, so a fault part way leaves counts of what went out.
        """
        batch = [Pulse(*p) for p in pulses]
        for k, p in enumerate(batch):
            self.check_pulse(p, field=f"pulses[{k}]")
        size = self.info.limits.max_batch
        with self._use():
            for start in range(0, len(batch), size):
                chunk = batch[start : start + size]
                if before_chunk is not None:
                    before_chunk()
                self._pulse_many(chunk)
                for listener in self._listeners:
                    listener.on_pulses(chunk)
                if after_chunk is not None:
                    after_chunk(chunk)
        return len(batch)

    def reset(self, row: int, col: int) -> None:
        """Return device (row, col) to its low-conductance state with the device's reset pulse."""
        self.info.check_supports_reset("reset", row, col)
        self.info.check_device("reset", row, col)
        with self._use():
            self._reset(int(row), int(col))
            for listener in self._listeners:
                listener.on_reset(int(row), int(col))

    def abort(self) -> None:
        """Bring every output to 0 V now. Safe to call at any time, also after a fault."""
        with self._lock:
            if not self._closed:
                self._abort()

    def close(self) -> None:
        """Leave the instrument at 0 V and release it. Idempotent.

        The link is released even when the abort fails; that failure is logged and
        kept in :attr:`close_warning` (not raised, so a run's results are not lost).
        """
        with self._lock:
            if self._closed:
                return
            try:
                self._abort()
            except Exception as e:  # The link may be what failed; releasing it still matters.
                log.error("%s: the abort at close failed: %s", self.info.identity, e)
                self._close_warning = abort_warning(e)
            finally:
                self._closed = True
                self._close()

    @property
    def driven(self) -> bool:
        """True once this backend sent an operation that drives an output (a read, an apply, a
        pulse, a reset); its handshake and queries do not."""
        return self._driven

    def release(self) -> None:
        """Release the instrument without the abort when this backend drove nothing, else close
        it (0 V) as :meth:`close` does. For a run refused after it opened its instrument: an
        ``ABOR`` from it could reach an instrument another run is driving. Idempotent."""
        with self._lock:
            if self._closed:
                return
            if self._driven:
                self.close()
                return
            self._closed = True
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- checks
    def check_pulse(self, p: Pulse, field: str = "pulse") -> None:
        """Raise :class:`LimitError` if pulse ``p`` is outside this backend's limits."""
        self.info.check_pulse(field, p)

    def _use(self) -> AbstractContextManager[bool]:
        """The lock for one operation; refuses when the backend is closed."""
        if self._closed:
            raise BackendClosed(f"{self.info.identity}: backend is closed")
        self._driven = True  # Every operation that takes it drives an output.
        return self._lock

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def _read_conductances(self, read_v: float) -> ArrayLike:
        """Conductances in S, rows x cols, read at ``read_v`` V (already checked)."""

    @abstractmethod
    def _apply(self, voltages: NDArray[np.float64]) -> ArrayLike:
        """Column currents in A for row voltages in V (already checked)."""

    @abstractmethod
    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        """Send the (already checked) pulses in order."""

    @abstractmethod
    def _reset(self, row: int, col: int) -> None:
        """Apply the device's reset pulse to (row, col)."""

    @abstractmethod
    def _abort(self) -> None:
        """All outputs to 0 V, now."""

    def _close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release the connection. Called once, after :meth:`_abort`."""


def _finite(values: NDArray[np.float64], what: str) -> NDArray[np.float64]:
    """``values`` unchanged, or :class:`DeviceFault` when a measurement is NaN or infinite.

    A non-finite reading would silently poison every update computed from it.
    """
    if not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise DeviceFault(f"{what}: {bad} of {np.size(values)} values are not finite (NaN or inf)")
    return values


ABORT_UNCONFIRMED = "the abort (outputs to 0 V) could not be confirmed"
"""The words of :func:`abort_warning`, by which a run's message says its outputs may be live."""


def outputs_confirmed_at_0v(error_message: str | None) -> bool:
    """False when a run's message carries an :func:`abort_warning` (0 V not confirmed)."""
    return ABORT_UNCONFIRMED not in (error_message or "")


def abort_warning(error: BaseException) -> str:
    """The warning to report when an abort (outputs to 0 V) failed with ``error``."""
    return f"WARNING: {ABORT_UNCONFIRMED} ({type(error).__name__}: {error}) - check the instrument"
