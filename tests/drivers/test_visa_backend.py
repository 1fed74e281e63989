"""`VisaBackend` over PyVISA (pyvisa-py) to the emulator's server on TCPIP::127.0.0.1::<port>::SOCKET."""

from __future__ import annotations

import pytest
from conftest import (
    check_limits_send_nothing,
    check_operations_against_the_served_crossbar,
    served,
)

from crossbar_hil.drivers.visa_backend import VisaBackend
from crossbar_hil.emulator.crossbar import EmulatorConfig
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.testing import running_server
from crossbar_hil.seam.errors import CommunicationError, ConnectionLost, LimitError
from crossbar_hil.seam.registry import create_backend

pytestmark = pytest.mark.system


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


def test_nobody_listening_is_a_communication_error(closed_port: int) -> None:
    with pytest.raises(CommunicationError, match="refused"):
        VisaBackend.from_params({"resource": f"TCPIP::127.0.0.1::{closed_port}::SOCKET"})


def test_a_second_client_is_refused_while_the_first_owns_the_instrument(caplog) -> None:
    with served("visa-tcp", EmulatorConfig()) as (server, first):
        assert not first.link.locked  # pyvisa-py has no VISA locks: the instrument refuses
        with pytest.raises(ConnectionLost, match="in use by another client"):
            VisaBackend.from_params({"resource": server.resource_string, "timeout_s": 5})
        assert server.refused == 1
        first.pulse(1, 1, 2.0, 1e-3)  # the owner is unaffected
        assert server.crossbar.position[1, 1] == 1
    assert any("refused connection" in r.getMessage() for r in caplog.records)
    assert server.command_counts()["PULS:LIST"] == 1


def test_the_next_client_is_served_once_the_first_has_closed() -> None:
    with running_server(EmulatorConfig()) as server:
        for _ in range(3):  # close and reconnect at once, as a script in a loop does
            with VisaBackend.from_params({"resource": server.resource_string}) as backend:
                backend.pulse(0, 0, 2.0, 1e-3)
        assert server.refused == 0 and server.connections == 3
        assert server.crossbar.position[0, 0] == 3


class _LockingResource:
    """Stands in for a pyvisa resource whose VISA library supports (or refuses) locks."""

    def __init__(self, error_code: int | None) -> None:
        self.error_code = error_code
        self.closed = False
        self.timeout = 1000

    def lock_excl(self, timeout: float) -> None:
        import pyvisa

        if self.error_code is not None:
            raise pyvisa.errors.VisaIOError(self.error_code)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("outcome", ["granted", "locked-elsewhere"])
def test_visa_sessions_ask_for_an_exclusive_lock(outcome: str, monkeypatch) -> None:
    import pyvisa

    from crossbar_hil.drivers.visa_backend import VisaLink

    code = None if outcome == "granted" else pyvisa.constants.StatusCode.error_resource_locked
    resource = _LockingResource(code)
    monkeypatch.setattr(pyvisa.ResourceManager, "open_resource", lambda self, *a, **k: resource)
    if outcome == "granted":
        link = VisaLink("ASRL/dev/ttyUSB9::INSTR", timeout_s=1.0)
        assert link.locked and not resource.closed
        link.close()
    else:
        with pytest.raises(CommunicationError, match=r"locked by another session.*in use"):
            VisaLink("ASRL/dev/ttyUSB9::INSTR", timeout_s=1.0)
        assert resource.closed


def test_an_unavailable_library_is_a_communication_error() -> None:
    params = {"resource": "TCPIP::127.0.0.1::1::SOCKET", "visa_library": "@nonexistent"}
    with pytest.raises(CommunicationError, match="unavailable"):
        VisaBackend.from_params(params)


@pytest.mark.parametrize(
    ("resource", "match"),
    [
        ("not a resource", "not a VISA resource string; expected e.g. TCPIP::"),
        ("TCPIP::127.0.0.1::5025", "for a raw socket on port 5025 write TCPIP::127.0.0.1::5025::SOCKET"),
        ("TCPIP::127.0.0.1::99999::SOCKET", "port 99999 is out of range: allowed 1..65535"),
    ],
)
def test_a_malformed_resource_is_bad_input_saying_what_to_write(resource: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        VisaBackend.from_params({"resource": resource})


def test_a_closed_socket_is_a_lost_connection_not_a_timeout() -> None:
    # A long timeout: the closed socket must end the read, not the clock (a busy machine's late
    # reply is not what is tested).
    with served("visa-tcp", EmulatorConfig(), timeout_s=30) as (server, backend):
        server.faults = FaultPlan(drop_after=server.command_count)
        with pytest.raises(ConnectionLost, match="closed by the instrument"):
            backend.read_conductances()


def test_user_limits_from_params_protect_the_device() -> None:
    params = {"limits": {"pulse_v_max": 1.5, "width_max_s": 0.01}}
    with served("visa-tcp", EmulatorConfig(), **params) as (server, backend):
        assert server.crossbar.info.limits.pulse_v_max == 2.5  # the instrument would allow 2 V
        before = list(server.commands)
        with pytest.raises(LimitError, match="nothing was sent"):
            backend.pulse(0, 0, 2.0, 1e-3)
        with pytest.raises(LimitError, match="width_s"):
            backend.pulse(0, 0, 1.0, 0.02)
        assert server.commands == before
        backend.pulse(0, 0, 1.5, 0.01)
        assert server.command_names(len(before)) == ["PULS:LIST"]
