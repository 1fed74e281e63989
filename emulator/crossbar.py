"""`EmulatedCrossbar`: a crossbar of replayed devices that implements `CrossbarBackend`.

Each device (j, k) sits at a position ``m_jk`` along its device table
``G_exp`` (a measured trace or a parametric model, :mod:`emulator.devices`) and
has a fixed device-to-device shift ``shift_jk``::

    G_jk = K * ((G_exp(m_jk) - G_exp(0)) + shift_jk)

A potentiating pulse moves ``m`` one step up (saturating at the end of the
table), the reset pulse returns it to 0. Shifts are lognormal, min-max rescaled
into ``[shift_low_siemens, shift_high_siemens]`` (ARCHITECTURE.md section 1). Optional
cycle-to-cycle step noise, read noise and stuck devices make it less kind than
the reference. Every random draw comes from generators seeded by ``seed``, with
one independent stream per purpose so that turning noise on does not change the
device-to-device shifts of a seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from emulator.devices import DeviceModel, TraceDevice, default_device
from hil.seam import BackendInfo, CrossbarBackend, Limits, Pulse

_REF_LOW_SIEMENS, _REF_HIGH_SIEMENS = 1e-8, 1e-7


class ShiftDistribution(BaseModel):
    """Lognormal device-to-device shifts (S), min-max rescaled into [low_siemens, high_siemens]."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mu: float = Field(
        math.log((_REF_LOW_SIEMENS + _REF_HIGH_SIEMENS) / 2), description="Mean of log(shift / S)."
    )
    sigma: float = Field(
        abs(math.log(_REF_HIGH_SIEMENS / _REF_LOW_SIEMENS)) / 5, ge=0, description="Sd of log."
    )
    low_siemens: float = Field(_REF_LOW_SIEMENS, ge=0, description="Smallest shift after rescaling (S).")
    high_siemens: float = Field(_REF_HIGH_SIEMENS, ge=0, description="Largest shift after rescaling (S).")
    rescale: bool = Field(True, description="Min-max rescale the draws into [low_siemens, high_siemens].")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.high_siemens < self.low_siemens:
            raise ValueError(
                f"high_siemens={self.high_siemens} S must be >= low_siemens={self.low_siemens} S"
            )
        return self

    def draw(self, rng: np.random.Generator, shape: tuple[int, int]) -> NDArray[np.float64]:
        """One shift per device, in S."""
        x = rng.lognormal(self.mu, self.sigma, size=shape)
        if not self.rescale:
            return x
        span = x.max() - x.min()
        if span == 0:
            return np.full(shape, self.low_siemens)
        return self.low_siemens + (x - x.min()) / span * (self.high_siemens - self.low_siemens)


class EmulatorConfig(BaseModel):
    """Everything that defines an emulated crossbar. Reference values are the defaults."""

    model_config = ConfigDict(extra="forbid")

    rows: int = Field(4, ge=1, le=64)
    cols: int = Field(4, ge=1, le=64)
    trace: Path | None = Field(None, description="Trace to replay; None = the built-in device.")
    device: DeviceModel | None = Field(None, description="A parametric model instead of a trace.")
    scale_k: float = Field(10.0, gt=0, description="Scale factor K from trace to crossbar (-).")
    shifts: ShiftDistribution = Field(default_factory=ShiftDistribution)
    seed: int = Field(0, ge=0, description="Seed of every random draw of this crossbar.")
    read_noise: float = Field(0.0, ge=0, le=1, description="Relative sd of each read / current.")
    step_noise: float = Field(0.0, ge=0, le=5, description="Relative sd of each conductance step.")
    stuck_fraction: float = Field(0.0, ge=0, le=1, description="Share of devices that never move.")
    set_threshold_v: float = Field(1.0, gt=0, description="Smallest pulse that potentiates (V).")
    reset_threshold_v: float = Field(1.0, gt=0, description="Smallest |negative pulse| that resets (V).")
    reset_min_width_s: float = Field(0.1, gt=0, description="Shortest negative pulse that resets (s).")
    reset_v: float = Field(-2.0, lt=0, description="The device's reset pulse amplitude (V).")
    reset_width_s: float = Field(1.0, gt=0, description="The device's reset pulse width (s).")
    depression: bool = Field(False, description="Short negative pulses depress one step.")
    limits: Limits = Field(default_factory=Limits)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.trace is not None and self.device is not None:
            raise ValueError("give either trace or device, not both")
        return self

    def device_model(self) -> DeviceModel:
        """The device every cell replays: the trace, the given model, or the built-in default."""
        if self.trace is not None:
            return TraceDevice(path=self.trace)
        return self.device if self.device is not None else default_device()


class EmulatedCrossbar(CrossbarBackend):
    """A rows x cols crossbar of emulated devices (no hardware, no sleeping)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or EmulatorConfig()
        self.device = cfg.device_model()
        self.table = np.asarray(self.device.table(), dtype=float)
        self._steps = np.diff(self.table)
        shape = (cfg.rows, cfg.cols)
        shift_ss, step_ss, read_ss, stuck_ss = np.random.SeedSequence(cfg.seed).spawn(4)
        self.shifts_siemens = cfg.shifts.draw(np.random.default_rng(shift_ss), shape)
        self._step_rng = np.random.default_rng(step_ss)
        self._read_rng = np.random.default_rng(read_ss)
        self.stuck = np.random.default_rng(stuck_ss).random(shape) < cfg.stuck_fraction
        self.position = np.zeros(shape, dtype=np.int64)
        self._g_dev = np.full(shape, self.table[0])
        self.aborts = 0
        """How many times outputs were brought to 0 V (for tests of the fault paths)."""
        self._info = BackendInfo(
            identity=f"crossbar-hil,EmulatedCrossbar,{self.device.kind},seed={cfg.seed}",
            rows=cfg.rows,
            cols=cfg.cols,
            limits=cfg.limits,
            supports_reset=True,
            supports_depression=cfg.depression,
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None) -> EmulatedCrossbar:
        """Build from a plain mapping (a run config's backend params), validated."""
        return cls(EmulatorConfig.model_validate(dict(params or {})))

    @property
    def info(self) -> BackendInfo:
        return self._info

    @property
    def n_max(self) -> int:
        """Last position of the device table (saturation)."""
        return int(self.table.size - 1)

    def conductances(self) -> NDArray[np.float64]:
        """True (noise-free) conductances in S; for tests and plots, not a hardware read."""
        return self.config.scale_k * ((self._g_dev - self.table[0]) + self.shifts_siemens)

    def _noisy(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        sd = self.config.read_noise
        return x if sd == 0 else x * (1.0 + sd * self._read_rng.standard_normal(x.shape))

    # --------------------------------------------------------- CrossbarBackend
    def _read_conductances(self, v_read: float) -> NDArray[np.float64]:
        return self._noisy(self.conductances())

    def _apply(self, voltages: NDArray[np.float64]) -> NDArray[np.float64]:
        return self._noisy(voltages @ self.conductances())

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        cfg = self.config
        amps = np.fromiter((p.amplitude_v for p in pulses), float, len(pulses))
        if cfg.step_noise == 0 and np.all(amps >= cfg.set_threshold_v):
            # Potentiation only, noise-free: k pulses on a device move it min(m + k, n_max),
            # exactly as k pulses one after the other, so the batch is applied at once.
            counts = np.zeros_like(self.position)
            np.add.at(counts, ([p.row for p in pulses], [p.col for p in pulses]), 1)
            counts[self.stuck] = 0
            self.position = np.minimum(self.position + counts, self.n_max)
            moved = counts > 0
            self._g_dev[moved] = self.table[self.position[moved]]
            return
        for p in pulses:
            self._pulse_one(p)

    def _reset(self, row: int, col: int) -> None:
        self._pulse_one(Pulse(row, col, self.config.reset_v, self.config.reset_width_s))

    def _abort(self) -> None:
        # Emulated outputs are momentary: only the request is counted.
        self.aborts += 1

    # --------------------------------------------------------- device physics
    def _pulse_one(self, p: Pulse) -> None:
        cfg = self.config
        r, c = p.row, p.col
        if self.stuck[r, c]:
            return
        if p.amplitude_v >= cfg.set_threshold_v:
            self._step(r, c, +1)
        elif p.amplitude_v <= -cfg.reset_threshold_v:
            if p.width_s >= cfg.reset_min_width_s:
                self.position[r, c] = 0
                self._g_dev[r, c] = self.table[0]
            elif cfg.depression:
                self._step(r, c, -1)
        # Sub-threshold pulses leave the device as it is.

    def _step(self, r: int, c: int, direction: int) -> None:
        m = int(self.position[r, c])
        target = m + direction
        if not 0 <= target <= self.n_max:
            return  # Saturated (or already at the bottom): the device stays where it is.
        step = self._steps[m] if direction > 0 else -self._steps[target]
        if self.config.step_noise:
            step *= 1.0 + self.config.step_noise * self._step_rng.standard_normal()
        self.position[r, c] = target
        self._g_dev[r, c] = self.table[target] if not self.config.step_noise else self._g_dev[r, c] + step
