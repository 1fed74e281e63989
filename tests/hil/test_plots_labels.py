"""Figures say what they show: each names its run; nothing is cut, confused or hidden (issue 18 item 7)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import same_color

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.reports.plots import (
    NEURON_COLORS,
    PLOTS,
    RESET_COLOR,
    add_caption,
    plot_activations,
    plot_error,
    plot_weights,
    run_caption,
)
from crossbar_hil.training.config import RunConfig, TrainingConfig
from crossbar_hil.training.history import TrainingResult
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train


@pytest.fixture(scope="module")
def with_resets() -> TrainingResult:
    """A method-b run that resets devices (a long summary under error.png)."""
    cfg = TrainingConfig(rule="method_b", max_epochs=30, target_high=0.8, target_low=-0.8)
    result = train(EmulatedCrossbar(EmulatorConfig(seed=3)), Task.reference(), cfg)
    assert result.total_resets > 0
    return result


def test_the_caption_names_run_device_seed_rule_preset_beta_and_date() -> None:
    config = RunConfig(preset="reference", backend={"name": "emulator", "params": {"seed": 7}})
    text = run_caption(config, run="abc123", date="2026-12-04 22:00 UTC", beta=6e6)
    for part in ("run abc123", "built-in device", "seed 7", "rule manhattan", "preset reference"):
        assert part in text
    assert "β 6e+06 1/A" in text and "2026-12-04 22:00 UTC" in text
    visa = RunConfig(backend={"name": "visa", "params": {"resource": "TCPIP::10.0.0.5::5025::SOCKET"}})
    assert "visa TCPIP::10.0.0.5::5025::SOCKET" in run_caption(visa, beta=2.5e7)
    assert "calibrated" in run_caption(visa, beta=2.5e7)  # The recommended preset calibrates beta.
    trace = RunConfig(backend={"name": "emulator", "params": {"trace": "/lab/data/SP291D1NR100.dat"}})
    assert "trace SP291D1NR100.dat" in run_caption(trace)


@pytest.mark.parametrize("name", list(PLOTS))
def test_every_figure_carries_the_caption_under_its_title(with_resets: TrainingResult, name: str) -> None:
    cfg = TrainingConfig(rule="method_b", target_high=0.8, target_low=-0.8)
    fig = PLOTS[name](with_resets, Task.reference(), cfg)
    title = fig.get_suptitle()
    add_caption(fig, "run r1 · emulator, built-in device, seed 3 · rule method_b")
    assert fig.get_suptitle().startswith(title) and "run r1" in fig.get_suptitle()


def _inside_figure(fig: object, artist: object) -> bool:
    canvas = FigureCanvasAgg(fig)  # type: ignore[arg-type]
    canvas.draw()
    box = artist.get_window_extent(canvas.get_renderer())  # type: ignore[attr-defined]
    width = fig.bbox.width  # type: ignore[attr-defined]
    return bool(box.x0 >= 0 and box.x1 <= width + 0.5)


def test_the_error_figures_summary_is_not_cut_at_the_right_edge(with_resets: TrainingResult) -> None:
    fig = plot_error(with_resets)
    bottom = fig.axes[1]
    summary = bottom.title if bottom.get_title() else bottom._left_title
    assert "resets:" in summary.get_text()
    assert _inside_figure(fig, summary)


def test_resets_per_epoch_are_bars_beside_the_pulses(with_resets: TrainingResult) -> None:
    bottom = plot_error(with_resets).axes[1]
    resets = [p for p in bottom.patches if same_color(p.get_facecolor(), RESET_COLOR)]
    heights = {round(p.get_x() + p.get_width() / 2 - 0.2): p.get_height() for p in resets}
    assert heights == {r.epoch: r.resets for r in with_resets.history}
    labels = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert f"resets ({with_resets.total_resets})" in labels


def test_the_converged_mark_has_no_neurons_colour() -> None:
    cfg = TrainingConfig.recommended()
    backend = EmulatedCrossbar(EmulatorConfig(seed=0))
    cfg = cfg.model_copy(update={"device_curve_siemens": tuple(backend.device_curve_siemens())})
    result = train(backend, Task.reference(), cfg)
    assert result.converged
    fig = plot_activations(result, Task.reference(), cfg)
    dashed = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert dashed, "no converged mark"
    for line in dashed:
        assert not any(same_color(line.get_color(), c) for c in NEURON_COLORS)


def test_coinciding_weight_lines_stay_apart(with_resets: TrainingResult) -> None:
    lines = plot_weights(with_resets).axes[0].get_lines()[1:]  # After the zero line.
    assert len(lines) == 8
    looks = {(str(ln.get_color()), ln.get_linestyle(), ln.get_marker(), ln.get_linewidth()) for ln in lines}
    assert len(looks) == 8
    widths = [ln.get_linewidth() for ln in lines]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 8  # Each one peeks out.
    assert len({ln.get_marker() for ln in lines}) == 2  # One marker per neuron.
    assert np.all(np.diff([ln.get_zorder() for ln in lines]) > 0)
