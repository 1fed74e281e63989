"""The service under a real uvicorn on 127.0.0.1: live streams, stops on an instrument, exclusivity.

Runs on an instrument go through the VISA driver to the emulator's instrument
server, whose replies are delayed so that a run lasts long enough to be watched,
reconnected to and stopped mid-way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from service_support import AUTH, read_events, wait_epochs, wait_status

from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.server import InstrumentServer, running_server
from crossbar_hil.procedures.training import run_training
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import EpochRecord, TrainingResult, first_difference

pytestmark = pytest.mark.system

ENDED = {"converged", "not_converged", "stopped", "failed"}


@pytest.fixture
def instrument() -> Iterator[InstrumentServer]:
    """The emulated instrument over TCP, each reply 5 ms late (about 40 ms per epoch)."""
    with running_server(faults=FaultPlan(reply_delay_s=0.005)) as server:
        yield server


def visa_body(server: InstrumentServer, max_epochs: int = 30) -> dict[str, Any]:
    return {
        "backend": {"name": "visa", "params": {"resource": server.resource_string, "timeout_s": 5}},
        "preset": "reference",  # Does not converge: the run lasts its epochs.
        "training": {"max_epochs": max_epochs, "patience": 0},
    }


def start(client: httpx.Client, body: dict[str, Any]) -> str:
    r = client.post("/runs", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def streamed_history(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"]["record"] for e in events if e["event"] == "epoch"]


def stored_history(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    return client.get(f"/runs/{run_id}/epochs", params={"limit": 1000}).json()["items"]


def test_follow_an_emulator_run_to_the_end(service: httpx.Client) -> None:
    # The reference settings do not converge on this device: a run of all its 50 epochs.
    run_id = start(service, {"preset": "reference", "backend": {"params": {"seed": 1}}})
    with service.stream("GET", f"/runs/{run_id}/events") as r:
        events = read_events(r)
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses == ["queued", "running", "not_converged"] and events[-1]["event"] == "status"
    assert streamed_history(events) == stored_history(service, run_id)
    trained = service.get(f"/runs/{run_id}").json()["epochs"]
    assert len(streamed_history(events)) == trained + 1 and trained > 0  # Epoch 0 trains nothing.


def test_reconnect_mid_run_with_last_event_id_misses_nothing(
    service: httpx.Client, instrument: InstrumentServer
) -> None:
    run_id = start(service, visa_body(instrument))
    with service.stream("GET", f"/runs/{run_id}/events") as r:
        first = read_events(r, stop_after=6)
    assert not [e for e in first if e["event"] == "status" and e["data"]["status"] in ENDED]  # Left mid-run.
    headers = {"Last-Event-ID": str(first[-1]["id"])}
    with service.stream("GET", f"/runs/{run_id}/events", headers=headers) as r:
        rest = read_events(r)
    events = first + rest
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["data"]["status"] == "not_converged"
    assert streamed_history(events) == stored_history(service, run_id)
    # The run through the VISA driver is the run on the emulator, bit for bit.
    config = RunConfig.model_validate({"preset": "reference", "training": {"max_epochs": 30, "patience": 0}})
    direct = run_training(config, backend=EmulatedCrossbar()).result
    served = TrainingResult.from_dict(
        service.get(f"/runs/{run_id}/result").json(),
        config.training,
        [EpochRecord.from_dict(e) for e in streamed_history(events)],
    )
    assert first_difference(served, direct) is None


def test_stop_mid_way_ends_within_one_epoch_with_abor_on_the_instrument(
    service: httpx.Client, instrument: InstrumentServer
) -> None:
    run_id = start(service, visa_body(instrument, max_epochs=200))
    seen = wait_epochs(service, run_id, 3)
    r = service.get(f"/runs/{run_id}/result")
    assert r.status_code == 409 and "has not ended" in r.json()["detail"]
    assert service.get(f"/runs/{run_id}/plots/error.png").status_code == 409
    assert len(service.get(f"/runs/{run_id}/history.csv").text.splitlines()) >= 1 + 3  # So far.
    mark = instrument.command_count
    r = service.post(f"/runs/{run_id}/stop", headers=AUTH)
    assert r.status_code == 202 and r.json()["status"] == "stopping"
    run = wait_status(service, run_id, ENDED)
    assert run["status"] == "stopped" and run["outcome"] == "stopped" and run["epochs"] >= seen
    with service.stream("GET", f"/runs/{run_id}/events") as stream:
        events = read_events(stream)  # In commit order: what came after the stop was written.
    stopping = next(e["id"] for e in events if e["event"] == "status" and e["data"]["status"] == "stopping")
    assert sum(1 for e in events if e["event"] == "epoch" and e["id"] > stopping) <= 1
    after = instrument.command_names(mark)
    assert "ABOR" in after and after[-1] == "ABOR"
    assert "PULS:LIST" not in after[after.index("ABOR") :]
    log = service.get(f"/runs/{run_id}/pulses", params={"limit": 10000}).json()
    pulses = [p for p in log["items"] if p["kind"] == "pulse"]
    assert len(pulses) == run["pulses"] == sum(e["pulses"] for e in stored_history(service, run_id))
    assert service.post(f"/runs/{run_id}/stop", headers=AUTH).json()["status"] == "stopped"  # Idempotent.


def test_a_busy_instrument_is_409_naming_the_run_that_holds_it(
    service: httpx.Client, instrument: InstrumentServer
) -> None:
    run_id = start(service, visa_body(instrument, max_epochs=200))
    r = service.post("/runs", json=visa_body(instrument), headers=AUTH)
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["run_id"] == run_id and instrument.resource_string in r.json()["detail"]
    assert service.get("/runs").json()["total"] == 1
    service.post(f"/runs/{run_id}/stop", headers=AUTH)
    wait_status(service, run_id, ENDED)
    again = start(service, visa_body(instrument, max_epochs=1))
    assert wait_status(service, again, ENDED)["status"] == "not_converged"


def test_the_emergency_stop_aborts_a_live_run_and_latches(
    service: httpx.Client, instrument: InstrumentServer
) -> None:
    run_id = start(service, visa_body(instrument, max_epochs=200))
    wait_epochs(service, run_id, 2)
    r = service.post("/emergency-stop", json={"reason": "test"}, headers=AUTH)
    assert r.json()["stopped_runs"] == [run_id]
    assert wait_status(service, run_id, ENDED)["status"] == "stopped"
    assert "ABOR" in instrument.command_names()
    assert service.post("/runs", json={}, headers=AUTH).status_code == 409
    service.delete("/emergency-stop", headers=AUTH)
    assert service.post("/runs", json={"training": {"max_epochs": 1}}, headers=AUTH).status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"training": {"max_epochs": -5}}, "training.max_epochs"),
        ({"training": {"pulse_v": 2.6}}, "training.pulse_v"),
        ({"backend": {"name": "no_such_backend"}}, "backend.name"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(service: httpx.Client, body: dict[str, Any], field: str) -> None:
    r = service.post("/runs", json=body, headers=AUTH)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert service.get("/runs").json()["total"] == 0


def test_401_without_or_with_a_wrong_token_and_404_for_unknown_runs(service: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-wrong-wrong"}):
        r = service.post("/runs", json={}, headers=headers)
        assert r.status_code == 401 and json.loads(r.text)["status"] == 401
        assert service.post("/emergency-stop", headers=headers).status_code == 401
    assert service.get("/runs").json()["total"] == 0
    for path in ("/runs/unknown", "/runs/unknown/events", "/runs/unknown/result"):
        assert service.get(path).status_code == 404


def test_shutting_down_with_a_follower_closes_the_stream_and_stops_the_run_at_0_v(
    settings: Any, instrument: InstrumentServer
) -> None:
    import threading

    from service_support import live_service

    from crossbar_hil.runs.store import RunStore

    with live_service(settings) as url, httpx.Client(base_url=url, timeout=20) as client:
        run_id = start(client, visa_body(instrument, max_epochs=500))
        wait_epochs(client, run_id, 2)

        def follow() -> None:
            try:
                with httpx.stream("GET", f"{url}/runs/{run_id}/events", timeout=20) as r:
                    read_events(r)
            except httpx.HTTPError:
                pass  # The service closes the stream as it shuts down.

        follower = threading.Thread(target=follow)
        follower.start()
        time.sleep(0.3)
    follower.join(10)
    assert not follower.is_alive()
    store = RunStore(settings.database)
    run = store.get_run(run_id)
    store.close()
    assert run.status == "stopped" and "shutting down" in (run.error or "")
    assert instrument.command_names()[-1] == "ABOR"
