"""What a rule sends goes out in chunks of the backend's max_batch, the stop checked before each,
and the epoch's counts are those of the chunks actually sent."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.seam import Pulse
from crossbar_hil.seam.errors import ConnectionLost, LimitError, RunStopped
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.device_access import DeviceAccess
from crossbar_hil.training.stop import StopSignal
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import Trainer

WIDTH_S = 1e-3
PULSES = [Pulse(0, c % 4, 1.0, WIDTH_S) for c in range(40)]  # 40 pulses: chunks of 16, 16, 8


class Chunks(EmulatedCrossbar):
    """max_batch 16; records every command's size; can stop or fail at the n-th command."""

    def __init__(self, stop: StopSignal | None = None, stop_after: int = 0, fail_at: int = 0) -> None:
        super().__init__(EmulatorConfig.model_validate({"seed": 0, "limits": {"max_batch": 16}}))
        self.commands: list[int] = []
        self.stop, self.stop_after, self.fail_at = stop, stop_after, fail_at

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        if len(self.commands) + 1 == self.fail_at:
            raise ConnectionLost("link dropped (injected)")
        self.commands.append(len(pulses))
        super()._pulse_many(pulses)
        if self.stop is not None and len(self.commands) == self.stop_after:
            self.stop.set("stop pressed")


def test_a_long_send_goes_out_in_chunks_of_max_batch_and_counts_them_all() -> None:
    xb = Chunks()
    device = DeviceAccess(xb, StopSignal())
    device.send(PULSES, verify=True)
    assert xb.commands == [16, 16, 8]
    assert device.pulses == device.verify_pulses == 40
    assert device.instrument_time_s == pytest.approx(40 * WIDTH_S)


def test_a_stop_takes_effect_before_the_next_chunk_and_only_sent_chunks_are_counted() -> None:
    stop = StopSignal()
    xb = Chunks(stop, stop_after=1)
    device = DeviceAccess(xb, stop)
    with pytest.raises(RunStopped, match="stop pressed"):
        device.send(PULSES)
    assert xb.commands == [16]
    assert device.pulses == 16 and device.instrument_time_s == pytest.approx(16 * WIDTH_S)


def test_a_fault_mid_send_keeps_the_counts_of_the_chunks_before_it() -> None:
    xb = Chunks(fail_at=3)
    device = DeviceAccess(xb, StopSignal())
    with pytest.raises(ConnectionLost):
        device.send(PULSES, verify=True)
    assert xb.commands == [16, 16]
    assert device.pulses == device.verify_pulses == 32
    assert device.instrument_time_s == pytest.approx(32 * WIDTH_S)


def test_one_bad_pulse_rejects_the_whole_send_before_any_chunk() -> None:
    xb = Chunks()
    device = DeviceAccess(xb, StopSignal())
    with pytest.raises(LimitError, match=r"pulses\[39\]"):
        device.send([*PULSES[:39], Pulse(0, 0, 99.0, WIDTH_S)])
    assert xb.commands == [] and device.pulses == 0


def test_in_a_run_a_stop_during_an_update_stops_at_the_next_chunk_and_the_record_says_so() -> None:
    stop = StopSignal()
    xb = Chunks(stop, stop_after=1)
    curve = tuple((xb.config.scale_k * (xb.table - xb.table[0])).tolist())
    result = Trainer(
        xb, Task.reference(), TrainingConfig.recommended(device_curve_siemens=curve), stop=stop
    ).run()
    assert result.outcome == "stopped"
    assert xb.commands == [16]  # the planned rule's first update is longer than one chunk
    assert result.history[-1].pulses == 16
