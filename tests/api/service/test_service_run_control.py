"""Run control under a real uvicorn, on the emulated instrument over TCP (VISA driver): the run's
worker owns the instrument (one handshake and one ABOR per run, its check's refusals as
problems), pause and resume (deferred and immediate; nothing on the wire while paused; stop
while paused; the pause's time limit)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from service_support import AUTH, TOKEN, live_service, wait_epochs, wait_status

from crossbar_hil.api.service.settings import ServiceSettings
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.server import InstrumentServer, running_server
from crossbar_hil.runs.control import ControlTimes

pytestmark = pytest.mark.system

ENDED = {"converged", "not_converged", "stopped", "failed", "interrupted"}
DEVICE_COMMANDS = {"PULS:LIST", "PULS", "RST:DEV", "MEAS:ALL?", "VMM?"}
"""Commands that put a voltage on the crossbar (anything but identification and ABOR)."""


@pytest.fixture
def instrument() -> Iterator[InstrumentServer]:
    """The emulated instrument over TCP, each reply 5 ms late (about 40 ms per epoch)."""
    with running_server(faults=FaultPlan(reply_delay_s=0.005)) as server:
        yield server


def visa_body(server: InstrumentServer, max_epochs: int = 30, **extra: Any) -> dict[str, Any]:
    return {
        "backend": {"name": "visa", "params": {"resource": server.resource_string, "timeout_s": 5}},
        "preset": "reference",  # Does not converge: the run lasts its epochs.
        "training": {"max_epochs": max_epochs, "patience": 0},
        **extra,
    }


def start(client: httpx.Client, body: dict[str, Any]) -> str:
    r = client.post("/runs", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def history(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    return client.get(f"/runs/{run_id}/epochs", params={"limit": 1000}).json()["items"]


def status_events(client: httpx.Client, run_id: str) -> list[tuple[str, str, str | None]]:
    """(event name, status, change) of every status change of the run (every event but its epochs),
    from its stream (replayed, it ends)."""
    import json

    out = []
    with client.stream("GET", f"/runs/{run_id}/events") as r:
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event != "epoch":
                data = json.loads(line[6:])
                out.append((event, data["status"], data.get("change")))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------- the worker owns the instrument
def test_one_handshake_and_one_abor_per_run(service: httpx.Client, instrument: InstrumentServer) -> None:
    for n in (1, 2):
        run_id = start(service, visa_body(instrument, max_epochs=2))
        assert wait_status(service, run_id, ENDED)["status"] == "not_converged"
        counts = instrument.command_counts()
        assert counts["*IDN?"] == n and counts["ABOR"] == n, counts


def test_a_config_the_instrument_cannot_run_is_422_from_the_worker_and_stores_nothing(
    service: httpx.Client, instrument: InstrumentServer
) -> None:
    # 2.4 V passes the request's own bounds; the emulated instrument's limit (CONF:LIM?) is lower.
    limits = instrument.crossbar.info.limits
    body = visa_body(instrument, training={"max_epochs": 2, "pulse_v": limits.pulse_v_max + 0.1})
    r = service.post("/runs", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["training.pulse_v"]
    assert service.get("/runs").json()["total"] == 0
    assert instrument.command_counts()["*IDN?"] == 1  # Checked once, by the worker; nothing pulsed.
    assert not DEVICE_COMMANDS & set(instrument.command_counts())


def test_an_instrument_that_does_not_answer_is_502(service: httpx.Client) -> None:
    body = {
        "backend": {
            "name": "visa",
            "params": {"resource": f"TCPIP0::127.0.0.1::{free_port()}::SOCKET", "timeout_s": 1},
        }
    }
    r = service.post("/runs", json=body, headers=AUTH)
    assert r.status_code == 502 and r.json()["type"].endswith("backend-unavailable"), r.text
    assert service.get("/runs").json()["total"] == 0


# ---------------------------------------------------------------------- pause and resume
def paused_quietly(service: httpx.Client, instrument: InstrumentServer, run_id: str, when: str) -> int:
    """Pause the run; check the ABOR and the silence on the wire while paused; returns its epochs."""
    mark = instrument.command_count
    r = service.post(f"/runs/{run_id}/pause", json={"when": when}, headers=AUTH)
    assert r.status_code == 202 and r.json()["pause_request"] == when, r.text
    run = wait_status(service, run_id, {"paused"})
    assert "ABOR" in instrument.command_names(mark)
    quiet_from = instrument.command_count
    time.sleep(0.6)  # Three polls of the worker: nothing may go out meanwhile.
    assert instrument.command_names(quiet_from) == []
    assert service.get(f"/runs/{run_id}").json()["epochs"] == run["epochs"]
    return int(run["epochs"])


@pytest.mark.parametrize("when", ["after_epoch", "now"])
def test_pause_holds_at_0_v_and_resume_continues_the_same_run_without_gaps(
    service: httpx.Client, instrument: InstrumentServer, when: str
) -> None:
    run_id = start(service, visa_body(instrument, max_epochs=200))
    wait_epochs(service, run_id, 3)
    at_pause = paused_quietly(service, instrument, run_id, when)
    mark = instrument.command_count
    r = service.post(f"/runs/{run_id}/resume", headers=AUTH)
    assert r.status_code == 202, r.text
    wait_epochs(service, run_id, at_pause + 2)
    after = instrument.command_names(mark)
    assert after[0] == "MEAS:ALL?"  # Resume re-reads the crossbar before anything else.
    service.post(f"/runs/{run_id}/stop", headers=AUTH)
    run = wait_status(service, run_id, ENDED)
    assert run["status"] == "stopped"
    epochs = [e["epoch"] for e in history(service, run_id)]
    assert epochs == list(range(len(epochs))) and epochs[-1] == run["epochs"] > at_pause
    # Paused and resumed are events of their own (a browser's addEventListener('paused')), in order.
    assert [(name, status) for name, status, _ in status_events(service, run_id)] == [
        ("status", "queued"),
        ("status", "running"),
        ("paused", "paused"),
        ("resumed", "running"),
        ("status", "stopping"),
        ("status", "stopped"),
    ]
    assert instrument.command_counts()["*IDN?"] == 1  # The same process and connection throughout.


def test_a_paused_run_can_be_stopped_and_a_pause_needs_a_running_run(
    service: httpx.Client, instrument: InstrumentServer
) -> None:
    run_id = start(service, visa_body(instrument, max_epochs=200))
    wait_epochs(service, run_id, 2)
    epochs = paused_quietly(service, instrument, run_id, "now")
    assert service.post(f"/runs/{run_id}/stop", headers=AUTH).json()["status"] == "stopping"
    run = wait_status(service, run_id, ENDED)
    assert run["status"] == "stopped" and run["epochs"] == epochs
    assert instrument.command_names()[-1] == "ABOR"
    for action in ("pause", "resume"):
        r = service.post(f"/runs/{run_id}/{action}", json={}, headers=AUTH)
        assert r.status_code == 409 and r.json()["run_id"] == run_id, r.text


def test_a_paused_run_not_resumed_in_time_ends_stopped(tmp_path: Any, instrument: InstrumentServer) -> None:
    settings = ServiceSettings(
        database=tmp_path / "runs.sqlite3", token=TOKEN, times=ControlTimes(pause_timeout_s=0.5)
    )
    with live_service(settings) as url, httpx.Client(base_url=url, timeout=20) as client:
        run_id = start(client, visa_body(instrument, max_epochs=200))
        wait_epochs(client, run_id, 2)
        client.post(f"/runs/{run_id}/pause", json={"when": "now"}, headers=AUTH)
        run = wait_status(client, run_id, ENDED)
        assert run["status"] == "stopped" and "pause_timeout_s=0.5" in run["error"]
        assert history(client, run_id)  # Its history is kept.
