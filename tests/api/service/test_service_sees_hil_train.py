"""A bench run started from a terminal (``hil train``) on the service's run store: the service lists
it and streams its events live, as it streams its own runs' (issue 17 item 7)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from service_support import TOKEN, live_service, read_events

from crossbar_hil.api.service.settings import ServiceSettings

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[3]


def test_the_service_lists_and_streams_a_hil_train_run(tmp_path: Path) -> None:
    database = tmp_path / "runs.sqlite3"
    settings = ServiceSettings(database=database, token=TOKEN)
    with live_service(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        command = [
            sys.executable,
            "-m",
            "crossbar_hil.api",
            "train",
            "--builtin",
            "-q",
            "--database",
            str(database),
        ]
        command += ["--preset", "reference", "--max-epochs", "30", "--patience", "0"]
        env = {**{k: v for k, v in os.environ.items() if k != "HIL_TRACE"}, "MPLBACKEND": "Agg"}
        child = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while not (items := client.get("/runs").json()["items"]):
                assert child.poll() is None and time.monotonic() < deadline, child.communicate()
                time.sleep(0.02)
            (run,) = items
            with client.stream("GET", f"/runs/{run['id']}/events") as r:
                events = read_events(r)
            assert child.wait(60) == 0, child.communicate()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        epochs = [e["data"]["record"]["epoch"] for e in events if e["event"] == "epoch"]
        statuses = [e["data"]["status"] for e in events if e["event"] != "epoch"]
        assert epochs == list(range(31)) and statuses[-1] == "not_converged"
        assert client.get(f"/runs/{run['id']}").json()["epochs"] == 30
