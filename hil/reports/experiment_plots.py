"""Figures of ``hil experiment``: accuracy against nonlinearity, levels and variation (``lim``), and
against the LTP/LTD nonlinearity per updating mode and network (``huang``).

Input: the summary rows of the experiment (one dict per setting, see the ``COLUMNS`` of
``crossbar_hil.emulator.network.experiment`` and ``.huang_experiment``). Lim et al.'s published
method b figures are drawn as open markers for comparison (MNIST, not the table's dataset).
Figures are built without pyplot, as in :mod:`crossbar_hil.reports.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from crossbar_hil.reports.plots import DPI

COLOURS = {
    "manhattan": "C0",
    "method_a": "C1",
    "method_b": "C2",
    "method_c": "C3",
    "on-chip": "C2",
    "off-chip": "C4",
    "mode1": "C0",
    "mode2": "C1",
    "mode3": "C2",
    "mode4": "C3",
}
"""One colour per rule (and training) in every panel; published figures as open squares of that colour."""


def _series(
    ax: Axes, rows: Sequence[Mapping[str, Any]], x: str, by: str, dataset: str, dodge: float = 0.0
) -> None:
    """One line per value of ``by``; ``dodge`` shifts the lines apart along x so error bars show."""
    names = list(dict.fromkeys(r[by] for r in rows))
    for i, name in enumerate(names):
        pts = sorted((float(r[x]), r) for r in rows if r[by] == name)
        xs = [p + (i - (len(names) - 1) / 2) * dodge for p, _ in pts]
        ax.errorbar(
            xs,
            [r["accuracy_mean"] for _, r in pts],
            yerr=[r["accuracy_sd"] for _, r in pts],
            marker="o",
            capsize=3,
            color=COLOURS.get(name),
            label=f"{name} ({dataset})",
        )
        pub = [(p, r["published"]) for p, r in pts if r.get("published", "") != ""]
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
    # Above the panel, not inside it: inside, it hid published markers near the top.
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, frameon=False)


LIM_PANELS = (
    ("nonlinearity", "beta_nl", "method", "nonlinearity beta_nl (64 levels)"),
    ("levels", "levels", "method", "levels (beta_nl 2)"),
    ("variation", "sigma", "training", "device-to-device sigma (method b, beta_nl 2, 64 levels)"),
)
"""The lim figure's panels: section, x column, one line per, x label."""


def lim_figure(table: Sequence[Mapping[str, Any]], dataset: str) -> Figure:
    """Up to three panels, one per section the table has (``--sections``): accuracy vs beta_nl
    (64 levels), vs levels (beta_nl 2), vs sigma (method b). No panel is drawn empty."""
    panels = [(p, rows) for p in LIM_PANELS if (rows := [r for r in table if r["section"] == p[0]])]
    fig = Figure(figsize=(4.7 * max(1, len(panels)), 5), layout="constrained")
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, ((_, x, by, title), rows) in zip(axes, panels, strict=False):
        _series(ax, rows, x, by, dataset)
        ax.set_xlabel(title)
    if not panels:
        axes[0].set_axis_off()
        axes[0].text(0.5, 0.5, "no nonlinearity, levels or variation rows to draw", ha="center", va="center")
    return fig


def save_lim_plots(table: Sequence[Mapping[str, Any]], dataset: str, folder: Path) -> Path:
    """Write ``lim.png`` into ``folder``; its path."""
    return _save(lim_figure(table, dataset), folder / "lim.png")


def huang_figure(table: Sequence[Mapping[str, Any]], dataset: str) -> Figure:
    """One panel per network: accuracy vs the nonlinearity pair A_p:A_d (placed at A_p), one line per
    mode; the title names the modes the table has."""
    networks = list(dict.fromkeys(r["network"] for r in table))
    fig = Figure(figsize=(6.5 * max(1, len(networks)), 4.5), layout="constrained")
    axes = fig.subplots(1, max(1, len(networks)), squeeze=False)[0]
    for ax, network in zip(axes, networks, strict=False):
        rows = [r for r in table if r["network"] == network]
        _series(ax, rows, "a_p", "mode", dataset, dodge=0.08)
        pairs = sorted({(float(r["a_p"]), float(r["a_d"])) for r in rows})
        ax.set_xticks([a for a, _ in pairs], [f"{a:g}:{d:g}" for a, d in pairs])
        ax.set_xlabel(f"nonlinearity A_p:A_d (LTP:LTD, placed at A_p), {rows[0]['levels']} pulses")
        modes = list(dict.fromkeys(str(r["mode"]) for r in rows))
        ax.set_title(f"{network}: Huang's self-adaptive weight, {_modes_title(modes)}", fontsize=10)
    return fig


def _modes_title(modes: Sequence[str]) -> str:
    """``updating mode1`` or ``updating modes mode1, mode2``: the modes the table has."""
    return f"updating mode{'s' if len(modes) > 1 else ''} {', '.join(modes)}"


def save_huang_plots(table: Sequence[Mapping[str, Any]], dataset: str, folder: Path) -> Path:
    """Write ``huang.png`` into ``folder``; its path."""
    return _save(huang_figure(table, dataset), folder / "huang.png")


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
