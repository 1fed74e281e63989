"""What defines an emulated crossbar: :class:`EmulatorConfig` and its :class:`ShiftDistribution`.

Shared by the single-crossbar backend (:mod:`crossbar_hil.emulator.crossbar`) and the batch of
crossbars (:mod:`crossbar_hil.emulator.batched`). Every random draw of a crossbar comes from
:func:`stream`: one independent generator per seed and purpose, so that turning
noise on does not change the device-to-device shifts of a seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Self

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossbar_hil.emulator.devices import DeviceModel, TraceDevice, default_device
from crossbar_hil.emulator.physics import rescale_shifts
from crossbar_hil.seam import Limits


class Purpose(IntEnum):
    """The random stream of a crossbar, by what it draws."""

    SHIFTS = 0
    STEP_NOISE = 1
    READ_NOISE = 2
    STUCK = 3
    RANGE_SCALE = 4


def stream(seed: int, purpose: Purpose) -> np.random.Generator:
    """The generator of ``purpose`` for crossbar ``seed``.

    Child ``purpose`` of ``SeedSequence(seed)``: the same stream as
    ``SeedSequence(seed).spawn(4)[purpose]``, without spawning the others.
    """
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(purpose),)))


_REF_LOW_SIEMENS, _REF_HIGH_SIEMENS = 1e-8, 1e-7


class ShiftDistribution(BaseModel):
    """Lognormal device-to-device shifts (S), min-max rescaled into [low_siemens, high_siemens]."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    mu: float = Field(
        math.log((_REF_LOW_SIEMENS + _REF_HIGH_SIEMENS) / 2), description="Mean of log(shift / S)."
    )
    sigma: float = Field(
        abs(math.log(_REF_HIGH_SIEMENS / _REF_LOW_SIEMENS)) / 5, ge=0, description="Sd of log(shift / S)."
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
        """One shift per device of one crossbar, in S."""
        return self.draw_batch([rng], shape)[0]

    def draw_batch(self, rngs: Sequence[np.random.Generator], shape: tuple[int, int]) -> NDArray[np.float64]:
        """One crossbar of shifts (S) per generator: shape (len(rngs), *shape).

        Each crossbar is rescaled on its own min and max.
        """
        x = np.stack([rng.lognormal(self.mu, self.sigma, size=shape) for rng in rngs])
        return rescale_shifts(x, self.low_siemens, self.high_siemens) if self.rescale else x


class EmulatorConfig(BaseModel):
    """Everything that defines an emulated crossbar. Reference values are the defaults."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rows: int = Field(4, ge=1, le=64)
    cols: int = Field(4, ge=1, le=64)
    trace: Path | None = Field(None, description="Trace to replay; None = the built-in device.")
    device: DeviceModel | None = Field(None, description="A parametric model instead of a trace.")
    scale_k: float = Field(10.0, gt=0, description="Scale factor K from trace to crossbar (-).")
    shifts: ShiftDistribution = Field(default_factory=ShiftDistribution)
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of every random draw of this crossbar.")
    read_noise: float = Field(0.0, ge=0, le=1, description="Relative sd of each read / current.")
    step_noise: float = Field(0.0, ge=0, le=5, description="Relative sd of each conductance step.")
    stuck_fraction: float = Field(0.0, ge=0, le=1, description="Share of devices that never move.")
    set_threshold_v: float = Field(1.0, gt=0, description="Smallest pulse that potentiates (V).")
    reset_threshold_v: float = Field(1.0, gt=0, description="Smallest |negative pulse| that resets (V).")
    reset_min_width_s: float = Field(0.1, gt=0, description="Shortest negative pulse that resets (s).")
    reset_v: float = Field(-2.0, lt=0, description="The device's reset pulse amplitude (V).")
    reset_width_s: float = Field(1.0, gt=0, description="The device's reset pulse width (s).")
    depression: bool = Field(
        False, description="Short negative pulses depress one step, along the model's depression curve."
    )
    depression_trace: Path | None = Field(
        None, description="With trace: a measured depression trace (S, from the top down)."
    )
    range_sigma: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Sd of the per-device Gaussian scale N(1, sigma) on dynamic range and steps (-).",
    )
    limits: Limits = Field(default_factory=Limits)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.trace is not None and self.device is not None:
            raise ValueError("give either trace or device, not both")
        if self.depression_trace is not None and self.trace is None:
            raise ValueError("depression_trace goes with trace (a device model carries its own)")
        if self.depression:
            model = self.device_model()
            if isinstance(model, TraceDevice) and model.depression_path is None:
                raise ValueError(
                    "depression: a trace device depresses only along a measured depression trace; "
                    "give depression_trace (or a parametric device), or leave depression off"
                )
        return self

    def device_model(self) -> DeviceModel:
        """The device every cell replays: the trace, the given model, or the built-in default."""
        if self.trace is not None:
            return TraceDevice(path=self.trace, depression_path=self.depression_trace)
        return self.device if self.device is not None else default_device()

    def range_scales(self, seeds: Sequence[int]) -> NDArray[np.float64] | None:
        """Per-device Gaussian scales N(1, range_sigma) of range and steps, clipped at 0 (-),
        shape (len(seeds), rows, cols); None when ``range_sigma`` is 0 (nothing is drawn)."""
        if self.range_sigma == 0:
            return None
        shape = (self.rows, self.cols)
        draws = [stream(s, Purpose.RANGE_SCALE).normal(1.0, self.range_sigma, size=shape) for s in seeds]
        return np.maximum(np.stack(draws), 0.0)
