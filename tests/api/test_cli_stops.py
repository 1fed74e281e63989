"""Every run ends safely and keeps what it measured: output paths checked before the first
pulse, results written before the plots, and SIGINT, SIGTERM and SIGHUP all stopping a run
the same safe way, with exit status 4. Through the real CLI and a real instrument over TCP."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.server import InstrumentServer
from crossbar_hil.trace_file import load_trace
from tests.api.conftest import Running, hil, over_visa

pytestmark = pytest.mark.system

STOPPED = 4


# ------------------------------------------------------------------ 1. output paths
@pytest.mark.parametrize(
    ("option", "target", "message"),
    [
        ("--json", "nope/dir/run.json", "directory nope/dir does not exist"),
        ("--json", ".", "--json . is a directory; give a file name"),
        ("--plots", "a-file", "--plots a-file exists and is not a directory"),
    ],
)
def test_train_refuses_an_unwritable_output_before_the_first_command(
    instrument: InstrumentServer, tmp_path: Path, option: str, target: str, message: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    done = hil("train", "-q", *over_visa(instrument), option, target, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("hil train: ") and message in line
    assert instrument.commands == []  # not even the handshake


def test_characterize_refuses_an_unwritable_output_before_the_first_command(
    instrument: InstrumentServer, tmp_path: Path
) -> None:
    done = hil("characterize", "-q", *over_visa(instrument), "-o", "nope/x.dat", cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "directory nope does not exist" in done.stderr
    assert instrument.commands == []


def test_results_are_written_before_the_plots_and_kept_when_plotting_is_stopped(tmp_path: Path) -> None:
    run = Running(
        "train",
        "-q",
        "--builtin",
        "--preset",
        "reference",
        "--max-epochs",
        "3",
        "--json",
        "run.json",
        "--plots",
        "p",
        cwd=tmp_path,
    )
    run.wait_for(r"^results: run.json, run.csv")  # written before the plots
    run.wait_for(r"^plotting into p \.\.\.")
    run.proc.send_signal(signal.SIGTERM)  # while plotting (matplotlib takes a while to start)
    assert run.finish() == STOPPED
    assert "stopped by SIGTERM while plotting" in run.err and "the results are kept" in run.err
    result = json.loads((tmp_path / "run.json").read_text())
    assert result["outcome"] == "max_epochs" and len(result["history"]) == 4
    assert (tmp_path / "run.csv").read_text().count("\n") == 1 + 4
    assert not list(tmp_path.glob(".run.json.*"))  # no temporary file left behind


# ------------------------------------------------------------------ 2. signals
def long_run(instrument: InstrumentServer) -> tuple[str, ...]:
    """``hil train`` arguments of a run that goes on until stopped, its result in run.json."""
    until_stopped = ("--preset", "reference", "--max-epochs", "5000", "--patience", "0")
    return ("train", *over_visa(instrument), *until_stopped, "--json", "run.json")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_training_before_the_next_pulse_at_0_v_with_the_results(
    instrument: InstrumentServer, tmp_path: Path, signum: int
) -> None:
    run = Running(*long_run(instrument), cwd=tmp_path)
    run.wait_for(r"epoch +3/5000")
    run.proc.send_signal(signum)
    assert run.finish() == STOPPED
    names = instrument.command_names()
    last_pulse = max(i for i, n in enumerate(names) if n == "PULS:LIST")
    assert "ABOR" in names[last_pulse:]  # 0 V after the last pulse
    result = json.loads((tmp_path / "run.json").read_text())
    assert result["outcome"] == "stopped" and "stopped by" in result["error_message"]
    assert result["epochs"] >= 3 and len(result["history"]) == result["epochs"] + 1
    assert "STOPPED at epoch" in run.out  # the summary


def test_a_signal_during_the_handshake_exits_4_without_a_pulse(
    instrument: InstrumentServer, tmp_path: Path
) -> None:
    instrument.faults = FaultPlan(reply_delay_s=0.5)
    run = Running("train", "-q", *over_visa(instrument), "--json", "run.json", cwd=tmp_path)
    deadline = time.monotonic() + 30
    while instrument.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish() == STOPPED
    assert "stopped by SIGTERM while connecting to the instrument" in run.err
    assert not {"PULS:LIST", "RST:DEV", "PULS"} & set(instrument.command_names())


def test_a_second_ctrl_c_during_a_slow_stop_says_what_it_waits_for(
    instrument: InstrumentServer, tmp_path: Path
) -> None:
    run = Running(*long_run(instrument), cwd=tmp_path)
    run.wait_for(r"epoch +2/5000")
    instrument.faults = FaultPlan(reply_delay_s=1.0)  # every reply now takes a second
    time.sleep(0.3)
    run.proc.send_signal(signal.SIGINT)
    run.wait_for(r"Ctrl-C: stopping before the next pulse")
    run.proc.send_signal(signal.SIGINT)
    line = run.wait_for(r"Ctrl-C again: interrupting")
    assert "still waiting for the instrument's reply to" in line and "then ABOR (outputs to 0 V)" in line
    assert run.finish() == STOPPED
    assert "ABOR" in instrument.command_names()[-3:]
    assert "interrupted by a second Ctrl-C" in run.err and "STOPPED at epoch" in run.out
    result = json.loads((tmp_path / "run.json").read_text())  # the results are kept
    assert result["outcome"] == "stopped" and len(result["history"]) >= 3


def test_an_interrupted_characterization_keeps_a_partial_trace(
    instrument: InstrumentServer, tmp_path: Path
) -> None:
    args = ("characterize", *over_visa(instrument), "--pulses", "5000", "-o", "dev.dat")
    run = Running(*args, cwd=tmp_path)
    run.wait_for(r"pulse +5/5000")
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish() == STOPPED
    trace = load_trace(tmp_path / "dev.dat")
    assert trace.partial and trace.protocol is not None and trace.protocol.pulses_requested == 5000
    assert 5 <= trace.n_pulses < 5000
    assert "PARTIAL trace" in run.out and "stopped after" in run.err
    assert instrument.command_names()[-1] == "ABOR"


def test_a_fault_part_way_through_a_characterization_keeps_the_partial_trace(
    instrument: InstrumentServer, tmp_path: Path
) -> None:
    instrument.faults = FaultPlan(drop_after=40)  # the link drops at the 40th command
    done = hil("characterize", "-q", *over_visa(instrument), "--pulses", "100", "-o", "dev.dat", cwd=tmp_path)
    assert done.returncode == 3
    trace = load_trace(tmp_path / "dev.dat")
    assert trace.partial and 5 < trace.n_pulses < 100
    assert "ConnectionLost after" in done.stderr and "PARTIAL trace" in done.stdout
