"""Validated configuration of a training run: hyper-parameters, backend choice, task."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hil.training.task import Task

RuleName = Literal["manhattan"]


class TrainingConfig(BaseModel):
    """Hyper-parameters of in-situ training. Defaults are the reference values."""

    model_config = ConfigDict(extra="forbid")

    rule: RuleName = Field("manhattan", description="Update rule.")
    beta: float = Field(6e6, gt=0, description="Gain of f = tanh(beta * I), in 1/A.")
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

    @model_validator(mode="after")
    def _bands(self) -> Self:
        if self.f_minus >= self.f_plus:
            raise ValueError(f"f_minus={self.f_minus} must be below f_plus={self.f_plus}")
        return self


class BackendSpec(BaseModel):
    """Which backend to build, by registered name, and its own parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("emulator", min_length=1, description="Registered backend name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Passed to the backend.")


class RunConfig(BaseModel):
    """A whole run: backend, task, hyper-parameters."""

    model_config = ConfigDict(extra="forbid")

    backend: BackendSpec = Field(default_factory=BackendSpec)
    task: Task = Field(default_factory=Task.reference)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
