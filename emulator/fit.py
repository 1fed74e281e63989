"""Fit the Lim exponential device model to a trace; writes the built-in default device.

Usage: ``python -m crossbar_hil.emulator.fit TRACE > data/devices/default_device.json``

Gmin is pinned to the trace's first read (the state after reset); Gmax, alpha
and beta_nl minimise the squared error over all positions by a coarse grid
followed by two successively finer grids around the best point. numpy only:
the model is cheap and the grid is evaluated in one vectorised pass.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

from crossbar_hil.emulator.devices import DefaultDeviceRecord, ExponentialDevice, exponential_tables
from crossbar_hil.trace_file import Trace, load_trace

_GRID = 40
_REFINE_ROUNDS = 3


def fit_exponential(trace: Trace) -> ExponentialDevice:
    """Least-squares Lim model for ``trace`` (Gmin pinned to position 0)."""
    g = trace.conductances_siemens
    n_max = trace.n_pulses
    rise = float(g.max() - g[0])
    # Search box: Gmax from the trace maximum's neighbourhood, alpha up to the whole rise,
    # beta_nl from linear (0) to strongly saturating.
    lo = np.array([g[0] + 0.5 * rise, 0.0, 0.0])
    hi = np.array([g[0] + 1.5 * rise, rise, 12.0])
    best = (lo + hi) / 2
    for _ in range(_REFINE_ROUNDS):
        axes = [np.linspace(a, b, _GRID) for a, b in zip(lo, hi, strict=True)]
        gmax, alpha, beta = (a.ravel() for a in np.meshgrid(*axes, indexing="ij"))
        alpha = np.maximum(alpha, rise * 1e-6)
        tables = exponential_tables(np.full(gmax.size, g[0]), gmax, alpha, beta, n_max)
        sse = ((tables - g) ** 2).sum(axis=1)
        k = int(np.argmin(sse))
        best = np.array([gmax[k], alpha[k], beta[k]])
        half = (hi - lo) / _GRID * 2
        lo, hi = np.maximum(best - half, [g[0] * (1 + 1e-9), rise * 1e-6, 0.0]), best + half
    return ExponentialDevice(
        g_min_siemens=float(g[0]),
        g_max_siemens=float(best[0]),
        alpha_siemens=float(best[1]),
        beta_nl=float(best[2]),
        n_max=n_max,
    )


def fit_record(path: Path, tolerance_siemens: float) -> DefaultDeviceRecord:
    """Fit the trace at ``path`` and describe how the fit was obtained."""
    trace = load_trace(path)
    model = fit_exponential(trace)
    r = model.table() - trace.conductances_siemens
    return DefaultDeviceRecord(
        model=model,
        fitted_to=path.name,
        source_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        method=(
            f"emulator.fit.fit_exponential: least squares over all {trace.n_pulses + 1} positions, "
            f"Gmin pinned to the first read, {_GRID}^3 grid refined {_REFINE_ROUNDS} times"
        ),
        rms_residual_siemens=float(np.sqrt(np.mean(r**2))),
        max_abs_residual_siemens=float(np.abs(r).max()),
        tolerance_siemens=tolerance_siemens,
    )


def main(argv: list[str] | None = None) -> None:
    """Print the default-device record for the trace named on the command line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m crossbar_hil.emulator.fit TRACE")
    print(fit_record(Path(args[0]), tolerance_siemens=1.5e-8).model_dump_json(indent=2))


if __name__ == "__main__":
    main()
