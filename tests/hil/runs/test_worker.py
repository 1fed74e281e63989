"""The run's own process: it ends its run safely when the service is gone."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.runs import worker
from crossbar_hil.runs.control import RunControl
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.stop import StopSignal

pytestmark = pytest.mark.system


def test_the_end_of_the_command_pipe_stops_the_run(tmp_path: Path) -> None:
    commands_in, commands = multiprocessing.Pipe(duplex=False)
    stop = StopSignal()
    store = RunStore(tmp_path / "runs.sqlite3")
    control = RunControl(store, store.create_run(RunConfig()).id, stop)
    listener = threading.Thread(target=worker._listen, args=(commands_in, control, EmulatedCrossbar()))
    listener.start()
    commands.close()  # The service died: its end of the pipe is gone.
    listener.join(5)
    assert not listener.is_alive() and stop.is_set and stop.reason == "the service ended"


def test_sigterm_stops_the_run_instead_of_killing_the_process() -> None:
    stop = StopSignal()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        worker._stop_on_sigterm(stop)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.is_set and "SIGTERM" in stop.reason
    finally:
        signal.signal(signal.SIGTERM, previous)
