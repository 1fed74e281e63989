"""Injected link faults during training: typed errors, outcome "fault", no pulse after the fault.

The emulator server's :class:`~crossbar_hil.emulator.instrument.faults.FaultPlan` is armed from an
observer at the end of epoch 4, aimed at a command of epoch 5 (its first VMM,
or its pulse batch). Each case checks the error type, that nothing but ``ABOR``
reached the instrument after the faulty command, that the history up to the
fault equals that of a fault-free run, and that an abort was attempted whenever
the link still carried bytes.

Timing is kept out of the verdicts, for slow and loaded machines: the healthy
part of a run has a generous reply timeout (RUN_TIMEOUT_S); only when the fault
is armed does the link's base timeout drop to FAULT_TIMEOUT_S, an injected
delay is four times that, and the test waits (event-based) for the driver's
``ABOR`` to reach the server, which executes commands in order, so only after
the delayed reply.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import TRANSPORTS, served

from crossbar_hil.drivers.link import LinkFaulted
from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.seam.errors import ConnectionLost, InstrumentTimeout, ProtocolError
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.history import EpochRecord
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train

pytestmark = pytest.mark.system

RUN_TIMEOUT_S = 30.0
"""Reply timeout (s) while no fault is armed: no healthy reply comes near it."""
FAULT_TIMEOUT_S = 0.5
"""Base reply timeout (s) once a fault is armed: how long a timeout case waits."""
DELAY_S = 2.0
"""An injected reply delay (s): four times the timeout it must exceed."""
EMU = EmulatorConfig(seed=1)
CFG = TrainingConfig(max_epochs=20)
ARM_EPOCH = 4
# Offsets, after the end of epoch ARM_EPOCH, of the commands of the next epoch.
TARGETS = {"vmm": (1, "VMM?"), "pulse": (8, "PULS:LIST")}

FAULTS: dict[str, tuple[Any, type[Exception], bool]] = {
    # name: (FaultPlan fields for faulty command number F, expected error, ABOR expected)
    "delay": (lambda f: {"reply_delay_s": DELAY_S}, InstrumentTimeout, True),
    "drop": (lambda f: {"drop_after": f - 1}, ConnectionLost, False),
    "garble": (lambda f: {"garble_at": f}, ProtocolError, True),
    "mute": (lambda f: {"mute_after": f - 1}, InstrumentTimeout, True),
}
CASES = [
    (fault, target)
    for fault in FAULTS
    for target in TARGETS
    if not (fault == "delay" and target == "pulse")  # A delay starts with the next command.
]


class ArmFault(TrainingObserver):
    """Arms the server's fault plan at the end of one epoch; remembers the faulty command.

    Also shortens the driver's base reply timeout, so that a timeout case is quick.
    """

    def __init__(self, server: Any, link: Any, fields: Any, offset: int) -> None:
        self.server, self.link, self.fields, self.offset = server, link, fields, offset
        self.faulty: int | None = None

    def on_epoch(self, record: EpochRecord) -> None:
        if record.epoch == ARM_EPOCH:
            self.faulty = self.server.command_count + self.offset  # 1-based command number
            self.link.timeout_s = FAULT_TIMEOUT_S
            self.server.faults = FaultPlan(**self.fields(self.faulty))


@pytest.fixture(scope="module")
def fault_free() -> list[EpochRecord]:
    return train(EmulatedCrossbar(EMU), Task.reference(), CFG).history


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("fault", "target"), CASES)
def test_training_under_a_fault(
    transport: str, fault: str, target: str, fault_free: list[EpochRecord]
) -> None:
    fields, expected, abort_expected = FAULTS[fault]
    offset, head = TARGETS[target]
    with served(transport, EMU, timeout_s=RUN_TIMEOUT_S) as (server, backend):
        arm = ArmFault(server, backend.link, fields, offset)
        result = train(backend, Task.reference(), CFG, observers=[arm])
        error = backend.fault
        with pytest.raises(LinkFaulted):
            backend.pulse(0, 0, 2.0, 1e-3)
        assert arm.faulty is not None
        if abort_expected:  # it reaches the server after the (delayed) faulty command
            assert server.wait_for_commands(arm.faulty + 1, DELAY_S + 30)
        commands = list(server.commands)

    assert result.outcome == "fault"
    assert isinstance(error, expected), repr(error)
    assert result.error_message is not None
    assert result.error_message.startswith(type(error).__name__)

    assert commands[arm.faulty - 1].startswith(head)
    after = [c.split(" ")[0] for c in commands[arm.faulty :]]
    assert set(after) <= {"ABOR"}, after
    assert ("ABOR" in after) == abort_expected

    history = result.history
    fault_epoch = ARM_EPOCH + 1
    assert len(history) == (fault_epoch if target == "vmm" else fault_epoch + 1)
    for got, ref in zip(history, fault_free, strict=False):
        assert np.array_equal(got.conductances_siemens, ref.conductances_siemens)
        assert np.array_equal(got.activations, ref.activations)
        assert got.pulses == (ref.pulses if got.epoch < fault_epoch else 0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reply_slower_than_the_timeout_at_connect(transport: str) -> None:
    with (
        pytest.raises(InstrumentTimeout),
        served(transport, EMU, faults=FaultPlan(reply_delay_s=DELAY_S), timeout_s=FAULT_TIMEOUT_S),
    ):
        pass


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resync_after_a_garbled_reply(transport: str) -> None:
    with served(transport, EMU, timeout_s=RUN_TIMEOUT_S) as (server, backend):
        g0 = backend.read_conductances()
        server.faults = FaultPlan(garble_at=server.command_count + 1)
        with pytest.raises(ProtocolError):
            backend.read_conductances()
        assert server.commands[-1] == "ABOR"
        with pytest.raises(LinkFaulted):
            backend.pulse(0, 0, 2.0, 1e-3)
        backend.resync()
        backend.pulse(0, 0, 2.0, 1e-3)
        assert backend.read_conductances()[0, 0] > g0[0, 0]
        assert np.array_equal(backend.read_conductances(), server.crossbar.conductances())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_slow_replies_within_the_timeout_are_fine(transport: str) -> None:
    with served(transport, EMU, faults=FaultPlan(reply_delay_s=0.05), timeout_s=RUN_TIMEOUT_S) as (
        server,
        backend,
    ):
        backend.pulse(1, 1, 2.0, 1e-3)
        assert backend.fault is None
        assert server.crossbar.position[1, 1] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_reply_timeout_covers_the_pulse_time(transport: str) -> None:
    """A legal pulse longer than the base timeout is waited for; a read is not."""
    with served(transport, EMU, timeout_s=RUN_TIMEOUT_S) as (server, backend):
        backend.link.timeout_s = 0.2
        server.faults = FaultPlan(reply_delay_s=0.6)  # each reply now takes 0.6 s
        backend.pulse(1, 1, 2.0, 1.5)  # waited for 0.2 + 1.5 + switching: in time
        assert backend.fault is None and server.crossbar.position[1, 1] == 1
        with pytest.raises(InstrumentTimeout):  # waited for 0.2 s only
            backend.read_conductances()
