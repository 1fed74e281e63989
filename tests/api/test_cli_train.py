"""``hil train`` from the command line: runs, writes JSON, refuses bad input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main


def test_train_writes_a_json_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    rc = main(["train", "--builtin", "--seed", "0", "--beta", "3e7", "--json", str(out), "-q"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["outcome"] == "converged" and data["config"]["training"]["beta"] == 3e7
    assert data["config"]["backend"]["params"] == {"seed": 0}
    assert "CONVERGED after" in capsys.readouterr().out


def test_progress_and_summary_on_a_run_that_does_not_converge(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(["train", "--builtin", "--seed", "0", "--max-epochs", "3"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "NOT converged after 3 epochs" in captured.out
    assert "test:" in captured.out
    assert captured.err.count("epoch") == 4  # one progress line per epoch (not a terminal)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--beta", "-1"], "training.beta=-1.0: Input should be greater than 0"),
        (["--f-plus", "1.5"], "training.f_plus=1.5: Input should be less than 1"),
        (["--max-epochs", "-3"], "training.max_epochs=-3"),
        (["--trace", "/no/such/trace.dat"], "trace file not found: /no/such/trace.dat"),
        (["--backend", "nope"], "backend 'nope' is not registered"),
        (["--param", "seed"], "--param expects KEY=VALUE"),
        (["--param", "scale_k=-2"], "scale_k"),
    ],
)
def test_bad_input_exits_2_naming_the_field(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "-q", *argv]) == 2
    assert message in capsys.readouterr().err


def test_trace_from_environment(
    reference_trace_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HIL_TRACE", str(reference_trace_path))
    assert main(["train", "-q", "--max-epochs", "1"]) == 0
    assert "EmulatedCrossbar,trace,seed=0" in capsys.readouterr().out


def test_an_unreachable_instrument_exits_3_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port on which nothing listens once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = main(["train", "-q", "--backend", "visa", "--resource", f"TCPIP::127.0.0.1::{port}::SOCKET"])
    assert rc == 3
    assert "cannot connect to 'visa' backend: ConnectionLost" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"training": {"pulse_v": 3.0}}, "training pulse.amplitude_v=3.0 V is out of range"),
        (
            {"task": {"train": [{"pattern": "01010", "target": "1"}]}},
            "task has 5 inputs but the crossbar has 4 rows",
        ),
    ],
)
def test_a_run_that_does_not_fit_the_backend_exits_2_before_any_pulse(
    tmp_path: Path, config: dict, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "run.json"
    f.write_text(json.dumps(config))
    assert main(["train", "-q", "--builtin", "--config", str(f)]) == 2
    assert message in capsys.readouterr().err
