"""The conductance figure marks each device's resets (re-programming) in that device's panel."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import same_color

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.reports.plots import RESET_COLOR, plot_conductances, plot_error
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train


def reset_lines(ax: object) -> list[float]:
    """x of the dotted reset lines in a panel."""
    return [
        float(line.get_xdata()[0])
        for line in ax.get_lines()  # type: ignore[attr-defined]
        if same_color(line.get_color(), RESET_COLOR) and line.get_linestyle() == ":"
    ]


def test_reset_marks_sit_in_the_reset_devices_panels_after_their_epochs() -> None:
    cfg = TrainingConfig(rule="method_b", max_epochs=30, target_high=0.8, target_low=-0.8)
    result = train(EmulatedCrossbar(EmulatorConfig(seed=3)), Task.reference(), cfg)
    assert result.total_resets > 0
    # Move every reset to device (2, 1) at epoch 5 and (0, 3) at epoch 7: the marks follow.
    history = [r.model_copy(update={"reset_devices": ()}) for r in result.history]
    history[5] = history[5].model_copy(update={"reset_devices": ((2, 1), (2, 1))})
    history[7] = history[7].model_copy(update={"reset_devices": ((0, 3),)})
    result.history = history
    fig = plot_conductances(result)
    axes = np.array(fig.axes[:16]).reshape(4, 4)
    marked = {(j, k): reset_lines(axes[j, k]) for j in range(4) for k in range(4)}
    assert marked.pop((2, 1)) == [5.5] and marked.pop((0, 3)) == [7.5]
    assert all(v == [] for v in marked.values())
    assert axes[2, 1].get_title().endswith("1 reset")
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("reset" in t for t in texts)


def test_a_run_without_resets_has_no_marks_and_the_error_figure_counts_them() -> None:
    result = train(EmulatedCrossbar(EmulatorConfig(seed=3)), Task.reference(), TrainingConfig(max_epochs=5))
    fig = plot_conductances(result)
    assert all(reset_lines(ax) == [] for ax in fig.axes[:16])
    cfg = TrainingConfig(rule="method_b", max_epochs=30, target_high=0.8, target_low=-0.8)
    b = train(EmulatedCrossbar(EmulatorConfig(seed=3)), Task.reference(), cfg)
    titles = [ax.get_title(loc="left") for ax in plot_error(b).axes]
    assert any(f"resets: {b.total_resets}, read-verify pulses: {b.total_verify_pulses}" in t for t in titles)
