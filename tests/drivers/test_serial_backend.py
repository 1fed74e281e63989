"""`SerialBackend` over pyserial to the emulator's server: a pty, and a socket:// URL."""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import (
    check_limits_send_nothing,
    check_operations_against_the_served_crossbar,
    free_tcp_port,
    served,
)

from drivers.serial_backend import SerialBackend, SerialLink
from emulator.crossbar import EmulatorConfig
from emulator.server import running_server
from hil.errors import CommunicationError, InstrumentTimeout
from hil.registry import create_backend


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
    with served("serial-pty", EmulatorConfig()) as (server, _):
        with pytest.raises(CommunicationError, match="cannot open serial port"):
            SerialBackend.from_params({"port": server.device_path})
        shared = SerialBackend.from_params
        with pytest.raises(CommunicationError):
            shared({"port": server.device_path, "exclusive": True})


@pytest.mark.parametrize("port", ["/dev/does-not-exist", f"socket://127.0.0.1:{free_tcp_port()}"])
def test_a_missing_port_is_a_communication_error(port: str) -> None:
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
        link = SerialLink(f"socket://127.0.0.1:{listener.getsockname()[1]}", timeout_s=0.2)
        try:
            link.write_line("VMM? 0.1,0.1,0.1,0.1")
            with pytest.raises(InstrumentTimeout, match=r"partial: b'1\.0,2\.'"):
                link.read_line()
        finally:
            link.close()
            thread.join(5)
