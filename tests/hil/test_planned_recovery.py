"""The planned rule re-programmes when a plan was wrong, on a backend that can reset (issue 16 item 4)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.seam import Pulse
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.history import TrainingResult
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import Trainer


class Overshooting(EmulatedCrossbar):
    """The devices move differently from their curve: the first pulse command moves each pulsed
    device 30 positions per pulse asked (the plan then finds the bands out of reach)."""

    first = True

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        if self.first and len(pulses) > 20:
            self.first = False
            pulses = [p for p in pulses for _ in range(30)]
        super()._pulse_many(pulses)


def run(seed: int, max_recoveries: int) -> TrainingResult:
    exact = tuple(EmulatedCrossbar(EmulatorConfig(seed=seed)).device_curve_siemens())
    cfg = TrainingConfig.recommended(device_curve_siemens=exact, max_recoveries=max_recoveries)
    return Trainer(Overshooting(EmulatorConfig(seed=seed)), Task.reference(), cfg).run()


@pytest.mark.parametrize("seed", [4, 6])
def test_an_overshot_plan_is_reset_and_re_programmed_instead_of_stalling(seed: int) -> None:
    without = run(seed, max_recoveries=0)
    assert not without.converged and without.total_resets == 0  # Manhattan steps could not help
    recovered = run(seed, max_recoveries=5)
    assert recovered.converged
    assert recovered.total_resets > 0  # counted in the epochs that sent them
    assert recovered.instrument_time_s >= recovered.total_resets * 1.0  # 1 s per reset


def test_recoveries_are_bounded_by_max_recoveries() -> None:
    result = run(4, max_recoveries=1)
    resets_per_epoch = [r.resets for r in result.history if r.resets]
    assert len(resets_per_epoch) <= 1
