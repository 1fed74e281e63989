"""Why a connection to an instrument could not be made, in one line that names the fix.

The transports (:mod:`crossbar_hil.drivers.visa_backend`, :mod:`crossbar_hil.drivers.serial_backend`) check
an address before they open it (:func:`check_visa_resource`, a bad address is
bad input: ``ValueError``) and translate what the operating system or the
library says when opening fails (:func:`explain_os_error`), so a user reads
"nothing is listening on 127.0.0.1:5999" rather than a library traceback.
"""

from __future__ import annotations

import errno
import socket

_EXAMPLES = (
    "e.g. TCPIP::192.168.1.20::5025::SOCKET (a raw socket, as `hil emulate` serves), ASRL/dev/ttyUSB0::INSTR"
)


def check_visa_resource(resource: str) -> str:
    """``resource`` unchanged, or ValueError saying what is wrong with it and what to write."""
    import pyvisa.rname

    try:
        parsed = pyvisa.rname.parse_resource_name(resource)
    except pyvisa.rname.InvalidResourceName:
        raise ValueError(f"not a VISA resource string; expected {_EXAMPLES}") from None
    if parsed.interface_type == "TCPIP" and parsed.resource_class == "INSTR":
        name = str(getattr(parsed, "lan_device_name", ""))
        if name.isdigit():
            host = parsed.host_address  # type: ignore[attr-defined]
            raise ValueError(
                f"this names a VXI-11 instrument called {name!r}; for a raw socket on port "
                f"{name} write TCPIP::{host}::{name}::SOCKET"
            )
    if parsed.resource_class == "SOCKET":
        port = str(parsed.port)  # type: ignore[attr-defined]
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"port {port} is out of range: allowed 1..65535")
    return resource


def check_serial_port(port: str) -> str:
    """``port`` unchanged, or ValueError for a ``socket://`` URL without a valid host:port."""
    if port.startswith("socket://"):
        host, sep, number = port.removeprefix("socket://").partition("/")[0].rpartition(":")
        if not sep or not host or not number.isdigit() or not 1 <= int(number) <= 65535:
            raise ValueError(
                "expected socket://HOST:PORT with a port in 1..65535, e.g. socket://127.0.0.1:5025"
            )
    return port


def socket_endpoint(port: str) -> tuple[str, int] | None:
    """(host, port) of a ``socket://host:port`` pyserial URL, else None."""
    if not port.startswith("socket://"):
        return None
    host, _, number = port.removeprefix("socket://").partition("/")[0].rpartition(":")
    return host.strip("[]"), int(number)


def tcp_endpoint(resource: str) -> tuple[str, int] | None:
    """(host, port) of a ``TCPIP::host::port::SOCKET`` resource, else None."""
    import pyvisa.rname

    try:
        parsed = pyvisa.rname.parse_resource_name(resource)
    except pyvisa.rname.InvalidResourceName:
        return None
    if parsed.resource_class != "SOCKET":
        return None
    return parsed.host_address, int(parsed.port)  # type: ignore[attr-defined]


def check_host_resolves(host: str, port: int) -> str | None:
    """None when ``host`` resolves, else the one-line reason."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return f"host {host!r} does not resolve ({e.strerror}): check the name, or give an IP address"
    return None


def explain_os_error(where: str, error: BaseException) -> str:
    """One line on why opening ``where`` (a host:port or a device path) failed, and what to do."""
    code = _errno_of(error)
    if code == errno.ECONNREFUSED:
        return (
            f"nothing is listening on {where} (connection refused): start the instrument or its "
            f"server (e.g. `hil emulate --tcp {where}`), or check the address and port"
        )
    if code in (errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH):
        name = errno.errorcode.get(code, str(code))
        return f"{where} cannot be reached ({name}): check the network, the address and the firewall"
    if code == errno.ENOENT:
        return f"there is no port {where}: list the ports this machine sees with `hil instruments`"
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"no permission to open {where}: add your user to the port's group (e.g. dialout) "
            "or fix its permissions"
        )
    if code in (errno.EBUSY, errno.EAGAIN):
        return f"{where} is in use by another program (it holds the port's lock): close it and try again"
    return f"cannot open {where}: {error}"


def _errno_of(error: BaseException | None) -> int | None:
    """The errno of ``error`` or of the error it was raised from, if any."""
    seen = 0
    while error is not None and seen < 5:
        code = getattr(error, "errno", None)
        if isinstance(code, int):
            return code
        text = str(error)
        for name in ("ECONNREFUSED", "ENOENT", "EBUSY", "EAGAIN", "EACCES"):
            if f"[Errno {getattr(errno, name)}]" in text:
                return int(getattr(errno, name))
        error = error.__cause__ or error.__context__
        seen += 1
    return None
