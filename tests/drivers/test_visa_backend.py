"""`VisaBackend` over PyVISA (pyvisa-py) to the emulator's server on TCPIP::127.0.0.1::<port>::SOCKET."""

from __future__ import annotations

import pytest
from conftest import (
    check_limits_send_nothing,
    check_operations_against_the_served_crossbar,
    free_tcp_port,
    served,
)

from drivers.visa_backend import VisaBackend
from emulator.crossbar import EmulatorConfig
from emulator.server import FaultPlan, running_server
from hil.errors import CommunicationError, ConnectionLost
from hil.registry import create_backend


def test_operations_are_bit_exact_over_visa() -> None:
    with served("visa-tcp", EmulatorConfig(seed=4)) as (server, backend):
        assert isinstance(backend, VisaBackend)
        assert backend.link.description == server.resource_string
        check_operations_against_the_served_crossbar(server, backend)


def test_limits_send_nothing_over_visa() -> None:
    with served("visa-tcp", EmulatorConfig(seed=4)) as (server, backend):
        check_limits_send_nothing(server, backend)


def test_built_by_name_from_the_registry(tmp_path) -> None:
    log = tmp_path / "visa.log"
    with running_server(EmulatorConfig(seed=2)) as server:
        resource = server.resource_string
        params = {"resource": resource, "timeout_s": 1, "traffic_log": str(log)}
        with create_backend("visa", params) as backend:
            assert backend.info.identity == server.crossbar.info.identity
            backend.read_conductances()
    text = log.read_text()
    assert f"{resource} > MEAS:ALL? 0.05" in text
    assert f"{resource} < " in text


def test_nobody_listening_is_a_communication_error() -> None:
    with pytest.raises(CommunicationError, match="refused"):
        VisaBackend.from_params({"resource": f"TCPIP::127.0.0.1::{free_tcp_port()}::SOCKET"})


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"resource": "not a resource"}, "cannot open VISA resource"),
        ({"resource": "TCPIP::127.0.0.1::1::SOCKET", "visa_library": "@nonexistent"}, "unavailable"),
    ],
)
def test_bad_resource_or_library(params: dict[str, str], match: str) -> None:
    with pytest.raises(CommunicationError, match=match):
        VisaBackend.from_params(params)


def test_a_closed_socket_is_a_lost_connection_not_a_timeout() -> None:
    with served("visa-tcp", EmulatorConfig(), timeout_s=0.3) as (server, backend):
        server.faults = FaultPlan(drop_after=server.command_count)
        with pytest.raises(ConnectionLost, match="closed by the instrument"):
            backend.read_conductances()
