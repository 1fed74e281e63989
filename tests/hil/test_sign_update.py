"""Online and batch sign-only updates, and what every epoch record counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.seam import Pulse
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.history import first_difference
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train

TASK = Task.reference()


class Log(EmulatedCrossbar):
    """The emulator, logging every operation in order, with the epoch it happened in."""

    def __init__(self, config: EmulatorConfig) -> None:
        super().__init__(config)
        self.ops: list[str] = []

    def _apply(self, voltages: np.ndarray) -> np.ndarray:
        self.ops.append("vmm")
        return super()._apply(voltages)

    def _read_conductances(self, read_v: float) -> np.ndarray:
        self.ops.append("read")
        return super()._read_conductances(read_v)

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        self.ops.append("pulses")
        super()._pulse_many(pulses)

    def _reset(self, row: int, col: int) -> None:
        self.ops.append("reset")
        super()._reset(row, col)


class EpochOps(TrainingObserver):
    """Splits the backend's log into epochs (measure + update)."""

    def __init__(self, xb: Log) -> None:
        self.xb, self.per_epoch, self._start = xb, [], 0

    def on_epoch(self, record: object) -> None:
        self.per_epoch.append(self.xb.ops[self._start :])
        self._start = len(self.xb.ops)


def run_logged(cfg: TrainingConfig, emu: EmulatorConfig, task: Task = TASK) -> tuple[list[list[str]], object]:
    xb = Log(emu)
    obs = EpochOps(xb)
    as_is = cfg.model_copy(update={"start_state": "as_is"})  # epochs only, not the start-state resets
    return obs.per_epoch, train(xb, task, as_is, observers=[obs])


def test_batch_sends_one_pulse_batch_per_epoch_after_the_forward_pass() -> None:
    epochs, _ = run_logged(TrainingConfig(max_epochs=5), EmulatorConfig(seed=1))
    n = len(TASK.train)
    for ops in epochs[:-1]:
        assert ops == ["vmm"] * n + ["read", "pulses"]


def test_online_sends_after_each_pattern_from_a_fresh_forward_pass() -> None:
    epochs, _ = run_logged(TrainingConfig(update="online", max_epochs=5), EmulatorConfig(seed=1))
    n = len(TASK.train)
    batches = 0
    for ops in epochs[:-1]:
        assert ops[: n + 1] == ["vmm"] * n + ["read"]  # the epoch's own forward pass and read
        update = ops[n + 1 :]
        # Until something is sent the epoch's forward pass serves; after that every pattern
        # gets its own VMM, and every batch but the first follows one.
        first = update.index("pulses")
        assert "vmm" not in update[:first]
        assert all(update[k - 1] == "vmm" for k, op in enumerate(update) if op == "pulses" and k > first)
        assert update.count("vmm") <= n - 1
        batches += update.count("pulses")
    assert batches > len(epochs) - 1  # more than one batch in some epoch


def test_online_with_one_pattern_is_the_batch_update() -> None:
    one = Task.model_validate({**TASK.model_dump(), "train": TASK.model_dump()["train"][:1]})
    emu = EmulatorConfig(seed=2)
    batch = train(EmulatedCrossbar(emu), one, TrainingConfig(max_epochs=10))
    online = train(EmulatedCrossbar(emu), one, TrainingConfig(max_epochs=10, update="online"))
    assert batch.total_pulses > 0
    assert first_difference(online, batch) is None


def test_records_count_resets_verify_pulses_and_instrument_time() -> None:
    cfg = TrainingConfig(rule="method_b", max_epochs=40, reset_time_s=0.5, target_high=0.8, target_low=-0.8)
    result = train(EmulatedCrossbar(EmulatorConfig(seed=3)), TASK, cfg)
    assert result.total_resets > 0 and result.total_verify_pulses > 0
    for r in result.history:
        assert r.instrument_time_s == pytest.approx(r.pulses * cfg.pulse_width_s + r.resets * 0.5)
        assert r.verify_pulses <= r.pulses and r.reads >= r.verify_pulses
    out = result.to_dict()
    assert out["total_resets"] == result.total_resets == sum(h["resets"] for h in out["history"])
    assert out["total_verify_pulses"] == result.total_verify_pulses
    assert out["instrument_time_s"] == pytest.approx(result.instrument_time_s)
    manhattan = train(EmulatedCrossbar(EmulatorConfig(seed=3)), TASK, TrainingConfig(max_epochs=40))
    assert manhattan.total_resets == 0 and manhattan.instrument_time_s == pytest.approx(
        manhattan.total_pulses * 1e-3
    )
