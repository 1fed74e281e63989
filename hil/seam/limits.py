"""What a crossbar accepts and what it is: :class:`Limits`, :class:`UserLimits`, :class:`BackendInfo`.

The one implementation of the range checks. The backend's public methods
(:mod:`crossbar_hil.seam.backend`) and the protocol's server-side validation
(:mod:`crossbar_hil.protocol.codec`) both call them, so a value is judged the same way at
both ends of a link. Units: V, s, A; conductances in S.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crossbar_hil.seam.errors import LimitError


class Limits(BaseModel):
    """What a backend accepts. Every value sent to hardware is checked against these."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

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
    # protocol's server-side validation (crossbar_hil.protocol.codec) both call these.
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

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

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

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

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


def _check_symmetric(field: str, v: float | NDArray[np.float64], vmax: float, unit: str) -> None:
    """Raise :class:`LimitError` unless ``v`` (a value or an array) is finite and ``|v| <= vmax``.

    For an array the error names the first offending element, ``field[j]``. A plain number in range
    returns at once (no array: every pulse of a batch is checked, once per backend layer).
    """
    if isinstance(v, float | int) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= vmax:
        return
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
