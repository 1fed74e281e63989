"""A run interrupted in any phase is recorded as stopped, and says whether 0 V was confirmed.

The second Ctrl-C of the command line arrives as a KeyboardInterrupt wherever the run is;
here the backend's abort raises it once, as if it came while ABOR's reply was awaited.
"""

from __future__ import annotations

from typing import Any

import pytest

from crossbar_hil.api.cli.train import summary
from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.procedures.training import TrainingRun, run_training
from crossbar_hil.seam.backend import outputs_confirmed_at_0v
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import EpochRecord, Outcome
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.stop import StopSignal


class InterruptedAbort(EmulatedCrossbar):
    """The emulator whose first abort is interrupted (KeyboardInterrupt) before its reply."""

    interrupted = False

    def _abort(self) -> None:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt("interrupted by a second Ctrl-C")
        super()._abort()


class StopAt(TrainingObserver):
    def __init__(self, stop: StopSignal, epoch: int) -> None:
        self.stop, self.epoch = stop, epoch

    def on_epoch(self, record: EpochRecord) -> None:
        if record.epoch == self.epoch:
            self.stop.set("stopped by Ctrl-C")


def config(max_epochs: int) -> RunConfig:
    return RunConfig.model_validate(
        {"preset": "reference", "training": {"max_epochs": max_epochs, "patience": 0}}
    )


def interrupted_run(**kwargs: Any) -> TrainingRun:
    with pytest.raises(KeyboardInterrupt) as caught:
        run_training(backend=InterruptedAbort.from_params({}), **kwargs)
    run = getattr(caught.value, "training_run", None)
    assert run is not None, "the results must ride on the interrupt"
    return run


def test_a_second_ctrl_c_while_the_stop_awaits_abor_records_stopped_not_confirmed() -> None:
    stop = StopSignal()
    run = interrupted_run(config=config(50), stop=stop, observers=[StopAt(stop, 2)])
    assert run.result.outcome is Outcome.STOPPED
    assert not outputs_confirmed_at_0v(run.result.error_message)
    assert "NOT confirmed at 0 V" in summary(run)
    assert "more epochs" not in summary(run)


def test_a_ctrl_c_while_the_final_abort_awaits_its_reply_after_the_last_epoch_records_stopped() -> None:
    run = interrupted_run(config=config(2))
    assert run.result.outcome is Outcome.STOPPED and run.result.epochs == 2
    assert not outputs_confirmed_at_0v(run.result.error_message)
    assert run.result.diagnosis is None
    assert "NOT confirmed at 0 V" in summary(run) and "to try" not in summary(run)


def test_a_stop_whose_abort_is_answered_says_the_outputs_are_at_0_v() -> None:
    stop = StopSignal()
    run = run_training(
        config(50), backend=EmulatedCrossbar.from_params({}), stop=stop, observers=[StopAt(stop, 2)]
    )
    assert run.result.outcome is Outcome.STOPPED and outputs_confirmed_at_0v(run.result.error_message)
    assert "confirmed at 0 V (the instrument answered ABOR)" in summary(run)
