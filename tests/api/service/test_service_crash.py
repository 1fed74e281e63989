"""Crash safety: the service killed with SIGKILL mid-run (alone, or with its run's worker),
restarted on the same database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_support import AUTH, TOKEN, wait_epochs, wait_status

from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.server import InstrumentServer, running_server
from crossbar_hil.runs.owner import Owner, owner_alive
from crossbar_hil.runs.store import RunStore

pytestmark = pytest.mark.system


@contextmanager
def service_process(
    database: Path, *, own_group: bool = False
) -> Iterator[tuple[subprocess.Popen[str], httpx.Client]]:
    """``hil serve`` in a subprocess on a free port of 127.0.0.1; killed at the end if still alive.

    ``proc.startup_lines``: what it logged before it served. ``own_group``: in a process group of
    its own, with its runs' workers (to kill them all at once).
    """
    env = {**os.environ, "HIL_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crossbar_hil.api", "serve", "--port", "0", "--database", str(database)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=own_group,
    )
    guard = threading.Timer(60, proc.kill)  # A service that never says it serves, killed.
    guard.start()
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        lines: list[str] = []
        proc.startup_lines = lines  # type: ignore[attr-defined]
        for line in proc.stderr:
            lines.append(line)
            if m := re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
                break
            assert time.monotonic() < deadline, "the service did not start"
        else:
            raise AssertionError(f"the service exited with {proc.wait()}")
        guard.cancel()
        with httpx.Client(base_url=url, timeout=20) as client:
            yield proc, client
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def kill_worker(database: Path, run_id: str) -> None:
    """Kill the run's worker if it still runs: a test that failed leaves no process behind."""
    store = RunStore(database)
    try:
        worker = store.get_run(run_id).worker
    finally:
        store.close()
    if worker is not None and owner_alive(worker):
        os.kill(Owner.parse(worker).pid, signal.SIGKILL)


def start_run(client: httpx.Client, body: dict[str, Any], epochs: int) -> tuple[str, list[dict[str, Any]]]:
    """Start a run of ``body``; its id and its epochs committed once it trained ``epochs``."""
    run_id = str(client.post("/runs", json=body, headers=AUTH).json()["id"])
    wait_epochs(client, run_id, epochs)
    return run_id, client.get(f"/runs/{run_id}/epochs", params={"limit": 1000}).json()["items"]


def kept_and_a_new_run_starts(
    client: httpx.Client, run_id: str, committed: list[dict[str, Any]], outcome: str, body: dict[str, Any]
) -> None:
    """The run kept every epoch committed before the kill (and any after), in order, its result
    says ``outcome`` over the same history; a new run on the same instrument starts and ends."""
    kept = client.get(f"/runs/{run_id}/epochs", params={"limit": 1000}).json()["items"]
    assert len(kept) >= len(committed) >= 5 and kept[: len(committed)] == committed
    assert [e["epoch"] for e in kept] == list(range(len(kept)))
    result = client.get(f"/runs/{run_id}/result").json()
    assert result["outcome"] == outcome and len(result["history"]) == len(kept)
    new = client.post("/runs", json=body | {"training": {"max_epochs": 2, "patience": 0}}, headers=AUTH)
    assert new.status_code == 202, new.text
    assert wait_status(client, new.json()["id"], {"not_converged"})["epochs"] == 2


BODY = {
    "preset": "reference",  # Does not converge: the run lasts its epochs.
    "training": {"max_epochs": 500, "patience": 0},
}


def visa(instrument: InstrumentServer) -> dict[str, object]:
    return {"name": "visa", "params": {"resource": instrument.resource_string, "timeout_s": 5}}


@pytest.fixture
def instrument() -> Iterator[InstrumentServer]:
    """An emulated instrument on 127.0.0.1 that answers after 5 ms, as a slow controller does."""
    with running_server(faults=FaultPlan(reply_delay_s=0.005)) as server:
        yield server


def test_a_killed_service_leaves_the_instrument_aborted_and_the_run_stopped_by_its_worker(
    tmp_path: Path, instrument: InstrumentServer
) -> None:
    database = tmp_path / "runs.sqlite3"
    body = BODY | {"backend": visa(instrument)}
    with service_process(database) as (proc, client):
        run_id, committed = start_run(client, body, epochs=5)
        killed_at = instrument.command_count
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    try:
        # The run's own process hears SIGTERM (several: one per thread of the service that dies)
        # and the end of its command pipe: it stops before its next pulse and aborts, so the
        # instrument is left at 0 V and hears no pulse after; then it records the run stopped.
        deadline = time.monotonic() + 60  # A guard against a wedged worker, not a speed claim.
        while "ABOR" not in instrument.command_names(killed_at):
            assert time.monotonic() < deadline, "no ABOR reached the instrument after the service died"
            time.sleep(0.05)
        store = RunStore(database)
        while (run := store.get_run(run_id)).status != "stopped":
            assert time.monotonic() < deadline, f"the worker did not record its run's end: {run.status}"
            time.sleep(0.05)
        store.close()
        assert run.error is not None and "the service ended" in run.error, run.error
        names = instrument.command_names(killed_at)
        after = names[len(names) - names[::-1].index("ABOR") :]
        assert not [n for n in after if n.startswith(("PULS", "RST"))], after
        heard = instrument.command_count
        time.sleep(0.5)
        assert instrument.command_count == heard
        with service_process(database) as (proc, client):
            warned = "".join(proc.startup_lines)
            assert "WAS INTERRUPTED" not in warned, warned  # Its worker recorded how it ended.
            assert client.get(f"/runs/{run_id}").json()["status"] == "stopped"
            kept_and_a_new_run_starts(client, run_id, committed, "stopped", body)
    finally:
        kill_worker(database, run_id)


def test_a_service_killed_with_its_worker_leaves_the_run_interrupted_and_says_to_check_the_instrument(
    tmp_path: Path, instrument: InstrumentServer
) -> None:
    database = tmp_path / "runs.sqlite3"
    body = BODY | {"backend": visa(instrument)}
    with service_process(database, own_group=True) as (proc, client):
        run_id, committed = start_run(client, body, epochs=5)
        os.killpg(proc.pid, signal.SIGKILL)  # The service and its run's worker: nobody aborts.
        proc.wait(10)
    store = RunStore(database)
    assert store.get_run(run_id).status == "running"  # Nobody has looked at it yet.
    store.close()
    with service_process(database) as (proc, client):
        warned = "".join(proc.startup_lines)
        assert f"RUN {run_id} WAS INTERRUPTED" in warned, warned
        assert instrument.resource_string in warned and "NOT confirmed at 0 V" in warned
        run = client.get(f"/runs/{run_id}").json()
        assert run["status"] == "interrupted" and "ended during the run" in run["error"]
        kept_and_a_new_run_starts(client, run_id, committed, "fault", body)


def test_ctrl_c_in_the_terminal_of_hil_serve_stops_its_runs_at_0v_and_records_them_stopped(
    tmp_path: Path, instrument: InstrumentServer
) -> None:
    # Ctrl-C reaches the terminal's whole foreground process group, the runs' workers too: they
    # leave the stop to the service (a KeyboardInterrupt in a worker cut its command and the run
    # was recorded failed, "0 V not known").
    database = tmp_path / "runs.sqlite3"
    body = BODY | {"backend": visa(instrument)}
    with service_process(database, own_group=True) as (proc, client):
        run_id, _ = start_run(client, body, epochs=3)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0
    store = RunStore(database)
    run = store.get_run(run_id)
    store.close()
    assert run.status == "stopped" and run.error is not None and "shutting down" in run.error, run
    assert instrument.command_names()[-1] == "ABOR"
