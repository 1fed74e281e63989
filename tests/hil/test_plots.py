"""Figures of a run: files written, images not blank, units on the axes, edge cases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.reports.plots import (
    PLOTS,
    outcome_text,
    plot_activations,
    plot_conductances,
    plot_error,
    plot_final_conductances,
    plot_weights,
    save_all,
)
from crossbar_hil.seam import Pulse
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.history import TrainingResult
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = {"conductances", "weights", "activations", "error", "final_conductances"}


class FailingCrossbar(EmulatedCrossbar):
    """An emulator whose link breaks: on the n-th pulse batch, or on every read."""

    def __init__(self, fail_on_batch: int | None = None, fail_reads: bool = False) -> None:
        super().__init__(EmulatorConfig(seed=3))
        self._fail_on_batch = fail_on_batch
        self._fail_reads = fail_reads
        self._batches = 0

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        self._batches += 1
        if self._batches == self._fail_on_batch:
            raise ConnectionError("link lost")
        super()._pulse_many(pulses)

    def _read_conductances(self, read_v: float) -> np.ndarray:
        if self._fail_reads:
            raise ConnectionError("no answer to read")
        return super()._read_conductances(read_v)


@pytest.fixture(scope="module")
def task() -> Task:
    return Task.reference()


@pytest.fixture(scope="module")
def config() -> TrainingConfig:
    return TrainingConfig(max_epochs=5)


@pytest.fixture(scope="module")
def result(task: Task, config: TrainingConfig) -> TrainingResult:
    return train(EmulatedCrossbar(EmulatorConfig(seed=3)), task, config)


def _all_figures(result: TrainingResult, task: Task, config: TrainingConfig) -> dict[str, Figure]:
    return {name: plot(result, task, config) for name, plot in PLOTS.items()}


def _assert_pngs(paths: dict[str, Path], directory: Path) -> None:
    """Five PNG files in ``directory``, each a real image with visible content."""
    assert set(paths) == NAMES
    for name, path in paths.items():
        assert path.parent == directory and path.suffix == ".png", path
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE), f"{name} is not a PNG"
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300, name
        # A blank (all-white) figure has zero variance; drawn lines and text do not.
        assert float(np.var(image[..., :3])) > 1e-3, f"{name} looks blank"


def _labels(fig: Figure) -> list[str]:
    return [lab for ax in fig.axes for lab in (ax.get_xlabel(), ax.get_ylabel()) if lab]


def _suptitle(fig: Figure) -> str:
    return fig.get_suptitle()


# ---------------------------------------------------------------- normal run
def test_save_all_writes_five_non_blank_pngs(
    result: TrainingResult, task: Task, config: TrainingConfig, tmp_path: Path
) -> None:
    out = tmp_path / "plots" / "run"  # not existing yet: save_all creates it
    paths = save_all(result, task, config, out)
    _assert_pngs(paths, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.png" for n in NAMES)


def test_axis_labels_carry_units(result: TrainingResult, task: Task, config: TrainingConfig) -> None:
    figs = _all_figures(result, task, config)
    assert any("(µS)" in lab for lab in _labels(figs["conductances"]))
    assert any("(µS)" in lab for lab in _labels(figs["weights"]))
    assert any("(unitless)" in lab for lab in _labels(figs["activations"]))
    error_labels = _labels(figs["error"])
    assert any("error" in lab and "(unitless)" in lab for lab in error_labels)
    assert any("misses" in lab for lab in error_labels)
    assert any("pulses" in lab and "(count)" in lab for lab in error_labels)
    colorbar_labels = [ax.get_ylabel() for ax in figs["final_conductances"].axes]
    assert "conductance G (µS)" in colorbar_labels
    for name, fig in figs.items():
        assert any(lab == "epoch" for lab in _labels(fig)) or name == "final_conductances", name
        assert _suptitle(fig).endswith("not converged after 5 epochs"), name


def test_conductance_panels_show_every_device_in_us(result: TrainingResult) -> None:
    fig = plot_conductances(result)
    axes = fig.axes
    assert len(axes) == 16
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "in 0, col 0: G+ n0" and titles[3] == "in 0, col 3: G- n1"
    assert titles[13] == "in 3, col 1: G- n0"
    # Panel (j, k) plots device (j, k) over every epoch, in µS.
    g = np.array([r.conductances_siemens for r in result.history]) * 1e6
    x, y = axes[6].get_lines()[0].get_data()
    np.testing.assert_array_equal(x, np.arange(len(result.history)))
    np.testing.assert_allclose(y, g[:, 1, 2])
    # Shared y-axis: every panel shows the same conductance range.
    assert len({ax.get_ylim() for ax in axes}) == 1
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(t.startswith("G+") for t in legend_texts)
    assert any(t.startswith("G-") for t in legend_texts)


def test_weights_one_line_per_neuron_input(result: TrainingResult) -> None:
    fig = plot_weights(result)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert [ln.get_label() for ln in lines] == [f"W_{i}{j}" for i in range(2) for j in range(4)]
    w11 = [r.weights_siemens[1, 1] * 1e6 for r in result.history]
    np.testing.assert_allclose(lines[5].get_ydata(), w11)
    assert len(fig.legends) == 1


def test_activations_panel_per_pattern_with_bands(
    result: TrainingResult, task: Task, config: TrainingConfig
) -> None:
    fig = plot_activations(result, task, config)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [
        f"pattern {e.pattern} → target {e.target}" for e in task.train
    ]
    # Pattern 0001 -> 01: neuron 0 must go below f-, neuron 1 above f+.
    bands = [(p.get_y(), p.get_y() + p.get_height()) for p in visible[0].patches]
    assert bands == [
        (pytest.approx(-1.0), pytest.approx(config.f_minus)),
        (pytest.approx(config.f_plus), pytest.approx(1.0)),
    ]
    # Not converged: no dashed convergence marker.
    assert [ln.get_linestyle() for ln in visible[0].get_lines()] == ["-", "-", "-"]


def test_activations_reject_a_task_of_another_shape(result: TrainingResult, config: TrainingConfig) -> None:
    other = Task.model_validate({"train": [{"pattern": "01", "target": "1"}]})
    with pytest.raises(ValueError, match="task the run was trained on"):
        plot_activations(result, other, config)


def test_error_figure_shows_error_misses_and_pulses(result: TrainingResult) -> None:
    fig = plot_error(result)
    top, bottom, twin = fig.axes[0], fig.axes[1], fig.axes[2]
    history = result.history
    np.testing.assert_allclose(top.get_lines()[0].get_ydata(), [r.error for r in history])
    np.testing.assert_array_equal(twin.get_lines()[0].get_ydata(), [r.misses for r in history])
    pulses, resets = bottom.containers  # Pulse bars, then reset bars beside them.
    assert [bar.get_height() for bar in pulses] == [r.pulses for r in result.history]
    assert [bar.get_height() for bar in resets] == [r.resets for r in result.history]
    assert f"total pulses: {result.total_pulses}" in bottom.get_title(loc="left")
    assert any(t.get_text() == "max epochs" for t in top.texts)


def test_final_conductance_map_writes_values(result: TrainingResult) -> None:
    fig = plot_final_conductances(result)
    ax = fig.axes[0]
    g = result.history[-1].conductances_siemens * 1e6
    assert [t.get_text() for t in ax.texts] == [f"{v:.3f}" for v in g.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "col 0\nG+ n0",
        "col 1\nG- n0",
        "col 2\nG+ n1",
        "col 3\nG- n1",
    ]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"input {j}" for j in range(4)]


# ---------------------------------------------------------------- edge cases
def test_single_epoch_history(task: Task, tmp_path: Path) -> None:
    """max_epochs=0: only the initial state is recorded; every plot still shows it."""
    config = TrainingConfig(max_epochs=0)
    single = train(EmulatedCrossbar(EmulatorConfig(seed=3)), task, config)
    assert len(single.history) == 1
    _assert_pngs(save_all(single, task, config, tmp_path), tmp_path)
    fig = plot_weights(single)
    assert fig.axes[0].get_xlim() == (-0.5, 0.5)
    # A lone point stays visible: every weight line has a marker (one shape per neuron).
    assert all(line.get_marker() in ("o", "s") for line in fig.axes[0].get_lines()[1:])


def test_converged_at_once(result: TrainingResult, task: Task, config: TrainingConfig) -> None:
    """A run converged at epoch 0 is titled so and its convergence marked in each panel."""
    at_once = TrainingResult("converged", history=[result.history[0]])
    assert outcome_text(at_once) == "converged at epoch 0"
    fig = plot_activations(at_once, task, config)
    first = fig.axes[0]
    assert any(list(ln.get_xdata()) == [0, 0] for ln in first.get_lines())
    assert _suptitle(fig).endswith("converged at epoch 0")


def test_fault_without_evaluation(task: Task, config: TrainingConfig, tmp_path: Path) -> None:
    faulty = train(FailingCrossbar(fail_on_batch=3), task, config)
    assert faulty.outcome == "fault" and faulty.train is None and faulty.test is None
    assert len(faulty.history) == 3
    _assert_pngs(save_all(faulty, task, config, tmp_path), tmp_path)
    error_fig = plot_error(faulty)
    assert _suptitle(error_fig).endswith("fault: ConnectionError: link lost")
    assert "no evaluation" in error_fig.axes[1].get_title(loc="left")


def test_fault_before_any_epoch(task: Task, config: TrainingConfig, tmp_path: Path) -> None:
    """No history at all: each figure says so instead of raising."""
    faulty = train(FailingCrossbar(fail_reads=True), task, config)
    assert faulty.outcome == "fault" and faulty.history == []
    _assert_pngs(save_all(faulty, task, config, tmp_path), tmp_path)
    for fig in _all_figures(faulty, task, config).values():
        assert "fault: ConnectionError" in _suptitle(fig)
        assert any("no epoch recorded" in t.get_text() for ax in fig.axes for t in ax.texts)


@pytest.mark.parametrize(
    ("outcome", "epochs", "message", "expected"),
    [
        ("converged", 7, None, "converged at epoch 7"),
        ("max_epochs", 1, None, "not converged after 1 epoch"),
        ("max_epochs", 50, None, "not converged after 50 epochs"),
        ("infeasible", 4, None, "not converged: no reachable weights meet the bands, ended at epoch 4"),
        ("stopped", 3, "stop requested", "stopped after 3 epochs"),
        ("fault", 2, "x" * 200, "fault: " + "x" * 89 + "…"),
        ("fault", 0, None, "fault: unknown error"),
    ],
)
def test_outcome_text(
    result: TrainingResult, outcome: str, epochs: int, message: str | None, expected: str
) -> None:
    last = result.history[0].model_copy(update={"epoch": epochs})
    run = TrainingResult(outcome, [last], error_message=message)  # type: ignore[arg-type]
    assert outcome_text(run) == expected
