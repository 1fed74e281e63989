"""The service and a run left by a process that only looks alive (issue 17, review finding 3):
a run whose pid now belongs to another process is interrupted when the service starts, and one
that cannot be judged is refused a second run (409) until released by ``stop?force=true``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_support import AUTH

from crossbar_hil.api.service.app import create_app
from crossbar_hil.api.service.settings import ServiceSettings
from crossbar_hil.runs.manager import instrument_key, queue_key
from crossbar_hil.runs.owner import Owner, boot_id, process_owner, start_ticks
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig

pytestmark = pytest.mark.system

HOST = socket.gethostname()
BACKEND = {"name": "visa", "params": {"resource": "TCPIP::127.0.0.1::9::SOCKET"}}


def left_running(database: Path, owner: str) -> str:
    """A run marked running on the instrument, owned by ``owner``, as a process left it."""
    store = RunStore(database)
    config = RunConfig.model_validate({"backend": BACKEND})
    run = store.create_run(
        config, instrument=instrument_key(config.backend), queue=queue_key(config.backend), owner=owner
    )
    store.transition(run.id, RunStatus.RUNNING)
    store.close()
    return run.id


def test_a_run_whose_pid_was_reused_is_interrupted_when_the_service_starts(settings: ServiceSettings) -> None:
    me = Owner.parse(process_owner())
    assert me.start_ticks is not None
    # A hil train on this host, whose pid now belongs to another process (here: this one).
    run_id = left_running(settings.database, str(Owner(HOST, os.getpid(), me.start_ticks + 1, me.boot_id)))
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/runs/{run_id}", headers=AUTH).json()["status"] == "interrupted"


def test_a_run_that_cannot_be_judged_is_released_by_a_forced_stop(settings: ServiceSettings) -> None:
    run_id = left_running(settings.database, f"{HOST}:1")  # Recorded by pid alone; pid 1 runs.
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/runs/{run_id}", headers=AUTH).json()["status"] == "running"
        r = client.post("/runs", json={"backend": BACKEND}, headers=AUTH)
        assert r.status_code == 409 and run_id in r.text
        r = client.post(f"/runs/{run_id}/stop", params={"force": "true"}, headers=AUTH)
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "interrupted" and "released by hand" in r.json()["error"]
        assert client.get("/instruments", headers=AUTH).status_code == 200


def test_a_forced_stop_of_a_run_whose_process_runs_is_refused(settings: ServiceSettings) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # A live hil train.
    try:
        run_id = left_running(
            settings.database, str(Owner(HOST, child.pid, start_ticks(child.pid), boot_id()))
        )
        with TestClient(create_app(settings)) as client:
            r = client.post(f"/runs/{run_id}/stop", params={"force": "true"}, headers=AUTH)
            assert r.status_code == 409 and "which is running" in r.text
            assert client.get(f"/runs/{run_id}", headers=AUTH).json()["status"] == "running"
    finally:
        child.kill()
        child.wait()
