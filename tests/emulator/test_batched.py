"""A batch of emulated crossbars trains exactly as the single Trainer on EmulatedCrossbar.

For the same seeds, crossbar b of a batched training has the same per-epoch
conductances, currents, activations, bands, pulses, number of epochs and outcome
as ``Trainer`` on ``EmulatedCrossbar(seed=b)``, bit for bit: on the built-in
device, on the reference trace, and with read noise, step noise and stuck devices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossbar_hil.emulator.batched import CrossbarBatch
from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.devices import ExponentialDevice
from crossbar_hil.training.batched import BatchResult, train_batch
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.history import TrainingResult
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train

SEEDS = range(50)
NOISY = {"read_noise": 0.02, "step_noise": 0.3, "stuck_fraction": 0.1}


def single_runs(emu: EmulatorConfig, cfg: TrainingConfig, seeds: range) -> list[TrainingResult]:
    task = Task.reference()
    return [train(EmulatedCrossbar(emu.model_copy(update={"seed": s})), task, cfg) for s in seeds]


def first_mismatch(batch: BatchResult, singles: list[TrainingResult]) -> str | None:
    """Where the batch first differs from the single runs, or None."""
    h = batch.history
    assert h is not None
    for b, one in enumerate(singles):
        if batch.outcomes[b] != one.outcome or batch.epochs[b] != one.epochs:
            return f"seed {b}: {batch.outcomes[b]}/{batch.epochs[b]} != {one.outcome}/{one.epochs}"
        if batch.pulses[b] != one.total_pulses:
            return f"seed {b}: {batch.pulses[b]} pulses != {one.total_pulses}"
        for rec in one.history:
            e = rec.epoch
            pairs = {
                "conductances": (h.conductances_siemens[e, b], rec.conductances_siemens),
                "currents": (h.currents_a[e, b], rec.currents_a),
                "activations": (h.activations[e, b], rec.activations),
                "in_band": (h.in_band[e, b], rec.in_band),
                "pulses": (h.pulses[e, b], rec.pulses),
                "error": (h.error[e, b], rec.error),
            }
            for name, (x, y) in pairs.items():
                if not np.array_equal(x, y):
                    return f"seed {b}, epoch {e}: {name} differ"
        np.testing.assert_array_equal(batch.conductances_siemens[b], one.history[-1].conductances_siemens)
    return None


def check_same(emu: EmulatorConfig, cfg: TrainingConfig, seeds: range = SEEDS) -> BatchResult:
    singles = single_runs(emu, cfg, seeds)
    batch = train_batch(CrossbarBatch(emu, list(seeds)), Task.reference(), cfg, record_history=True)
    assert first_mismatch(batch, singles) is None
    return batch


def test_builtin_device_trajectories_are_identical() -> None:
    cfg = TrainingConfig(beta=3e8)  # some runs converge, some do not
    batch = check_same(EmulatorConfig(), cfg)
    assert 0 < batch.converged.sum() < len(SEEDS), "pick settings where both outcomes occur"


@pytest.mark.reference_trace
def test_reference_trace_trajectories_are_identical(reference_trace_path: Path) -> None:
    batch = check_same(EmulatorConfig(trace=reference_trace_path), TrainingConfig(beta=3e8))
    assert 0 < batch.converged.sum() < len(SEEDS)


def test_reference_settings_run_all_epochs_identically() -> None:
    batch = check_same(EmulatorConfig(), TrainingConfig(), range(20))
    assert batch.history is not None and (batch.epochs == 50).any()


def test_patience_ends_the_same_runs_at_the_same_epochs_as_the_single_trainer() -> None:
    batch = check_same(EmulatorConfig(), TrainingConfig(max_epochs=200, patience=5), range(20))
    assert "stalled" in batch.outcomes and batch.history is not None
    off = check_same(EmulatorConfig(), TrainingConfig(max_epochs=60, patience=0), range(5))
    assert "stalled" not in off.outcomes and (off.epochs == 60).any()


def test_noise_and_stuck_devices_are_drawn_as_the_single_crossbar_draws_them() -> None:
    cfg = TrainingConfig(beta=3e8, max_epochs=30, ignore_in_band=True)
    check_same(EmulatorConfig(**NOISY), cfg, range(20))


def test_saturation_is_identical() -> None:
    short = ExponentialDevice(
        g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=3e-8, beta_nl=2.0, n_max=6
    )
    cfg = TrainingConfig(max_epochs=20)
    batch = check_same(EmulatorConfig(device=short, step_noise=0.2), cfg, range(10))
    assert batch.history is not None


def test_a_batch_member_does_not_depend_on_the_others() -> None:
    cfg = TrainingConfig(beta=3e8, max_epochs=20)
    emu = EmulatorConfig(**NOISY)
    alone = train_batch(CrossbarBatch(emu, [7]), Task.reference(), cfg)
    among = train_batch(CrossbarBatch(emu, [3, 7, 11]), Task.reference(), cfg)
    np.testing.assert_array_equal(among.conductances_siemens[1], alone.conductances_siemens[0])
    assert among.epochs[1] == alone.epochs[0]


def test_a_mismatch_is_found() -> None:
    """The comparison can fail: one changed pulse count is reported."""
    cfg = TrainingConfig(max_epochs=5)
    singles = single_runs(EmulatorConfig(), cfg, range(3))
    batch = train_batch(
        CrossbarBatch(EmulatorConfig(), [0, 1, 2]), Task.reference(), cfg, record_history=True
    )
    assert first_mismatch(batch, singles) is None
    assert batch.history is not None
    batch.history.conductances_siemens[3, 2, 1, 1] *= 1 + 1e-15
    assert first_mismatch(batch, singles) == "seed 2, epoch 3: conductances differ"


def test_a_rule_without_batched_form_is_named() -> None:
    from crossbar_hil.training.rules import RULES
    from crossbar_hil.training.rules.base import UpdateRule

    class Slow(UpdateRule):
        name = "slow"

        def update(self, ctx, device):  # type: ignore[no-untyped-def]
            pass

    RULES["slow"] = Slow
    try:
        cfg = TrainingConfig.model_construct(**{**TrainingConfig().model_dump(), "rule": "slow"})
        with pytest.raises(NotImplementedError, match="'slow'"):
            train_batch(CrossbarBatch(EmulatorConfig(), [0]), Task.reference(), cfg)
    finally:
        del RULES["slow"]


@pytest.mark.parametrize("gain", ["calibrated", "fixed"])
def test_a_device_curve_is_refused_by_name_and_the_sweep_trains_it_one_crossbar_at_a_time(gain: str) -> None:
    # With a curve the single run reads the crossbar before training (and may calibrate beta):
    # the batch would silently train something else.
    from crossbar_hil.emulator.sweep.run import run_chunk

    emu = EmulatorConfig.model_validate({"seed": 0, **NOISY})
    xb = EmulatedCrossbar(emu)
    curve = tuple((emu.scale_k * (xb.table - xb.table[0])).tolist())
    cfg = TrainingConfig(rule="manhattan", gain=gain, device_curve_siemens=curve, max_epochs=30)
    with pytest.raises(NotImplementedError, match="device_curve_siemens"):
        train_batch(CrossbarBatch(emu, [0, 1]), Task.reference(), cfg)
    seeds = [0, 1, 2, 3]
    task = Task.reference().model_dump(mode="json")
    chunk = run_chunk(0, emu.model_dump(mode="json"), cfg.model_dump(mode="json"), task, seeds)
    singles = single_runs(emu, cfg, range(4))
    assert chunk.path == "single"
    assert (chunk.converged, chunk.epochs) == ([r.converged for r in singles], [r.epochs for r in singles])


def test_the_start_state_is_reproduced_on_a_fresh_batch() -> None:
    emu = EmulatorConfig.model_validate({"seed": 0, **NOISY})
    check_same(emu, TrainingConfig(beta=3e7, max_epochs=30, start_state="as_is"), range(10))
