"""Ending ``hil serve`` (SIGTERM, Ctrl-C) with a live follower: the runs stop first, then streams close."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_support import AUTH, serve_process, wait_epochs

from crossbar_hil.api.service.server import SHUTDOWN_REASON
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.server import running_server
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore

pytestmark = pytest.mark.system


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ending_the_service_stops_a_followed_run_before_its_stream_closes(tmp_path: Path, sig: int) -> None:
    with (
        running_server(faults=FaultPlan(reply_delay_s=0.005)) as instrument,
        serve_process(tmp_path / "runs.sqlite3") as (proc, url),
    ):
        with httpx.Client(base_url=url, timeout=30) as client:
            body = {
                "backend": {"name": "visa", "params": {"resource": instrument.resource_string}},
                "preset": "reference",
                "training": {"max_epochs": 100_000, "patience": 0},
            }
            run_id = client.post("/runs", json=body, headers=AUTH).json()["id"]
            wait_epochs(client, run_id, 2)
        events: list[dict[str, Any]] = []
        following = threading.Event()

        def follow() -> None:
            try:
                with httpx.stream("GET", f"{url}/runs/{run_id}/events", timeout=60) as r:
                    current: dict[str, Any] = {}
                    for line in r.iter_lines():
                        if line.startswith("event: "):
                            current["event"] = line[7:]
                        elif line.startswith("data: "):
                            current["data"] = json.loads(line[6:])
                        elif not line and "data" in current:
                            events.append(current)
                            current = {}
                            following.set()
            except httpx.HTTPError:
                pass  # Cut by the service: what arrived is in events.
            finally:
                following.set()

        follower = threading.Thread(target=follow)
        follower.start()
        assert following.wait(30)
        proc.send_signal(sig)
        follower.join(60)
        proc.wait(60)  # uvicorn re-raises the signal once shut down: it ends by it.
    assert events and events[-1]["event"] == "status", events[-1:]
    assert events[-1]["data"]["status"] == "stopped"
    assert "shutting down" in (events[-1]["data"].get("error") or "")
    assert instrument.command_names()[-1] == "ABOR"


@pytest.mark.parametrize("epochs_first", [0, 2], ids=["just-admitted", "training"])
def test_a_run_stopped_by_the_shutdown_is_recorded_with_that_reason(
    tmp_path: Path, epochs_first: int
) -> None:
    """SIGTERM to ``hil serve`` right after a run is admitted (it may not be running yet) or while
    it trains: the run ends stopped, its error saying the service was shutting down (not a bare
    "stop requested"), in the store and in its last status event."""
    database = tmp_path / "runs.sqlite3"
    with serve_process(database) as (proc, url):
        with httpx.Client(base_url=url, timeout=30) as client:
            body = {"preset": "reference", "training": {"max_epochs": 100_000, "patience": 0}}
            run_id = client.post("/runs", json=body, headers=AUTH).json()["id"]
            if epochs_first:
                wait_epochs(client, run_id, epochs_first)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    store = RunStore(database)
    try:
        run = store.get_run(run_id)
        last_status = [e.data for e in store.events(run_id, 0) if e.kind == "status"][-1]
    finally:
        store.close()
    assert run.status is RunStatus.STOPPED
    assert run.error == SHUTDOWN_REASON, run.error
    assert last_status["status"] == "stopped" and last_status["error"] == SHUTDOWN_REASON
