"""Figures of ``hil experiment lim``: accuracy against nonlinearity, levels and variation.

Input: the summary rows of the experiment (one dict per setting, see
``crossbar_hil.emulator.network.experiment.COLUMNS``). Lim et al.'s published method b
figures are drawn as open markers for comparison (MNIST, not the table's dataset).
Figures are built without pyplot, as in :mod:`crossbar_hil.reports.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crossbar_hil.reports.plots import DPI
from matplotlib.axes import Axes
from matplotlib.figure import Figure

COLOURS = {
    "manhattan": "C0",
    "method_a": "C1",
    "method_b": "C2",
    "method_c": "C3",
    "on-chip": "C2",
    "off-chip": "C4",
}
"""One colour per rule (and training) in every panel; published figures as open squares of that colour."""


def _series(ax: Axes, rows: Sequence[Mapping[str, Any]], x: str, by: str, dataset: str) -> None:
    for name in dict.fromkeys(r[by] for r in rows):
        pts = sorted((float(r[x]), r) for r in rows if r[by] == name)
        xs = [p for p, _ in pts]
        ax.errorbar(
            xs,
            [r["accuracy_mean"] for _, r in pts],
            yerr=[r["accuracy_sd"] for _, r in pts],
            marker="o",
            capsize=3,
            color=COLOURS.get(name),
            label=f"{name} ({dataset})",
        )
        pub = [(p, r["published"]) for p, r in pts if r["published"] != ""]
        if pub:
            ax.plot(
                *zip(*pub, strict=True),
                "s",
                mfc="none",
                ms=8,
                color=COLOURS.get(name, "k"),
                label=f"{name}: Lim et al. (MNIST)",
            )
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def lim_figure(table: Sequence[Mapping[str, Any]], dataset: str) -> Figure:
    """Three panels: accuracy vs beta_nl (64 levels), vs levels (beta_nl 2), vs sigma (method b)."""
    fig = Figure(figsize=(14, 4.5), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (
        ("nonlinearity", "beta_nl", "method", "nonlinearity beta_nl (64 levels)"),
        ("levels", "levels", "method", "levels (beta_nl 2)"),
        ("variation", "sigma", "training", "device-to-device sigma (method b, beta_nl 2, 64 levels)"),
    )
    for ax, (section, x, by, title) in zip(axes, panels, strict=True):
        rows = [r for r in table if r["section"] == section]
        if rows:
            _series(ax, rows, x, by, dataset)
        ax.set_xlabel(title)
    return fig


def save_lim_plots(table: Sequence[Mapping[str, Any]], dataset: str, folder: Path) -> Path:
    """Write ``lim.png`` into ``folder``; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lim.png"
    lim_figure(table, dataset).savefig(path, dpi=DPI)
    return path
