"""`VisaBackend`: the crossbar wire protocol over PyVISA (any VISA resource).

Examples of resources: ``TCPIP::192.168.1.20::5025::SOCKET`` (raw socket, e.g.
the emulator server), ``ASRL/dev/ttyUSB0::INSTR``, ``USB0::...::INSTR``. The
default VISA library is ``@py`` (pyvisa-py, pure Python); give ``visa_library``
(e.g. ``""`` for the system's NI-VISA) to use another. Lines end in ``\\n``.

**Exclusive access.** The session asks VISA for an exclusive lock
(``viLock``) right after opening, so another VISA session on the same resource
cannot interleave commands; a resource locked by someone else is refused with
:class:`~crossbar_hil.seam.errors.CommunicationError` ("in use"). Where the library or the
resource does not support locks, e.g. pyvisa-py (all of it, including
``TCPIP::...::SOCKET``), the session opens without one (``VisaLink.locked`` is
False) and exclusivity rests on the instrument, which serves one connection at
a time (``PROTOCOL.md`` section 1).

Everything else (commands, limits, faults) is :class:`~crossbar_hil.drivers.protocol_backend.ProtocolBackend`.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
from contextlib import suppress
from time import monotonic
from typing import Any, ClassVar

from pydantic import Field, field_validator

from crossbar_hil.drivers.connect_errors import (
    check_host_resolves,
    check_visa_resource,
    explain_os_error,
    tcp_endpoint,
)
from crossbar_hil.drivers.link import MAX_REPLY_CHARS, LineReader, LinkParams
from crossbar_hil.drivers.port_lock import SerialDeviceLock, serial_device
from crossbar_hil.drivers.protocol_backend import ProtocolBackend
from crossbar_hil.seam.errors import CommunicationError, ConnectionLost, InstrumentTimeout, RunStopped

log = logging.getLogger(__name__)

_CHUNK = 65536


class VisaParams(LinkParams):
    """Parameters of the ``visa`` backend."""

    resource: str = Field(
        min_length=1, description="VISA resource string, e.g. TCPIP::127.0.0.1::5025::SOCKET."
    )
    visa_library: str = Field("@py", description="PyVISA library spec; '@py' is pyvisa-py.")

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        return check_visa_resource(value)


class VisaLink:
    """One VISA resource as a :class:`~crossbar_hil.drivers.link.Link`; timeout in s."""

    def __init__(self, resource: str, *, timeout_s: float, visa_library: str = "@py") -> None:
        import pyvisa

        self.description = resource
        self.timeout_s = timeout_s
        self._reader = LineReader(resource)
        self.locked = False
        """True when VISA granted this session an exclusive lock on the resource."""
        self._errors = pyvisa.errors
        self._timeout_code = pyvisa.constants.StatusCode.error_timeout
        self._max_count = pyvisa.constants.StatusCode.success_max_count_read
        try:
            self._rm = pyvisa.ResourceManager(visa_library)
        except (OSError, ValueError) as e:
            raise CommunicationError(f"VISA library {visa_library!r} unavailable: {e}") from e
        endpoint = tcp_endpoint(resource)
        if endpoint is not None and (why := check_host_resolves(*endpoint)) is not None:
            raise CommunicationError(f"cannot open VISA resource {resource!r}: {why}")
        device = serial_device(resource)
        # The serial driver's lock, taken before VISA touches the port (see port_lock).
        self._device_lock = SerialDeviceLock.take(device) if device is not None else None
        try:
            self._inst: Any = self._rm.open_resource(
                resource,
                read_termination="\n",
                write_termination="\n",
                timeout=round(timeout_s * 1000),
            )
        except Exception as e:  # pyvisa-py raises a bare Exception("could not connect: ...") too.
            if self._device_lock is not None:
                self._device_lock.release()
            if isinstance(e, RunStopped):  # A stop signal during the connect: not a link fault.
                raise
            raise CommunicationError(f"cannot open VISA resource {resource!r}: {e}") from e
        self._open = True
        self._deadline = 0.0
        self._serial = resource.upper().startswith("ASRL")
        if endpoint is not None:
            self._check_connected(f"{endpoint[0]}:{endpoint[1]}")
        self._lock_exclusively(pyvisa)
        if resource.upper().endswith("::SOCKET"):
            # One short request, one short reply: Nagle's algorithm only adds latency.
            with suppress(Exception):  # Optional in VISA; pyvisa-py raises its own error type.
                self._inst.set_visa_attribute(pyvisa.constants.ResourceAttribute.tcpip_nodelay, True)
            if (sock := self._socket()) is not None:  # pyvisa-py does not apply the attribute.
                with suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write_line(self, line: str) -> None:
        """Send one line."""
        try:
            self._inst.write(line)
        except (self._errors.VisaIOError, OSError) as e:
            raise self._map(e) from e

    def read_line(self, timeout_s: float | None = None, max_chars: int | None = None) -> str:
        """Receive one line within ``timeout_s`` (s; default :attr:`timeout_s`), a total
        deadline, of at most ``max_chars`` characters (see :class:`~crossbar_hil.drivers.link.LineReader`).

        VISA's own timeout only fires when no byte arrives at all (pyvisa-py), so the
        line is read in bounded slices (:data:`~crossbar_hil.drivers.link.SLICE_S`): straight from
        the socket under a pyvisa-py ``SOCKET`` session; byte-wise then what has arrived
        on a serial (``ASRL``) resource; by VISA reads bounded by the deadline otherwise.
        """
        wait_s = self.timeout_s if timeout_s is None else timeout_s
        self._deadline = monotonic() + wait_s
        return self._reader.read_line(self._fill, wait_s, MAX_REPLY_CHARS if max_chars is None else max_chars)

    def _fill(self, wait_s: float) -> bytes:
        """What arrives within about ``wait_s`` (s); b"" if nothing did."""
        if (sock := self._socket()) is not None:
            try:
                if not select.select([sock], [], [], wait_s)[0]:
                    return b""
                data = sock.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                return b""
            except (OSError, ValueError) as e:
                raise ConnectionLost(f"{self.description}: {e}") from e
            if not data:
                raise ConnectionLost(f"{self.description}: connection closed by the instrument")
            return data
        if self._serial:
            # Serial (ASRL): one byte within the slice (nothing is lost if none comes), then
            # whatever has arrived; a VISA read that times out would drop its partial data.
            data = self._visa_read(1, wait_s)
            if data and (waiting := self._inst.bytes_in_buffer):
                data += self._visa_read(min(waiting, _CHUNK), wait_s)
            return data
        # Other sessions (USB, GPIB, VXI-11) transfer whole messages: one read, bounded by
        # the reply's deadline; an interrupt gets through between reads.
        return self._visa_read(_CHUNK, max(wait_s, self._deadline - monotonic()))

    def _visa_read(self, count: int, wait_s: float) -> bytes:
        """One VISA read of at most ``count`` bytes within ``wait_s`` (s); b"" on its timeout."""
        wait_ms = max(1, round(wait_s * 1000))
        try:
            if self._inst.timeout != wait_ms:
                self._inst.timeout = wait_ms
            with self._inst.ignore_warning(self._max_count):  # a full count is expected here
                data, _ = self._inst.visalib.read(self._inst.session, count)
            return bytes(data)
        except (self._errors.VisaIOError, OSError) as e:
            if isinstance(e, self._errors.VisaIOError) and e.error_code == self._timeout_code:
                if self._peer_closed():
                    raise ConnectionLost(f"{self.description}: connection closed by the instrument") from e
                return b""
            raise self._map(e) from e

    def close(self) -> None:
        """Close the resource. Idempotent.

        The resource manager stays open: PyVISA shares one per VISA library in a
        process, and closing it would close every other session of the process.
        """
        if self._open:
            self._open = False
            try:
                self._inst.close()
            finally:
                if self._device_lock is not None:
                    self._device_lock.release()

    def _check_connected(self, where: str) -> None:
        """pyvisa-py reports a refused TCP connection as opened: ask the socket itself."""
        sock = self._socket()
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if sock is not None else 0
        if code:
            self.close()
            reason = explain_os_error(where, OSError(code, errno.errorcode.get(code, str(code))))
            raise CommunicationError(f"cannot open VISA resource {self.description!r}: {reason}")

    def _lock_exclusively(self, pyvisa: Any) -> None:
        """Take an exclusive VISA lock where supported; refuse a resource locked by another session."""
        status = pyvisa.constants.StatusCode
        try:
            self._inst.lock_excl(timeout=0)
        except pyvisa.errors.VisaIOError as e:
            if e.error_code == status.error_nonsupported_operation:
                log.debug("%s: no exclusive VISA lock (not supported here)", self.description)
                return
            self.close()
            if e.error_code == status.error_resource_locked:
                raise CommunicationError(
                    f"cannot open VISA resource {self.description!r}: it is locked by another "
                    "session; the instrument is in use"
                ) from e
            raise CommunicationError(f"cannot lock VISA resource {self.description!r}: {e}") from e
        self.locked = True

    def _map(self, e: Exception) -> CommunicationError:
        if isinstance(e, self._errors.VisaIOError) and e.error_code == self._timeout_code:
            if self._peer_closed():
                return ConnectionLost(f"{self.description}: connection closed by the instrument")
            timeout_s = self._inst.timeout / 1000
            return InstrumentTimeout(f"{self.description}: no reply within {timeout_s:g} s")
        return ConnectionLost(f"{self.description}: {e}")

    def _socket(self) -> socket.socket | None:
        """The TCP socket under a pyvisa-py session, if that is what this is."""
        try:
            session = self._inst.visalib.sessions[self._inst.session]
        except (AttributeError, KeyError, TypeError):
            return None
        sock = getattr(session, "interface", None)
        return sock if isinstance(sock, socket.socket) else None

    def _peer_closed(self) -> bool:
        """pyvisa-py reports a TCP socket closed by the peer as a timeout: peek at the socket."""
        sock = self._socket()
        if sock is None:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError as e:
            return e.errno in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.EBADF)


class VisaBackend(ProtocolBackend):
    """Crossbar controller reached through a VISA resource (registry name ``visa``)."""

    params_model: ClassVar[type[LinkParams]] = VisaParams
    backend_name: ClassVar[str] = "visa"

    @classmethod
    def open_link(cls, params: Any) -> VisaLink:
        p: VisaParams = params
        return VisaLink(p.resource, timeout_s=p.timeout_s, visa_library=p.visa_library)
