"""Figures of a training run: conductances, weights, outputs, error and the final map.

Every function takes a :class:`~crossbar_hil.training.history.TrainingResult` (plus the
:class:`~crossbar_hil.training.task.Task` and
:class:`~crossbar_hil.training.config.TrainingConfig` where the plot
needs the patterns or the target bands) and returns a
:class:`matplotlib.figure.Figure`. Figures are built from ``Figure`` objects,
never through ``pyplot``: no global figure registry, no GUI backend, so they
can be drawn from several threads of a web service and need no ``close()``.
PNG output goes through the Agg canvas that ``Figure.savefig`` picks itself.

Conductances and weights are shown in µS (the devices sit around 0.1 to 2 µS,
so S would need exponents on every tick); outputs f = tanh(beta * I) are
dimensionless. Each figure's suptitle states how the run ended
(:func:`outcome_text`), so a PNG seen alone still tells the whole story.

An empty history (a fault before the first read) gives a figure that says so
instead of raising, so :func:`save_all` always writes the same set of files.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

from crossbar_hil.training.config import RunConfig, TrainingConfig
from crossbar_hil.training.history import Outcome, TrainingResult
from crossbar_hil.training.network import minus_col, plus_col
from crossbar_hil.training.task import Task

MICROSIEMENS_PER_SIEMENS = 1e6
"""Conductances are recorded in S and plotted in µS."""

DPI = 110
"""Resolution of the PNGs written by :func:`save_all` (dots per inch)."""

PLUS_COLOR = "tab:blue"
MINUS_COLOR = "tab:red"
UNUSED_COLOR = "0.55"
RESET_COLOR = "tab:orange"
PULSE_COLOR = "0.45"
CONVERGED_MARK_COLOR = "black"
"""The "converged" line on the output panels: no neuron's colour (neuron 1 is tab:green)."""
NEURON_COLORS = ("tab:purple", "tab:green", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
INPUT_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
NEURON_STYLES = ("-", "--", ":", "-.")
NEURON_MARKERS = ("o", "s", "^", "D")
OUTCOME_COLORS: dict[str, str] = {
    Outcome.CONVERGED: "tab:green",
    Outcome.MAX_EPOCHS: "0.35",
    Outcome.INFEASIBLE: "0.35",
    Outcome.STALLED: "0.35",
    Outcome.STOPPED: "tab:orange",
    Outcome.FAULT: "tab:red",
}

_MAX_MESSAGE = 90
"""Longest fault message shown in a suptitle (characters); longer ones are cut."""

_MARKER_EPOCHS = 40
"""Up to this many epochs, lines carry a marker per epoch (one epoch must stay visible)."""


# ---------------------------------------------------------------------- public API
def run_caption(
    config: RunConfig,
    *,
    run: str | None = None,
    date: str | None = None,
    beta: float | None = None,
    source: str | None = None,
) -> str:
    """One line that names the run on each of its figures, so a PNG seen alone says whose it is:
    the run (id or file), the device or trace (backend, its instrument, trace or model, seed),
    rule, preset, beta (1/A; the calibrated one when given) and the date."""
    params: dict[str, Any] = config.backend.params
    if source is None:
        where = params.get("resource") or params.get("port")
        if where:
            source = f"{config.backend.name} {where}"
        elif params.get("trace"):
            source = f"trace {Path(str(params['trace'])).name}"
        elif params.get("device"):
            source = f"{config.backend.name}, parametric device model"
        else:
            source = f"{config.backend.name}, built-in device"
        if "resource" not in params and "port" not in params:
            source += f", seed {params.get('seed', 0)}"
    t = config.training
    known = beta is not None and np.isfinite(beta)
    gain = beta if known else t.beta
    calibrated = (" calibrated" if known else " (start of calibration)") if t.gain == "calibrated" else ""
    parts = [
        f"run {run}" if run else None,
        source,
        f"rule {t.rule}",
        f"preset {config.preset}",
        f"β {gain:.3g} 1/A{calibrated}",
        date,
    ]
    return " · ".join(p for p in parts if p)


def minute_utc(iso: str | None) -> str | None:
    """An ISO 8601 UTC time as 'YYYY-MM-DD HH:MM UTC' for a caption (None when empty)."""
    if not iso:
        return None
    return f"{iso[:10]} {iso[11:16]} UTC" if len(iso) >= 16 else iso


def outcome_text(result: TrainingResult) -> str:
    """One line on how the run ended, as used in every suptitle."""
    n = result.epochs
    if result.outcome is Outcome.CONVERGED:
        return f"converged at epoch {n}"
    if result.outcome is Outcome.MAX_EPOCHS:
        return f"not converged after {n} epoch{'' if n == 1 else 's'}"
    if result.outcome is Outcome.STALLED:
        return f"not converged: devices stopped moving, ended at epoch {n}"
    if result.outcome is Outcome.INFEASIBLE:
        return f"not converged: no reachable weights meet the bands, ended at epoch {n}"
    if result.outcome is Outcome.STOPPED:
        return f"stopped after {n} epoch{'' if n == 1 else 's'}"
    message = result.error_message or "unknown error"
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return f"fault: {message}"


def plot_conductances(result: TrainingResult) -> Figure:
    """Every device's conductance (µS) per epoch, one small panel per crossbar cell.

    Panel (j, k) is row j (input j) and column k; its colour and title say whether
    the device is G+ or G- of its neuron, or in an unused column. All panels share
    the y-axis so that the devices can be compared with each other: the
    device-to-device shift (about 0.1 to 1 µS at K = 10) is of the same order as
    a device's whole dynamic range, so per-panel scales would mislead.

    A device reset during an epoch's update (methods a and b re-programme a pair
    that way) is marked in that device's panel by a dotted vertical line between
    the epoch and the next, whose read shows the re-programmed device, and a
    triangle at the bottom; the panel title counts its resets.
    """
    epochs, g = _series(result, "conductances_siemens")
    if g is None:
        return _empty_figure("Conductance per device", result)
    g = g * MICROSIEMENS_PER_SIEMENS
    n_rows, n_cols = g.shape[1:]
    n_out = _n_outputs(result)
    fig = _figure((2.6 * n_cols + 1.2, 1.9 * n_rows + 1.4))
    axes = fig.subplots(n_rows, n_cols, sharex=True, sharey=True, squeeze=False)
    resets = _reset_epochs(result)
    for j in range(n_rows):
        for k in range(n_cols):
            ax = axes[j, k]
            role, color = _column_role(k, n_out)
            ax.plot(epochs, g[:, j, k], color=color, **_marker_kw(epochs))
            at = resets.get((j, k), [])
            for e in at:
                ax.axvline(e + 0.5, color=RESET_COLOR, ls=":", lw=1.2, zorder=1.5)
            if at:
                ax.plot(
                    np.array(at) + 0.5,
                    np.zeros(len(at)),
                    ls="none",
                    marker="^",
                    ms=6,
                    color=RESET_COLOR,
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                )
            title = f"in {j}, col {k}: {role}" + (f", {len(at)} reset{'s' * (len(at) > 1)}" if at else "")
            ax.set_title(title, fontsize=9, color=color)
            _epoch_axis(ax, epochs, label=j == n_rows - 1)
            if k == 0:
                ax.set_ylabel(f"input {j}\nG (µS)")
            ax.tick_params(labelsize=8)
    handles = [
        Line2D([], [], color=PLUS_COLOR, label="G+ (column 2i, adds to W_ij)"),
        Line2D([], [], color=MINUS_COLOR, label="G- (column 2i+1, subtracts from W_ij)"),
    ]
    if 2 * n_out < n_cols:
        handles.append(Line2D([], [], color=UNUSED_COLOR, label="unused column"))
    if resets:
        handles.append(
            Line2D(
                [], [], color=RESET_COLOR, ls=":", marker="^", label="reset + re-programming in that update"
            )
        )
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), frameon=False)
    return _finish(fig, "Conductance per device (shared y-axis)", result)


def plot_weights(result: TrainingResult) -> Figure:
    """Logic weights ``W_ij = G+_ij - G-_ij`` (µS) per epoch, one line per (neuron, input).

    Colour is the input j, line style and marker the neuron i, so lines of one input can
    be compared across neurons. Weights often coincide (devices that never moved): each line is
    drawn a little thinner than the one before it, so a line on top of another leaves that one's
    edges showing. The legend sits outside the axes so it never hides a line.
    """
    epochs, w = _series(result, "weights_siemens")
    if w is None:
        return _empty_figure("Logic weights", result)
    w = w * MICROSIEMENS_PER_SIEMENS
    n_out, n_in = w.shape[1:]
    fig = _figure((9.0, 5.0))
    ax = fig.add_subplot()
    ax.axhline(0.0, color="0.7", lw=0.8, zorder=0)
    n_lines = n_out * n_in
    for i in range(n_out):
        for j in range(n_in):
            order = i * n_in + j
            style = {**_marker_kw(epochs, _cycle(NEURON_MARKERS, i))}
            style["lw"] = 1.2 + 2.4 * (n_lines - 1 - order) / max(n_lines - 1, 1)
            if "ms" in style:
                style["ms"] = 3.0 + 4.0 * (n_lines - 1 - order) / max(n_lines - 1, 1)
            else:  # Long runs: a marker every few epochs, each line starting elsewhere.
                step = max(1, len(epochs) // 15)
                style.update(marker=_cycle(NEURON_MARKERS, i), ms=5, markevery=(order % step, step))
            ax.plot(
                epochs,
                w[:, i, j],
                color=_cycle(INPUT_COLORS, j),
                ls=_cycle(NEURON_STYLES, i),
                label=f"W_{i}{j}",
                zorder=2 + order,
                **style,
            )
    _epoch_axis(ax, epochs)
    ax.set_ylabel("logic weight W_ij = G+ - G- (µS)")
    ax.grid(alpha=0.3)
    fig.legend(
        loc="outside right upper",
        fontsize=8,
        title="W_ij: neuron i, input j",
        title_fontsize=8,
        frameon=False,
    )
    return _finish(fig, "Logic weights", result)


def plot_activations(result: TrainingResult, task: Task, config: TrainingConfig) -> Figure:
    """Output f of each neuron per epoch for each training pattern, with its target band.

    One panel per training pattern, titled with its input bits and target bits.
    The band each neuron must reach is shaded in that neuron's colour:
    ``f > f_plus`` for a class-1 target, ``f < f_minus`` for class 0. A vertical
    line marks the convergence epoch when the run converged.
    """
    epochs, f = _series(result, "activations")
    if f is None:
        return _empty_figure("Neuron outputs per training pattern", result)
    patterns, targets = task.patterns("train"), task.targets("train")
    if f.shape[1:] != targets.shape:
        raise ValueError(
            f"history activations have shape {f.shape[1:]} per epoch but the task's training "
            f"targets have shape {targets.shape}: plot with the task the run was trained on"
        )
    n_pat, n_out = targets.shape
    n_cols = min(3, n_pat)
    n_rows = -(-n_pat // n_cols)
    fig = _figure((3.6 * n_cols + 0.6, 2.7 * n_rows + 1.4))
    axes = fig.subplots(n_rows, n_cols, sharex=True, sharey=True, squeeze=False).ravel()
    for p in range(n_pat):
        ax = axes[p]
        for i in range(n_out):
            color = _cycle(NEURON_COLORS, i)
            lo, hi = (config.f_plus, 1.0) if targets[p, i] == 1 else (-1.0, config.f_minus)
            ax.axhspan(lo, hi, color=color, alpha=0.15, lw=0)
            ax.plot(epochs, f[:, p, i], color=color, **_marker_kw(epochs))
        ax.axhline(0.0, color="0.8", lw=0.8, zorder=0)
        _mark_convergence(ax, result)
        target = "".join(str(int(t)) for t in targets[p])
        ax.set_title(f"pattern {patterns[p]} → target {target}", fontsize=10)
        ax.set_ylim(-1.05, 1.05)
        _epoch_axis(ax, epochs, label=p + n_cols >= n_pat)
        if p % n_cols == 0:
            ax.set_ylabel("output f = tanh(βI) (unitless)")
    for ax in axes[n_pat:]:
        ax.set_visible(False)
    handles: list[Line2D | Patch] = []
    for i in range(n_out):
        color = _cycle(NEURON_COLORS, i)
        handles.append(Line2D([], [], color=color, label=f"neuron {i} output f_{i}"))
        handles.append(Patch(color=color, alpha=0.25, label=f"neuron {i} target band"))
    if result.converged:
        converged = Line2D([], [], color=CONVERGED_MARK_COLOR, ls="--", label="converged")
        handles.append(converged)
    fig.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 5), frameon=False, fontsize=9
    )
    bands = f"bands: class 1 f > {config.f_plus:g}, class 0 f < {config.f_minus:g}"
    return _finish(fig, f"Neuron outputs per training pattern ({bands})", result)


def plot_error(result: TrainingResult) -> Figure:
    """Error and misses per epoch (top), pulses and resets sent per epoch (bottom).

    The error is ``0.5 * mean((target - f)**2)`` over patterns and neurons; misses
    count (pattern, neuron) pairs outside their band, on a twin axis since they are
    integers on another scale. Pulses and resets are bars side by side below, under the run's
    totals. The last epoch is marked with the outcome.
    """
    epochs, error = _series(result, "error")
    if error is None:
        return _empty_figure("Error, misses and pulses", result)
    misses = np.array([r.misses for r in result.history])
    pulses = np.array([r.pulses for r in result.history])
    fig = _figure((9.0, 6.2))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))

    top.plot(epochs, error, color="tab:blue", label="error", **_marker_kw(epochs))
    top.set_ylabel("error ½·mean((t − f)²) (unitless)", color="tab:blue")
    top.set_ylim(bottom=0.0, top=max(float(error.max()) * 1.1, 1e-3))
    top.grid(alpha=0.3)
    twin = top.twinx()
    twin.plot(
        epochs,
        misses,
        color="tab:red",
        ls="--",
        drawstyle="steps-mid",
        label="misses",
        **_marker_kw(epochs, "s"),
    )
    twin.set_ylabel("misses (pattern-neuron pairs out of band)", color="tab:red")
    # More headroom than the error's, so the two curves' maxima (often both at epoch 0) differ.
    twin.set_ylim(bottom=0.0, top=max(int(misses.max()), 1) * 1.3)
    twin.yaxis.set_major_locator(MaxNLocator(integer=True))
    # Legend above the frame: inside it would cover the misses when they stay at their maximum.
    top.legend(
        handles=[*top.get_lines(), *twin.get_lines()],
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncols=2,
        fontsize=9,
        frameon=False,
    )
    _epoch_axis(top, epochs, label=False)

    resets = np.array([r.resets for r in result.history])
    bottom.bar(epochs - 0.2, pulses, width=0.4, color=PULSE_COLOR, label=f"pulses ({int(pulses.sum())})")
    bottom.bar(epochs + 0.2, resets, width=0.4, color=RESET_COLOR, label=f"resets ({int(resets.sum())})")
    bottom.set_ylabel("pulses and resets\nper epoch (count)")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylim(0, max(int(pulses.max()), int(resets.max()), 1) * 1.4)  # Room for the legend.
    bottom.grid(alpha=0.3, axis="y")
    bottom.legend(loc="upper right", fontsize=8, frameon=False, ncols=2)
    _epoch_axis(bottom, epochs)
    # Wrapped to the figure's width: one long line was cut at the right edge when a run had resets.
    bottom.set_title(_summary(result, int(fig.get_figwidth() * 12)), fontsize=9, loc="left")
    for ax in (top, bottom):
        _mark_outcome(ax, result, text=ax is top)
    return _finish(fig, "Error, misses and pulses", result)


def plot_final_conductances(result: TrainingResult) -> Figure:
    """Heatmap of the last conductance read (µS), value written in each cell.

    Rows are inputs j, columns are crossbar columns k labelled with their role
    (G+ / G- of neuron i), so the weight of a pair can be read off two
    neighbouring cells.
    """
    if not result.history:
        return _empty_figure("Final conductance map", result)
    last = result.history[-1]
    g = np.asarray(last.conductances_siemens) * MICROSIEMENS_PER_SIEMENS
    n_rows, n_cols = g.shape
    n_out, n_in = np.shape(last.weights_siemens)
    fig = _figure((1.5 * n_cols + 2.6, 1.05 * n_rows + 1.9))
    ax = fig.add_subplot()
    image = ax.imshow(g, cmap="viridis", aspect="auto")
    lo, hi = float(g.min()), float(g.max())
    for j in range(n_rows):
        for k in range(n_cols):
            dark = (g[j, k] - lo) < 0.5 * (hi - lo) if hi > lo else True
            ax.text(
                k,
                j,
                f"{g[j, k]:.3f}",
                ha="center",
                va="center",
                fontsize=10,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(n_cols), [f"col {k}\n{_column_role(k, n_out)[0]}" for k in range(n_cols)])
    ax.set_yticks(range(n_rows), [f"input {j}" if j < n_in else f"row {j} (unused)" for j in range(n_rows)])
    ax.set_xlabel("crossbar column k (role in the differential pair)")
    ax.set_ylabel("crossbar row j")
    fig.colorbar(image, ax=ax, label="conductance G (µS)")
    return _finish(fig, f"Conductances at epoch {last.epoch}", result)


PLOTS: dict[str, Callable[[TrainingResult, Task, TrainingConfig], Figure]] = {
    "conductances": lambda r, t, c: plot_conductances(r),
    "weights": lambda r, t, c: plot_weights(r),
    "activations": plot_activations,
    "error": lambda r, t, c: plot_error(r),
    "final_conductances": lambda r, t, c: plot_final_conductances(r),
}
"""Every figure of a run, by the file stem :func:`save_all` gives it."""


def save_all(
    result: TrainingResult,
    task: Task,
    config: TrainingConfig,
    directory: str | Path,
    dpi: int = DPI,
    caption: str = "",
) -> dict[str, Path]:
    """Write every figure of :data:`PLOTS` as ``<directory>/<name>.png``; return name -> path.

    The directory is created if needed. Existing files of the same names are
    overwritten, so re-rendering a run replaces its plots. ``caption`` (:func:`run_caption`)
    is written under each title.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in PLOTS:
        path = out / f"{name}.png"
        path.write_bytes(plot_png(name, result, task, config, dpi, caption))
        paths[name] = path
    return paths


def plot_png(
    name: str,
    result: TrainingResult,
    task: Task,
    config: TrainingConfig,
    dpi: int = DPI,
    caption: str = "",
) -> bytes:
    """Figure ``name`` of :data:`PLOTS` as PNG bytes (what :func:`save_all` writes to its file),
    with ``caption`` (:func:`run_caption`) under its title."""
    buffer = io.BytesIO()
    fig = PLOTS[name](result, task, config)
    if caption:
        add_caption(fig, caption)
    fig.savefig(buffer, dpi=dpi, format="png")
    return buffer.getvalue()


def add_caption(fig: Figure, caption: str) -> None:
    """Put ``caption`` under the figure's title, wrapped to the figure's width."""
    width_chars = max(40, int(fig.get_figwidth() * 9))  # Clear of a legend outside the axes.
    title = fig.get_suptitle()
    fig.suptitle(f"{title}\n{textwrap.fill(caption, width_chars)}", fontsize=11, color=_title_color(fig))


def _title_color(fig: Figure) -> Any:
    title = getattr(fig, "_suptitle", None)  # Kept as drawn by _finish (red for a fault).
    return title.get_color() if title is not None else "black"


# ---------------------------------------------------------------------- helpers
def _figure(size: tuple[float, float]) -> Figure:
    """A pyplot-free figure with constrained layout (no overlapping labels, room for legends)."""
    return Figure(figsize=size, layout="constrained")


def _finish(fig: Figure, title: str, result: TrainingResult) -> Figure:
    """Set the suptitle: what the figure shows and how the run ended."""
    color = OUTCOME_COLORS["fault"] if result.outcome is Outcome.FAULT else "black"
    fig.suptitle(f"{title}\n{outcome_text(result)}", fontsize=12, color=color)
    return fig


def _empty_figure(title: str, result: TrainingResult) -> Figure:
    """Placeholder for a run that recorded no epoch, so callers always get a figure."""
    fig = _figure((7.0, 3.5))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        "no epoch recorded: nothing to plot",
        ha="center",
        va="center",
        fontsize=12,
        transform=ax.transAxes,
    )
    return _finish(fig, title, result)


def _series(result: TrainingResult, attr: str) -> tuple[NDArray[np.int64], NDArray[np.float64] | None]:
    """Epoch numbers and one history attribute stacked along a leading epoch axis.

    Returns ``(epochs, None)`` for an empty history.
    """
    epochs = np.array([r.epoch for r in result.history], dtype=np.int64)
    if not result.history:
        return epochs, None
    return epochs, np.array([np.asarray(getattr(r, attr), dtype=float) for r in result.history])


def _reset_epochs(result: TrainingResult) -> dict[tuple[int, int], list[int]]:
    """Per device (row, col): the epochs whose update reset it (once per epoch)."""
    out: dict[tuple[int, int], list[int]] = {}
    for r in result.history:
        for device in dict.fromkeys(r.reset_devices):
            out.setdefault(device, []).append(r.epoch)
    return out


def _n_outputs(result: TrainingResult) -> int:
    """Number of neurons of the run, from the shape of its recorded weights."""
    return int(np.shape(result.history[0].weights_siemens)[0]) if result.history else 0


def _column_role(col: int, n_outputs: int) -> tuple[str, str]:
    """Label and colour of crossbar column ``col``: G+ / G- of its neuron, or unused."""
    neuron = col // 2
    if neuron >= n_outputs:
        return "unused", UNUSED_COLOR
    if col == plus_col(neuron):
        return f"G+ n{neuron}", PLUS_COLOR
    assert col == minus_col(neuron)
    return f"G- n{neuron}", MINUS_COLOR


def _cycle(values: Sequence[str], index: int) -> str:
    """``values[index]``, wrapping around for more items than values."""
    return values[index % len(values)]


def _marker_kw(epochs: NDArray[np.int64], marker: str = "o") -> dict[str, Any]:
    """Line keywords: a marker per epoch for short runs (a single epoch is then a dot)."""
    if len(epochs) > _MARKER_EPOCHS:
        return {"lw": 1.5}
    return {"lw": 1.5, "marker": marker, "ms": 3.5}


def _epoch_axis(ax: Axes, epochs: NDArray[np.int64], label: bool = True) -> None:
    """Integer epoch ticks, a little margin, and room around a lone epoch."""
    first, last = int(epochs[0]), int(epochs[-1])
    if first == last:  # MaxNLocator would put fractional epochs around a lone one
        ax.set_xticks([first])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    pad = max(0.5, 0.02 * (last - first))
    ax.set_xlim(first - pad, last + pad)
    if label:
        ax.set_xlabel("epoch")


def _mark_convergence(ax: Axes, result: TrainingResult) -> None:
    """Dashed vertical line at the convergence epoch, if the run converged."""
    if result.converged:
        ax.axvline(result.epochs, color=CONVERGED_MARK_COLOR, ls="--", lw=1.2, zorder=1.5)


def _mark_outcome(ax: Axes, result: TrainingResult, text: bool) -> None:
    """Vertical line at the last epoch in the outcome's colour, optionally labelled."""
    color = OUTCOME_COLORS.get(result.outcome, "black")
    ax.axvline(result.epochs, color=color, ls="--", lw=1.2, zorder=1.5)
    if text:
        label = result.outcome.replace("_", " ")
        # Just above the frame, where neither data nor the legend (at the left) can be.
        ax.annotate(
            label,
            xy=(result.epochs, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 3),
            textcoords="offset points",
            ha="right",
            va="bottom",
            color=color,
            fontsize=9,
            fontweight="bold",
        )


_SEPARATOR = "   |   "


def _summary(result: TrainingResult, width_chars: int = 10_000) -> str:
    """Pulse total and, when evaluated, train / test accuracy (the run's scoreboard), on lines
    of at most ``width_chars`` characters where the parts allow."""
    parts = [f"total pulses: {result.total_pulses}"]
    if result.total_resets or result.total_verify_pulses:
        parts.append(
            f"resets: {result.total_resets}, read-verify pulses: {result.total_verify_pulses}, "
            f"instrument time: {result.instrument_time_s:.2f} s"
        )
    for name, ev in (("train", result.train), ("test", result.test)):
        if ev is not None:
            parts.append(f"{name}: {ev.accuracy:.0%} by sign, {ev.in_band_accuracy:.0%} in band")
    if result.train is None:
        parts.append("no evaluation (run did not finish)")
    lines = [parts[0]]
    for part in parts[1:]:  # Broken between parts only, never inside one.
        if len(lines[-1]) + len(_SEPARATOR) + len(part) > width_chars:
            lines.append(part)
        else:
            lines[-1] += _SEPARATOR + part
    return "\n".join(lines)
