"""Validated configuration of a training run: hyper-parameters, backend choice, task."""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crossbar_hil.training.task import Task

UpdateMode = Literal["online", "batch"]
GainMode = Literal["fixed", "calibrated"]

REFERENCE_SETTINGS: dict[str, Any] = {
    "rule": "manhattan",
    "update": "batch",
    "beta": 6e6,
    "gain": "fixed",
    "f_plus": 0.8,
    "f_minus": -0.8,
    "target_high": 0.8,
    "target_low": -0.8,
    "ignore_in_band": False,
    "max_epochs": 50,
    "patience": 0,
}
"""The public reference implementation's settings (DESIGN.md section 1). Its update uses the
band edges themselves as the error targets, so "the reference" means targets +-0.8, not +-1.
It runs all its epochs: no patience."""

RECOMMENDED_SETTINGS: dict[str, Any] = {
    "rule": "planned",
    "gain": "calibrated",
    "gain_fraction": 0.5,
    "target_high": 1.0,
    "target_low": -1.0,
    "ignore_in_band": True,
}
"""What ``hil train`` uses unless told otherwise: the gain calibrated from the reachable margin,
the planned rule, in-band patterns left out of the Manhattan fallback (README, "What to expect").
Uses device curves: those given, else learned in situ (``curve_source``); with ``curve_source='none'``
it is Manhattan at the given beta, and the run says so."""

PRESETS: dict[str, dict[str, Any]] = {"recommended": RECOMMENDED_SETTINGS, "reference": REFERENCE_SETTINGS}
"""Named starting points of a run's training settings (:attr:`RunConfig.preset`)."""

PresetName = Literal["recommended", "reference"]
DEFAULT_PRESET: PresetName = "recommended"

StartState = Literal["reset", "as_is"]
CurveSource = Literal["auto", "learned", "oracle", "none"]


class TrainingConfig(BaseModel):
    """Hyper-parameters of in-situ training.

    The field defaults are plain Manhattan training at the reference gain and bands
    but with targets +-1 (NOT the reference, which uses +-0.8: :meth:`reference`).
    :meth:`recommended` is what ``hil train`` uses by default.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rule: str = Field(
        "manhattan",
        description="Update rule by its registered name (crossbar_hil.training.rules.RULES): planned "
        "(pulse towards the best reachable positions, planned from read-back and the device curve), "
        "manhattan (the reference's), method_a, method_b or method_c (Lim et al.: what to do when the "
        "device to potentiate is saturated: a resets the pair and re-programmes it, b resets and "
        "re-programmes the other device, c depresses the other device).",
    )
    update: UpdateMode = Field(
        "batch",
        description="When the sign-only update is sent: 'batch' once per epoch from the summed "
        "per-pattern updates, 'online' after each training pattern (a forward pass on the "
        "crossbar per pattern).",
    )
    beta: float = Field(
        6e6,
        gt=0,
        le=1e12,  # Beyond, tanh(beta I) is a step for any current a crossbar gives (and 1e308 overflowed).
        description="Gain of f = tanh(beta * I), in 1/A (the start, if calibrated).",
        json_schema_extra={"unit": "1/A"},
    )
    gain: GainMode = Field(
        "fixed",
        description="'calibrated': before training, set beta so that the bands need gain_fraction of "
        "the largest margin the devices can reach (from a read of the crossbar and the device "
        "curve; needs device_curve_siemens). 'fixed': beta as given.",
    )
    gain_fraction: float = Field(
        0.5, gt=0, lt=1, description="Calibrated gain: share of the largest reachable margin the bands need."
    )
    device_curve_siemens: tuple[float, ...] | tuple[tuple[tuple[float, ...], ...], ...] | None = Field(
        None,
        description="Conductance gained after m = 0..n_max potentiating pulses from reset (S, on "
        "this crossbar's scale): one curve for every device, or one per device (rows x cols x "
        "positions), from a calibration (hil characterize), a file or the emulator's oracle. Enables the "
        "feasibility check before training, the calibrated gain and the planned rule with that curve; "
        "without one they use curves learned in situ (curve_source).",
    )
    curve_source: CurveSource = Field(
        "auto",
        description="Where the device curves come from when device_curve_siemens is not given: 'auto' "
        "(the instrument's newest calibration where a run store keeps one, else learned in situ), "
        "'learned' (learned in situ from read-back, a calibration ignored), 'oracle' (the emulator's "
        "own exact curve: no real instrument has one; emulator runs only, named so in the output), "
        "'none' (no curve: the planned rule makes Manhattan steps, the gain stays as given).",
    )
    device_curve_label: str | None = Field(
        None,
        max_length=300,
        description="What device_curve_siemens is (a calibration and its date, a file, the oracle): "
        "shown in the run's output as its curve source.",
    )
    f_plus: float = Field(0.8, gt=-1, lt=1, description="A class-1 output must exceed this.")
    f_minus: float = Field(-0.8, gt=-1, lt=1, description="A class-0 output must stay below this.")
    target_high: float = Field(1.0, ge=-1, le=1, description="Target value of class 1 in the error.")
    target_low: float = Field(-1.0, ge=-1, le=1, description="Target value of class 0 in the error.")
    ignore_in_band: bool = Field(
        False, description="Patterns already inside their target band add no update."
    )
    max_epochs: int = Field(50, ge=0, le=100_000, description="Most update epochs.")
    read_v: float = Field(0.05, gt=0, description="Read voltage of the per-epoch conductance read (V).")
    pulse_v: float = Field(2.0, gt=0, description="Potentiating pulse amplitude (V).")
    pulse_width_s: float = Field(1e-3, gt=0, description="Potentiating pulse width (s).")
    depress_v: float = Field(-2.0, lt=0, description="Depressing pulse amplitude of method_c (V, negative).")
    depress_width_s: float = Field(
        1e-3, gt=0, description="Depressing pulse width of method_c (s; short, unlike a reset)."
    )
    reset_time_s: float = Field(
        1.0,
        gt=0,
        description="Instrument time one device reset takes (s), counted in the run's instrument "
        "time. Default: the -2 V / 1 s reset pulse of the reference trace header.",
    )
    saturation_tol_siemens: float = Field(
        0.0,
        ge=0,
        description="Methods a, b, c: a device counts as saturated when a pulse raised its "
        "read-back conductance by no more than this (S). Set it above the read noise.",
    )
    saturation_pulses: int = Field(
        2,
        ge=1,
        le=100,
        description="Methods a, b, c: this many pulses in a row without a rise (see "
        "saturation_tol_siemens) make a device saturated. 2 (default) keeps a noisy device from "
        "being taken for saturated after one dip: on the reference trace (18 of 49 steps go down) "
        "method b converges 70.5 % of 200 seeds at beta 2e7 with 2, 38.5 % with 1 "
        "(benchmarks/compare_rules.py); on the smooth fitted device 2 costs nothing measurable.",
    )
    max_verify_pulses: int = Field(
        100,
        ge=1,
        le=100_000,
        description="Methods a, b: most read-verify pulses in one re-programming of a pair.",
    )
    max_recoveries: int = Field(
        5,
        ge=0,
        le=1000,
        description="Planned rule: most re-programmings (device resets, then pulses to a new plan) "
        "after the plan turned infeasible on the way; 0: Manhattan steps instead.",
    )
    start_state: StartState = Field(
        "reset",
        description="'reset': reset every device the task uses before training (where the "
        "instrument has a reset), so a run does not start from an earlier run's devices; "
        "'as_is': start from the devices' present state.",
    )
    patience: int = Field(
        10,
        ge=0,
        le=100_000,
        description="End the run (outcome 'stalled') when no device's read-back conductance moved "
        "by more than stall_rel_tol over this many epochs; 0 turns the check off.",
    )
    stall_rel_tol: float = Field(
        1e-3,
        gt=0,
        lt=1,
        description="Relative change of a conductance that counts as moving (for patience and "
        "saturation_epochs); set it above the instrument's relative read noise.",
    )
    saturation_epochs: int = Field(
        3,
        ge=1,
        le=100_000,
        description="An unconverged run whose last this many epochs sent pulses that moved no "
        "conductance by more than stall_rel_tol looks saturated: its diagnosis (for rules without "
        "their own device watch) and the advice say so.",
    )

    @classmethod
    def reference(cls, **overrides: Any) -> TrainingConfig:
        """The reference settings (:data:`REFERENCE_SETTINGS`), then ``overrides``."""
        return cls(**{**REFERENCE_SETTINGS, **overrides})

    @classmethod
    def recommended(cls, **overrides: Any) -> TrainingConfig:
        """The recommended settings (:data:`RECOMMENDED_SETTINGS`), then ``overrides``."""
        return cls(**{**RECOMMENDED_SETTINGS, **overrides})

    @field_validator("device_curve_siemens")
    @classmethod
    def _finite_curve(cls, curve: Any) -> Any:
        if curve is None:
            return curve
        arr = np.asarray(curve, dtype=float)  # ragged per-device curves raise here
        if not np.all(np.isfinite(arr)):
            raise ValueError("every conductance of the device curve must be finite (S)")
        if arr.shape[-1] < 2:
            raise ValueError("a device curve needs at least 2 positions (reset and one pulse)")
        return curve

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, rule: str) -> str:
        from crossbar_hil.training.rules import RULES  # The registry imports this module.

        if rule not in RULES:
            raise ValueError(f"rule {rule!r} is not known; known rules: {', '.join(RULES)}")
        return rule

    @model_validator(mode="after")
    def _bands(self) -> Self:
        if self.f_minus >= self.f_plus:
            raise ValueError(f"f_minus={self.f_minus} must be below f_plus={self.f_plus}")
        return self


class BackendSpec(BaseModel):
    """Which backend to build, by registered name, and its own parameters."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field("emulator", min_length=1, description="Registered backend name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Passed to the backend.")


class RunConfig(BaseModel):
    """A whole run: backend, task, hyper-parameters.

    The training settings start from the named :attr:`preset` (:data:`PRESETS`), and the
    fields given in ``training`` override it; so ``RunConfig()`` (``hil train`` without
    options, ``POST /runs {}``) trains with the recommended settings. A ``training`` given as
    a :class:`TrainingConfig` instance is taken whole. A config's JSON form lists every
    training field, so it validates back to the same settings whatever its preset.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    preset: PresetName = Field(
        DEFAULT_PRESET,
        description="Named training settings the 'training' fields start from: 'recommended' (calibrated "
        "gain, planned rule; uses a device curve, from the backend when it knows one) or 'reference' "
        "(the public reference implementation: beta 6e6, bands and targets +-0.8, Manhattan, 50 epochs).",
    )
    backend: BackendSpec = Field(default_factory=BackendSpec)
    task: Task = Field(default_factory=Task.reference)
    training: TrainingConfig = Field(
        default_factory=TrainingConfig.recommended,
        description="Training settings; fields not given take the preset's values, then TrainingConfig's.",
    )

    @model_validator(mode="before")
    @classmethod
    def _preset_under_training(cls, data: Any) -> Any:
        """Lay the preset's settings under the given training fields."""
        if not isinstance(data, dict):
            return data
        preset = data.get("preset", DEFAULT_PRESET)
        training = data.get("training", {})
        if isinstance(preset, str) and preset in PRESETS and isinstance(training, dict):
            data = {**data, "training": {**PRESETS[preset], **training}}
        return data
