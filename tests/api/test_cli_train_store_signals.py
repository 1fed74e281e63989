"""``hil train`` in the run store when it is stopped by a signal or killed, and one run per
instrument over TCP (issue 17 item 7): the real command in a subprocess, the emulated instrument
on a real socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crossbar_hil.api.cli import main
from crossbar_hil.emulator.testing import running_server
from crossbar_hil.runs.manager import instrument_key, queue_key
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import STORE_ENV, RunStore, process_owner
from crossbar_hil.training.config import RunConfig

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
LONG = ["--builtin", "-q", "--preset", "reference", "--max-epochs", "100000", "--patience", "0"]


def hil_env() -> dict[str, str]:
    """The child's environment: this test's run store, the built-in device, no plots on screen."""
    return {**{k: v for k, v in os.environ.items() if k != "HIL_TRACE"}, "MPLBACKEND": "Agg"}


def store_path() -> Path:
    return Path(os.environ[STORE_ENV])  # Each test's own (tests/conftest.py); the child inherits it.


def started(store: RunStore, epochs: int, child: subprocess.Popen[str]) -> str:
    """The child's run, once it has trained ``epochs`` epochs."""
    deadline = time.monotonic() + 60
    while True:
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "hil train never got going"
        if store.path.is_file():
            runs, _ = store.list_runs()
            if runs and runs[0].epochs >= epochs:
                return runs[0].id
        time.sleep(0.02)


def hil_train(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "crossbar_hil.api", "train", *args]
    return subprocess.Popen(
        command, cwd=ROOT, env=hil_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize(("signum", "name"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_stop_signal_records_stopped_with_the_history_up_to_the_stop(
    tmp_path: Path, signum: int, name: str
) -> None:
    result_path = tmp_path / "r.json"
    child = hil_train(*LONG, "--json", str(result_path))
    store = RunStore(store_path())
    try:
        run_id = started(store, 3, child)
        child.send_signal(signum)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 4, err
    run, result = store.get_run(run_id), json.loads(result_path.read_text())
    assert (
        run.status is RunStatus.STOPPED
        and run.outcome == "stopped"
        and f"stopped by {name}" in str(run.error)
    )
    assert 3 <= run.epochs == result["epochs"] < 100_000
    assert [r.to_dict() for r in store.epochs(run_id)] == result["history"]  # Every epoch up to the stop.
    statuses = [e.data["status"] for e in store.events(run_id) if e.kind == "status"]
    assert statuses == ["queued", "running", "stopping", "stopped"]
    store.close()


def test_a_killed_hil_train_stays_running_until_the_next_open_marks_it_interrupted() -> None:
    child = hil_train(*LONG)
    store = RunStore(store_path())
    try:
        run_id = started(store, 3, child)
        child.kill()
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    kept = store.epoch_records(run_id)
    assert store.get_run(run_id).status is RunStatus.RUNNING  # Nobody was there to record its end.
    listed = subprocess.run(
        [sys.executable, "-m", "crossbar_hil.api", "runs", "list", "--json"],
        cwd=ROOT, env=hil_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    (item,) = json.loads(listed.stdout)["items"]
    assert item["status"] == "interrupted" and f":{child.pid}) ended during the run" in item["error"]
    assert store.epoch_records(run_id) == kept == item["epochs"] + 1  # What it committed is kept.
    store.close()


def test_an_instrument_another_live_run_holds_is_refused_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with running_server() as server:
        argv = ["train", "-q", "--backend", "visa", "--resource", server.resource_string, "--max-epochs", "1"]
        config = RunConfig.model_validate(
            {"backend": {"name": "visa", "params": {"resource": server.resource_string}}}
        )
        store = RunStore(store_path())
        held = store.create_run(
            config,
            instrument=instrument_key(config.backend),
            queue=queue_key(config.backend),
            owner=process_owner(),
        )
        store.transition(held.id, RunStatus.RUNNING)  # Held by this (live) process: the service's, say.
        assert main(argv) == 3
        err = capsys.readouterr().err
        assert f"is in use by run {held.id}" in err and f"hil runs stop {held.id}" in err
        assert server.command_count == 0 and store.list_runs()[1] == 1  # Not even the handshake.
        # The same run left by a process that is gone (SIGKILL) holds nothing: it becomes interrupted.
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        with sqlite3.connect(store.path) as db:
            db.execute(
                "UPDATE runs SET owner = ? WHERE id = ?", (f"{socket.gethostname()}:{dead.pid}", held.id)
            )
        assert main(argv) == 0, capsys.readouterr().err
        assert server.command_counts()["*IDN?"] == 1
        assert store.get_run(held.id).status is RunStatus.INTERRUPTED
        runs, total = store.list_runs()
        assert total == 2 and runs[0].status is RunStatus.CONVERGED and runs[0].instrument == held.instrument
        store.close()
