"""A step that must finish whole once begun: a stop that comes meanwhile waits for it."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType

import pytest

from crossbar_hil.api.cli.experiment import PartialRuns
from crossbar_hil.api.cli.stopping import signals_held


def test_a_signal_inside_the_block_acts_as_soon_as_the_block_ends() -> None:
    heard: list[str] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: heard.append("SIGTERM"))
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            inside = list(heard)
        after = list(heard)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert inside == [] and after == ["SIGTERM"]


class StopsWhileFormatted:
    """A value whose formatting, in the middle of a row, brings the stop (SIGTERM to this process)."""

    def __str__(self) -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        return "1.5"


def test_a_stop_in_the_middle_of_a_result_row_comes_after_the_row_is_written_and_counted(
    tmp_path: Path,
) -> None:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt("stopped by SIGTERM")

    path = tmp_path / "lim_runs.partial.csv"
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with PartialRuns(path, ["accuracy", "rule"]) as kept, pytest.raises(KeyboardInterrupt):
            kept.write({"accuracy": StopsWhileFormatted(), "rule": "b"})
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert kept.rows == 1
    assert path.read_text().splitlines() == ["accuracy,rule", "1.5,b"]
