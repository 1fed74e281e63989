"""`SerialBackend` over pyserial to the emulator's server: a pty, and a socket:// URL."""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import (
    check_limits_send_nothing,
    check_operations_against_the_served_crossbar,
    served,
)

from crossbar_hil.drivers.serial_backend import SerialBackend, SerialLink
from crossbar_hil.emulator.crossbar import EmulatorConfig
from crossbar_hil.emulator.testing import running_server
from crossbar_hil.seam.errors import CommunicationError, ConnectionLost, InstrumentTimeout
from crossbar_hil.seam.registry import create_backend

pytestmark = pytest.mark.system


@pytest.mark.parametrize("transport", ["serial-pty", "serial-tcp"])
def test_operations_are_bit_exact_over_serial(transport: str) -> None:
    with served(transport, EmulatorConfig(seed=5)) as (server, backend):
        assert isinstance(backend, SerialBackend)
        check_operations_against_the_served_crossbar(server, backend)


def test_limits_send_nothing_over_serial() -> None:
    with served("serial-pty", EmulatorConfig(seed=5)) as (server, backend):
        check_limits_send_nothing(server, backend)


def test_built_by_name_from_the_registry() -> None:
    with running_server(EmulatorConfig(seed=2), transport="pty") as server:
        with create_backend("serial", {"port": server.device_path, "baudrate": 9600}) as backend:
            assert backend.info.identity == server.crossbar.info.identity
        assert server.commands[-1] == "ABOR"


def test_a_real_port_is_opened_exclusively() -> None:
    with served("serial-pty", EmulatorConfig()) as (server, backend):
        path = server.device_path
        # The port itself opens: without asking for the lock, a second open succeeds...
        SerialLink(path, timeout_s=1.0, exclusive=False).close()
        # ...so it is the lock that refuses a second exclusive user, by default too.
        with pytest.raises(CommunicationError, match=r"(?i)cannot open serial port.*lock"):
            SerialLink(path, timeout_s=1.0, exclusive=True)
        with pytest.raises(CommunicationError, match=r"(?i)lock"):
            SerialBackend.from_params({"port": path})
        assert backend.read_conductances().shape == (4, 4)  # the first user is unaffected
        commands = len(server.commands)
    # Once the first user has closed, the lock is free again.
    with running_server(transport="pty") as server:
        SerialLink(server.device_path, timeout_s=1.0, exclusive=True).close()
    assert commands == 6  # the refused openers sent nothing


def test_a_socket_instrument_in_use_refuses_a_second_driver() -> None:
    with served("serial-tcp", EmulatorConfig()) as (server, backend):
        with pytest.raises(ConnectionLost, match="in use by another client"):
            SerialBackend.from_params({"port": server.serial_url})
        backend.pulse(0, 0, 2.0, 1e-3)
        assert server.refused == 1 and server.connections == 1
        assert server.crossbar.position[0, 0] == 1


@pytest.mark.parametrize("kind", ["missing-device", "nobody-listening"])
def test_a_missing_port_is_a_communication_error(kind: str, closed_port: int) -> None:
    port = "/dev/does-not-exist" if kind == "missing-device" else f"socket://127.0.0.1:{closed_port}"
    with pytest.raises(CommunicationError, match="cannot open serial port"):
        SerialBackend.from_params({"port": port})


def test_a_reply_without_terminator_times_out_and_shows_what_came() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def answer_half() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(100)
                conn.sendall(b"1.0,2.")
                conn.recv(100)

        thread = threading.Thread(target=answer_half)
        thread.start()
        # 2 s: the half line must arrive before the timeout, also on a busy machine.
        link = SerialLink(f"socket://127.0.0.1:{listener.getsockname()[1]}", timeout_s=2)
        try:
            link.write_line("VMM? 0.1,0.1,0.1,0.1")
            with pytest.raises(InstrumentTimeout, match=r"partial: b'1\.0,2\.'"):
                link.read_line()
        finally:
            link.close()
            thread.join(5)
