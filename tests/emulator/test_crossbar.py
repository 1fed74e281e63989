"""EmulatedCrossbar: device physics, variation, noise, limits and reproducibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig, ShiftDistribution
from crossbar_hil.emulator.devices import ExponentialDevice, LtpLtdDevice
from crossbar_hil.seam import Pulse
from crossbar_hil.seam.errors import BackendClosed, LimitError

SET = (2.0, 1e-3)


def pulse_n(xb: EmulatedCrossbar, row: int, col: int, n: int) -> list[float]:
    """Conductance of (row, col) after each of n potentiating pulses (S)."""
    out = []
    for _ in range(n):
        xb.pulse(row, col, *SET)
        out.append(float(xb.read_conductances()[row, col]))
    return out


def test_conductance_follows_the_stated_formula() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=4, scale_k=10.0))
    xb.pulse_many([Pulse(1, 2, *SET)] * 3)
    m = xb.position
    expected = 10.0 * ((xb.table[m] - xb.table[0]) + xb.shifts_siemens)
    np.testing.assert_allclose(xb.read_conductances(0.05), expected, rtol=1e-12)
    assert m[1, 2] == 3 and m.sum() == 3


def test_default_device_is_monotone_under_potentiation_and_saturates() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=1))
    g = pulse_n(xb, 0, 0, xb.n_max + 10)
    assert np.all(np.diff(g[: xb.n_max]) >= 0)
    assert g[xb.n_max - 1] > g[0]
    assert g[xb.n_max :] == [g[xb.n_max - 1]] * 10  # stays saturated at the end of the table


def test_trace_replay_moves_one_trace_step_per_pulse(reference_trace_path: Path) -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=2, trace=reference_trace_path))
    g0 = float(xb.read_conductances()[3, 1])
    g = np.array(pulse_n(xb, 3, 1, 60))
    table = xb.table
    np.testing.assert_allclose(g - g0, 10.0 * (table[np.minimum(np.arange(1, 61), 50)] - table[0]))


def test_reset_returns_device_to_its_initial_state_only() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=3))
    g_start = xb.read_conductances()
    xb.pulse_many([Pulse(0, 0, *SET), Pulse(0, 0, *SET), Pulse(2, 3, *SET)])
    xb.reset(0, 0)
    g = xb.read_conductances()
    assert g[0, 0] == g_start[0, 0] and xb.position[0, 0] == 0
    assert g[2, 3] > g_start[2, 3]  # the other device keeps its state


def test_sub_threshold_and_short_negative_pulses_change_nothing() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=3))
    xb.pulse(0, 0, *SET)
    before = xb.read_conductances()
    xb.pulse_many([Pulse(0, 0, 0.5, 1e-3), Pulse(0, 0, -2.0, 1e-3), Pulse(0, 0, -0.5, 1.0)])
    np.testing.assert_array_equal(xb.read_conductances(), before)


def test_depression_when_enabled_steps_back_down() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=3, depression=True))
    assert xb.info.supports_depression
    g0 = xb.read_conductances()[1, 1]
    xb.pulse_many([Pulse(1, 1, *SET)] * 2)
    g2 = xb.read_conductances()[1, 1]
    xb.pulse(1, 1, -2.0, 1e-3)
    assert g0 < xb.read_conductances()[1, 1] < g2
    # The mirrored Lim law takes small steps near the bottom: well under the first rise.
    assert g2 - xb.read_conductances()[1, 1] < 0.5 * (g2 - g0)


def test_shifts_are_rescaled_into_the_reference_range() -> None:
    for seed in range(20):
        s = EmulatedCrossbar(EmulatorConfig(seed=seed)).shifts_siemens
        assert s.min() == pytest.approx(1e-8) and s.max() == pytest.approx(1e-7)
        assert np.unique(s).size == 16


def test_shift_distribution_parameters_are_configurable() -> None:
    dist = ShiftDistribution(low_siemens=2e-8, high_siemens=3e-8)
    s = EmulatedCrossbar(EmulatorConfig(shifts=dist)).shifts_siemens
    assert s.min() == pytest.approx(2e-8) and s.max() == pytest.approx(3e-8)
    with pytest.raises(ValueError, match="high_siemens"):
        ShiftDistribution(low_siemens=1e-7, high_siemens=1e-8)


def test_same_seed_same_crossbar_different_seed_different() -> None:
    a, b, c = (EmulatedCrossbar(EmulatorConfig(seed=s, step_noise=0.3)) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.shifts_siemens, b.shifts_siemens)
    assert not np.array_equal(a.shifts_siemens, c.shifts_siemens)
    for xb in (a, b):
        xb.pulse_many([Pulse(j, k, *SET) for j in range(4) for k in range(4)] * 3)
    np.testing.assert_array_equal(a.read_conductances(), b.read_conductances())


def test_noise_does_not_change_the_shifts_of_a_seed() -> None:
    quiet = EmulatedCrossbar(EmulatorConfig(seed=9))
    noisy = EmulatedCrossbar(EmulatorConfig(seed=9, read_noise=0.05, step_noise=0.2))
    np.testing.assert_array_equal(quiet.shifts_siemens, noisy.shifts_siemens)


def test_read_noise_perturbs_reads_not_the_state() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=1, read_noise=0.02))
    true = xb.conductances()
    reads = np.array([xb.read_conductances() for _ in range(200)])
    assert not np.array_equal(reads[0], reads[1])
    np.testing.assert_allclose(reads.mean(axis=0), true, rtol=0.01)
    np.testing.assert_allclose((reads / true).std(axis=0), 0.02, rtol=0.25)
    np.testing.assert_array_equal(xb.conductances(), true)


def test_step_noise_varies_steps_around_the_table() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=1, step_noise=0.5))
    clean = EmulatedCrossbar(EmulatorConfig(seed=1))
    for b in (xb, clean):
        b.pulse_many([Pulse(j, k, *SET) for j in range(4) for k in range(4)])
    d = xb.conductances() - clean.conductances()
    assert np.all(d != 0) and np.abs(d).max() < 0.5 * 10 * (xb.table[1] - xb.table[0]) * 4


def test_stuck_devices_never_move() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=2, stuck_fraction=0.5))
    assert 0 < xb.stuck.sum() < 16
    before = xb.read_conductances()
    xb.pulse_many([Pulse(j, k, *SET) for j in range(4) for k in range(4)])
    after = xb.read_conductances()
    np.testing.assert_array_equal(after[xb.stuck], before[xb.stuck])
    assert np.all(after[~xb.stuck] > before[~xb.stuck])


def test_vmm_is_ohm_and_kirchhoff() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=8))
    v = np.array([0.1, -0.1, 0.05, 0.0])
    np.testing.assert_allclose(xb.apply(v), v @ xb.read_conductances(), rtol=1e-12)


@pytest.mark.parametrize(
    ("pulse", "field"),
    [
        (Pulse(4, 0, 2.0, 1e-3), "row"),
        (Pulse(0, -1, 2.0, 1e-3), "col"),
        (Pulse(0, 0, 3.0, 1e-3), "amplitude_v"),
        (Pulse(0, 0, 2.0, 5.0), "width_s"),
        (Pulse(0, 0, float("nan"), 1e-3), "amplitude_v"),
    ],
)
def test_out_of_range_batch_is_rejected_whole(pulse: Pulse, field: str) -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=1))
    with pytest.raises(LimitError, match=field) as info:
        xb.pulse_many([Pulse(1, 1, *SET), pulse])
    assert "pulses[1]" in info.value.field
    assert xb.position.sum() == 0  # the good pulse before it was not applied either


def test_read_voltage_limits() -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=1))
    with pytest.raises(LimitError, match=r"read_v=1\.0 V is out of range: allowed \[-0\.2, 0\.2\] V"):
        xb.read_conductances(1.0)
    with pytest.raises(LimitError, match=r"voltages\[2\]"):
        xb.apply([0.1, 0.1, 0.5, 0.1])
    with pytest.raises(LimitError, match="shape"):
        xb.apply([0.1, 0.1])


def test_parametric_models_can_be_replayed() -> None:
    exp = ExponentialDevice(g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=1e-8, beta_nl=3.0, n_max=20)
    ltp = LtpLtdDevice(g_min_siemens=1e-7, g_max_siemens=2e-7, a_p=10.0, bits=4)
    for dev, n in ((exp, 20), (ltp, 15)):
        xb = EmulatedCrossbar(EmulatorConfig(device=dev, seed=0))
        assert xb.n_max == n
        assert xb.info.identity.endswith(f"{dev.kind},seed=0")


def test_trace_and_device_are_exclusive(tmp_path: Path) -> None:
    dev = ExponentialDevice(g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=1e-8, beta_nl=3.0)
    with pytest.raises(ValueError, match="either trace or device"):
        EmulatorConfig(trace=tmp_path / "x.dat", device=dev)


def test_closing_aborts_and_refuses_further_use() -> None:
    xb = EmulatedCrossbar()
    with xb:
        xb.pulse(0, 0, *SET)
    assert xb.aborts == 1 and xb.closed
    with pytest.raises(BackendClosed, match="closed"):
        xb.pulse(0, 0, *SET)


@pytest.mark.parametrize("config", [{}, {"stuck_fraction": 0.3}, {"step_noise": 0.2}])
def test_a_batch_equals_the_same_pulses_one_by_one(config: dict) -> None:
    rng = np.random.default_rng(11)
    pulses = [Pulse(int(r), int(c), *SET) for r, c in rng.integers(0, 4, size=(120, 2))]
    pulses.insert(60, Pulse(2, 2, -2.0, 1.0))  # a reset in the middle of a batch
    short = ExponentialDevice(
        g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=3e-8, beta_nl=2.0, n_max=6
    )
    batch, single = (EmulatedCrossbar(EmulatorConfig(seed=3, device=short, **config)) for _ in range(2))
    batch.pulse_many(pulses[:60])
    batch.pulse_many(pulses[60:])
    batch.pulse_many(pulses[:30])
    for p in pulses + pulses[:30]:
        single.pulse(*p)
    assert batch.position.max() == 6  # saturation is exercised
    np.testing.assert_array_equal(batch.position, single.position)
    np.testing.assert_array_equal(batch.read_conductances(), single.read_conductances())


@pytest.mark.parametrize("trace", [False, True])
def test_the_device_curve_is_what_each_pulse_gains_from_reset(
    trace: bool, reference_trace_path: Path
) -> None:
    xb = EmulatedCrossbar(EmulatorConfig(seed=5, trace=reference_trace_path if trace else None))
    curve = xb.device_curve_siemens()
    xb.reset(1, 2)
    start = xb.conductances()[1, 2]
    gained = [0.0]
    for _ in range(len(curve) - 1):
        xb.pulse(1, 2, 2.0, 1e-3)
        gained.append(xb.conductances()[1, 2] - start)
    np.testing.assert_allclose(gained, curve, rtol=1e-9, atol=1e-18)
    assert curve[0] == 0 and curve[-1] > 0
