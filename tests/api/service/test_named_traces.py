"""The service replays traces by name from its library (hil serve --trace-dir); paths stay refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from service_support import AUTH, wait_status

from crossbar_hil.api.service.app import create_app
from crossbar_hil.api.service.settings import ServiceSettings


@pytest.fixture
def library(tmp_path: Path) -> Path:
    folder = tmp_path / "traces"
    folder.mkdir()
    g = 4.5e-7 + 7e-8 * (1 - np.exp(-np.arange(31) / 4))  # a smooth device of 30 pulses
    (folder / "bench_device_7.csv").write_text("\n".join(f"{x:.9e}" for x in g) + "\n")
    (folder / "notes.txt").write_text("not a trace")
    return folder


@pytest.fixture
def client(settings: ServiceSettings, library: Path) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"run_isolation": "thread", "trace_dir": library})
    with TestClient(create_app(settings)) as c:
        yield c


def test_a_run_replays_a_named_trace_listed_by_get_traces(client: TestClient, library: Path) -> None:
    listed = client.get("/traces").json()
    assert [t["name"] for t in listed] == ["bench_device_7"] and listed[0]["n_pulses"] == 30
    body = {"backend": {"params": {"trace_name": "bench_device_7", "seed": 2}}, "training": {"max_epochs": 5}}
    r = client.post("/runs", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    run = wait_status(client, r.json()["id"], {"converged", "not_converged", "failed"})
    assert run["status"] != "failed", run
    result = client.get(f"/runs/{run['id']}/result").json()
    assert result["config"]["backend"]["params"]["trace"] == str(library / "bench_device_7.csv")
    assert ",EmulatedCrossbar,trace," in result["backend"]  # the emulator replayed the trace


def test_an_unknown_name_and_a_path_are_refused_naming_the_field(client: TestClient) -> None:
    r = client.post("/runs", json={"backend": {"params": {"trace_name": "nope"}}}, headers=AUTH)
    assert r.status_code == 422
    assert "backend.params.trace_name" in r.text and "bench_device_7" in r.text
    r = client.post("/runs", json={"backend": {"params": {"trace": "/etc/hosts"}}}, headers=AUTH)
    assert r.status_code == 422 and "backend.params.trace" in r.text


def test_without_a_library_a_name_is_refused(settings: ServiceSettings) -> None:
    with TestClient(create_app(settings.model_copy(update={"run_isolation": "thread"}))) as c:
        assert c.get("/traces").json() == []
        r = c.post("/runs", json={"backend": {"params": {"trace_name": "x"}}}, headers=AUTH)
        assert r.status_code == 422 and "no trace library" in r.text
