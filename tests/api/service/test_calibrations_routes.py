"""The service's calibrations: listed, shown, deleted with the token; a run uses its instrument's newest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from service_support import AUTH, wait_status

from crossbar_hil.api.service.app import create_app
from crossbar_hil.api.service.settings import ServiceSettings
from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.procedures.calibrate import calibrate
from crossbar_hil.runs.calibrations import Calibrations
from crossbar_hil.runs.store import RunStore


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"run_isolation": "thread"})
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def cal_id(settings: ServiceSettings) -> str:
    store = RunStore(settings.database)
    try:
        return Calibrations(store).add(calibrate(EmulatedCrossbar(EmulatorConfig(seed=6)), n_pulses=20))
    finally:
        store.close()


def test_calibrations_are_listed_shown_used_by_a_run_and_deleted_with_the_token(
    cal_id: str, client: TestClient
) -> None:
    listed = client.get("/calibrations").json()
    assert [c["id"] for c in listed] == [cal_id] and listed[0]["devices"] == 16
    assert client.get("/calibrations", params={"identity": "nobody"}).json() == []
    shown = client.get(f"/calibrations/{cal_id}").json()
    assert shown["identity"].endswith("seed=6") and len(shown["conductances_siemens"]) == 16

    run = client.post("/runs", json={"backend": {"params": {"seed": 6}}}, headers=AUTH).json()
    assert wait_status(client, run["id"], {"converged", "not_converged", "failed"})["status"] == "converged"
    result = client.get(f"/runs/{run['id']}/result").json()
    assert result["curve_source"].startswith("calibration of ") and cal_id in result["curve_source"]

    assert client.delete(f"/calibrations/{cal_id}").status_code == 401
    assert client.delete(f"/calibrations/{cal_id}", headers=AUTH).status_code == 204
    missing = client.get(f"/calibrations/{cal_id}")
    assert missing.status_code == 404 and missing.json()["type"].endswith("calibration-not-found")
