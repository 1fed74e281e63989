"""`VisaBackend`: the crossbar wire protocol over PyVISA (any VISA resource).

Examples of resources: ``TCPIP::192.168.1.20::5025::SOCKET`` (raw socket, e.g.
the emulator server), ``ASRL/dev/ttyUSB0::INSTR``, ``USB0::...::INSTR``. The
default VISA library is ``@py`` (pyvisa-py, pure Python); give ``visa_library``
(e.g. ``""`` for the system's NI-VISA) to use another. Lines end in ``\\n``.

Everything else (commands, limits, faults) is :class:`~drivers.link.ProtocolBackend`.
"""

from __future__ import annotations

import errno
import socket
from contextlib import suppress
from typing import Any, ClassVar

from pydantic import Field

from drivers.link import LinkParams, ProtocolBackend
from hil.errors import CommunicationError, ConnectionLost, InstrumentTimeout, ProtocolError


class VisaParams(LinkParams):
    """Parameters of the ``visa`` backend."""

    resource: str = Field(
        min_length=1, description="VISA resource string, e.g. TCPIP::127.0.0.1::5025::SOCKET."
    )
    visa_library: str = Field("@py", description="PyVISA library spec; '@py' is pyvisa-py.")


class VisaLink:
    """One VISA resource as a :class:`~drivers.link.Link`; timeout in s."""

    def __init__(self, resource: str, *, timeout_s: float, visa_library: str = "@py") -> None:
        import pyvisa

        self.description = resource
        self._errors = pyvisa.errors
        self._timeout_code = pyvisa.constants.StatusCode.error_timeout
        try:
            self._rm = pyvisa.ResourceManager(visa_library)
        except (OSError, ValueError) as e:
            raise CommunicationError(f"VISA library {visa_library!r} unavailable: {e}") from e
        try:
            self._inst: Any = self._rm.open_resource(
                resource, read_termination="\n", write_termination="\n",
                timeout=round(timeout_s * 1000),
            )
        except (pyvisa.errors.Error, OSError, ValueError) as e:
            self._rm.close()
            raise CommunicationError(f"cannot open VISA resource {resource!r}: {e}") from e
        self._open = True
        if resource.upper().endswith("::SOCKET"):
            # One short request, one short reply: Nagle's algorithm only adds latency.
            with suppress(Exception):  # Optional in VISA; pyvisa-py raises its own error type.
                self._inst.set_visa_attribute(pyvisa.constants.VI_ATTR_TCPIP_NODELAY, True)
            if (sock := self._socket()) is not None:  # pyvisa-py does not apply the attribute.
                with suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write_line(self, line: str) -> None:
        """Send one line."""
        try:
            self._inst.write(line)
        except (self._errors.VisaIOError, OSError) as e:
            raise self._map(e) from e

    def read_line(self) -> str:
        """Receive one line."""
        try:
            return str(self._inst.read())
        except UnicodeDecodeError as e:
            raise ProtocolError(f"{self.description}: reply is not ASCII text: {e}") from e
        except (self._errors.VisaIOError, OSError) as e:
            raise self._map(e) from e

    def close(self) -> None:
        """Close the resource and the resource manager. Idempotent."""
        if self._open:
            self._open = False
            try:
                self._inst.close()
            finally:
                self._rm.close()

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
