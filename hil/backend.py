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
from typing import Any, NamedTuple, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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

    # The one implementation of the range checks: the backend's public methods and the
    # protocol's server-side validation (hil.protocol.codec) both call these.
    def check_read_v(self, field: str, v: float | NDArray[np.float64]) -> None:
        """Raise :class:`LimitError` unless ``v`` (V, a value or an array) is finite and
        ``|v| <= read_v_max``."""
        _check_symmetric(field, v, self.read_v_max, "V")

    def check_amplitude(self, field: str, v: float) -> None:
        """Raise :class:`LimitError` unless ``v`` (V) is finite and ``|v| <= pulse_v_max``."""
        _check_symmetric(field, v, self.pulse_v_max, "V")

    def check_width(self, field: str, width_s: float) -> None:
        """Raise :class:`LimitError` unless ``width_min_s <= width_s <= width_max_s`` (s)."""
        if not (np.isfinite(width_s) and self.width_min_s <= width_s <= self.width_max_s):
            raise LimitError(field, width_s, f"[{self.width_min_s}, {self.width_max_s}]", "s")

    def check_batch(self, field: str, n: int) -> None:
        """Raise :class:`LimitError` unless ``1 <= n <= max_batch`` (pulses in one command)."""
        if not 1 <= n <= self.max_batch:
            raise LimitError(field, n, f"[1, {self.max_batch}]")

    def stricter(self, user: UserLimits | None) -> Limits:
        """These limits narrowed by ``user``: the stricter of each value.

        Raises ValueError when the two leave no pulse width at all.
        """
        if user is None:
            return self
        try:
            return Limits(
                read_v_max=_least(self.read_v_max, user.read_v_max),
                pulse_v_max=_least(self.pulse_v_max, user.pulse_v_max),
                width_min_s=max(self.width_min_s, user.width_min_s or 0.0),
                width_max_s=_least(self.width_max_s, user.width_max_s),
                compliance_a=self.compliance_a,
                max_batch=int(_least(self.max_batch, user.max_batch)),
            )
        except ValidationError as e:
            raise ValueError(
                f"user limits {user.model_dump(exclude_none=True)} and the instrument's "
                f"{self.model_dump()} leave no allowed pulse width"
            ) from e


class UserLimits(BaseModel):
    """Limits a lab sets to protect its device; each optional, each only ever *narrows*.

    Combined with the instrument's own (:meth:`Limits.stricter`): the smaller
    maximum, the larger minimum. ``compliance_a`` is not accepted: protocol 1.0
    cannot set the instrument's current compliance, so a lower value here would
    protect nothing; set it on the controller itself.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    read_v_max: float | None = Field(None, gt=0, description="Largest |read or VMM row voltage| (V).")
    pulse_v_max: float | None = Field(None, gt=0, description="Largest |pulse amplitude| (V).")
    width_min_s: float | None = Field(None, gt=0, description="Shortest pulse (s).")
    width_max_s: float | None = Field(None, gt=0, description="Longest pulse (s).")
    max_batch: int | None = Field(None, ge=1, description="Most pulses in one batched command.")

    @model_validator(mode="before")
    @classmethod
    def _no_compliance(cls, data: Any) -> Any:
        if isinstance(data, dict) and "compliance_a" in data:
            raise ValueError(
                "compliance_a cannot be a user limit: protocol 1.0 has no command to set the "
                "instrument's current compliance, so it would not be enforced; set it on the controller"
            )
        return data


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

    def check_row(self, field: str, row: int) -> None:
        """Raise :class:`LimitError` unless ``row`` is an integer in ``[0, rows - 1]``."""
        _check_index(field, row, self.rows)

    def check_col(self, field: str, col: int) -> None:
        """Raise :class:`LimitError` unless ``col`` is an integer in ``[0, cols - 1]``."""
        _check_index(field, col, self.cols)

    def check_device(self, field: str, row: int, col: int) -> None:
        """Raise :class:`LimitError` unless (row, col) is a device of this crossbar."""
        self.check_row(f"{field}.row", row)
        self.check_col(f"{field}.col", col)

    def check_pulse(self, field: str, p: Pulse) -> None:
        """Raise :class:`LimitError` unless pulse ``p`` (V, s) is within the limits."""
        self.check_device(field, p.row, p.col)
        self.limits.check_amplitude(f"{field}.amplitude_v", p.amplitude_v)
        self.limits.check_width(f"{field}.width_s", p.width_s)

    def check_supports_reset(self, field: str, row: int, col: int) -> None:
        """Raise :class:`LimitError` when this backend has no reset pulse."""
        if not self.supports_reset:
            raise LimitError(field, f"({row}, {col})", "nothing: this backend has no reset")


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
        self.info.limits.check_read_v("v_read", v_read)
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
        self.info.limits.check_read_v("voltages", v)
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
        self.info.check_supports_reset("reset", row, col)
        self.info.check_device("reset", row, col)
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
        self.info.check_pulse(field, p)

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


def _check_symmetric(field: str, v: float | NDArray[np.float64], vmax: float, unit: str) -> None:
    """Raise :class:`LimitError` unless ``v`` (a value or an array) is finite and ``|v| <= vmax``.

    For an array the error names the first offending element, ``field[j]``.
    """
    a = np.asarray(v, dtype=float)
    ok = np.isfinite(a) & (np.abs(a) <= vmax)
    if ok.all():
        return
    if a.ndim:
        j = int(np.argmin(ok.ravel()))
        field, v = f"{field}[{j}]", float(a.ravel()[j])
    raise LimitError(field, v, f"[-{vmax}, {vmax}]", unit)


def _check_index(field: str, index: int, size: int) -> None:
    """Raise :class:`LimitError` unless ``index`` is an integer in ``[0, size - 1]``."""
    if not (isinstance(index, int | np.integer) and 0 <= index < size):
        raise LimitError(field, index, f"integers [0, {size - 1}]")


def _least(value: float, user: float | None) -> float:
    """The smaller of an instrument maximum and an optional user maximum."""
    return value if user is None else min(value, user)


def _finite(values: NDArray[np.float64], what: str) -> NDArray[np.float64]:
    """``values`` unchanged, or :class:`DeviceFault` when a measurement is NaN or infinite.

    A non-finite reading would silently poison every update computed from it.
    """
    if not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise DeviceFault(f"{what}: {bad} of {np.size(values)} values are not finite (NaN or inf)")
    return values
