"""Device curves, one per device: given (a calibration, a file, the emulator's oracle) or learned in situ.

A *device curve* is the conductance a device gains after ``m = 0..n_max``
potentiating pulses from its reset state (S, element 0 is 0). The feasibility
check, the calibrated gain and the planned rule take one curve per device, an
array of shape (rows, cols, n_positions); :func:`device_curves` turns what a user
gives (one curve for all devices, one per device, or a mapping ``(row, col) ->
curve``) into that array.

Without a given curve, :class:`LearnedCurves` learns each device's curve from
what the crossbar shows, as a real controller must (it knows no curve): the
*prior* is the built-in device model (the exponential law fitted to the
reference trace, ``data/devices/default_device.json``) scaled to each device's
reset level read at the start; each device's *scale* is then fitted, by least
squares, to its own read-back gains at the pulse positions it was taken to.
Devices not yet moved take the median scale of the devices that were (the
devices of one crossbar are alike in kind; on the emulator, as on the reference
device, a device's range does not follow its reset level), so one device's first
pulse already corrects the prior of all. Everything comes from reads through
the backend; nothing looks inside an emulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.resources import read_data_text
from crossbar_hil.seam import CrossbarBackend, Pulse
from crossbar_hil.training.stop import StopSignal

DEFAULT_DEVICE_FILE = "devices/default_device.json"
"""The fitted built-in device (the prior's shape)."""


def exponential_tables(
    g_min: NDArray[np.float64],
    g_max: NDArray[np.float64],
    alpha: NDArray[np.float64],
    beta_nl: NDArray[np.float64],
    n_max: int,
) -> NDArray[np.float64]:
    """Tables of the Lim model for K parameter sets at once: shape (K, n_max + 1), S.

    ``G(n+1) = G(n) + alpha exp(-beta_nl (G(n) - Gmin) / (Gmax - Gmin))``, clipped at
    Gmax. Vectorised over parameter sets so that a fit can evaluate a whole grid.
    """
    g = np.empty((g_min.size, n_max + 1))
    g[:, 0] = g_min
    span = g_max - g_min
    for n in range(n_max):
        step = alpha * np.exp(-beta_nl * (g[:, n] - g_min) / span)
        g[:, n + 1] = np.minimum(g[:, n] + step, g_max)
    return g


@cache
def builtin_relative_curve() -> NDArray[np.float64]:
    """The built-in device's gain per position relative to its reset level, ``(G(m) - G(0)) / G(0)`` (-)."""
    model = json.loads(read_data_text(DEFAULT_DEVICE_FILE))["model"]
    table = exponential_tables(
        np.array([model["g_min_siemens"]]),
        np.array([model["g_max_siemens"]]),
        np.array([model["alpha_siemens"]]),
        np.array([model["beta_nl"]]),
        int(model["n_max"]),
    )[0]
    rel = (table - table[0]) / table[0]
    rel.flags.writeable = False
    return rel


CurveInput = Sequence[float] | Sequence[Sequence[Sequence[float]]] | NDArray[np.float64] | Mapping[Any, Any]
"""One curve for all devices (n,), one per device (rows, cols, n), or ``{(row, col): curve}``."""


def device_curves(curve: CurveInput, shape: tuple[int, int]) -> NDArray[np.float64]:
    """Per-device curves (rows, cols, n) in S, each gained from its own position 0.

    ``curve``: one curve (n,) meaning "the same for every device"; one per device
    (rows, cols, n); or a mapping ``(row, col) -> curve`` naming every device.
    Curves of different lengths are padded with their last value (a device at the
    end of its curve stays there). Raises ValueError naming what does not fit.
    """
    rows, cols = shape
    if isinstance(curve, Mapping):
        missing = [(r, c) for r in range(rows) for c in range(cols) if (r, c) not in curve]
        if missing:
            raise ValueError(
                f"device curves: no curve for device(s) {missing[:4]} of the {rows}x{cols} crossbar"
            )
        per = [[np.asarray(curve[(r, c)], dtype=float) for c in range(cols)] for r in range(rows)]
        n = max(p.size for row in per for p in row)
        arr = np.stack([np.stack([np.pad(p, (0, n - p.size), mode="edge") for p in row]) for row in per])
    else:
        arr = np.asarray(curve, dtype=float)
        if arr.ndim == 1:
            arr = np.broadcast_to(arr, (rows, cols, arr.size))
        elif arr.ndim != 3 or arr.shape[:2] != (rows, cols):
            raise ValueError(
                f"device curves: shape {arr.shape} fits neither one curve (n,) nor one per device "
                f"({rows}, {cols}, n)"
            )
    if arr.shape[-1] < 2:
        raise ValueError("device curves: a curve needs at least 2 positions (reset and one pulse)")
    if not np.all(np.isfinite(arr)):
        raise ValueError("device curves: every conductance must be finite (S)")
    return np.ascontiguousarray(arr - arr[..., :1])


class CurveModel(Protocol):
    """What a planner knows of the devices' curves: fixed, or refined from read-back."""

    label: str

    def curves(self) -> NDArray[np.float64]:
        """Per-device curves (rows, cols, n) in S, gained from position 0."""

    def observe(self, positions: NDArray[np.int64], g_siemens: NDArray[np.float64]) -> None:
        """A read (S) of devices at known pulse positions (counted from their reset)."""


class FixedCurves:
    """Curves given before the run (a calibration, a file, the oracle): read-back changes nothing."""

    def __init__(self, curves: NDArray[np.float64], label: str = "given") -> None:
        self._curves = curves
        self.label = label

    def curves(self) -> NDArray[np.float64]:
        return self._curves

    def observe(self, positions: NDArray[np.int64], g_siemens: NDArray[np.float64]) -> None:
        """Nothing to learn: the curve is taken as given."""


LEARNED_LABEL = "learned in situ"


class LearnedCurves:
    """Each device's curve learned from its own read-back, starting from a scaled prior.

    ``g_reset_siemens`` (rows, cols): the read just after the start reset;
    ``relative`` (n,): the prior's gain relative to the reset level (default: the
    built-in device). Each device's curve is ``a_jk * relative``; the prior has
    ``a_jk = g_reset_jk``; a device once seen at a position > 0 gets the
    least-squares ``a_jk`` of its observed gains ``g - g_reset`` (every read of it at
    a known position counts, so step and read noise average out).
    """

    label = LEARNED_LABEL

    def __init__(
        self, g_reset_siemens: NDArray[np.float64], relative: NDArray[np.float64] | None = None
    ) -> None:
        self.g_reset_siemens = np.array(g_reset_siemens, dtype=float)
        rel = builtin_relative_curve() if relative is None else np.asarray(relative, dtype=float)
        self.relative = rel - rel[0]
        self.prior_scale = np.abs(self.g_reset_siemens)
        shape = self.g_reset_siemens.shape
        self._sxy = np.zeros(shape)
        self._sxx = np.zeros(shape)

    @property
    def n_positions(self) -> int:
        """Positions of every curve (reset and each pulse)."""
        return int(self.relative.size)

    @property
    def observed(self) -> NDArray[np.bool_]:
        """Devices seen at a position > 0 (their scale is their own, not the prior's)."""
        return self._sxx > 0

    def observe(self, positions: NDArray[np.int64], g_siemens: NDArray[np.float64]) -> None:
        """Add a read of every device at its pulse position (devices at 0 teach nothing)."""
        pos = np.minimum(np.asarray(positions), self.relative.size - 1)
        x = self.relative[pos]
        y = np.asarray(g_siemens, dtype=float) - self.g_reset_siemens
        self._sxy += x * y
        self._sxx += x * x

    def scales(self) -> NDArray[np.float64]:
        """Per-device scale ``a_jk`` (S): fitted where observed, else the median of the observed
        devices' scales (the prior's, from the reset level, while none is observed)."""
        seen = self.observed
        fitted = np.divide(self._sxy, self._sxx, out=np.zeros_like(self._sxy), where=seen)
        fitted = np.maximum(fitted, 0.0)
        if not seen.any():
            return self.prior_scale.copy()
        return np.where(seen, fitted, float(np.median(fitted[seen])))

    def curves(self) -> NDArray[np.float64]:
        return self.scales()[..., None] * self.relative


def measure_devices(
    backend: CrossbarBackend,
    devices: Sequence[tuple[int, int]],
    n_pulses: int,
    amplitude_v: float,
    width_s: float,
    read_v: float,
    stop: StopSignal,
    progress: Callable[[int, int], None] | None = None,
) -> NDArray[np.float64]:
    """Each device's conductance (S) after a reset and after each of ``n_pulses`` pulses: (devices, n + 1).

    Reset every device (the stop checked before each), read; then ``n_pulses`` times one
    pulse on every device (one batched command) and one read of the crossbar. Backend
    operations only; ``progress(k, n_pulses)`` after each read.
    """
    for r, c in devices:
        stop.check()
        backend.reset(r, c)
    rows, cols = (list(x) for x in zip(*devices, strict=True))
    reads = [backend.read_conductances(read_v)[rows, cols]]
    batch = [Pulse(r, c, amplitude_v, width_s) for r, c in devices]
    for k in range(1, n_pulses + 1):
        stop.check()
        backend.pulse_many(batch)
        reads.append(backend.read_conductances(read_v)[rows, cols])
        if progress is not None:
            progress(k, n_pulses)
    return np.array(reads).T
