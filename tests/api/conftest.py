"""The real ``hil`` command in a subprocess (``python -m crossbar_hil.api``).

And a real emulated instrument over TCP.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossbar_hil.emulator.crossbar import EmulatorConfig
from crossbar_hil.emulator.instrument.server import InstrumentServer, running_server


def hil_env(**extra: str) -> dict[str, str]:
    """The environment of a ``hil`` subprocess: no HIL_TRACE (the built-in device), Agg plots."""
    env = {k: v for k, v in os.environ.items() if k != "HIL_TRACE"}
    env.update(MPLBACKEND="Agg", PYTHONUNBUFFERED="1", **extra)
    return env


def hil(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``hil ARGS`` to the end; its exit status, stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "crossbar_hil.api", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=hil_env(),
        timeout=timeout,
    )


class Running:
    """``hil ARGS`` started in a subprocess, its output lines read as they come."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crossbar_hil.api", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=hil_env(),
        )
        self.lines: dict[str, list[str]] = {"out": [], "err": []}
        self._new: queue.Queue[tuple[str, str]] = queue.Queue()
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._read, args=(name, stream), daemon=True).start()

    def _read(self, name: str, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines[name].append(line.rstrip("\n"))
            self._new.put((name, line))

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        """The first new output line matching ``pattern`` (regex); fails after ``timeout`` s."""
        import time

        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                _, line = self._new.get(timeout=left)
            except queue.Empty:
                break
            if re.search(pattern, line):
                return line
        self.proc.kill()
        pytest.fail(f"no line matching {pattern!r} within {timeout} s; output: {self.lines}")

    def finish(self, timeout: float = 60) -> int:
        """Wait for the exit status (killing the process after ``timeout`` s)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        finally:
            self.proc.wait()
            import time

            time.sleep(0.05)  # Let the reader threads take the last lines.

    @property
    def out(self) -> str:
        return "\n".join(self.lines["out"])

    @property
    def err(self) -> str:
        return "\n".join(self.lines["err"])


@pytest.fixture
def instrument() -> Iterator[InstrumentServer]:
    """A real emulated instrument serving on a free TCP port of 127.0.0.1."""
    with running_server(EmulatorConfig(seed=0), transport="tcp") as server:
        yield server


def over_visa(server: InstrumentServer) -> list[str]:
    """The options that point ``hil`` at ``server`` through the VISA driver."""
    return ["--resource", server.resource_string]
