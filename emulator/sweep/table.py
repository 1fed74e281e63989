"""The sweep table: one row per grid point, and its CSV files.

``sweep.csv`` has one row per grid point. Its columns are ``point``, then one
column per swept parameter (named as the parameter, in grid order), then
:data:`COLUMNS` in this order. ``epochs.csv`` holds the epochs-to-converge
distribution: one row per (point, epochs) with the number of converged runs.
Empty cells mean "not available" (no converged run, no feasibility check).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossbar_hil.emulator.config import EmulatorConfig
from crossbar_hil.emulator.sweep.grid import configs
from crossbar_hil.emulator.sweep.run import SweepResult
from crossbar_hil.reports.stats import quantiles, wilson_interval
from crossbar_hil.training.config import TrainingConfig

SETTING_COLUMNS: dict[str, str] = {
    "device": "The point's device: 'built-in device', 'trace <file>' or 'parametric model'.",
    "rule": "The point's update rule.",
    "f_plus": "Band edge of class 1: a class-1 output must exceed it.",
    "f_minus": "Band edge of class 0: a class-0 output must stay below it.",
    "max_epochs": "Epoch limit of each training.",
}
"""What each point trained with, swept or not: a row read alone names its device, rule, bands
and epoch limit."""

COLUMNS: dict[str, str] = {
    **SETTING_COLUMNS,
    "path": "How the point was trained: batched, or single (rule without a batched form).",
    "seeds": "Trainings at this point (one per seed).",
    "seed_first": "First seed.",
    "seed_last": "Last seed.",
    "converged": "Trainings that converged (every training pattern in its band).",
    "share": "converged / seeds.",
    "share_low": "Lower end of the 95 % Wilson interval of share.",
    "share_high": "Upper end of the 95 % Wilson interval of share.",
    "epochs_min": "Fewest update epochs to converge, over converged runs.",
    "epochs_p25": "25th percentile of epochs to converge.",
    "epochs_median": "Median epochs to converge.",
    "epochs_p75": "75th percentile of epochs to converge.",
    "epochs_max": "Most epochs to converge.",
    "epochs_mean": "Mean epochs to converge.",
    "feasible": "Draws for which reachable weights meet every band (empty: no feasibility check).",
    "feasible_share": "feasible / seeds.",
    "feasible_low": "Lower end of the 95 % Wilson interval of feasible_share.",
    "feasible_high": "Upper end of the 95 % Wilson interval of feasible_share.",
    "converged_of_feasible": "Share of the feasible draws that converged.",
}
"""The fixed columns of ``sweep.csv``, after ``point`` and the swept parameters."""

EPOCH_COLUMNS: dict[str, str] = {
    "point": "Grid point (row of sweep.csv).",
    "epochs": "Update epochs to converge.",
    "count": "Converged runs that took that many epochs.",
}


def header(result: SweepResult) -> list[str]:
    """The columns of ``sweep.csv`` for this sweep."""
    return ["point", *result.grid, *(c for c in COLUMNS if c not in result.grid)]  # A swept rule: once.


def rows(result: SweepResult) -> list[dict[str, Any]]:
    """One row per grid point, keyed by :func:`header`."""
    out = []
    n = len(result.seeds)
    for k, point in enumerate(result.points):
        conv = result.converged[k]
        won = int(conv.sum())
        lo, hi = wilson_interval(won, n)
        e = result.epochs[k][conv]
        q = quantiles(e)
        row: dict[str, Any] = {"point": k, **point, **settings(result, point)}
        row.update(
            path=result.paths[k],
            seeds=n,
            seed_first=result.seeds[0],
            seed_last=result.seeds[-1],
            converged=won,
            share=won / n,
            share_low=lo,
            share_high=hi,
            epochs_min=q[0],
            epochs_p25=q[1],
            epochs_median=q[2],
            epochs_p75=q[3],
            epochs_max=q[4],
            epochs_mean=float(e.mean()) if e.size else math.nan,
        )
        row.update(dict.fromkeys(("feasible", "feasible_share", "feasible_low", "feasible_high")))
        row["converged_of_feasible"] = None
        if result.feasible is not None:
            feas = result.feasible[k]
            nf = int(feas.sum())
            flo, fhi = wilson_interval(nf, n)
            row.update(feasible=nf, feasible_share=nf / n, feasible_low=flo, feasible_high=fhi)
            row["converged_of_feasible"] = int((conv & feas).sum()) / nf if nf else math.nan
        out.append(row)
    return out


def settings(result: SweepResult, point: dict[str, Any]) -> dict[str, Any]:
    """The :data:`SETTING_COLUMNS` of one grid point (its base settings with the point applied)."""
    base = (result.emulator or EmulatorConfig(), result.training or TrainingConfig())
    emulator, training = configs(point, *base)
    if emulator.trace is not None:
        device = f"trace {Path(emulator.trace).name}"
    elif emulator.device is not None:
        device = "parametric model"
    else:
        device = "built-in device"
    return {
        "device": device,
        "rule": training.rule,
        "f_plus": training.f_plus,
        "f_minus": training.f_minus,
        "max_epochs": training.max_epochs,
    }


def epoch_counts(result: SweepResult) -> list[dict[str, int]]:
    """The epochs-to-converge distribution of every point, as ``epochs.csv`` rows."""
    out = []
    for k in range(len(result.points)):
        values, counts = np.unique(result.epochs[k][result.converged[k]], return_counts=True)
        out += [{"point": k, "epochs": int(v), "count": int(c)} for v, c in zip(values, counts, strict=True)]
    return out


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return v


def write_csv(path: Path, columns: Sequence[str], table: Sequence[dict[str, Any]]) -> Path:
    """Write ``table`` with ``columns`` (None and nan as empty cells)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        for r in table:
            w.writerow({c: _cell(r.get(c)) for c in columns})
    return path


def write_tables(result: SweepResult, out_dir: Path) -> tuple[Path, Path]:
    """``sweep.csv`` and ``epochs.csv`` in ``out_dir``."""
    main = write_csv(out_dir / "sweep.csv", header(result), rows(result))
    epochs = write_csv(out_dir / "epochs.csv", list(EPOCH_COLUMNS), epoch_counts(result))
    return main, epochs
