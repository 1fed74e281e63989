"""The queue of an instrument and a lost link, under a real uvicorn on the emulated instrument over
TCP (VISA driver); and a service killed with a queue and a paused run, restarted."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_support import AUTH, TOKEN, live_service, wait_epochs, wait_status
from test_service_crash import service_process
from test_service_run_control import history, status_events, visa_body

from crossbar_hil.api.service.settings import ServiceSettings
from crossbar_hil.emulator.config import EmulatorConfig
from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.server import InstrumentServer, running_server
from crossbar_hil.runs.control import ControlTimes

pytestmark = pytest.mark.system

ENDED = {"converged", "not_converged", "stopped", "failed", "interrupted"}


@pytest.fixture
def instrument() -> Iterator[InstrumentServer]:
    with running_server(faults=FaultPlan(reply_delay_s=0.005)) as server:
        yield server


def post(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/runs", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    return dict(r.json())


def queue_of(client: httpx.Client, server: InstrumentServer) -> dict[str, Any]:
    queues = client.get("/queue", params={"instrument": server.resource_string}).json()["queues"]
    assert len(queues) == 1
    return dict(queues[0])


# ---------------------------------------------------------------------- the queue
def test_a_queue_of_three_runs_them_in_order_unattended(
    service: httpx.Client, instrument: InstrumentServer
) -> None:
    # The first run lasts until stopped: it holds the instrument however slow this test is.
    first = post(service, visa_body(instrument, max_epochs=500))
    assert service.post("/runs", json=visa_body(instrument), headers=AUTH).status_code == 409  # As before.
    queued = [post(service, visa_body(instrument, max_epochs=2, if_busy="queue")) for _ in range(2)]
    assert [(r["status"], r["queue_position"]) for r in queued] == [("queued", 1), ("queued", 2)]
    assert [r["id"] for r in queue_of(service, instrument)["items"]] == [r["id"] for r in queued]
    wait_epochs(service, first["id"], 1)  # Running, so that the stop ends a run that started.
    assert service.post(f"/runs/{first['id']}/stop", headers=AUTH).status_code == 202
    runs = [wait_status(service, r["id"], ENDED, timeout_s=60) for r in (first, *queued)]
    assert [r["status"] for r in runs] == ["stopped", "not_converged", "not_converged"]
    # A run that waited in its queue says so by an event of its own; the first never waited.
    assert [(name, status) for name, status, _ in status_events(service, queued[1]["id"])] == [
        ("queued", "queued"),
        ("status", "running"),
        ("status", "not_converged"),
    ]
    assert status_events(service, first["id"])[0] == ("status", "queued", None)
    assert runs[0]["ended_at"] <= runs[1]["started_at"] and runs[1]["ended_at"] <= runs[2]["started_at"]
    assert queue_of(service, instrument)["items"] == []
    counts = instrument.command_counts()
    # One handshake per run, one ABOR at each run's end, and the stopped run's at its stop.
    assert counts["*IDN?"] == 3 and counts["ABOR"] == 3 + 1


def test_queue_stop_lets_the_current_run_finish_and_starts_no_more_until_started(
    service: httpx.Client, instrument: InstrumentServer
) -> None:
    going = post(service, visa_body(instrument, max_epochs=200))
    waiting = [post(service, visa_body(instrument, max_epochs=1, if_busy="queue")) for _ in range(2)]
    r = service.post("/queue/stop", json={"instrument": instrument.resource_string}, headers=AUTH)
    assert r.status_code == 200 and r.json()["queues"][0]["state"] == "stopped"
    wait_epochs(service, going["id"], 2)
    assert service.get(f"/runs/{going['id']}").json()["status"] == "running"  # Not stopped by it.
    service.post(f"/runs/{going['id']}/stop", headers=AUTH)
    wait_status(service, going["id"], ENDED)
    time.sleep(0.5)
    assert [service.get(f"/runs/{w['id']}").json()["status"] for w in waiting] == ["queued", "queued"]
    r = service.post("/queue/start", json={"instrument": instrument.resource_string}, headers=AUTH)
    assert r.status_code == 200
    for w in waiting:
        assert wait_status(service, w["id"], ENDED, timeout_s=60)["status"] == "not_converged"


def test_a_queued_run_removed_or_moved_and_only_a_waiting_run_can_be_removed(
    service: httpx.Client, instrument: InstrumentServer
) -> None:
    going = post(service, visa_body(instrument, max_epochs=200))
    a, b, c = (post(service, visa_body(instrument, max_epochs=1, if_busy="queue")) for _ in range(3))
    assert service.delete(f"/runs/{going['id']}", headers=AUTH).status_code == 409  # Running.
    assert service.delete(f"/runs/{b['id']}", headers=AUTH).status_code == 204
    assert service.get(f"/runs/{b['id']}").status_code == 404
    moved = service.post("/queue/move", json={"run_id": c["id"], "position": 1}, headers=AUTH).json()
    assert moved["queue_position"] == 1
    assert [r["id"] for r in queue_of(service, instrument)["items"]] == [c["id"], a["id"]]
    service.post(f"/runs/{going['id']}/stop", headers=AUTH)
    ends = [wait_status(service, r["id"], ENDED, timeout_s=60) for r in (c, a)]
    assert ends[0]["ended_at"] <= ends[1]["started_at"]


# ---------------------------------------------------------------------- a lost link
def restarted(server: InstrumentServer, crossbar: EmulatedCrossbar) -> InstrumentServer:
    """A new server on the same port as ``server`` (stopped), serving ``crossbar``."""
    host, port = server.address
    again = InstrumentServer(crossbar, host=host, port=port, faults=FaultPlan(reply_delay_s=0.005))
    deadline = time.monotonic() + 10
    while True:
        try:
            return again.start()
        except OSError:  # The port is still held for a moment.
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_an_instrument_restarted_mid_run_suspends_the_run_which_then_goes_on(
    service: httpx.Client,
) -> None:
    crossbar = EmulatedCrossbar()
    first = InstrumentServer(crossbar, faults=FaultPlan(reply_delay_s=0.005)).start()
    second: InstrumentServer | None = None
    try:
        run_id = post(service, visa_body(first, max_epochs=40))["id"]
        wait_epochs(service, run_id, 3)
        first.stop()
        wait_status(service, run_id, {"suspended"})
        time.sleep(0.5)
        second = restarted(first, crossbar)
        run = wait_status(service, run_id, ENDED, timeout_s=60)
        assert run["status"] == "not_converged" and run["epochs"] == 40
        assert [e["epoch"] for e in history(service, run_id)] == list(range(41))
        changes = status_events(service, run_id)
        assert ("suspended", "suspended", "suspended") in changes
        assert ("reconnected", "running", "reconnected") in changes
        assert second.command_names()[:1] == ["*IDN?"] and "MEAS:ALL?" in second.command_names()[:8]
    finally:
        first.stop()
        if second is not None:
            second.stop()
        crossbar.close()


def test_a_different_instrument_after_the_drop_fails_the_run_and_keeps_its_history(
    service: httpx.Client,
) -> None:
    crossbar, other = EmulatedCrossbar(), EmulatedCrossbar(EmulatorConfig(seed=99))
    first = InstrumentServer(crossbar, faults=FaultPlan(reply_delay_s=0.005)).start()
    second: InstrumentServer | None = None
    try:
        run_id = post(service, visa_body(first, max_epochs=200))["id"]
        seen = wait_epochs(service, run_id, 3)
        first.stop()
        wait_status(service, run_id, {"suspended"})
        second = restarted(first, other)
        run = wait_status(service, run_id, ENDED, timeout_s=60)
        assert run["status"] == "failed" and "seed=99" in run["error"] and "started on" in run["error"]
        assert len(history(service, run_id)) == run["epochs"] + 1 and run["epochs"] >= seen
        assert not {n for n in second.command_names() if n.startswith(("PULS", "RST"))}
    finally:
        first.stop()
        if second is not None:
            second.stop()
        crossbar.close()
        other.close()


def test_a_link_that_does_not_come_back_in_time_fails_the_run_with_its_history(
    tmp_path: Path, instrument: InstrumentServer
) -> None:
    settings = ServiceSettings(
        database=tmp_path / "runs.sqlite3", token=TOKEN, times=ControlTimes(suspend_timeout_s=1.0)
    )
    with live_service(settings) as url, httpx.Client(base_url=url, timeout=20) as client:
        run_id = post(client, visa_body(instrument, max_epochs=200))["id"]
        seen = wait_epochs(client, run_id, 3)
        instrument.stop()
        run = wait_status(client, run_id, ENDED, timeout_s=60)
        assert run["status"] == "failed" and "suspend_timeout_s=1" in run["error"]
        assert len(history(client, run_id)) == run["epochs"] + 1 and run["epochs"] >= seen


# ---------------------------------------------------------------------- a killed service
def test_a_killed_service_with_a_queue_and_a_paused_run_loses_nothing_and_starts_nothing(
    tmp_path: Path, instrument: InstrumentServer
) -> None:
    database = tmp_path / "runs.sqlite3"
    with running_server(faults=FaultPlan(reply_delay_s=0.005)) as other:
        with service_process(database) as (proc, client):
            paused = post(client, visa_body(other, max_epochs=500))
            wait_epochs(client, paused["id"], 2)
            client.post(f"/runs/{paused['id']}/pause", json={"when": "now"}, headers=AUTH)
            wait_status(client, paused["id"], {"paused"})
            kept = history(client, paused["id"])
            going = post(client, visa_body(instrument, max_epochs=500))
            queued = [post(client, visa_body(instrument, max_epochs=1, if_busy="queue")) for _ in range(2)]
            wait_epochs(client, going["id"], 1)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        heard = instrument.command_count
        with service_process(database) as (proc, client):
            assert "stopped until started" in "".join(proc.startup_lines)
            queue = queue_of(client, instrument)
            assert queue["state"] == "stopped"
            assert [r["id"] for r in queue["items"]] == [q["id"] for q in queued]
            time.sleep(1.0)
            assert [client.get(f"/runs/{q['id']}").json()["status"] for q in queued] == ["queued", "queued"]
            assert not [n for n in instrument.command_names(heard) if n.startswith(("PULS", "RST", "*IDN"))]
            run = client.get(f"/runs/{paused['id']}").json()
            assert run["status"] in ("stopped", "interrupted")  # Ended at 0 V, its history kept.
            assert history(client, paused["id"])[: len(kept)] == kept
            assert (
                client.post(
                    "/queue/start", json={"instrument": instrument.resource_string}, headers=AUTH
                ).status_code
                == 200
            )
            for q in queued:
                assert wait_status(client, q["id"], ENDED, timeout_s=60)["status"] == "not_converged"
