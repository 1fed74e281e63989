"""Figures of a parameter sweep: convergence share per swept parameter, epochs to converge.

Inputs are the plain rows of a sweep table (one dict per grid point with the
swept parameters, ``seeds``, ``share``, ``share_low``, ``share_high``; see
``crossbar_hil.emulator.sweep.table``) and its ``epochs.csv`` rows (point, epochs, count), so
a sweep read back from CSV can be plotted too. Figures are built without pyplot,
as in :mod:`crossbar_hil.reports.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from crossbar_hil.reports.plots import DPI


@dataclass(frozen=True)
class SweptAxis:
    """How a swept parameter is written on the plots: its unit, and whether V means +-V."""

    unit: str = ""
    symmetric: bool = False


Axes = Mapping[str, SweptAxis]

_MAX_SERIES = 12
"""Most lines per share figure; further combinations are left out (and said so)."""


def value_text(name: str, value: Any, axes: Axes) -> str:
    """A swept value as written on a plot: ``±1`` for a symmetric one (targets=1 means +-1)."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"±{text}" if name in axes and axes[name].symmetric else text


def _label(row: Mapping[str, Any], names: Sequence[str], axes: Axes | None = None) -> str:
    return ", ".join(f"{n}={value_text(n, row[n], axes or {})}" for n in names)


_SETTINGS = ("device", "rule", "f_plus", "f_minus", "max_epochs")


def settings_line(rows: Sequence[Mapping[str, Any]]) -> str:
    """The settings every point shares (device, rule, bands, epoch limit; sweep.csv's columns),
    or 'swept' for one that varies, so a figure read alone says what was trained."""

    def one(name: str) -> str | None:
        values = {r.get(name) for r in rows}
        return None if len(values) != 1 else str(values.pop())

    device, rule, plus, minus, limit = (one(n) for n in _SETTINGS)
    bands = f"bands f > {plus}, f < {minus}" if plus is not None and minus is not None else "bands: swept"
    parts = [
        device or "device: swept",
        f"rule {rule}" if rule else "rule: swept",
        bands,
        f"epoch limit {limit}" if limit else "epoch limit: swept",
    ]
    return " · ".join(parts)


def _title(fig: Figure, title: str, rows: Sequence[Mapping[str, Any]]) -> None:
    has_settings = bool(rows) and all(n in rows[0] for n in _SETTINGS)
    fig.suptitle(f"{title}\n{settings_line(rows)}" if has_settings else title)


def share_figure(
    rows: Sequence[Mapping[str, Any]], param: str, swept: Sequence[str], axes: Axes | None = None
) -> Figure:
    """Convergence share (with its 95 % Wilson interval) against ``param``.

    One line per combination of the other swept parameters. Numbers are placed on
    a numeric axis (log when they span more than a factor 20 and are positive);
    anything else is categorical, drawn as points without lines between them (there is
    nothing between two rules). ``axes`` gives each parameter's unit and whether its
    value V stands for +-V.
    """
    axes = axes or {}
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    others = [p for p in swept if p != param]
    values = list(dict.fromkeys(r[param] for r in rows))
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    position = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(_label(r, others, axes), []).append(r)
    for label, group in list(groups.items())[:_MAX_SERIES]:
        group = sorted(group, key=lambda r: position[r[param]])
        x = np.array([position[r[param]] for r in group])
        y = np.array([r["share"] for r in group]) * 100
        err = np.array([[r["share"] - r["share_low"], r["share_high"] - r["share"]] for r in group]).T * 100
        ax.errorbar(
            x, y, yerr=err, marker="o", capsize=4, label=label or "share", ls="-" if numeric else "none"
        )
    if numeric and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(values)), [value_text(param, v, axes) for v in values], rotation=15)
        ax.set_xlim(-0.5, len(values) - 0.5)
    elif param in axes and axes[param].symmetric:
        ax.xaxis.set_major_formatter(lambda v, _: f"±{v:g}")
    unit = axes[param].unit if param in axes else ""
    ax.set_xlabel(f"{param} ({unit})" if unit else param)
    ax.set_ylabel("converged (% of seeds), 95 % Wilson interval")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    left_out = len(groups) - _MAX_SERIES
    if others:
        title = f"{left_out} more combinations not shown" if left_out > 0 else None
        ax.legend(fontsize=8, title=title, title_fontsize=8)
    seeds = rows[0]["seeds"] if rows else 0
    _title(fig, f"Convergence share against {param} ({seeds} seeds per point)", rows)
    return fig


def epochs_figure(
    rows: Sequence[Mapping[str, Any]],
    counts: Sequence[Mapping[str, int]],
    swept: Sequence[str],
    axes: Axes | None = None,
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
        label = _label(r, swept, axes) or "all"
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
    _title(fig, "Epochs to converge, per grid point", rows)
    return fig


def save_sweep_plots(
    rows: Sequence[Mapping[str, Any]],
    counts: Sequence[Mapping[str, int]],
    swept: Sequence[str],
    directory: str | Path,
    dpi: int = DPI,
    axes: Axes | None = None,
) -> dict[str, Path]:
    """``share_<param>.png`` for each swept parameter and ``epochs.png``; returns name -> path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    figures = {f"share_{p}": share_figure(rows, p, swept, axes) for p in swept}
    if not swept:
        figures["share"] = share_figure([{**r, "all": "all"} for r in rows], "all", [])
    figures["epochs"] = epochs_figure(rows, counts, swept, axes)
    paths = {}
    for name, fig in figures.items():
        paths[name] = out / f"{name}.png"
        fig.savefig(paths[name], dpi=dpi, format="png")
    return paths
