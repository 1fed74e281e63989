"""Calibrating an instrument: every device's own curve, in one pass, through any backend.

``hil characterize --all`` and the benchmark call :func:`calibrate`: reset every
chosen device, read, then ``n_pulses`` times: one pulse on every chosen device
(one batched command), one read of the whole crossbar. Each device's column of
reads is its own curve (its reset level, then the conductance after each pulse),
so a 4 x 4 crossbar costs ``n_pulses`` reads rather than 16 x ``n_pulses``. This
assumes a pulse on one device does not move another (no half-select disturb),
which holds for the emulator and for the reference controller's one-device pulses.

The result, a :class:`Calibration`, holds the curves (S), the reset levels, the
pulse settings, the instrument's identity, shape and limits and the time. A run
uses it as per-device curves (:meth:`Calibration.curves_siemens`,
:meth:`Calibration.training_update`); :meth:`Calibration.traces` gives each device
as a :class:`~crossbar_hil.trace_file.Trace`, for ``.dat`` files the emulator replays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from crossbar_hil.seam import CrossbarBackend, Pulse
from crossbar_hil.seam.errors import LimitError
from crossbar_hil.trace_file import PulseProtocol, Trace
from crossbar_hil.training.curves import device_curves, measure_devices
from crossbar_hil.training.stop import StopSignal


class Calibration(BaseModel):
    """Every calibrated device's curve on one instrument, with how and when it was measured."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    identity: str = Field(description="The instrument's identity (*IDN?).")
    rows: int = Field(ge=1)
    cols: int = Field(ge=1)
    limits: dict[str, Any] = Field(default_factory=dict, description="The instrument's limits then.")
    created_at: str = Field(description="When the calibration was measured (ISO 8601, UTC).")
    devices: list[tuple[int, int]] = Field(description="(row, col) of each calibrated device.")
    conductances_siemens: list[list[float]] = Field(
        description="Per calibrated device: its read after the reset, then after each pulse (S)."
    )
    pulse_v: float = Field(description="Pulse amplitude (V).")
    pulse_width_s: float = Field(gt=0, description="Pulse width (s).")
    read_v: float = Field(gt=0, description="Read voltage (V).")
    reset_time_s: float = Field(1.0, gt=0, description="Instrument time of one reset (s), its pulse width.")
    reset_v: float = Field(-2.0, description="The device's reset pulse amplitude, as documented (V).")

    @property
    def n_pulses(self) -> int:
        """Pulses given to each device."""
        return len(self.conductances_siemens[0]) - 1 if self.conductances_siemens else 0

    @property
    def instrument_time_s(self) -> float:
        """Instrument time the calibration took: a reset and ``n_pulses`` pulses per device (s)."""
        return len(self.devices) * (self.reset_time_s + self.n_pulses * self.pulse_width_s)

    def label(self, now: datetime | None = None) -> str:
        """``calibration of DATE (AGE old)``: how a run names this curve source."""
        made = datetime.fromisoformat(self.created_at)
        age_s = max(((now or datetime.now(UTC)) - made).total_seconds(), 0.0)
        if age_s < 3600:
            age = f"{age_s / 60:.0f} min"
        elif age_s < 2 * 86400:
            age = f"{age_s / 3600:.1f} h"
        else:
            age = f"{age_s / 86400:.0f} days"
        return f"calibration of {self.created_at} ({age} old, {len(self.devices)} devices)"

    def curves_siemens(self) -> NDArray[np.float64]:
        """Per-device curves (rows, cols, n_pulses + 1), gained from each device's reset level (S).

        A device not calibrated takes the median curve of those that were.
        """
        g = np.asarray(self.conductances_siemens, dtype=float)
        gained = g - g[:, :1]
        out = np.broadcast_to(np.median(gained, axis=0), (self.rows, self.cols, gained.shape[1])).copy()
        for (r, c), curve in zip(self.devices, gained, strict=True):
            out[r, c] = curve
        return device_curves(out, (self.rows, self.cols))

    def training_update(self, label: str | None = None) -> dict[str, Any]:
        """The training fields a run on this calibration takes: its curves and their label."""
        curves = self.curves_siemens()
        return {
            "device_curve_siemens": tuple(tuple(tuple(float(x) for x in c) for c in row) for row in curves),
            "device_curve_label": label or self.label(),
        }

    def traces(self) -> dict[tuple[int, int], Trace]:
        """Each calibrated device as a trace (for ``.dat`` files the emulator can replay)."""
        protocol = PulseProtocol(
            n_pulses=self.n_pulses,
            reset_v=self.reset_v,
            reset_width_s=self.reset_time_s,
            read_v=self.read_v,
            on_v=self.pulse_v,
            on_width_s=self.pulse_width_s,
        )
        return {
            (r, c): Trace(
                np.asarray(g, dtype=float), protocol, f"{self.identity} ({r},{c}) of {self.created_at}"
            )
            # one trace per device
            for (r, c), g in zip(self.devices, self.conductances_siemens, strict=True)
        }


def calibrate(
    backend: CrossbarBackend,
    n_pulses: int = 30,
    amplitude_v: float = 2.0,
    width_s: float = 1e-3,
    read_v: float = 0.05,
    *,
    devices: Sequence[tuple[int, int]] | None = None,
    reset_time_s: float = 1.0,
    stop: StopSignal | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Calibration:
    """Calibrate ``devices`` (default: all) of ``backend``: reset, read, then ``n_pulses`` x (pulse each,
    read all). Everything is checked against the backend's limits before the first reset; ``stop`` is
    checked before each reset and each pulse command. Needs a backend with reset."""
    stop = stop or StopSignal()
    info = backend.info
    every = [(r, c) for r in range(info.rows) for c in range(info.cols)]
    chosen = [(int(r), int(c)) for r, c in (devices or every)]
    if not chosen:
        raise LimitError("devices", "[]", "at least one (row, col) of the crossbar")
    if n_pulses < 1:
        raise LimitError("pulses", n_pulses, "integers >= 1")
    for r, c in chosen:
        backend.check_pulse(Pulse(r, c, amplitude_v, width_s), "calibration pulse")
        info.check_supports_reset("calibration reset", r, c)
    info.limits.check_read_v("read_v", read_v)
    if not read_v > 0:
        raise LimitError("read_v", read_v, f"(0, {info.limits.read_v_max}]", "V")
    created = datetime.now(UTC).isoformat(timespec="seconds")
    g = measure_devices(backend, chosen, n_pulses, amplitude_v, width_s, read_v, stop, progress)
    return Calibration(
        identity=info.identity,
        rows=info.rows,
        cols=info.cols,
        limits=info.limits.model_dump(mode="json"),
        created_at=created,
        devices=chosen,
        conductances_siemens=g.tolist(),
        pulse_v=amplitude_v,
        pulse_width_s=width_s,
        read_v=read_v,
        reset_time_s=reset_time_s,
    )
