"""Fixtures of the driver tests: a scripted fake link and the emulator's instrument server."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from drivers.link import ProtocolBackend
from drivers.serial_backend import SerialBackend
from drivers.visa_backend import VisaBackend
from hil.errors import ConnectionLost, InstrumentTimeout

HANDSHAKE = {
    "*IDN?": "ACME,XB44,0001,fw1",
    "SYST:VERS?": "1.0",
    "CONF:SHAPE?": "4,4",
    "CONF:LIM?": "0.2,2.5,1e-06,2.0,0.001,256",
    "CONF:CAP?": "1,0",
    "MEAS:ALL?": ",".join(repr(1e-7 * (k + 1)) for k in range(16)),
    "VMM?": "1e-08,2e-08,3e-08,4e-08",
}

Reply = str | None | Callable[[str], "str | None"]


class FakeLink:
    """A :class:`~drivers.link.Link` answering from a table: command name -> reply line.

    A reply of None means the instrument stays silent (the read times out);
    ``drop()`` makes the link behave as a closed connection. ``sent`` lists every
    line written. Replies are queued, so a late reply is read by the next read.
    """

    description = "fake"

    def __init__(self, replies: dict[str, Reply] | None = None) -> None:
        self.replies: dict[str, Reply] = {**HANDSHAKE, **(replies or {})}
        self.sent: list[str] = []
        self.queue: deque[str] = deque()
        self.closed = False
        self.dropped = False
        self.owed = 0
        self._busy = threading.Lock()

    def write_line(self, line: str) -> None:
        if self.dropped:
            raise ConnectionLost("fake: connection dropped")
        self.sent.append(line)
        self.owed += 1
        reply = self.replies.get(line.split(" ", 1)[0], "OK")
        if callable(reply):
            reply = reply(line)
        if reply is not None:
            self.queue.append(reply)

    def read_line(self) -> str:
        if self.dropped:
            raise ConnectionLost("fake: connection dropped")
        if not self.queue:
            raise InstrumentTimeout("fake: no reply")
        self.owed -= 1
        return self.queue.popleft()

    def close(self) -> None:
        self.closed = True

    def drop(self) -> None:
        self.dropped = True


@pytest.fixture
def fake_link() -> FakeLink:
    return FakeLink()


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
    from emulator.server import running_server

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
