"""Backend parameters from a request are an allow-list: devices, instrument hosts, no library."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossbar_hil.api.service.backend_policy import request_param_errors
from crossbar_hil.api.service.settings import ServiceSettings

LOOPBACK = ["localhost"]


@pytest.fixture
def pty_path() -> Iterator[str]:
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(slave)
    os.close(master)


@pytest.mark.parametrize(
    "port",
    [
        "spy:///dev/ttyS0?file=/tmp/x",
        "loop://",
        "rfc2217://127.0.0.1:5025",
        "hwgrep://.*",
        "socket://127.0.0.1:5025?logging=debug",
        "/etc/passwd",
        "relative/tty",
        "socket://192.0.2.7:5025",
        "/dev/no-such-tty",
    ],
)
def test_a_serial_port_that_is_not_a_device_or_an_instrument_host_is_refused(port: str) -> None:
    errors = request_param_errors("serial", {"port": port}, LOOPBACK)
    assert list(errors) == ["backend.params.port"], errors


def test_serial_devices_and_loopback_sockets_pass(pty_path: str) -> None:
    for port in (pty_path, "socket://127.0.0.1:5025", "socket://localhost:5025", "COM3"):
        assert request_param_errors("serial", {"port": port}, LOOPBACK) == {}
    assert request_param_errors("serial", {"port": pty_path, "exclusive": False}, LOOPBACK) == {
        "backend.params.exclusive": "the exclusive lock on the port cannot be turned off here"
    }


def test_a_visa_library_or_a_foreign_host_from_a_request_is_refused(pty_path: str) -> None:
    errors = request_param_errors(
        "visa", {"resource": "TCPIP::192.0.2.7::80::SOCKET", "visa_library": "/tmp/evil.so"}, LOOPBACK
    )
    assert set(errors) == {"backend.params.resource", "backend.params.visa_library"}
    assert "--instrument-host" in errors["backend.params.resource"]
    assert list(request_param_errors("visa", {"resource": "ASRL/etc/passwd::INSTR"}, LOOPBACK)) == [
        "backend.params.resource"
    ]
    for resource in ("TCPIP::127.0.0.1::5025::SOCKET", f"ASRL{pty_path}::INSTR", "USB0::1::2::3::INSTR"):
        assert request_param_errors("visa", {"resource": resource, "visa_library": "@py"}, LOOPBACK) == {}


@pytest.mark.parametrize(
    "resource",
    [
        "ASRLspy:///dev/null?file=/tmp/x::INSTR",  # pyvisa-py hands the board to pyserial's URL handlers
        "ASRLsocket://192.0.2.7:5025::INSTR",
        "ASRLrfc2217://192.0.2.7:2217::INSTR",
        "PRLGX-TCPIP0::192.0.2.7::1234::INTFC",  # a Prologix adapter at any host
        "VICP::192.0.2.7::INSTR",
    ],
)
def test_a_visa_resource_that_is_a_url_or_another_host_is_refused(resource: str) -> None:
    assert list(request_param_errors("visa", {"resource": resource}, LOOPBACK)) == ["backend.params.resource"]


def test_the_operator_adds_instrument_hosts() -> None:
    hosts = ["localhost", "192.0.2.7"]
    assert request_param_errors("visa", {"resource": "TCPIP::192.0.2.7::5025::SOCKET"}, hosts) == {}
    assert request_param_errors("serial", {"port": "socket://192.0.2.7:5025"}, hosts) == {}
    assert ServiceSettings().instrument_hosts == ["localhost"]


@pytest.mark.system
def test_the_service_refuses_a_spy_url_before_opening_anything(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from service_support import AUTH, TOKEN

    from crossbar_hil.api.service.app import create_app

    settings = ServiceSettings(database=tmp_path / "runs.sqlite3", token=TOKEN)
    victim = tmp_path / "victim"
    body = {"backend": {"name": "serial", "params": {"port": f"spy://{tmp_path}/tty?file={victim}"}}}
    with TestClient(create_app(settings)) as client:
        r = client.post("/runs", json=body, headers=AUTH)
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["backend.params.port"]
        r = client.post(
            "/runs",
            json={
                "backend": {
                    "name": "visa",
                    "params": {"resource": "TCPIP::127.0.0.1::9::SOCKET", "visa_library": str(victim)},
                }
            },
            headers=AUTH,
        )
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [
            "backend.params.visa_library"
        ]
        assert client.get("/runs").json()["total"] == 0
    assert not victim.exists()
