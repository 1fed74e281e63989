"""Instrument discovery: a probe sends ``*IDN?`` and nothing else."""

from __future__ import annotations

import pytest

from crossbar_hil.drivers.discovery import Found, probe
from crossbar_hil.emulator.crossbar import EmulatorConfig
from crossbar_hil.emulator.testing import running_server


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_a_probe_sends_only_idn(transport: str) -> None:
    with running_server(EmulatorConfig(seed=4), transport=transport) as server:
        found = (
            Found("visa", server.resource_string)
            if transport == "tcp"
            else Found("serial", server.device_path)
        )
        result = probe(found, timeout_s=5.0)
        assert server.wait_for_commands(1)
        assert result.identity == server.crossbar.info.identity
        assert result.probe_error is None
        assert server.commands == ["*IDN?"]  # no handshake, no ABOR: nothing moved


def test_a_probe_that_gets_no_answer_reports_why(closed_port: int) -> None:
    result = probe(Found("serial", f"socket://127.0.0.1:{closed_port}"), timeout_s=0.5)
    assert result.identity is None
    assert result.probe_error is not None and "CommunicationError" in result.probe_error


def test_a_port_visa_and_pyserial_both_list_is_listed_once() -> None:
    from crossbar_hil.drivers.discovery import one_per_device

    found = [
        Found("visa", "ASRL/dev/ttyS7::INSTR"),
        Found("visa", "TCPIP::127.0.0.1::5025::SOCKET"),
        Found("serial", "/dev/ttyS7", "16550A UART"),
        Found("serial", "/dev/ttyS8"),
    ]
    once = one_per_device(found)
    assert [(f.backend, f.address) for f in once] == [
        ("serial", "/dev/ttyS7"),
        ("visa", "TCPIP::127.0.0.1::5025::SOCKET"),
        ("serial", "/dev/ttyS8"),
    ]
    assert once[0].description == "16550A UART (also visa ASRL/dev/ttyS7::INSTR)"
