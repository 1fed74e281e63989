"""The run's own process: it ends its run safely when the service is gone."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.runs import worker
from crossbar_hil.runs.control import ControlTimes, RunControl
from crossbar_hil.runs.execute import finish
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


@pytest.mark.parametrize(
    ("parent", "said"),
    [("os.getppid() + 1", "the service ended (SIGTERM)"), ("os.getppid()", "going on")],
    ids=["its-service-is-gone", "its-service-runs"],
)
def test_a_worker_told_its_service_s_pid_stops_at_once_when_that_is_not_its_parent_any_more(
    parent: str, said: str
) -> None:
    # A service killed while its worker started up (before the worker asked Linux for the
    # parent-death signal) sends no signal: the worker's parent is then no longer that pid.
    code = (
        "import os\n"
        "from crossbar_hil.runs import worker\n"
        "from crossbar_hil.training.stop import StopSignal\n"
        "stop = StopSignal()\n"
        "worker._stop_on_sigterm(stop)\n"
        f"worker._term_with_parent(parent_pid={parent})\n"
        "print(stop.reason if stop.is_set else 'going on')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == said, done


def _worker_over_a_pipe(
    tmp_path: Path, max_epochs: int
) -> tuple[RunStore, str, Connection, threading.Thread]:
    """A worker serving a stored run in a thread, over a real pipe; past its check, told to go."""
    store = RunStore(tmp_path / "runs.sqlite3")
    config = RunConfig.model_validate(
        {"preset": "reference", "training": {"max_epochs": max_epochs, "patience": 0}}
    )
    run_id = store.create_run(config).id
    service, worker_end = multiprocessing.Pipe(duplex=True)
    thread = threading.Thread(
        target=worker.serve,
        args=(
            worker_end,
            str(store.path),
            config.model_dump_json(),
            ControlTimes().model_dump_json(),
            lambda name, params: EmulatedCrossbar(),
        ),
        daemon=True,
    )
    thread.start()
    assert service.recv()[0] == "ready"
    service.send(("go", run_id))
    return store, run_id, service, thread


def test_a_worker_whose_service_is_gone_records_its_run_stopped_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "RECORD_WAIT_S", 3600.0)  # Nobody answers: it must not wait for one.
    store, run_id, service, thread = _worker_over_a_pipe(tmp_path, max_epochs=100_000)
    assert service.recv()[0] == "event"  # Training.
    service.close()  # The service died.
    thread.join(60)  # A guard against a worker that waits, not a speed claim.
    assert not thread.is_alive(), "the worker waited for a service that is gone"
    run = store.get_run(run_id)
    assert run.status == "stopped" and run.error == "the service ended", (run.status, run.error)


def test_a_worker_whose_end_the_service_recorded_does_not_record_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    again: list[str] = []
    monkeypatch.setattr(worker, "finish", lambda store, run_id, end: again.append(run_id))
    store, run_id, service, thread = _worker_over_a_pipe(tmp_path, max_epochs=2)
    while (message := service.recv())[0] != "released":
        pass
    finish(store, run_id, message[1])  # The service records the end, says so, and lets go.
    service.send(("recorded",))
    service.close()
    thread.join(60)
    assert not thread.is_alive() and again == []
    assert store.get_run(run_id).status == "not_converged"
