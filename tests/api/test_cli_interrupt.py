"""A second Ctrl-C gets through `hil train`, even while a reply is on its way (issue 11), and
ends it like every stop: exit status 4 (issue 7)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.testing import running_server

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_ctrl_c_ends_hil_train_while_it_waits_for_a_reply() -> None:
    with running_server(faults=FaultPlan(reply_delay_s=0.5)) as server:
        command = [
            sys.executable, "-m", "crossbar_hil.api", "train", "--backend", "visa",
            "--resource", server.resource_string, "--param", "timeout_s=600", "-q",
        ]  # fmt: skip
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert server.wait_for_commands(6, timeout_s=30)  # the handshake done, a read sent
            child.send_signal(signal.SIGINT)  # first: stop before the next pulse
            assert child.stderr is not None
            said = ""
            while "stopping before the next pulse" not in said:  # Heard (two at once would be one).
                line = child.stderr.readline()
                assert line, f"hil train ended before it said it heard Ctrl-C: {said}"
                said += line
            start = time.monotonic()
            child.send_signal(signal.SIGINT)  # second: out now
            _, rest = child.communicate(timeout=300)
            err = said + rest
            elapsed = time.monotonic() - start
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 4, err  # stopped (README: exit status)
        assert "interrupted" in err
        assert "ABOR" in server.command_counts()  # closed at 0 V on the way out
    assert elapsed < 300  # the owed reply and the ABOR's (0.5 s each), never the 600 s timeout
