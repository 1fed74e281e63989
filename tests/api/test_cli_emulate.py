"""``hil emulate`` refuses bad options with the field and the allowed range, before serving."""

from __future__ import annotations

import pytest

from crossbar_hil.api.cli import main

pytestmark = pytest.mark.system


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--reply-delay", "-1"], "reply_delay_s=-1.0: Input should be greater than or equal to 0"),
        (["--seed", "-1"], "seed=-1: Input should be greater than or equal to 0"),
        (["--k", "0"], "scale_k=0.0: Input should be greater than 0"),
        (["--trace", "/no/such.dat"], "trace file not found: /no/such.dat"),
    ],
)
def test_bad_options_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_port_in_use_exits_3_with_one_line_saying_so() -> None:
    import socket

    from tests.api.conftest import hil

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = hil("emulate", "--builtin", "--tcp", f"127.0.0.1:{port}", timeout=30)
    assert done.returncode == 3
    (line,) = done.stderr.strip().splitlines()
    assert line == (
        f"hil emulate: 127.0.0.1:{port} is in use (another `hil emulate` or server?): "
        "choose another port, e.g. --tcp 127.0.0.1:0"
    )


@pytest.mark.parametrize("signals", [["SIGTERM"], ["SIGHUP"], ["SIGTERM"] * 50])
def test_sigterm_or_sighup_ends_serving_cleanly_also_many_at_once(signals: list[str]) -> None:
    import signal
    import subprocess
    import sys
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-m", "crossbar_hil.api", "emulate", "--builtin", "--tcp", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(60, proc.kill)  # An emulator that never says it serves, killed.
    guard.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Serving"):
                break
        guard.cancel()
        for name in signals:
            proc.send_signal(getattr(signal, name))
        out, err = proc.communicate(timeout=60)
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped after 0 commands" in out and "Traceback" not in err
