"""A step that must finish whole once begun: a stop that comes meanwhile is raised as it ends."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from crossbar_hil.api.cli.experiment import PartialRuns
from crossbar_hil.api.cli.stopping import interrupting_signals, signals_held


def test_a_stop_inside_the_block_is_raised_once_the_block_ends_also_with_other_threads() -> None:
    # Another thread, as a process pool has: a signal mask would leave the signal to it.
    idle = threading.Event()
    bystander = threading.Thread(target=idle.wait, daemon=True)
    bystander.start()
    finished = False
    try:
        with (
            interrupting_signals(),
            pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"),
            signals_held(),
        ):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100_000):  # Python runs the handler within these bytecodes.
                pass
            finished = True
    finally:
        idle.set()
    assert finished


class StopsWhileFormatted:
    """A value whose formatting, in the middle of a row, brings the stop (SIGTERM to this process)."""

    def __str__(self) -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):  # Python runs the handler within these bytecodes.
            pass
        return "1.5"


def test_a_stop_in_the_middle_of_a_result_row_comes_once_the_row_is_written_and_counted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lim_runs.partial.csv"
    with (
        interrupting_signals(),
        PartialRuns(path, ["accuracy", "rule"]) as kept,
        pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"),
    ):
        kept.write({"accuracy": StopsWhileFormatted(), "rule": "b"})
    assert kept.rows == 1
    assert path.read_text().splitlines() == ["accuracy,rule", "1.5,b"]


def test_outside_the_block_a_stop_interrupts_at_once() -> None:
    reached = False
    with interrupting_signals(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):
            pass
        reached = True
    assert not reached
