"""The REST service in process: auth, validation, problem details, pages, results, e-stop, schema."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from service_support import AUTH, TOKEN, read_events, wait_status

from crossbar_hil.api.service.app import create_app
from crossbar_hil.api.service.openapi import SCHEMA_PATH, dumps
from crossbar_hil.api.service.settings import ServiceSettings
from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.procedures.training import RESULT_SCHEMA_VERSION, run_training
from crossbar_hil.reports.plots import PLOTS, minute_utc, plot_png, run_caption
from crossbar_hil.runs.store import SCHEMA_VERSION
from crossbar_hil.training.config import RunConfig

pytestmark = pytest.mark.system

PROBLEM = "application/problem+json"


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def start(client: TestClient, body: dict | None = None, **headers: str) -> dict:
    r = client.post("/runs", json=body or {}, headers={**AUTH, **headers})
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == f"/runs/{r.json()['id']}"
    return r.json()


def without_times(result: dict) -> dict:
    """A result without its start and end times (two runs of one config differ only there)."""
    return {k: v for k, v in result.items() if k not in ("started_at", "ended_at")}


def test_the_served_schema_is_the_committed_one(client: TestClient) -> None:
    served = client.get("/openapi.json").json()
    assert dumps(served) == SCHEMA_PATH.read_text(encoding="utf-8"), (
        "the API changed: review it and run `python -m crossbar_hil.api.service.openapi`"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/runs"),
        ("POST", "/runs/x/stop"),
        ("DELETE", "/runs/x"),
        ("POST", "/emergency-stop"),
        ("DELETE", "/emergency-stop"),
        ("GET", "/instruments?probe=true"),
    ],
)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", "Bearer"])
def test_every_request_that_acts_needs_the_token(
    client: TestClient, method: str, path: str, auth: str | None
) -> None:
    headers = {} if auth is None else {"Authorization": auth}
    r = client.request(method, path, json={}, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["status"] == 401 and client.get("/runs").json()["total"] == 0


def test_without_a_configured_token_nothing_can_be_started(tmp_path: Path) -> None:
    with TestClient(create_app(ServiceSettings(database=tmp_path / "db"))) as c:
        r = c.post("/runs", json={}, headers=AUTH)
        assert r.status_code == 401 and "no token configured" in r.json()["detail"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.org", "::"])
def test_a_non_loopback_address_needs_a_token(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValidationError, match="not a loopback address"):
        ServiceSettings(host=host, database=tmp_path / "db")
    assert ServiceSettings(host=host, database=tmp_path / "db", token=TOKEN).host == host
    assert ServiceSettings(host="::1", database=tmp_path / "db").token is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"training": {"max_epochs": -1}}, "training.max_epochs"),
        ({"training": {"pulse_v": 3.0}}, "training.pulse_v"),
        ({"training": {"pulse_v": -0.5}}, "training.pulse_v"),
        ({"backend": {"name": "nope"}}, "backend.name"),
        ({"backend": {"name": "crossbar_hil.seam.registry:create_backend"}}, "backend.name"),
        ({"backend": {"params": {"seed": -1}}}, "backend.params.seed"),
        ({"backend": {"params": {"trace": "/no/such/file.dat"}}}, "backend.params.trace"),
        ({"task": {"train": []}}, "task.train"),
        ({"training": {"beta": "x"}}, "training.beta"),
        ({"extra": 1}, "extra"),
        ([1, 2], "body"),
        ("null", "body"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client: TestClient, body: object, field: str) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    r = client.post("/runs", content=content, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert (
        r.headers["content-type"] == PROBLEM and problem["status"] == 422 and problem["instance"] == "/runs"
    )
    assert field in [e["field"] for e in problem["errors"]], problem
    assert client.get("/runs").json()["total"] == 0


@pytest.mark.parametrize(
    "content",
    [b"{", b"\xff\xfe", b"[" * 5000, b'{"training": {"max_epochs": 1e999}}', b'{"training": NaN}', b"", b"0"]
    + [b'{"backend": {"params": {"rows": ' + x + b"}}}" for x in (b"1e309", b"-0", b'"4"', b"[]", b"{}")],
)
def test_no_malformed_body_gives_500(client: TestClient, content: bytes) -> None:
    r = client.post("/runs", content=content, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code in (202, 400, 422), r.text
    assert r.status_code == 202 or r.headers["content-type"] == PROBLEM


def test_a_body_too_large_is_413(client: TestClient) -> None:
    from crossbar_hil.api.service.limits import MAX_BODY_BYTES

    big = b'{"backend": {"params": {"x": "' + b"a" * MAX_BODY_BYTES + b'"}}}'
    r = client.post("/runs", content=big, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM

    def chunks():  # No Content-Length: counted as it arrives.
        yield big[:500_000]
        yield big[500_000:]

    r = client.post("/runs", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and client.get("/runs").json()["total"] == 0


def test_unknown_runs_are_404_problems(client: TestClient) -> None:
    for path in ("/runs/nope", "/runs/nope/epochs", "/runs/nope/pulses", "/runs/nope/result",
                 "/runs/nope/history.csv", "/runs/nope/plots", "/runs/nope/plots/error.png",
                 "/runs/nope/events"):  # fmt: skip
        r = client.get(path)
        assert (r.status_code, r.headers["content-type"]) == (404, PROBLEM), path
        assert r.json()["detail"] == "no run 'nope'"
    for method, path in (("POST", "/runs/nope/stop"), ("DELETE", "/runs/nope")):
        assert client.request(method, path, headers=AUTH).status_code == 404


def test_a_finished_run_gives_the_result_csv_and_plots_of_the_cli(client: TestClient) -> None:
    body = {"backend": {"params": {"seed": 2}}, "training": {"max_epochs": 20}}
    run = start(client, body)
    done = wait_status(client, run["id"], {"not_converged", "converged"})
    direct = run_training(RunConfig.model_validate(body), backend=EmulatedCrossbar.from_params({"seed": 2}))
    expected = without_times(json.loads(direct.to_json()))
    served = without_times(client.get(f"/runs/{run['id']}/result").json())
    assert served == expected  # The form of `hil train --json`.
    # Epochs trained, as hil train says them: the read before training (epoch 0) is not one.
    assert done["epochs"] == direct.result.epochs == len(direct.result.history) - 1
    assert done["pulses"] == direct.result.total_pulses
    rows = list(csv.DictReader(io.StringIO(client.get(f"/runs/{run['id']}/history.csv").text)))
    assert [float(r["error"]) for r in rows] == [r.error for r in direct.result.history]
    plots = client.get(f"/runs/{run['id']}/plots").json()["plots"]
    assert set(plots) == set(PLOTS)
    png = client.get(plots["error"])
    assert png.headers["content-type"] == "image/png"
    cfg = direct.config
    caption = run_caption(cfg, run=run["id"], date=minute_utc(done["created_at"]), beta=direct.result.beta)
    assert "run " + run["id"] in caption  # Each figure names its run, then is drawn as the CLI draws it.
    assert png.content == plot_png("error", direct.result, cfg.task, cfg.training, caption=caption)
    assert client.get(f"/runs/{run['id']}/plots/nope.png").status_code == 404


def test_epochs_and_pulses_are_paginated(client: TestClient) -> None:
    run = start(client, {"preset": "reference", "training": {"max_epochs": 10}})
    wait_status(client, run["id"], {"not_converged", "converged"})
    full = client.get(f"/runs/{run['id']}/epochs", params={"limit": 1000}).json()
    page = client.get(f"/runs/{run['id']}/epochs", params={"offset": 3, "limit": 4}).json()
    assert full["total"] == 11 and page["items"] == full["items"][3:7]
    assert [e["epoch"] for e in full["items"]] == list(range(11))
    pulses = client.get(f"/runs/{run['id']}/pulses", params={"limit": 5, "offset": 2}).json()
    log = client.get(f"/runs/{run['id']}/pulses", params={"limit": 10000}).json()["items"]
    assert sum(p["kind"] == "pulse" for p in log) == sum(e["pulses"] for e in full["items"])
    assert pulses["total"] == len(log) and pulses["items"] == log[2:7]
    for bad in ({"limit": 0}, {"limit": 100000}, {"offset": -1}):
        r = client.get(f"/runs/{run['id']}/epochs", params=bad)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == f"query.{next(iter(bad))}"


def test_runs_are_listed_by_status_with_pages(client: TestClient) -> None:
    ids = [start(client, {"preset": "reference", "training": {"max_epochs": 1}})["id"] for _ in range(3)]
    for run_id in ids:
        wait_status(client, run_id, {"not_converged"})
    listing = client.get("/runs", params={"status": "not_converged", "limit": 2}).json()
    assert listing["total"] == 3 and [r["id"] for r in listing["items"]] == ids[::-1][:2]
    assert client.get("/runs", params={"status": "running"}).json()["total"] == 0
    r = client.get("/runs", params={"status": "bogus"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.status.0"


def test_an_idempotency_key_makes_a_retried_post_return_the_same_run(client: TestClient) -> None:
    first = start(
        client, {"preset": "reference", "training": {"max_epochs": 1}}, **{"Idempotency-Key": "abc"}
    )
    again = start(
        client, {"preset": "reference", "training": {"max_epochs": 1}}, **{"Idempotency-Key": "abc"}
    )
    assert again["id"] == first["id"] and client.get("/runs").json()["total"] == 1
    r = client.post("/runs", json={"training": {"max_epochs": 2}}, headers={**AUTH, "Idempotency-Key": "abc"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "Idempotency-Key"


def test_stop_is_idempotent_and_delete_takes_finished_runs_only(client: TestClient) -> None:
    run = start(client, {"preset": "reference", "training": {"max_epochs": 2}})
    wait_status(client, run["id"], {"not_converged"})
    r = client.post(f"/runs/{run['id']}/stop", headers=AUTH)
    assert r.status_code == 202 and r.json()["status"] == "not_converged"
    assert client.delete(f"/runs/{run['id']}", headers=AUTH).status_code == 204
    assert client.get(f"/runs/{run['id']}").status_code == 404


def test_a_finished_run_streams_its_events_and_ends(client: TestClient) -> None:
    run = start(client, {"preset": "reference", "training": {"max_epochs": 3}})
    wait_status(client, run["id"], {"not_converged"})
    with client.stream("GET", f"/runs/{run['id']}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = read_events(r)
    assert [e["id"] for e in events] == list(range(1, 8))
    assert [e["event"] for e in events] == ["status", "status", "epoch", "epoch", "epoch", "epoch", "status"]
    with client.stream("GET", f"/runs/{run['id']}/events", headers={"Last-Event-ID": "5"}) as r:
        assert [e["id"] for e in read_events(r)] == [6, 7]
    assert client.get(f"/runs/{run['id']}/events", headers={"Last-Event-ID": "x"}).status_code == 422


def test_the_emergency_stop_latches_until_cleared(client: TestClient) -> None:
    assert client.get("/emergency-stop").json() == {"latched": False, "since": None, "reason": None,
                                                    "stopped_runs": []}  # fmt: skip
    r = client.post("/emergency-stop", json={"reason": "smoke in the lab"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["latched"] and r.json()["reason"] == "smoke in the lab"
    refused = client.post("/runs", json={}, headers=AUTH)
    assert refused.status_code == 409 and "smoke in the lab" in refused.json()["detail"]
    assert client.get("/health").json()["emergency_stop_latched"]
    assert client.delete("/emergency-stop", headers=AUTH).json()["latched"] is False
    start(client, {"preset": "reference", "training": {"max_epochs": 1}})


def test_backends_instruments_health_and_version(client: TestClient) -> None:
    assert {"emulator", "visa", "serial"} <= set(client.get("/backends").json()["backends"])
    found = client.get("/instruments").json()
    assert set(found) == {"found", "notes"}
    health = client.get("/health").json()
    assert (
        health["status"] == "ok"
        and health["active_runs"] == 0
        and health["store_schema_version"] == SCHEMA_VERSION
    )
    version = client.get("/version").json()
    assert version["result_schema_version"] == RESULT_SCHEMA_VERSION and version["version"] != "unknown"


def test_cors_is_off_by_default_and_on_when_asked(settings: ServiceSettings, client: TestClient) -> None:
    pre = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/runs", headers=pre).headers
    other_db = settings.database.with_name("other.sqlite3")
    allowed = settings.model_copy(update={"cors_origins": ["http://lab.example"], "database": other_db})
    with TestClient(create_app(allowed)) as c:
        r = c.options("/runs", headers={**pre, "Origin": "http://lab.example"})
        assert r.headers["access-control-allow-origin"] == "http://lab.example"


def test_a_second_service_on_the_same_database_is_refused(
    settings: ServiceSettings, client: TestClient
) -> None:
    from crossbar_hil.api.service.app import DatabaseInUse

    with pytest.raises(DatabaseInUse), TestClient(create_app(settings)):
        pass


@pytest.mark.parametrize(
    ("backend", "field"),
    [
        (
            {"name": "visa", "params": {"resource": "TCPIP::127.0.0.1::1::SOCKET", "traffic_log": "{db}"}},
            "backend.params.traffic_log",
        ),
        (
            {"name": "serial", "params": {"port": "/dev/null", "traffic_log": "/tmp/x.log"}},
            "backend.params.traffic_log",
        ),
        ({"name": "emulator", "params": {"trace": "{trace}"}}, "backend.params.trace"),
        (
            {"name": "emulator", "params": {"trace": "{trace}", "depression_trace": "{trace}"}},
            "backend.params.depression_trace",
        ),
        (
            {"name": "emulator", "params": {"device": {"kind": "trace", "path": "{trace}"}}},
            "backend.params.device.path",
        ),
    ],
)
def test_file_paths_in_backend_params_are_refused_naming_the_field(
    client: TestClient, settings: ServiceSettings, reference_trace_path: Path, backend: dict, field: str
) -> None:
    """A token holder may not make the service write (a traffic log into the run store) or read
    (a trace) the server's files."""
    text = (
        json.dumps(backend)
        .replace("{db}", str(settings.database))
        .replace("{trace}", str(reference_trace_path))
    )
    r = client.post("/runs", json={"backend": json.loads(text)}, headers=AUTH)
    assert r.status_code == 422, r.text
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert field in errors and "file paths are not accepted" in errors[field], errors
    assert client.get("/runs").json()["total"] == 0
