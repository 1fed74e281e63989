"""``hil characterize``: a trace recorded through a driver replays in the emulator as served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossbar_hil.api.cli import main
from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig, ShiftDistribution
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.testing import running_server
from crossbar_hil.trace_file import load_trace

pytestmark = pytest.mark.system

ROW, COL, PULSES = 1, 2, 30


def served_device(xbar: EmulatedCrossbar, n: int) -> np.ndarray:
    """Conductance (S) of device (ROW, COL) of the served crossbar at positions 0..n."""
    k, shift = xbar.config.scale_k, xbar.shifts_siemens[ROW, COL]
    return k * ((xbar.table[: n + 1] - xbar.table[0]) + shift)


def replay(path: Path, n: int) -> np.ndarray:
    """Reset and pulse device (ROW, COL) of an emulator replaying ``path`` with K=1, shift=G(0)."""
    g0 = load_trace(path).conductances_siemens[0]
    xbar = EmulatedCrossbar(
        EmulatorConfig(trace=path, scale_k=1.0, shifts=ShiftDistribution(low_siemens=g0, high_siemens=g0))
    )
    xbar.reset(ROW, COL)
    g = [xbar.read_conductances()[ROW, COL]]
    for _ in range(n):
        xbar.pulse(ROW, COL, 2.0, 1e-3)
        g.append(xbar.read_conductances()[ROW, COL])
    return np.array(g)


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_recorded_trace_replays_as_the_served_device(
    transport: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "device.dat"
    with running_server(EmulatorConfig(seed=11), transport=transport) as server:
        link = (
            ["--backend", "visa", "--resource", server.resource_string]
            if transport == "tcp"
            else ["--backend", "serial", "--port", server.device_path]
        )
        status = main(
            [
                "characterize",
                *link,
                "--param",
                "timeout_s=2",
                "--row",
                str(ROW),
                "--col",
                str(COL),
                "--pulses",
                str(PULSES),
                "--amplitude",
                "2.0",
                "--width",
                "0.001",
                "-o",
                str(out),
            ]
        )
        expected = served_device(server.crossbar, PULSES)
        heads = [c.split(" ")[0] for c in server.commands[5:]]
    assert status == 0
    assert heads == ["RST:DEV", "MEAS:ALL?"] + ["PULS:LIST", "MEAS:ALL?"] * PULSES + ["ABOR"]

    trace = load_trace(out)
    assert trace.n_pulses == PULSES
    assert trace.protocol is not None
    assert (trace.protocol.on_v, trace.protocol.on_width_s, trace.protocol.read_v) == (2.0, 1e-3, 0.05)
    np.testing.assert_allclose(trace.conductances_siemens, expected, rtol=1e-6)
    np.testing.assert_allclose(replay(out, PULSES), trace.conductances_siemens, rtol=1e-12)
    np.testing.assert_allclose(replay(out, PULSES), expected, rtol=1e-6)

    captured = capsys.readouterr()
    assert f"pulse   30/{PULSES}" in captured.err
    assert f"written to {out}" in captured.out


def test_directly_on_the_emulator(tmp_path: Path) -> None:
    out = tmp_path / "emu.dat"
    status = main(
        [
            "characterize",
            "--builtin",
            "--param",
            "seed=5",
            "--row",
            str(ROW),
            "--col",
            str(COL),
            "--pulses",
            "10",
            "-q",
            "-o",
            str(out),
        ]
    )
    assert status == 0
    expected = served_device(EmulatedCrossbar(EmulatorConfig(seed=5)), 10)
    np.testing.assert_allclose(load_trace(out).conductances_siemens, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "bad", [["--amplitude", "3.0"], ["--width", "5"], ["--row", "4"], ["--read-v", "0.5"]]
)
def test_out_of_limits_sends_nothing(
    bad: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.dat"
    with running_server(EmulatorConfig()) as server:
        status = main(
            ["characterize", "--backend", "visa", "--resource", server.resource_string, *bad, "-o", str(out)]
        )
        heads = [c.split(" ")[0] for c in server.commands[5:]]
    assert status == 2
    assert heads == ["ABOR"]  # Only the abort of close(); no reset, no pulse.
    assert "out of range" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("bad", "field"),
    [(["--pulses", "0"], "n_pulses"), (["--width=-1e-3"], "width_s"), (["--col=-1"], "col")],
)
def test_a_setting_outside_its_model_range_is_refused_before_connecting(
    bad: list[str], field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.dat"
    with running_server(EmulatorConfig()) as server:
        status = main(
            ["characterize", "--backend", "visa", "--resource", server.resource_string, *bad, "-o", str(out)]
        )
        sent = list(server.commands)
    assert status == 2
    assert sent == []  # Refused by the settings model: not even the handshake.
    assert field in capsys.readouterr().err
    assert not out.exists()


def test_instrument_fault_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(EmulatorConfig(), faults=FaultPlan(mute_after=10)) as server:
        status = main(
            [
                "characterize",
                "--backend",
                "visa",
                "--resource",
                server.resource_string,
                "--param",
                "timeout_s=0.2",
                "-q",
                "-o",
                str(tmp_path / "x.dat"),
            ]
        )
    assert status == 3
    assert "InstrumentTimeout" in capsys.readouterr().err


def test_bad_backend_params(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["characterize", "--backend", "visa", "-o", str(tmp_path / "x.dat")]) == 2
    assert "resource" in capsys.readouterr().err
