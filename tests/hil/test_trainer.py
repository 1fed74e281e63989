"""The in-situ trainer: convergence, honesty, cost per epoch, stop and fault handling."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.seam import BackendInfo, Pulse
from crossbar_hil.seam.errors import ConnectionLost, LimitError
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.history import EpochRecord, TrainingResult, first_difference
from crossbar_hil.training.network import activation, in_band, logic_currents
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.stop import StopSignal
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import Trainer, train

TASK = Task.reference()
EASY = TrainingConfig(beta=3e7)  # a gain at which most seeds converge in a few epochs


class CountingCrossbar(EmulatedCrossbar):
    """An emulator that counts backend calls and can fail on the n-th pulse batch."""

    def __init__(self, config: EmulatorConfig, fail_on_batch: int | None = None) -> None:
        super().__init__(config)
        self.calls: Counter[str] = Counter()
        self.fail_on_batch = fail_on_batch
        self.pulses_applied = 0

    def _apply(self, voltages: np.ndarray) -> np.ndarray:
        self.calls["apply"] += 1
        return super()._apply(voltages)

    def _read_conductances(self, read_v: float) -> np.ndarray:
        self.calls["read"] += 1
        return super()._read_conductances(read_v)

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        self.calls["pulse_many"] += 1
        if self.calls["pulse_many"] == self.fail_on_batch:
            raise ConnectionLost("link dropped (injected)")
        self.pulses_applied += len(pulses)
        super()._pulse_many(pulses)


class Recorder(TrainingObserver):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.records: list[EpochRecord] = []
        self.result: TrainingResult | None = None

    def on_start(self, task: Task, config: TrainingConfig, identity: str) -> None:
        self.events.append("start")

    def on_epoch(self, record: EpochRecord) -> None:
        self.events.append(f"epoch {record.epoch}")
        self.records.append(record)

    def on_end(self, result: TrainingResult) -> None:
        self.events.append("end")
        self.result = result


def fresh_in_band(xb: EmulatedCrossbar, cfg: TrainingConfig) -> np.ndarray:
    """Outputs of the training set measured independently of the trainer."""
    cols = np.array([xb.apply(v) for v in TASK.voltages("train")])
    return in_band(activation(logic_currents(cols, 2), cfg.beta), TASK.targets("train"), cfg)


def test_converges_on_an_easy_configuration_and_it_is_true() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=0))
    result = train(xb, TASK, EASY)
    assert result.outcome == "converged" and result.converged
    assert 0 < result.epochs < EASY.max_epochs
    assert fresh_in_band(xb, EASY).all()
    assert result.history[-1].pulses == 0
    assert result.train is not None and result.train.in_band_accuracy == 1.0
    assert result.test is not None and len(result.test.patterns) == 10


def test_does_not_claim_convergence_it_did_not_reach() -> None:
    cfg = TrainingConfig(max_epochs=5)
    xb = EmulatedCrossbar(EmulatorConfig(seed=0))
    result = train(xb, TASK, cfg)
    assert result.outcome == "max_epochs" and not result.converged
    assert result.epochs == 5 and len(result.history) == 6
    assert not fresh_in_band(xb, cfg).all()
    assert all(r.misses > 0 for r in result.history)


def test_one_epoch_costs_one_vmm_per_pattern_one_batch_one_read() -> None:
    cfg = TrainingConfig(max_epochs=10)
    xb = CountingCrossbar(EmulatorConfig(seed=0))
    result = Trainer(xb, TASK, cfg).run()
    xb.calls["apply"] -= len(TASK.train) + len(TASK.test)  # the final evaluation
    epochs = len(result.history)
    assert xb.calls["apply"] == len(TASK.train) * epochs
    assert xb.calls["read"] == epochs
    assert xb.calls["pulse_many"] == sum(1 for r in result.history if r.pulses)
    assert xb.pulses_applied == result.total_pulses > 0


def test_observers_hear_every_epoch_in_order() -> None:
    rec = Recorder()
    result = train(EmulatedCrossbar(EmulatorConfig(seed=0)), TASK, TrainingConfig(max_epochs=3), [rec])
    assert rec.events == ["start", "epoch 0", "epoch 1", "epoch 2", "epoch 3", "end"]
    assert rec.result is result and rec.records == result.history


def test_stop_takes_effect_before_the_next_pulse_and_aborts() -> None:
    stop = StopSignal()

    class StopAtTwo(TrainingObserver):
        def on_epoch(self, record: EpochRecord) -> None:
            if record.epoch == 2:
                stop.set("user pressed stop")

    xb = CountingCrossbar(EmulatorConfig(seed=0))
    result = Trainer(xb, TASK, TrainingConfig(), [StopAtTwo()], stop).run()
    assert result.outcome == "stopped" and result.error_message == "user pressed stop"
    assert [r.epoch for r in result.history] == [0, 1, 2]
    assert xb.calls["pulse_many"] == 3  # epochs 0, 1, 2 sent theirs; nothing after the stop
    assert xb.aborts == 1


def test_a_stop_before_the_start_sends_nothing() -> None:
    stop = StopSignal()
    stop.set()
    xb = CountingCrossbar(EmulatorConfig(seed=0))
    result = Trainer(xb, TASK, stop=stop).run()
    assert result.outcome == "stopped" and result.history == []
    assert xb.calls["pulse_many"] == 0 and xb.aborts == 1


def test_a_fault_keeps_the_history_up_to_it_and_aborts() -> None:
    clean = train(EmulatedCrossbar(EmulatorConfig(seed=0)), TASK, TrainingConfig(max_epochs=10))
    xb = CountingCrossbar(EmulatorConfig(seed=0), fail_on_batch=4)
    result = Trainer(xb, TASK, TrainingConfig(max_epochs=10)).run()
    assert result.outcome == "fault" and "ConnectionLost" in (result.error_message or "")
    assert [r.epoch for r in result.history] == [0, 1, 2, 3]
    assert result.history[3].pulses == 0  # the failed batch is not counted as sent
    for got, want in zip(result.history[:3], clean.history[:3], strict=True):
        np.testing.assert_array_equal(got.conductances_siemens, want.conductances_siemens)
        assert got.pulses == want.pulses
    assert xb.aborts == 1 and xb.calls["pulse_many"] == 4


def test_bad_pulse_settings_are_refused_before_any_run() -> None:
    xb = CountingCrossbar(EmulatorConfig(seed=0))
    with pytest.raises(LimitError, match=r"training.pulse_v=4.0 V"):
        Trainer(xb, TASK, TrainingConfig(pulse_v=4.0))
    assert sum(xb.calls.values()) == 0


def test_a_task_larger_than_the_crossbar_is_refused() -> None:
    big = Task(train=({"pattern": "01010", "target": "1"},))
    with pytest.raises(ValueError, match="5 inputs but the crossbar has 4 rows"):
        Trainer(EmulatedCrossbar(), big)


def test_already_converged_needs_no_pulse_when_started_as_is() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=0))
    as_is = EASY.model_copy(update={"start_state": "as_is"})
    first = train(xb, TASK, as_is)
    again = train(xb, TASK, as_is)
    assert first.converged and again.converged
    assert again.epochs == 0 and again.total_pulses == 0 and again.start_reset_devices == []


def test_by_default_a_second_run_starts_from_reset_devices_and_repeats_the_first() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=0))
    first = train(xb, TASK, EASY)
    again = train(xb, TASK, EASY)
    assert first.converged and first_difference(first, again) is None
    used = [(r, c) for r in range(TASK.n_inputs) for c in range(2 * TASK.n_outputs)]
    assert again.start_state == "reset" and again.start_reset_devices == used


class _NoReset(EmulatedCrossbar):
    """An emulated crossbar that, like some instruments, has no reset."""

    @property
    def info(self) -> BackendInfo:
        return super().info.model_copy(update={"supports_reset": False})


def test_a_backend_without_reset_starts_as_is() -> None:
    result = train(_NoReset(EmulatorConfig(seed=0)), TASK, EASY.model_copy(update={"max_epochs": 1}))
    assert result.start_state == "as_is" and result.start_reset_devices == []


def test_patience_ends_a_run_whose_devices_stopped_moving() -> None:
    # The built-in device saturates after a few dozen pulses; the gain is too small to converge.
    config = TrainingConfig(max_epochs=2000, patience=5)
    result = train(EmulatedCrossbar(EmulatorConfig(seed=0)), TASK, config)
    assert result.outcome == "stalled"
    window = np.stack([r.conductances_siemens for r in result.history[-6:]])
    moved = np.abs(window - window[0]).max(axis=0)
    assert np.all(moved <= config.stall_rel_tol * window[0])  # five epochs without a move
    assert result.history[-2].pulses > 0  # although pulses were sent
    assert result.epochs < 200


def test_patience_zero_runs_to_the_epoch_limit() -> None:
    config = TrainingConfig(max_epochs=120, patience=0)
    result = train(EmulatedCrossbar(EmulatorConfig(seed=0)), TASK, config)
    assert result.outcome == "max_epochs" and result.epochs == 120


def test_history_serialises_to_plain_json_types() -> None:
    import json

    result = train(EmulatedCrossbar(EmulatorConfig(seed=0)), TASK, TrainingConfig(max_epochs=2))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["outcome"] == "max_epochs" and len(data["history"]) == 3
    assert np.array(data["history"][0]["conductances_siemens"]).shape == (4, 4)


def test_saturation_is_reported_as_stalled_epochs() -> None:
    dev = {
        "kind": "exponential",
        "g_min_siemens": 1e-7,
        "g_max_siemens": 1.1e-7,
        "alpha_siemens": 5e-9,
        "beta_nl": 0.0,
    }
    xb = EmulatedCrossbar(EmulatorConfig.model_validate({"seed": 0, "device": dev}))
    result = train(xb, TASK, TrainingConfig(max_epochs=12))
    # Linear device with two steps of range: every pulsed device is saturated after 2 pulses.
    assert not result.converged
    assert result.stalled_epochs() >= 8
    fresh = train(EmulatedCrossbar(EmulatorConfig(seed=0)), TASK, TrainingConfig(max_epochs=3))
    assert fresh.stalled_epochs() == 0
    stalled = result.stalled_epochs()
    assert result.looks_saturated(TrainingConfig(saturation_epochs=stalled))
    assert not result.looks_saturated(TrainingConfig(saturation_epochs=stalled + 1))
    assert not fresh.looks_saturated(TrainingConfig(saturation_epochs=1))


def test_stalled_epochs_use_the_runs_own_tolerance() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=0))
    result = train(xb, TASK, TrainingConfig(max_epochs=3, patience=0, stall_rel_tol=0.999))
    assert result.stall_rel_tol == 0.999
    # A pulse moves a device by far less than 99.9 %: the last epochs count as stalled, not at 0.1 %.
    assert result.stalled_epochs() >= 2
    assert dataclasses.replace(result, stall_rel_tol=1e-3).stalled_epochs() == 0


def test_a_stop_between_the_forward_pass_and_the_update_sends_no_pulse() -> None:
    stop = StopSignal()

    class StopDuringRead(CountingCrossbar):
        def _read_conductances(self, read_v: float) -> np.ndarray:
            if self.calls["read"] == 2:  # the third epoch's measurement, before its update
                stop.set("stop pressed mid-epoch")
            return super()._read_conductances(read_v)

    xb = StopDuringRead(EmulatorConfig(seed=0))
    result = Trainer(xb, TASK, TrainingConfig(), stop=stop).run()
    assert result.outcome == "stopped"
    assert [(r.epoch, r.pulses) for r in result.history] == [(0, 8), (1, 8), (2, 0)]
    assert xb.calls["pulse_many"] == 2 and xb.aborts == 1


def test_an_abort_that_fails_after_a_fault_is_reported_not_hidden() -> None:
    class DeadLink(CountingCrossbar):
        def _abort(self) -> None:
            raise ConnectionLost("no route to instrument")

    result = Trainer(DeadLink(EmulatorConfig(seed=0), fail_on_batch=2), TASK).run()
    assert result.outcome == "fault"
    assert result.error_message is not None
    assert result.error_message.startswith("ConnectionLost: link dropped (injected)")
    assert "abort (outputs to 0 V) could not be confirmed" in result.error_message


@pytest.mark.parametrize(
    ("task_change", "config", "field"),
    [
        ({"v_high": 0.5}, {}, "task.v_high=0.5 V"),
        ({"v_low": -0.3}, {}, "task.v_low=-0.3 V"),
        ({}, {"read_v": 0.4}, "training.read_v=0.4 V"),
    ],
)
def test_task_and_read_voltages_beyond_the_read_limit_are_refused_up_front(
    task_change: dict, config: dict, field: str
) -> None:
    xb = CountingCrossbar(EmulatorConfig(seed=0))
    task = TASK.model_copy(update=task_change)
    with pytest.raises(LimitError, match=field):
        Trainer(xb, task, TrainingConfig(**config))
    assert sum(xb.calls.values()) == 0
