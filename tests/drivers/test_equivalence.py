"""A training run through a driver and the emulator's server equals the run on EmulatedCrossbar.

Same seed, same device, same config: the conductance trajectory, the activations
and the pulses of every epoch are bit for bit the same, over PyVISA/TCP and
over pyserial/pty. The server's command log shows the cost of an epoch.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import TRANSPORTS, served

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.testing import CommandsPerEpoch
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.history import first_difference
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train

pytestmark = pytest.mark.system

CASES = {
    "builtin-seed1": (EmulatorConfig(seed=1), TrainingConfig(max_epochs=40)),
    "builtin-noisy": (
        EmulatorConfig(seed=7, read_noise=0.02, step_noise=0.3, stuck_fraction=0.1),
        TrainingConfig(max_epochs=30, ignore_in_band=True),
    ),
}


def check_equivalence(transport: str, emu: EmulatorConfig, cfg: TrainingConfig) -> None:
    task = Task.reference()
    direct = train(EmulatedCrossbar(emu), task, cfg)
    with served(transport, emu) as (_, backend):
        through = train(backend, task, cfg)
    assert direct.epochs >= 20 and direct.total_pulses >= 100, "pick a run with many pulses"
    assert first_difference(through, direct) is None


def test_a_one_bit_difference_is_found() -> None:
    """The comparison above can fail: it names the first epoch and field that differ."""
    emu, cfg = CASES["builtin-seed1"]
    a = train(EmulatedCrossbar(emu), Task.reference(), cfg)
    b = train(EmulatedCrossbar(emu), Task.reference(), cfg)
    assert first_difference(a, b) is None
    record = b.history[7]
    record.conductances_siemens[2, 1] = np.nextafter(record.conductances_siemens[2, 1], 1.0)
    b.history[9].currents_a[0, 0] = np.nan
    assert first_difference(a, b) == (
        f"epoch 7: conductances_siemens[2, 1]: {a.history[7].conductances_siemens[2, 1]!r} != "
        f"{record.conductances_siemens[2, 1]!r}"
    )


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


LIM_CASES = {
    "method_b-builtin": (
        EmulatorConfig(seed=3),
        TrainingConfig(rule="method_b", max_epochs=40, target_high=0.8, target_low=-0.8),
    ),
    "method_b-online-noisy": (
        EmulatorConfig(seed=5, read_noise=0.002, step_noise=0.3),
        TrainingConfig(
            rule="method_b",
            update="online",
            max_epochs=25,
            saturation_tol_siemens=2e-9,
            target_high=0.8,
            target_low=-0.8,
        ),
    ),
    "method_a-builtin": (
        EmulatorConfig(seed=3),
        TrainingConfig(rule="method_a", max_epochs=40, target_high=0.8, target_low=-0.8),
    ),
}


def check_reprogramming_equivalence(transport: str, emu: EmulatorConfig, cfg: TrainingConfig) -> None:
    """As :func:`check_equivalence`, for a run that resets and read-verifies through the driver."""
    task = Task.reference()
    direct = train(EmulatedCrossbar(emu), task, cfg)
    with served(transport, emu) as (_, backend):
        through = train(backend, task, cfg)
    assert direct.outcome != "fault", direct.error_message
    assert direct.total_resets >= 5 and direct.total_verify_pulses >= 5, "pick a run that re-programs"
    assert first_difference(through, direct) is None


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", sorted(LIM_CASES))
def test_reprogramming_rules_give_the_same_trajectory_as_direct(transport: str, case: str) -> None:
    check_reprogramming_equivalence(transport, *LIM_CASES[case])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_method_c_depresses_through_the_driver_as_directly(transport: str) -> None:
    emu = EmulatorConfig(seed=3, depression=True)
    cfg = TrainingConfig(rule="method_c", max_epochs=40, target_high=0.8, target_low=-0.8)
    task = Task.reference()
    direct_xb = EmulatedCrossbar(emu)
    direct = train(direct_xb, task, cfg)
    with served(transport, emu) as (_, backend):
        assert backend.info.supports_depression
        through = train(backend, task, cfg)
    assert direct.outcome != "fault", direct.error_message
    # Depressing pulses took devices down: some conductance fell from one epoch to the next.
    g = np.array([r.conductances_siemens for r in direct.history])
    assert np.any(np.diff(g, axis=0) < 0)
    assert first_difference(through, direct) is None


@pytest.mark.reference_trace
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_method_b_same_trajectory_with_the_reference_trace(
    transport: str, reference_trace_path: Path
) -> None:
    check_reprogramming_equivalence(
        transport,
        EmulatorConfig(seed=3, trace=reference_trace_path),
        TrainingConfig(rule="method_b", max_epochs=50, target_high=0.8, target_low=-0.8),
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_epoch_costs_one_vmm_per_pattern_one_pulse_batch_one_read(transport: str) -> None:
    task = Task.reference()
    with served(transport, EmulatorConfig(seed=1)) as (server, backend):
        counter = CommandsPerEpoch(server)
        result = train(backend, task, TrainingConfig(max_epochs=20), observers=[counter])
    epochs = counter.per_epoch()
    assert len(epochs) == len(result.history) == 21
    n = len(task.train)
    for record, counts in zip(result.history, epochs, strict=True):
        # Exactly: one VMM per training pattern, one read, one batch if it pulsed, nothing else;
        # before epoch 0, the start state: one RST:DEV per device of the task.
        expected = Counter({"VMM?": n, "MEAS:ALL?": 1, "PULS:LIST": 1 if record.pulses else 0})
        if record.epoch == 0:
            expected["RST:DEV"] = 16  # 4 input rows x 2 neurons x 2 columns
        assert counts == expected, (record.epoch, counts)
    assert sum(sum(c.values()) for c in epochs[:-1]) == 20 * (n + 2) + 16


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_default_run_is_the_same_through_a_driver_and_never_reads_the_emulators_curve(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One default on every edge: the recommended run with curves learned in situ, the same outcome
    and trajectory directly and through the driver; neither asks the emulator for its curve."""
    from crossbar_hil.procedures.training import run_training
    from crossbar_hil.training.config import RunConfig

    def no_peeking(self: EmulatedCrossbar) -> None:
        raise AssertionError("the run read the emulator's own curve")

    monkeypatch.setattr(EmulatedCrossbar, "device_curve_siemens", no_peeking)
    emu = EmulatorConfig(seed=4, range_sigma=0.1, step_noise=0.05, read_noise=0.01)
    config = RunConfig(backend={"params": emu.model_dump(mode="json")})
    direct = run_training(config, backend=EmulatedCrossbar(emu))
    with served(transport, emu) as (_, backend):
        assert backend.device_curve_siemens() is None
        through = run_training(config, backend=backend)
    assert direct.result.curve_source == through.result.curve_source
    assert (direct.result.curve_source or "").startswith("learned in situ")
    assert direct.result.probe_pulses > 0
    assert through.result.outcome == direct.result.outcome
    assert first_difference(through.result, direct.result) is None
