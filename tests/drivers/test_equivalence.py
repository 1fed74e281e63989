"""A training run through a driver and the emulator's server equals the run on EmulatedCrossbar.

Same seed, same device, same config: the conductance trajectory, the activations
and the pulses of every epoch are bit for bit the same, over PyVISA/TCP and
over pyserial/pty. The server's command log shows the cost of an epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import TRANSPORTS, served

from emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from hil.config import TrainingConfig
from hil.history import EpochRecord, TrainingResult
from hil.observers import TrainingObserver
from hil.task import Task
from hil.trainer import train

CASES = {
    "builtin-seed1": (EmulatorConfig(seed=1), TrainingConfig(max_epochs=40)),
    "builtin-noisy": (
        EmulatorConfig(seed=7, read_noise=0.02, step_noise=0.3, stuck_fraction=0.1),
        TrainingConfig(max_epochs=30, ignore_in_band=True),
    ),
}


def assert_same_run(served_run: TrainingResult, direct: TrainingResult) -> None:
    assert served_run.outcome == direct.outcome
    assert len(served_run.history) == len(direct.history)
    for a, b in zip(served_run.history, direct.history, strict=True):
        assert a.epoch == b.epoch
        assert np.array_equal(a.conductances_s, b.conductances_s), f"epoch {a.epoch}"
        assert np.array_equal(a.activations, b.activations), f"epoch {a.epoch}"
        assert np.array_equal(a.currents_a, b.currents_a), f"epoch {a.epoch}"
        assert a.pulses == b.pulses
    for split in ("train", "test"):
        ea, eb = getattr(served_run, split), getattr(direct, split)
        assert np.array_equal(ea.activations, eb.activations)


def check_equivalence(transport: str, emu: EmulatorConfig, cfg: TrainingConfig) -> None:
    task = Task.reference()
    direct = train(EmulatedCrossbar(emu), task, cfg)
    with served(transport, emu) as (_, backend):
        through = train(backend, task, cfg)
    assert direct.epochs >= 20 and direct.total_pulses >= 100, "pick a run with many pulses"
    assert_same_run(through, direct)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_trajectory_as_direct(transport: str, case: str) -> None:
    check_equivalence(transport, *CASES[case])


@pytest.mark.reference_trace
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_same_trajectory_with_the_reference_trace(transport: str, reference_trace_path: Path) -> None:
    check_equivalence(
        transport, EmulatorConfig(seed=3, trace=reference_trace_path), TrainingConfig(max_epochs=50)
    )


class CommandsPerEpoch(TrainingObserver):
    """Slices the server's command log at each epoch's end."""

    def __init__(self, server) -> None:
        self.server = server
        self.marks: list[int] = []

    def on_start(self, *args) -> None:
        self.marks.append(self.server.command_count)

    def on_epoch(self, record: EpochRecord) -> None:
        self.marks.append(self.server.command_count)

    def epochs(self) -> list[list[str]]:
        log = self.server.commands
        return [log[a:b] for a, b in zip(self.marks, self.marks[1:], strict=False)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_epoch_costs_one_vmm_per_pattern_one_pulse_batch_one_read(transport: str) -> None:
    task = Task.reference()
    with served(transport, EmulatorConfig(seed=1)) as (server, backend):
        counter = CommandsPerEpoch(server)
        result = train(backend, task, TrainingConfig(max_epochs=20), observers=[counter])
    epochs = counter.epochs()
    assert len(epochs) == len(result.history) == 21
    n = len(task.train)
    for record, commands in zip(result.history, epochs, strict=True):
        heads = [c.split(" ")[0] for c in commands]
        assert heads.count("VMM?") <= n
        assert heads.count("MEAS:ALL?") == 1
        assert heads.count("PULS:LIST") == (1 if record.pulses else 0)
        assert set(heads) <= {"VMM?", "MEAS:ALL?", "PULS:LIST"}
        assert len(commands) <= n + 2
    assert sum(len(c) for c in epochs[:-1]) == 20 * (n + 2)
