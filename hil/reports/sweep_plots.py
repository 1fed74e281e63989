"""Figures of a parameter sweep: convergence share per swept parameter, epochs to converge.

Inputs are the plain rows of a sweep table (one dict per grid point with the
swept parameters, ``seeds``, ``share``, ``share_low``, ``share_high``; see
``crossbar_hil.emulator.sweep.table``) and its ``epochs.csv`` rows (point, epochs, count), so
a sweep read back from CSV can be plotted too. Figures are built without pyplot,
as in :mod:`crossbar_hil.reports.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from crossbar_hil.reports.plots import DPI
from matplotlib.figure import Figure

_MAX_SERIES = 12
"""Most lines per share figure; further combinations are left out (and said so)."""


def _label(row: Mapping[str, Any], names: Sequence[str]) -> str:
    return ", ".join(f"{n}={row[n]:g}" if isinstance(row[n], float) else f"{n}={row[n]}" for n in names)


def share_figure(rows: Sequence[Mapping[str, Any]], param: str, swept: Sequence[str]) -> Figure:
    """Convergence share (with its 95 % Wilson interval) against ``param``.

    One line per combination of the other swept parameters. Numbers are placed on
    a numeric axis (log when they span more than a factor 20 and are positive);
    anything else is categorical.
    """
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    others = [p for p in swept if p != param]
    values = list(dict.fromkeys(r[param] for r in rows))
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    position = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(_label(r, others), []).append(r)
    for label, group in list(groups.items())[:_MAX_SERIES]:
        group = sorted(group, key=lambda r: position[r[param]])
        x = np.array([position[r[param]] for r in group])
        y = np.array([r["share"] for r in group]) * 100
        err = np.array([[r["share"] - r["share_low"], r["share_high"] - r["share"]] for r in group]).T * 100
        ax.errorbar(x, y, yerr=err, marker="o", capsize=4, label=label or "share")
    if numeric and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=15)
    ax.set_xlabel(param)
    ax.set_ylabel("converged (% of seeds), 95 % Wilson interval")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    left_out = len(groups) - _MAX_SERIES
    if others:
        title = f"{left_out} more combinations not shown" if left_out > 0 else None
        ax.legend(fontsize=8, title=title, title_fontsize=8)
    seeds = rows[0]["seeds"] if rows else 0
    fig.suptitle(f"Convergence share against {param} ({seeds} seeds per point)")
    return fig


def epochs_figure(
    rows: Sequence[Mapping[str, Any]], counts: Sequence[Mapping[str, int]], swept: Sequence[str]
) -> Figure:
    """Histogram of epochs to converge, one outline per grid point, in % of its converged runs."""
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    by_point: dict[int, dict[int, int]] = {}
    for c in counts:
        by_point.setdefault(int(c["point"]), {})[int(c["epochs"])] = int(c["count"])
    top = max((e for d in by_point.values() for e in d), default=0)
    bins = np.arange(top + 2) - 0.5
    shown = 0
    for r in rows:
        hist = by_point.get(int(r["point"]))
        if not hist:
            continue
        if shown == _MAX_SERIES:
            break
        e = np.array(sorted(hist))
        w = np.array([hist[k] for k in e])
        label = _label(r, swept) or "all"
        ax.hist(
            e,
            bins=list(bins),
            weights=w / w.sum() * 100,
            histtype="step",
            linewidth=1.6,
            label=f"{label} (n={w.sum()})",
        )
        shown += 1
    if shown == 0:
        ax.text(0.5, 0.5, "no run converged", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=8)
    ax.set_xlabel("update epochs to converge")
    ax.set_ylabel("% of the point's converged runs")
    ax.grid(alpha=0.3)
    fig.suptitle("Epochs to converge, per grid point")
    return fig


def save_sweep_plots(
    rows: Sequence[Mapping[str, Any]],
    counts: Sequence[Mapping[str, int]],
    swept: Sequence[str],
    directory: str | Path,
    dpi: int = DPI,
) -> dict[str, Path]:
    """``share_<param>.png`` for each swept parameter and ``epochs.png``; returns name -> path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    figures = {f"share_{p}": share_figure(rows, p, swept) for p in swept}
    if not swept:
        figures["share"] = share_figure([{**r, "all": "all"} for r in rows], "all", [])
    figures["epochs"] = epochs_figure(rows, counts, swept)
    paths = {}
    for name, fig in figures.items():
        paths[name] = out / f"{name}.png"
        fig.savefig(paths[name], dpi=dpi, format="png")
    return paths
