"""A rule owns its state and its diagnosis: a new rule needs no edit of the trainer."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.history import Diagnosis
from crossbar_hil.training.rules import RULES
from crossbar_hil.training.rules.manhattan import Manhattan
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import Trainer


class Opinionated(Manhattan):
    """Manhattan steps, with its own saturation judgement, diagnosis and use of the device curve."""

    name = "opinionated"
    uses_device_curve = True

    def notes_without_curve(self) -> list[str]:
        return ["no curve: opinionated anyway"]

    def saturated(self) -> NDArray[np.bool_] | None:
        return np.zeros((4, 4), dtype=bool)

    def diagnose(self) -> tuple[Diagnosis, str] | None:
        return "overshot", "the opinionated rule says so"


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RULES, Opinionated.name, Opinionated)


@pytest.mark.usefixtures("registered")
def test_the_trainer_asks_the_rule_for_its_diagnosis_and_notes() -> None:
    config = TrainingConfig(rule="opinionated", max_epochs=1, curve_source="none")  # no curve, not learned
    result = Trainer(EmulatedCrossbar(EmulatorConfig(seed=0)), Task.reference(), config).run()
    assert not result.converged
    assert (result.diagnosis, result.diagnosis_detail) == ("overshot", "the opinionated rule says so")
    assert "no curve: opinionated anyway" in result.notes  # a note without the words "no device curve"


@pytest.mark.usefixtures("registered")
def test_a_rule_on_the_device_curve_is_refused_without_a_reset_start() -> None:
    config = TrainingConfig(rule="opinionated", device_curve_siemens=(0.0, 1e-9), start_state="as_is")
    with pytest.raises(ValueError, match=r"training\.rule='opinionated'"):
        Trainer(EmulatedCrossbar(EmulatorConfig(seed=0)), Task.reference(), config)
