"""What a request may ask of a backend: an allow-list, checked before anything is opened.

A token holder's run config names the instrument, and the drivers take much more than a
device: pyserial URL handlers (``spy://DEV?file=PATH`` opens PATH for writing before the port,
``loop://``, ``rfc2217://``, ``hwgrep://``...), a VISA library path to ``dlopen()``, any host and
port (the service then reported what a foreign service answered). From a request the service
accepts only:

* serial ``port``: a device under ``/dev`` (symlinks resolved), ``COM<n>``, or
  ``socket://HOST:PORT`` with HOST among the operator's instrument hosts; the exclusive lock
  may not be turned off;
* VISA ``resource``: a TCP/IP resource only to an instrument host, ``ASRL<device>::INSTR``
  with a device under ``/dev`` or ``ASRL<n>::INSTR``, and GPIB or USB resources; nothing else
  (pyvisa-py hands an ``ASRL<url>::INSTR`` board to pyserial's URL handlers, so
  ``ASRLspy://...?file=PATH::INSTR`` would write a file and ``ASRLsocket://HOST:PORT::INSTR``
  or ``PRLGX-TCPIP::HOST::...`` reach any host); ``visa_library`` only ``@py``;
* instrument hosts: ``hil serve --instrument-host`` (loopback by default), compared as
  addresses (:func:`~crossbar_hil.runs.device_key.host_key`).

Backends other than these two are checked by their own models (and file paths are refused by
the run manager).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from crossbar_hil.runs.device_key import host_key

VISA_LIBRARIES = ("@py",)
"""The VISA libraries a request may choose (names, never paths)."""

_TCPIP = re.compile(r"^TCPIP\d*::(?P<host>\[[^\]]+\]|[^:]+)::", re.IGNORECASE)
_ASRL_PATH = re.compile(r"^ASRL(?P<path>/[^:]+)::INSTR$", re.IGNORECASE)
_SOCKET_URL = re.compile(r"^socket://(?P<host>\[[^\]]+\]|[^:/?#]+):(?P<port>\d+)/?$", re.IGNORECASE)
_COM = re.compile(r"^COM\d+$", re.IGNORECASE)
_VISA_OTHER_BUS = re.compile(r"^(ASRL\d+::INSTR|GPIB\d*::[\w:]+|USB\d*::[\w:]+)$", re.IGNORECASE)


def request_param_errors(
    name: str, params: Mapping[str, Any], instrument_hosts: Sequence[str]
) -> dict[str, str]:
    """Each refused backend parameter (``backend.params.<field>``) and why; empty when all pass."""
    hosts = {host_key(h) for h in instrument_hosts}
    errors: dict[str, str] = {}
    if name == "serial":
        port = params.get("port")
        if isinstance(port, str) and (why := _serial_port(port, hosts, instrument_hosts)):
            errors["backend.params.port"] = why
        if "exclusive" in params and params["exclusive"] is not True:
            errors["backend.params.exclusive"] = "the exclusive lock on the port cannot be turned off here"
    elif name == "visa":
        resource = params.get("resource")
        if isinstance(resource, str) and (why := _visa_resource(resource, hosts, instrument_hosts)):
            errors["backend.params.resource"] = why
        if "visa_library" in params and params["visa_library"] not in VISA_LIBRARIES:
            errors["backend.params.visa_library"] = (
                f"the VISA library is the server's choice; allowed here: {', '.join(VISA_LIBRARIES)}"
            )
    return errors


def _host_refused(host: str, hosts: set[str], named: Sequence[str]) -> str | None:
    if host_key(host) in hosts:
        return None
    return (
        f"host {host!r} is not an instrument host of this service (allowed: {', '.join(named)}; "
        "the operator adds one with hil serve --instrument-host)"
    )


def _device(path: str) -> str | None:
    real = os.path.realpath(path)
    if not real.startswith("/dev/"):
        return f"{path!r} is not a device under /dev"
    if not os.path.exists(real):
        return f"there is no device {path!r}: list the ports this machine sees with GET /instruments"
    return None


def _serial_port(port: str, hosts: set[str], named: Sequence[str]) -> str | None:
    if m := _SOCKET_URL.match(port):
        return _host_refused(m["host"].strip("[]"), hosts, named)
    if "://" in port or "?" in port:
        return (
            "only a device path (e.g. /dev/ttyUSB0) or socket://HOST:PORT is accepted here; "
            "other pyserial URLs (spy://, loop://, rfc2217://, ...) are refused"
        )
    if _COM.match(port):
        return None
    if not port.startswith("/"):
        return "expected a device path such as /dev/ttyUSB0, or socket://HOST:PORT"
    return _device(port)


def _visa_resource(resource: str, hosts: set[str], named: Sequence[str]) -> str | None:
    text = resource.strip()
    if m := _TCPIP.match(text):
        return _host_refused(m["host"].strip("[]"), hosts, named)
    if "://" in text or "?" in text:
        return "a VISA resource here names no URL (ASRL<url>::INSTR is handed to pyserial's URL handlers)"
    if m := _ASRL_PATH.match(text):
        return _device(m["path"])
    if _VISA_OTHER_BUS.match(text):
        return None
    return (
        "expected TCPIP[n]::HOST::PORT::SOCKET or TCPIP[n]::HOST::INSTR (HOST an instrument host), "
        "ASRL/dev/<device>::INSTR, ASRL<n>::INSTR, GPIB or USB resources"
    )
