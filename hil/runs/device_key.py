"""Which physical device an instrument address names, whatever its spelling.

A run holds its instrument exclusively (:mod:`crossbar_hil.runs.manager`). Compared as text,
``/dev/pts/3`` (the serial driver's port), ``ASRL/dev/pts/3::INSTR`` (the VISA driver's
resource), a symlink to either, ``socket://localhost:5025`` and ``TCPIP::127.0.0.1::5025::SOCKET``
looked like different instruments, and two runs were admitted to one device: their commands
interleaved on one line. :func:`device_key` maps every spelling of one device to one key:

* a serial device (a path, or ``ASRL<path>::INSTR``): ``serial:<real path>``, symlinks resolved;
* a TCP endpoint (``socket://host:port``, ``TCPIP[n]::host::port::SOCKET``):
  ``tcp:<address>:<port>``, the host resolved to its address (every loopback address is one);
* any other VISA resource: ``visa:<resource>`` upper-cased, board number 0 made explicit.

Pure text and path work: the core names no driver.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

_ASRL_PATH = re.compile(r"^ASRL(?P<path>/[^:]+)::INSTR$", re.IGNORECASE)
_TCPIP_SOCKET = re.compile(r"^TCPIP\d*::(?P<host>.+)::(?P<port>\d+)::SOCKET$", re.IGNORECASE)
_SOCKET_URL = re.compile(r"^socket://(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+)/?$", re.IGNORECASE)
_VISA_BOARD = re.compile(r"^(?P<kind>[A-Z]+)::", re.IGNORECASE)


def device_key(address: str) -> str:
    """One key per physical device for a serial port, pyserial URL or VISA resource (see module)."""
    text = address.strip()
    if m := (_TCPIP_SOCKET.match(text) or _SOCKET_URL.match(text)):
        return f"tcp:{host_key(m['host'])}:{int(m['port'])}"
    if m := _ASRL_PATH.match(text):
        return f"serial:{os.path.realpath(m['path'])}"
    if text.startswith("/"):
        return f"serial:{os.path.realpath(text)}"
    if "::" in text:
        return "visa:" + _VISA_BOARD.sub(lambda b: f"{b['kind']}0::", text.upper(), count=1)
    return f"other:{text}"


def host_key(host: str) -> str:
    """``host`` as one address: ``loopback`` for any loopback name or address, else the first
    address it resolves to (the name lower-cased when it does not resolve)."""
    name = host.strip().strip("[]").lower()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return name
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            return name
        if any(a.is_loopback for a in addresses):
            return "loopback"
        address = addresses[0]
    if address.is_loopback:
        return "loopback"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)
