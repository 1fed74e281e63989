"""Fixtures of the driver tests: the shipped fake link (:mod:`crossbar_hil.drivers.testing`)
and the emulator's
instrument server (:mod:`crossbar_hil.emulator.testing`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from crossbar_hil.drivers.protocol_backend import ProtocolBackend
from crossbar_hil.drivers.serial_backend import SerialBackend
from crossbar_hil.drivers.testing import FakeLink
from crossbar_hil.drivers.visa_backend import VisaBackend

READINGS = {
    "MEAS:ALL?": ",".join(repr(1e-7 * (k + 1)) for k in range(16)),
    "VMM?": "1e-08,2e-08,3e-08,4e-08",
}
"""Replies of the fake 4 x 4 instrument to reads: G[j][k] = 1e-7 * (4j + k + 1) S."""


@pytest.fixture
def fake_link() -> FakeLink:
    return FakeLink(READINGS)


@pytest.fixture
def fake_backend(fake_link: FakeLink) -> Iterator[ProtocolBackend]:
    backend = ProtocolBackend(fake_link)
    fake_link.sent.clear()
    yield backend
    backend.close()


# ------------------------------------------------------------------ emulator server
TRANSPORTS = ("visa-tcp", "serial-pty")


@contextmanager
def served(
    transport: str, config: Any = None, faults: Any = None, timeout_s: float = 2.0, **params: Any
) -> Iterator[tuple[Any, ProtocolBackend]]:
    """The emulator's instrument server and a driver connected to it; both always stopped."""
    from crossbar_hil.emulator.testing import running_server

    kind = "tcp" if transport.endswith("tcp") else "pty"
    with running_server(config, transport=kind, faults=faults) as server:
        if transport == "visa-tcp":
            params = {"resource": server.resource_string, **params}
            backend: ProtocolBackend = VisaBackend.from_params({"timeout_s": timeout_s, **params})
        else:
            params = {"port": server.serial_url, **params}
            backend = SerialBackend.from_params({"timeout_s": timeout_s, **params})
        try:
            yield server, backend
        finally:
            backend.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that nothing listens on, for the whole test.

    A socket is bound to it but never listens, so no other program can take the
    port meanwhile, and a connection to it is refused.
    """
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def check_operations_against_the_served_crossbar(server: Any, backend: ProtocolBackend) -> None:
    """Every backend operation returns bit for bit what the served crossbar holds."""
    import numpy as np

    xbar = server.crossbar
    assert backend.info == xbar.info
    assert np.array_equal(backend.read_conductances(0.05), xbar.conductances())
    backend.reset(2, 3)
    assert backend.pulse_many([(2, 3, 2.0, 1e-3), (2, 3, 2.0, 1e-3), (0, 1, 2.0, 1e-3)]) == 3
    backend.pulse(0, 1, 2.5, 1e-3)
    assert xbar.position[2, 3] == 2 and xbar.position[0, 1] == 2
    g = backend.read_conductances(0.05)
    assert np.array_equal(g, xbar.conductances())
    v = np.array([0.1, -0.1, 0.05, -0.2])
    # The served crossbar's own VMM (a fixed-order sum, emulator.physics.column_currents), bit for bit.
    assert np.array_equal(backend.apply(v), xbar.apply(v))
    np.testing.assert_allclose(xbar.apply(v), v @ xbar.conductances(), rtol=1e-12)
    backend.abort()
    assert xbar.aborts == 1
    assert server.command_names(5) == [
        "MEAS:ALL?",
        "RST:DEV",
        "PULS:LIST",
        "PULS:LIST",
        "MEAS:ALL?",
        "VMM?",
        "ABOR",
    ]


def check_limits_send_nothing(server: Any, backend: ProtocolBackend) -> None:
    """Out-of-range requests raise LimitError and the instrument receives nothing."""
    import pytest

    from crossbar_hil.seam.errors import LimitError

    before = list(server.commands)
    for call in (
        lambda: backend.pulse(0, 0, 3.0, 1e-3),
        lambda: backend.pulse(0, 0, -2.0, 5.0),
        lambda: backend.pulse_many([(0, 0, 2.0, 1e-3), (9, 0, 2.0, 1e-3)]),
        lambda: backend.apply([0.1, 0.1, 0.1, 0.25]),
        lambda: backend.read_conductances(-0.3),
    ):
        with pytest.raises(LimitError):
            call()
    assert server.commands == before
    assert backend.fault is None
