"""Device models: the conductance of one device at each pulse position m = 0..n_max.

Every model reduces to a *table* ``G_exp[m]`` in S: position 0 is the state after
a reset, each potentiating pulse moves one position up, the last position is
saturation. The crossbar (:mod:`crossbar_hil.emulator.crossbar`) replays such a table per
device, so a measured trace and a parametric model are used the same way.

* :class:`TraceDevice` replays a measured trace (e.g. SP291D1NR100).
* :class:`ExponentialDevice` is the nonlinear model of Lim et al.:
  ``G(n+1) = G(n) + alpha * exp(-beta_nl * (G(n) - Gmin) / (Gmax - Gmin))``, clipped at Gmax.
* :class:`LtpLtdDevice` is the LTP/LTD model of Huang et al. (NeuroSim) with
  nonlinearities ``a_p`` / ``a_d`` (in pulses) and ``2**bits - 1`` pulses of dynamic range.

Depression. Each model also gives a *depression table*
(:meth:`depression_table`): the conductance (S) after k = 0, 1, ... depressing
pulses from the top of its range. The Lim model depresses with the same law
mirrored (``G(n+1) = G(n) - alpha_d * exp(-beta_nl_d * (Gmax - G(n)) / (Gmax - Gmin))``),
the Huang model along its LTD branch ``G(P) = Gmax - B_d (1 - exp(-P / A_d))``,
and a trace device along a measured depression trace when one is given (none:
the device cannot be depressed, and a crossbar refuses depression with it).
A crossbar uses the table conductance-wise, as NeuroSim does: a depressing pulse
moves a device from its present conductance one pulse further down the curve
(:mod:`crossbar_hil.emulator.depression`).

:func:`default_device` is the built-in device: an :class:`ExponentialDevice`
fitted to the reference trace (see ``data/devices/default_device.json``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossbar_hil.resources import read_data_text
from crossbar_hil.trace_file import Trace, load_trace
from crossbar_hil.training.curves import DEFAULT_DEVICE_FILE, exponential_tables


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def table(self) -> NDArray[np.float64]:  # pragma: no cover - abstract
        """Conductance (S) at positions 0..n_max."""
        raise NotImplementedError

    def depression_table(self) -> NDArray[np.float64] | None:
        """Conductance (S) after k = 0, 1, ... depressing pulses from the top; None: no depression."""
        return None


class TraceDevice(_Model):
    """Replay of a measured trace file (``.dat`` or one-column CSV)."""

    kind: Literal["trace"] = "trace"
    path: Path = Field(description="Trace file: instrument .dat or one-column CSV of S.")
    depression_path: Path | None = Field(
        None,
        description="Depression trace (same formats): conductances (S) under depressing pulses, "
        "from the top down. None: the device cannot be depressed.",
    )

    def table(self) -> NDArray[np.float64]:
        return self.trace().conductances_siemens

    def depression_table(self) -> NDArray[np.float64] | None:
        if self.depression_path is None:
            return None
        return TraceDevice(path=self.depression_path).table()

    def trace(self) -> Trace:
        """The parsed trace, with its header (parsed once per file version)."""
        path = self.path.resolve()
        try:
            st = path.stat()
        except FileNotFoundError:
            raise FileNotFoundError(f"trace file not found: {path}") from None
        return _cached_trace(path, st.st_mtime_ns, st.st_size)


@cache
def _cached_trace(path: Path, mtime_ns: int, size: int) -> Trace:
    """Parse ``path``; the modification time and size key the cache to the file's content."""
    return load_trace(path)


class _Bounded(_Model):
    """A parametric device between a lowest and a highest conductance."""

    g_min_siemens: float = Field(gt=0, description="Conductance after reset, the lowest (S).")
    g_max_siemens: float = Field(gt=0, description="Saturation conductance, the highest (S).")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.g_max_siemens <= self.g_min_siemens:
            raise ValueError(
                f"g_max_siemens={self.g_max_siemens} S must exceed g_min_siemens={self.g_min_siemens} S"
            )
        return self


class ExponentialDevice(_Bounded):
    """Lim et al. nonlinear potentiation with a state-dependent step."""

    kind: Literal["exponential"] = "exponential"
    alpha_siemens: float = Field(gt=0, description="Step at Gmin (S).")
    beta_nl: float = Field(ge=0, description="Nonlinearity (dimensionless); 0 is linear.")
    n_max: int = Field(50, ge=1, le=100_000, description="Pulse positions in the table.")
    alpha_d_siemens: float | None = Field(
        None, gt=0, description="Depression step at Gmax (S); None: alpha_siemens."
    )
    beta_nl_d: float | None = Field(None, ge=0, description="Depression nonlinearity; None: beta_nl.")

    def table(self) -> NDArray[np.float64]:
        return exponential_tables(
            np.array([self.g_min_siemens]),
            np.array([self.g_max_siemens]),
            np.array([self.alpha_siemens]),
            np.array([self.beta_nl]),
            self.n_max,
        )[0]

    def depression_table(self) -> NDArray[np.float64]:
        """The same law mirrored: ``Gmax + Gmin - G`` follows the potentiation recursion."""
        alpha = self.alpha_siemens if self.alpha_d_siemens is None else self.alpha_d_siemens
        beta = self.beta_nl if self.beta_nl_d is None else self.beta_nl_d
        rise = exponential_tables(
            np.array([self.g_min_siemens]),
            np.array([self.g_max_siemens]),
            np.array([alpha]),
            np.array([beta]),
            self.n_max,
        )[0]
        return self.g_max_siemens + self.g_min_siemens - rise


class LtpLtdDevice(_Bounded):
    """Huang et al. LTP/LTD: ``G(P) = B_p (1 - exp(-P / A_p)) + Gmin`` for P = 0..2**bits - 1 up;
    ``G(P) = Gmax - B_d (1 - exp(-P / A_d))`` for P depressing pulses down from Gmax."""

    kind: Literal["ltp_ltd"] = "ltp_ltd"
    a_p: float = Field(gt=0, description="Potentiation nonlinearity, in pulses (large = linear).")
    a_d: float | None = Field(
        None, gt=0, description="Depression nonlinearity, in pulses (large = linear); None: a_p."
    )
    bits: int = Field(6, ge=1, le=16, description="Levels are 2**bits; 2**bits - 1 pulses.")

    def table(self) -> NDArray[np.float64]:
        return self._saturating(self.a_p) + self.g_min_siemens

    def depression_table(self) -> NDArray[np.float64]:
        return self.g_max_siemens - self._saturating(self.a_p if self.a_d is None else self.a_d)

    def _saturating(self, a: float) -> NDArray[np.float64]:
        """``B (1 - exp(-P / a))`` for P = 0..P_max, B such that it spans Gmax - Gmin (S)."""
        p_max = 2**self.bits - 1
        p = np.arange(p_max + 1, dtype=float)
        b = (self.g_max_siemens - self.g_min_siemens) / (1.0 - np.exp(-p_max / a))
        return b * (1.0 - np.exp(-p / a))


DeviceModel = Annotated[TraceDevice | ExponentialDevice | LtpLtdDevice, Field(discriminator="kind")]


class DefaultDeviceRecord(BaseModel):
    """The stored fit behind the built-in device, with how it was obtained."""

    model_config = ConfigDict(allow_inf_nan=False)

    model: ExponentialDevice
    fitted_to: str
    source_sha256: str
    method: str
    rms_residual_siemens: float
    max_abs_residual_siemens: float
    tolerance_siemens: float = Field(description="Stated bound on |model - trace| at every pulse (S).")


@cache
def default_device_record() -> DefaultDeviceRecord:
    """The fitted parameters stored in ``data/devices/default_device.json``."""
    return DefaultDeviceRecord.model_validate(json.loads(read_data_text(DEFAULT_DEVICE_FILE)))


def default_device() -> ExponentialDevice:
    """The built-in device, used when no trace is given."""
    return default_device_record().model
