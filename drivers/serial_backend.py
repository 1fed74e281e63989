"""`SerialBackend`: the crossbar wire protocol over pyserial.

``port`` is a port name (``/dev/ttyUSB0``, ``COM3``, a pty such as
``/dev/pts/5``) or a pyserial URL (``socket://127.0.0.1:5025``,
``rfc2217://...``). Real ports (and ptys) are opened with ``exclusive=True`` by
default: pyserial then takes an advisory ``flock`` on the port, so a second
program that also asks for exclusive access (every crossbar-hil driver) is
refused instead of interleaving its commands with ours. A program that opens
the port without asking for a lock is not stopped by it. URLs are not locked;
a ``socket://`` instrument refuses a second connection itself (``PROTOCOL.md``).
Lines end in ``\\n``.

Everything else (commands, limits, faults) is :class:`~crossbar_hil.drivers.protocol_backend.ProtocolBackend`.
"""

from __future__ import annotations

import select
import socket
from typing import Any, ClassVar

from pydantic import Field, field_validator

from crossbar_hil.drivers.connect_errors import (
    check_host_resolves,
    check_serial_port,
    explain_os_error,
    socket_endpoint,
)
from crossbar_hil.drivers.link import MAX_REPLY_CHARS, LineReader, LinkParams
from crossbar_hil.drivers.protocol_backend import ProtocolBackend
from crossbar_hil.seam.errors import CommunicationError, ConnectionLost, InstrumentTimeout

_CHUNK = 65536


class SerialParams(LinkParams):
    """Parameters of the ``serial`` backend."""

    port: str = Field(
        min_length=1, description="Port name or pyserial URL, e.g. /dev/ttyUSB0 or socket://host:5025."
    )
    baudrate: int = Field(115200, gt=0, description="Baud rate (bit/s); ignored by sockets and ptys.")
    exclusive: bool = Field(True, description="Take an advisory exclusive lock on a real port (not on URLs).")

    @field_validator("port")
    @classmethod
    def _port(cls, value: str) -> str:
        return check_serial_port(value)


class SerialLink:
    """One serial port (or pyserial URL) as a :class:`~crossbar_hil.drivers.link.Link`; timeout in s."""

    def __init__(
        self, port: str, *, timeout_s: float, baudrate: int = 115200, exclusive: bool = True
    ) -> None:
        import serial  # pyserial: when a port is opened, so `hil --help` does not load it

        self._failed: tuple[type[Exception], ...] = (serial.SerialException, OSError)
        self._failed_or_bad: tuple[type[Exception], ...] = (*self._failed, ValueError)
        self._timed_out = serial.SerialTimeoutException
        self.description = port
        self.timeout_s = timeout_s
        self._reader = LineReader(port)
        options: dict[str, Any] = {"baudrate": baudrate, "timeout": timeout_s, "write_timeout": timeout_s}
        if "://" not in port:
            options["exclusive"] = exclusive
        endpoint = socket_endpoint(port)
        if endpoint is not None and (why := check_host_resolves(*endpoint)) is not None:
            raise CommunicationError(f"cannot open serial port {port!r}: {why}")
        try:
            self._port = serial.serial_for_url(port, **options)
        except self._failed_or_bad as e:
            where = port.split("://", 1)[1] if port.startswith("socket://") else port
            reason = explain_os_error(where, e) if "lock" not in str(e) else str(e)
            raise CommunicationError(f"cannot open serial port {port!r}: {reason}") from e
        sock = getattr(self._port, "_socket", None)  # socket:// URLs: request/reply, no Nagle.
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Where the port has a selectable descriptor, reads take whatever has arrived and
        # select() does the waiting: pyserial's own timed reads go byte by byte on sockets.
        try:
            self._fd: int | None = self._port.fileno()
            self._port.timeout = 0
        except (AttributeError, NotImplementedError, *self._failed):
            self._fd = None

    def write_line(self, line: str) -> None:
        """Send one line."""
        try:
            self._port.write(line.encode("ascii") + b"\n")
        except self._timed_out as e:
            raise InstrumentTimeout(
                f"{self.description}: write not accepted within {self.timeout_s:g} s"
            ) from e
        except self._failed as e:
            raise ConnectionLost(f"{self.description}: {e}") from e

    def read_line(self, timeout_s: float | None = None, max_chars: int | None = None) -> str:
        """Receive one line within ``timeout_s`` (s; default :attr:`timeout_s`), a total
        deadline, of at most ``max_chars`` characters (see :class:`~crossbar_hil.drivers.link.LineReader`)."""
        wait_s = self.timeout_s if timeout_s is None else timeout_s
        return self._reader.read_line(self._fill, wait_s, MAX_REPLY_CHARS if max_chars is None else max_chars)

    def _fill(self, wait_s: float) -> bytes:
        """What arrives within ``wait_s`` (s)."""
        try:
            if self._fd is None:
                self._port.timeout = wait_s
                return bytes(self._port.read(max(1, min(self._port.in_waiting, _CHUNK))))
            if chunk := self._port.read(_CHUNK):
                return bytes(chunk)
            select.select([self._fd], [], [], wait_s)
            return b""
        except self._failed_or_bad as e:
            raise ConnectionLost(f"{self.description}: {e}") from e

    def close(self) -> None:
        """Close the port. Idempotent."""
        self._port.close()


class SerialBackend(ProtocolBackend):
    """Crossbar controller on a serial port or pyserial URL (registry name ``serial``)."""

    params_model: ClassVar[type[LinkParams]] = SerialParams
    backend_name: ClassVar[str] = "serial"

    @classmethod
    def open_link(cls, params: Any) -> SerialLink:
        p: SerialParams = params
        return SerialLink(p.port, timeout_s=p.timeout_s, baudrate=p.baudrate, exclusive=p.exclusive)
