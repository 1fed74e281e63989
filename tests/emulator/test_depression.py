"""Depression curves of every device model, and how an emulated crossbar depresses along them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.depression import depressed, position_at_or_below, potentiated
from crossbar_hil.emulator.devices import ExponentialDevice, LtpLtdDevice
from crossbar_hil.seam import Pulse

SET = (2.0, 1e-3)
DEPRESS = (-2.0, 1e-3)


def test_a_depressing_pulse_moves_one_pulse_down_the_curve_from_the_present_conductance() -> None:
    down = np.array([3.0, 2.0, 1.0, 0.0])  # linear: 1 S per pulse
    np.testing.assert_allclose(depressed(np.array([2.5, 1.0, 0.0]), down), [1.5, 0.0, 0.0])
    assert depressed(3.5, down) == 2.0  # above the top: starts from the top
    assert depressed(2.0, down, factor=0.5) == 1.5  # cycle-to-cycle noise scales the step


def test_the_next_potentiation_continues_from_the_level_at_or_below() -> None:
    up = np.array([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(position_at_or_below(np.array([1.5, 2.0, -1.0, 5.0]), up), [1, 2, 0, 3])
    # A measured trace need not be monotone: its running maximum is used.
    assert position_at_or_below(1.5, np.array([0.0, 2.0, 1.0, 3.0])) == 0


def test_huang_ltd_branch_falls_from_gmax_to_gmin_with_big_steps_first() -> None:
    dev = LtpLtdDevice(g_min_siemens=1e-7, g_max_siemens=3e-7, a_p=5.0, a_d=3.0, bits=5)
    d = dev.depression_table()
    assert d.size == 2**5
    assert d[0] == pytest.approx(3e-7) and d[-1] == pytest.approx(1e-7)
    steps = -np.diff(d)
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0)
    # B_d (1 - exp(-1/A_d)) with B_d = 2e-7 / (1 - exp(-31/3)): the first step by hand.
    assert steps[0] == pytest.approx(2e-7 / (1 - np.exp(-31 / 3)) * (1 - np.exp(-1 / 3)))
    # Without a_d the LTD branch mirrors the LTP one.
    same = LtpLtdDevice(g_min_siemens=1e-7, g_max_siemens=3e-7, a_p=5.0, bits=5)
    np.testing.assert_allclose(same.depression_table(), 4e-7 - same.table())


def test_lim_model_depresses_with_the_same_law_mirrored() -> None:
    dev = ExponentialDevice(g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=1e-8, beta_nl=3.0, n_max=30)
    np.testing.assert_allclose(dev.depression_table(), 3e-7 - dev.table())
    d = ExponentialDevice(
        g_min_siemens=1e-7,
        g_max_siemens=2e-7,
        alpha_siemens=1e-8,
        beta_nl=3.0,
        alpha_d_siemens=2e-8,
        beta_nl_d=0.0,
    ).depression_table()
    np.testing.assert_allclose(d[:6], 2e-7 - 2e-8 * np.arange(6))  # linear, 2e-8 per pulse, to Gmin


def test_a_trace_without_a_depression_trace_cannot_depress(tmp_path: Path) -> None:
    up = tmp_path / "up.csv"
    up.write_text("\n".join(str(g) for g in [1e-7, 1.5e-7, 1.8e-7, 2e-7]))
    with pytest.raises(ValueError, match="depression_trace"):
        EmulatorConfig(trace=up, depression=True)
    assert not EmulatedCrossbar(EmulatorConfig(trace=up)).info.supports_depression


def test_a_trace_device_depresses_along_its_depression_trace(tmp_path: Path) -> None:
    up, down = tmp_path / "up.csv", tmp_path / "down.csv"
    up.write_text("\n".join(str(g) for g in [1e-7, 1.5e-7, 1.8e-7, 2e-7]))
    down.write_text("\n".join(str(g) for g in [2e-7, 1.9e-7, 1.6e-7, 1e-7]))
    xb = EmulatedCrossbar(EmulatorConfig(trace=up, depression_trace=down, depression=True, seed=1))
    g0 = xb.conductances()[0, 0]
    xb.pulse_many([Pulse(0, 0, *SET)] * 3)  # at the top: 2e-7 on the trace
    xb.pulse(0, 0, *DEPRESS)  # 1.9e-7
    assert xb.conductances()[0, 0] - g0 == pytest.approx(10 * (1.9e-7 - 1e-7))
    xb.pulse(0, 0, *DEPRESS)  # 1.6e-7: position 1 (1.5e-7) is the level at or below
    assert xb.conductances()[0, 0] - g0 == pytest.approx(10 * (1.6e-7 - 1e-7))
    xb.pulse(0, 0, *SET)  # back up to position 2 of the potentiation trace
    assert xb.conductances()[0, 0] - g0 == pytest.approx(10 * (1.8e-7 - 1e-7))


def test_stuck_devices_do_not_depress_and_step_noise_applies() -> None:
    cfg = EmulatorConfig(seed=4, depression=True, stuck_fraction=0.3)
    xb = EmulatedCrossbar(cfg)
    stuck = np.argwhere(xb.stuck)[0]
    before = xb.conductances()[tuple(stuck)]
    xb.pulse(*map(int, stuck), *DEPRESS)
    assert xb.conductances()[tuple(stuck)] == before
    quiet = EmulatedCrossbar(EmulatorConfig(seed=4, depression=True))
    noisy = EmulatedCrossbar(EmulatorConfig(seed=4, depression=True, step_noise=0.5))
    for xb in (quiet, noisy):
        xb.pulse_many([Pulse(0, 0, *SET)] * 10 + [Pulse(0, 0, *DEPRESS)])
    assert noisy.conductances()[0, 0] != quiet.conductances()[0, 0]


def test_gaussian_range_scale_multiplies_each_devices_range_and_leaves_the_shifts() -> None:
    plain = EmulatedCrossbar(EmulatorConfig(seed=5))
    scaled = EmulatedCrossbar(EmulatorConfig(seed=5, range_sigma=0.2))
    assert plain.range_scale is None
    np.testing.assert_array_equal(scaled.shifts_siemens, plain.shifts_siemens)
    s = scaled.range_scale
    assert s is not None and s.shape == (4, 4) and np.unique(s).size == 16 and np.all(s >= 0)
    for xb in (plain, scaled):
        xb.pulse_many([Pulse(j, k, *SET) for j in range(4) for k in range(4)] * 3)
    rise_plain = plain.conductances() - 10 * plain.shifts_siemens
    rise_scaled = scaled.conductances() - 10 * scaled.shifts_siemens
    np.testing.assert_allclose(rise_scaled, s * rise_plain)
    # Sigma is the sd of the scale: over many seeds, the scales have that spread.
    many = np.concatenate(
        [EmulatedCrossbar(EmulatorConfig(seed=k, range_sigma=0.2)).range_scale.ravel() for k in range(50)]
    )
    assert many.mean() == pytest.approx(1.0, abs=0.03) and many.std() == pytest.approx(0.2, abs=0.03)


def _models(tmp_path: Path) -> dict[str, dict[str, object]]:
    up, down = tmp_path / "up.csv", tmp_path / "down.csv"
    up.write_text("\n".join(str(g) for g in np.linspace(1e-7, 2e-7, 12)))
    down.write_text("\n".join(str(g) for g in np.linspace(2e-7, 1e-7, 12)))
    return {
        "trace": {"trace": up, "depression_trace": down},
        "exponential": {
            "device": ExponentialDevice(
                g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=1e-8, beta_nl=2.0
            )
        },
        "ltp_ltd": {"device": LtpLtdDevice(g_min_siemens=1e-7, g_max_siemens=2e-7, a_p=4.0, a_d=2.0, bits=4)},
    }


@pytest.mark.parametrize("kind", ["trace", "exponential", "ltp_ltd"])
def test_every_model_resets_depresses_takes_noise_and_has_stuck_devices(tmp_path: Path, kind: str) -> None:
    params = _models(tmp_path)[kind]
    quiet = EmulatedCrossbar(EmulatorConfig(seed=6, depression=True, **params))
    noisy = EmulatedCrossbar(EmulatorConfig(seed=6, depression=True, step_noise=0.4, **params))
    start = quiet.conductances().copy()
    ops = [Pulse(0, 0, *SET)] * 5 + [Pulse(0, 0, *DEPRESS)] * 2
    for xb in (quiet, noisy):
        xb.pulse_many(ops)
    assert start[0, 0] < quiet.conductances()[0, 0]
    assert noisy.conductances()[0, 0] != quiet.conductances()[0, 0]  # cycle-to-cycle noise
    for xb in (quiet, noisy):
        xb.reset(0, 0)  # the reset semantics: back to the state after reset, exactly
        assert xb.conductances()[0, 0] == start[0, 0] and xb.position[0, 0] == 0
    stuck = EmulatedCrossbar(EmulatorConfig(seed=6, depression=True, stuck_fraction=1.0, **params))
    before = stuck.conductances().copy()
    stuck.pulse_many(ops)
    stuck.reset(0, 0)
    np.testing.assert_array_equal(stuck.conductances(), before)


def test_conductance_wise_potentiation_is_the_next_position_from_a_table_value_and_stops_at_the_top() -> None:
    up = np.array([1.0, 3.0, 4.0, 4.5])
    np.testing.assert_allclose(potentiated(np.array([1.0, 3.0, 4.0, 4.5]), up), [3.0, 4.0, 4.5, 4.5])
    # Between positions 0 and 1 (a quarter of the way): one pulse on, a quarter between 1 and 2.
    assert potentiated(1.5, up) == pytest.approx(3.25)
