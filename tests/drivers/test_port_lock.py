"""One serial device, one session: the serial and the VISA driver take the same OS lock on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crossbar_hil.drivers.port_lock import SerialDeviceLock, serial_device
from crossbar_hil.drivers.serial_backend import SerialLink
from crossbar_hil.drivers.visa_backend import VisaLink
from crossbar_hil.emulator.instrument.server import InstrumentServer, running_server
from crossbar_hil.seam.errors import CommunicationError

pytestmark = pytest.mark.system


@pytest.fixture
def pty_server() -> Iterator[InstrumentServer]:
    with running_server(transport="pty") as server:
        yield server


def test_a_visa_session_on_a_port_the_serial_driver_holds_is_refused_as_in_use(
    pty_server: InstrumentServer,
) -> None:
    path = pty_server.device_path
    held = SerialLink(path, timeout_s=2)
    try:
        with pytest.raises(CommunicationError, match="in use"):
            VisaLink(f"ASRL{path}::INSTR", timeout_s=2)
    finally:
        held.close()
    VisaLink(f"ASRL{path}::INSTR", timeout_s=2).close()  # Free again once released.


def test_the_serial_driver_is_refused_a_port_a_visa_session_holds(pty_server: InstrumentServer) -> None:
    path = pty_server.device_path
    held = VisaLink(f"ASRL{path}::INSTR", timeout_s=2)
    try:
        with pytest.raises(CommunicationError):
            SerialLink(path, timeout_s=2)
        with pytest.raises(CommunicationError, match="in use"):
            SerialDeviceLock(path)
    finally:
        held.close()
    SerialDeviceLock(path).release()


def test_only_asrl_device_resources_name_a_serial_device() -> None:
    assert serial_device("ASRL/dev/pts/4::INSTR") == "/dev/pts/4"
    assert serial_device("asrl/dev/ttyUSB0::instr") == "/dev/ttyUSB0"
    assert serial_device("ASRL3::INSTR") is None
    assert serial_device("TCPIP::127.0.0.1::5025::SOCKET") is None
