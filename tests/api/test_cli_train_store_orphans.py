"""A run left by a process that only looks alive (issue 17, review finding 3): ``hil train`` on its
instrument says how to release it, ``hil runs stop`` says that a stop alone may never end it, and
``hil runs stop --force`` releases it; a run whose pid now belongs to another process frees its
instrument by itself. The real command on the emulated instrument over TCP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from crossbar_hil.api.cli import main
from crossbar_hil.emulator.testing import running_server
from crossbar_hil.runs.manager import instrument_key, queue_key
from crossbar_hil.runs.owner import Owner, boot_id, process_owner, start_ticks
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import STORE_ENV, RunStore
from crossbar_hil.training.config import RunConfig

pytestmark = pytest.mark.system

HOST = socket.gethostname()
TRAIN = ["train", "-q", "--backend", "visa", "--resource"]


def held_run(store: RunStore, resource: str, owner: str) -> str:
    config = RunConfig.model_validate({"backend": {"name": "visa", "params": {"resource": resource}}})
    run = store.create_run(
        config, instrument=instrument_key(config.backend), queue=queue_key(config.backend), owner=owner
    )
    store.transition(run.id, RunStatus.RUNNING)
    return run.id


def test_an_orphan_that_looks_alive_is_released_by_hand(capsys: pytest.CaptureFixture[str]) -> None:
    with running_server() as server:
        train = [*TRAIN, server.resource_string, "--max-epochs", "1"]
        store = RunStore(Path(os.environ[STORE_ENV]))
        orphan = held_run(store, server.resource_string, f"{HOST}:1")  # Pid 1 runs: not its process.
        assert main(train) == 3
        err = capsys.readouterr().err
        assert f"in use by run {orphan}" in err and f"hil runs stop --force {orphan}" in err
        assert "or stop it (hil runs stop" not in err  # No advice that nothing would act on.
        assert server.command_count == 0
        assert main(["runs", "stop", orphan]) == 0
        out, err = capsys.readouterr()
        assert "stopping" in out and f"hil runs stop --force {orphan}" in err
        assert main(train) == 3  # A stop alone: still held.
        capsys.readouterr()
        assert main(["runs", "stop", "--force", orphan]) == 0
        assert "interrupted" in capsys.readouterr().out
        assert store.get_run(orphan).status is RunStatus.INTERRUPTED
        assert main(train) == 0, capsys.readouterr().err
        assert server.command_counts()["*IDN?"] == 1
        store.close()


def test_a_run_whose_pid_now_belongs_to_another_process_holds_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    me = Owner.parse(process_owner())
    assert me.start_ticks is not None
    reused = str(Owner(HOST, os.getpid(), me.start_ticks + 1, me.boot_id))  # The pid reused.
    with running_server() as server:
        train = [*TRAIN, server.resource_string, "--max-epochs", "1"]
        store = RunStore(Path(os.environ[STORE_ENV]))
        left = held_run(store, server.resource_string, reused)
        assert main(train) == 0, capsys.readouterr().err
        assert store.get_run(left).status is RunStatus.INTERRUPTED
        store.close()


def test_a_run_whose_process_runs_is_not_released_by_force(capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore(Path(os.environ[STORE_ENV]))
    mine = held_run(store, "TCPIP::127.0.0.1::1::SOCKET", process_owner())
    assert main(["runs", "stop", "--force", mine]) == 2
    assert "which is running" in capsys.readouterr().err
    assert store.get_run(mine).status is RunStatus.RUNNING
    store.close()


def test_hil_runs_leaves_a_run_whose_worker_still_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """A service killed while its run's worker (a process of its own) finishes the run: ``hil runs``
    does not mark that run interrupted under the worker, which records it stopped (finding 14)."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    store = RunStore(Path(os.environ[STORE_ENV]))
    try:
        run_id = held_run(store, "TCPIP::127.0.0.1::1::SOCKET", str(Owner(HOST, dead.pid, 1, boot_id())))
        store.set_worker(run_id, str(Owner(HOST, worker.pid, start_ticks(worker.pid), boot_id())))
        assert main(["runs", "list"]) == 0
        assert store.get_run(run_id).status is RunStatus.RUNNING
    finally:
        worker.kill()
        worker.wait()
    assert main(["runs", "list"]) == 0
    assert store.get_run(run_id).status is RunStatus.INTERRUPTED  # Its worker gone too.
    capsys.readouterr()
    store.close()
