"""`CrossbarBackend`: the one seam between the core and any crossbar.

A backend is a rows x cols crossbar of two-terminal devices that can be read
(small read voltage, non-disturbing), used as an analog vector-matrix multiplier
(row voltages in, column currents out) and programmed with voltage pulses.
Real instruments (``drivers``) and the emulator (``emulator``) implement it.

Subclasses implement the underscore methods; the public methods check every
value against :attr:`BackendInfo.limits` first, so a request out of range
raises :class:`~hil.errors.LimitError` and nothing reaches the hardware.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import NamedTuple, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hil.errors import BackendClosed, DeviceFault, LimitError


class Limits(BaseModel):
    """What a backend accepts. Every value sent to hardware is checked against these."""

    model_config = ConfigDict(frozen=True)

    read_v_max: float = Field(0.2, gt=0, description="Largest |read or VMM row voltage| (V).")
    pulse_v_max: float = Field(2.5, gt=0, description="Largest |pulse amplitude| (V).")
    width_min_s: float = Field(1e-6, gt=0, description="Shortest pulse (s).")
    width_max_s: float = Field(2.0, gt=0, description="Longest pulse (s).")
    compliance_a: float = Field(1e-3, gt=0, description="Current compliance (A).")
    max_batch: int = Field(256, ge=1, description="Most pulses in one batched command.")

    @model_validator(mode="after")
    def _widths_ordered(self) -> Self:
        if self.width_min_s > self.width_max_s:
            raise ValueError(
                f"width_min_s={self.width_min_s} s must not exceed width_max_s={self.width_max_s} s"
            )
        return self


class BackendInfo(BaseModel):
    """Identity, shape, limits and capabilities of a backend."""

    model_config = ConfigDict(frozen=True)

    identity: str = Field(description="Instrument identity, e.g. the *IDN? reply.")
    rows: int = Field(ge=1, description="Number of rows (inputs).")
    cols: int = Field(ge=1, description="Number of columns (outputs).")
    limits: Limits = Field(default_factory=Limits)
    supports_reset: bool = Field(True, description="The device has a reset (long negative) pulse.")
    supports_depression: bool = Field(False, description="Short negative pulses depress one step.")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return (self.rows, self.cols)


class Pulse(NamedTuple):
    """One voltage pulse on the device at (row, col): amplitude in V, width in s."""

    row: int
    col: int
    amplitude_v: float
    width_s: float


class CrossbarBackend(ABC):
    """Abstract crossbar. Use as a context manager: leaving it aborts (0 V) and closes.

    Implementations provide :attr:`info` and the ``_``-prefixed methods. They may
    assume their arguments have passed the limit checks here. Calls are serialised
    by a lock, so one thread at a time talks to an instrument.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closed = False

    # ----------------------------------------------------------------- identity
    @property
    @abstractmethod
    def info(self) -> BackendInfo:
        """Shape, limits, capabilities and identity of this backend."""

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    # ----------------------------------------------------------------- public API
    def read_conductances(self, v_read: float = 0.05) -> NDArray[np.float64]:
        """Read every device at ``v_read`` (V); returns a rows x cols array in S."""
        self._check_read_voltage("v_read", v_read)
        with self._use():
            g = np.asarray(self._read_conductances(float(v_read)), dtype=float)
        return _finite(g, "read_conductances").reshape(self.info.shape)

    def apply(self, voltages: ArrayLike) -> NDArray[np.float64]:
        """Drive the rows with ``voltages`` (V, one per row); returns column currents (A).

        This is the analog vector-matrix multiply ``I_k = sum_j G_jk V_j``.
        """
        v = np.asarray(voltages, dtype=float)
        rows = self.info.rows
        if v.shape != (rows,):
            raise LimitError("voltages", f"shape {v.shape}", f"shape ({rows},)")
        if not np.all(np.isfinite(v)):
            raise LimitError("voltages", v.tolist(), "finite values")
        for j, vj in enumerate(v):
            self._check_read_voltage(f"voltages[{j}]", float(vj))
        with self._use():
            i = np.asarray(self._apply(v), dtype=float)
        return _finite(i, "apply").reshape(self.info.cols)

    def pulse(self, row: int, col: int, amplitude_v: float, width_s: float) -> None:
        """Apply one pulse of ``amplitude_v`` (V) for ``width_s`` (s) to device (row, col)."""
        self.pulse_many([Pulse(row, col, amplitude_v, width_s)])

    def pulse_many(self, pulses: Iterable[Pulse | tuple[int, int, float, float]]) -> int:
        """Apply a batch of pulses, in order; returns how many were sent.

        The whole batch is checked first: one bad pulse rejects the batch and none
        is sent. A batch longer than ``limits.max_batch`` goes out in consecutive
        chunks of at most that many pulses (one command each on an instrument).
        """
        batch = [Pulse(*p) for p in pulses]
        for k, p in enumerate(batch):
            self.check_pulse(p, field=f"pulses[{k}]")
        size = self.info.limits.max_batch
        with self._use():
            for start in range(0, len(batch), size):
                self._pulse_many(batch[start : start + size])
        return len(batch)

    def reset(self, row: int, col: int) -> None:
        """Return device (row, col) to its low-conductance state with the device's reset pulse."""
        if not self.info.supports_reset:
            raise LimitError("reset", f"({row}, {col})", "nothing: this backend has no reset")
        self._check_index(row, col, "reset")
        with self._use():
            self._reset(int(row), int(col))

    def abort(self) -> None:
        """Bring every output to 0 V now. Safe to call at any time, also after a fault."""
        with self._lock:
            if not self._closed:
                self._abort()

    def close(self) -> None:
        """Leave the instrument at 0 V and release it. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                self._abort()
            except Exception:
                pass  # The link may be what failed; releasing it still matters.
            finally:
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
        self._check_index(p.row, p.col, field)
        lim = self.info.limits
        if not np.isfinite(p.amplitude_v) or abs(p.amplitude_v) > lim.pulse_v_max:
            raise LimitError(
                f"{field}.amplitude_v", p.amplitude_v, f"[-{lim.pulse_v_max}, {lim.pulse_v_max}]", "V"
            )
        if not np.isfinite(p.width_s) or not lim.width_min_s <= p.width_s <= lim.width_max_s:
            raise LimitError(f"{field}.width_s", p.width_s, f"[{lim.width_min_s}, {lim.width_max_s}]", "s")

    def _check_index(self, row: int, col: int, field: str) -> None:
        info = self.info
        if not (isinstance(row, int | np.integer) and 0 <= row < info.rows):
            raise LimitError(f"{field}.row", row, f"integers [0, {info.rows - 1}]")
        if not (isinstance(col, int | np.integer) and 0 <= col < info.cols):
            raise LimitError(f"{field}.col", col, f"integers [0, {info.cols - 1}]")

    def _check_read_voltage(self, field: str, v: float) -> None:
        vmax = self.info.limits.read_v_max
        if not np.isfinite(v) or abs(v) > vmax:
            raise LimitError(field, v, f"[-{vmax}, {vmax}]", "V")

    def _use(self) -> AbstractContextManager[bool]:
        """The lock for one operation; refuses when the backend is closed."""
        if self._closed:
            raise BackendClosed(f"{self.info.identity}: backend is closed")
        return self._lock

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def _read_conductances(self, v_read: float) -> ArrayLike:
        """Conductances in S, rows x cols, read at ``v_read`` V (already checked)."""

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
