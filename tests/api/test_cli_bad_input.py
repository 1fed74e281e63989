"""Bad input, tried as a new user would: one line that names the cause and the fix, the
documented exit status (2 bad input, 3 instrument unreachable), never a traceback, and
nothing sent to the instrument. Through the real CLI."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossbar_hil.emulator.instrument.server import InstrumentServer
from crossbar_hil.trace_file import write_dat
from tests.api.conftest import hil

pytestmark = pytest.mark.system


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A TCP port of 127.0.0.1 on which nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


def one_line(done: object) -> str:
    """The single stderr line of a finished ``hil`` (fails on a traceback or several lines)."""
    lines = done.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, done.stderr  # type: ignore[attr-defined]
    return lines[0]


# ------------------------------------------------------------------ 5. connections
@pytest.mark.parametrize(
    ("option", "address", "status", "message"),
    [
        ("--resource", "TCPIP::127.0.0.1::{port}::SOCKET", 3, "nothing is listening on 127.0.0.1:{port}"),
        ("--port", "socket://127.0.0.1:{port}", 3, "nothing is listening on 127.0.0.1:{port}"),
        ("--resource", "TCPIP::nohost.invalid::5025::SOCKET", 3, "host 'nohost.invalid' does not resolve"),
        ("--resource", "TCPIP::127.0.0.1::99999::SOCKET", 2, "port 99999 is out of range: allowed 1..65535"),
        ("--resource", "foo", 2, "resource='foo': not a VISA resource string; expected e.g. TCPIP::"),
        ("--resource", "TCPIP::127.0.0.1::5025", 2, "write TCPIP::127.0.0.1::5025::SOCKET"),
        ("--port", "/dev/no-such-port", 3, "there is no port /dev/no-such-port"),
        ("--port", "socket://nohost.invalid:5025", 3, "host 'nohost.invalid' does not resolve"),
        ("--port", "socket://127.0.0.1:99999", 2, "expected socket://HOST:PORT with a port in 1..65535"),
    ],
)
def test_a_connection_error_is_one_line_with_cause_and_fix(
    closed_port: int, option: str, address: str, status: int, message: str
) -> None:
    done = hil("train", "-q", option, address.format(port=closed_port))
    assert done.returncode == status
    assert message.format(port=closed_port) in one_line(done)


def test_an_instrument_in_use_is_told_apart_from_nothing_listening(instrument: InstrumentServer) -> None:
    first = socket.create_connection(instrument.address)  # another client holds the instrument
    try:
        done = hil("train", "-q", "--resource", instrument.resource_string)
    finally:
        first.close()
    assert done.returncode == 3
    line = one_line(done)
    assert "in use by another client" in line and "nothing is listening" not in line


# ------------------------------------------------------------------ 6. options for another backend
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--backend", "visa", "--resource", "TCPIP::h::1::SOCKET", "--seed", "3"],
            "--seed describes the emulator",
        ),
        (
            ["--resource", "TCPIP::h::1::SOCKET", "--trace", "x.dat", "--k", "2"],
            "--trace, --k describe the emulator",
        ),
        (["--port", "/dev/ttyUSB0", "--builtin"], "--builtin describes the emulator"),
        (
            ["--backend", "serial", "--resource", "TCPIP::h::1::SOCKET"],
            "--resource belongs to --backend visa",
        ),
        (["--port", "/dev/ttyUSB0", "--resource", "TCPIP::h::1::SOCKET"], "name two backends"),
    ],
)
def test_an_option_of_another_backend_is_refused_not_ignored(argv: list[str], message: str) -> None:
    done = hil("train", "-q", *argv)
    assert done.returncode == 2 and message in one_line(done)


def test_a_resource_implies_the_visa_backend(instrument: InstrumentServer, tmp_path: Path) -> None:
    done = hil(
        "train",
        "-q",
        "--resource",
        instrument.resource_string,
        "--max-epochs",
        "1",
        "--json",
        "r.json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r.json").read_text())["config"]["backend"]["name"] == "visa"
    assert instrument.command_counts()["PULS:LIST"] >= 1


def test_a_port_implies_the_serial_backend(instrument: InstrumentServer) -> None:
    done = hil("train", "-q", "--port", instrument.serial_url, "--max-epochs", "1")
    assert done.returncode == 0, done.stderr
    assert f"backend: {instrument.crossbar.info.identity}" in done.stdout


# ------------------------------------------------------------------ 7. inputs that got through
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--beta", "inf"], "training.beta=inf: Input should be a finite number"),
        (["--beta", "1e400"], "training.beta=inf: Input should be a finite number"),
        (["--beta", "nan"], "training.beta=nan: Input should be a finite number"),
        (["--k", "inf"], "scale_k=inf: Input should be a finite number"),
        (["--f-plus", "nan"], "training.f_plus=nan: Input should be a finite number"),
    ],
)
def test_inf_and_nan_are_refused(argv: list[str], message: str) -> None:
    done = hil("train", "-q", "--builtin", *argv)
    assert done.returncode == 2 and message in one_line(done)


def test_config_files_that_are_not_a_run_config(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text('{"training": {"beta": 2e7,}}')
    (tmp_path / "odd.json").write_text('{"backend": "visa"}')
    (tmp_path / "adir").mkdir()
    cases = {
        "list.json": "--config file list.json: expected a JSON object {...}, got a JSON list",
        "broken.json": "--config file broken.json: not valid JSON at line 1, column 27",
        "odd.json": "--config odd.json: 'backend' must be a JSON object, got 'visa'",
        "adir": "--config file adir is a directory; expected a JSON file",
        "missing.json": "--config file not found: missing.json",
    }
    for name, message in cases.items():
        done = hil("train", "-q", "--builtin", "--config", name, cwd=tmp_path)
        assert done.returncode == 2 and message in one_line(done), name


def test_the_json_result_of_a_run_is_accepted_as_its_config(tmp_path: Path) -> None:
    first = hil(
        "train", "-q", "--builtin", "--beta", "2e7", "--max-epochs", "3", "--json", "run.json", cwd=tmp_path
    )
    assert first.returncode == 0
    again = hil("train", "-q", "--config", "run.json", "--json", "again.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "--config run.json is a run result; using the config it ran with" in again.stderr
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("run.json", "again.json"))
    assert a["config"] == b["config"] and a["history"] == b["history"]


def test_task_files_that_cannot_be_used_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "syntax.json").write_text(
        '{\n  "train": [\n    {"pattern": "01", "target": "1"}\n  ]\n  "x": 1\n}'
    )
    (tmp_path / "bits.json").write_text('{"train": [{"pattern": "0a", "target": "1"}]}')
    cases = {
        "tasks": "task file tasks is a directory; expected a JSON file",
        "syntax.json": "task file syntax.json: not valid JSON at line 5, column 3",
    }
    for name, message in cases.items():
        done = hil("train", "-q", "--builtin", "--task", name, cwd=tmp_path)
        assert done.returncode == 2 and message in one_line(done), name
    done = hil("train", "-q", "--builtin", "--task", "bits.json", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("hil train: task file bits.json: invalid configuration:")
    assert "train.0.pattern='0a': expected a non-empty string of 0 and 1" in done.stderr


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("5.0,5.000000E-2,2.5E-8,-5.000000E-2,-2.1E-8,1.99E-6", ":14: implausible resistance 1.99e-06 Ohm"),
        (
            "5.0,5.000000E-2,abc,-5.000000E-2,-2.1E-8,2.2E6",
            ":14: expected a number, the current (A) in column 3",
        ),
    ],
)
def test_an_implausible_trace_is_refused_naming_the_line(tmp_path: Path, row: str, message: str) -> None:
    from crossbar_hil.trace_file import PulseProtocol, Trace

    protocol = PulseProtocol(n_pulses=3, reset_v=-2, reset_width_s=1, read_v=0.05, on_v=2, on_width_s=1e-3)
    path = write_dat(tmp_path / "dev.dat", Trace([4.5e-7, 4.9e-7, 5.0e-7, 5.1e-7], protocol))
    lines = path.read_text().splitlines()
    lines[13] = row  # the first read row
    path.write_text("\n".join(lines) + "\n")
    done = hil("train", "-q", "--trace", str(path))
    assert done.returncode == 2
    assert str(path) + message in one_line(done)
