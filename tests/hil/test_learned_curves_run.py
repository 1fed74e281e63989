"""Runs on curves learned in situ: from read-back alone, and measured when the model's shape misleads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import Trainer


class NoPeeking(EmulatedCrossbar):
    def device_curve_siemens(self) -> None:  # type: ignore[override]
        raise AssertionError("a learned run asked the emulator for its curve")


@pytest.mark.parametrize("seed", range(6))
def test_learned_curves_converge_on_devices_of_different_ranges(seed: int) -> None:
    xb = NoPeeking(EmulatorConfig(seed=seed, range_sigma=0.1))
    trainer = Trainer(xb, Task.reference(), TrainingConfig.recommended())
    result = trainer.run()
    assert result.converged and result.curve_source == "learned in situ"
    model = trainer.rule.model  # type: ignore[attr-defined]
    moved = model.observed
    scale = xb.range_scale * xb.config.scale_k * (xb.table[1] - xb.table[0]) / model.relative[1]
    np.testing.assert_allclose(model.scales()[moved], scale[moved], rtol=1e-9)  # each its own


@pytest.mark.reference_trace
def test_when_the_models_shape_leaves_no_margin_the_devices_are_measured(reference_trace_path: Path) -> None:
    # Seed 115 of the reference trace: the built-in model's shape, scaled from the probes, finds no
    # margin although the true curve has one (about 22 nA); the devices are measured, then reset.
    xb = NoPeeking(EmulatorConfig(seed=115, trace=reference_trace_path))
    result = Trainer(xb, Task.reference(), TrainingConfig.recommended()).run()
    assert result.curve_source is not None and "measured" in result.curve_source
    assert result.probe_resets >= 32 and result.probe_pulses >= 16 * 50
    assert result.converged
