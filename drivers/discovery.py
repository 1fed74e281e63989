"""What instruments this machine can see: VISA resources (pyvisa-py) and serial ports.

Discovery only lists; it never writes to a port unless asked to :func:`probe` one.
A probe opens the port, writes the one line ``*IDN?``, reads one reply line and
closes: no other command (no configuration queries, no ``ABOR``), so nothing on an
instrument moves. Opening a serial port may still toggle its DTR/RTS lines, which
resets some boards (e.g. Arduino-style controllers); that is the port, not a command.
Nothing here raises because a bus, a library or a port is missing: problems come
back as notes.

:func:`serve_probe` is the probe in a process of its own (the service's choice: its own process
never opens a device); it skips the instruments runs hold, and says what it finds as it goes, so
the service can bound the time it waits.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, field, replace
from multiprocessing.connection import Connection
from typing import Annotated, Any, Literal

from pydantic import Field, computed_field
from pydantic.dataclasses import dataclass

from crossbar_hil.protocol.codec import decode_reply, encode_command
from crossbar_hil.runs.device_key import device_key
from crossbar_hil.seam.errors import HilError


@dataclass(frozen=True)
class Found:
    """One visible instrument address and the backend parameters that open it: the listing of
    ``hil instruments --json`` and of the service's ``GET /instruments`` (declared once, here)."""

    backend: Annotated[Literal["visa", "serial"], Field(description="The backend that opens it.")]
    address: Annotated[str, Field(description="The VISA resource or the serial port's path.")]
    description: Annotated[str, Field(description="What the bus or the port says it is.")] = ""
    identity: Annotated[str | None, Field(description="The *IDN? reply, when probed and it answered.")] = None
    """The ``*IDN?`` reply, when probed and it answered."""
    probe_error: Annotated[str | None, Field(description="Why the probe got no answer.")] = None

    @computed_field(description="Backend parameters naming this address: resource or port.")  # type: ignore[prop-decorator]
    @property
    def params(self) -> dict[str, str]:
        """Backend parameters naming this address (``resource`` or ``port``)."""
        return {"resource" if self.backend == "visa" else "port": self.address}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {**asdict(self), "params": self.params}


@dataclass
class Discovery:
    """Everything found, and notes on what could not be searched."""

    found: Annotated[list[Found], Field(description="Instrument addresses, each device once.")] = field(
        default_factory=list
    )
    notes: Annotated[list[str], Field(description="What could not be searched, and why.")] = field(
        default_factory=list
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {"found": [f.to_dict() for f in self.found], "notes": list(self.notes)}


def list_visa_resources(query: str = "?*::INSTR", visa_library: str = "@py") -> Discovery:
    """VISA resources matching ``query`` (raw TCP sockets are not discoverable: name them)."""
    out = Discovery()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            import pyvisa

            # Not closed after: PyVISA shares one resource manager per library in a
            # process, and closing it would close the sessions of open backends.
            rm = pyvisa.ResourceManager(visa_library)
            resources = rm.list_resources(query)
            details = {r: rm.resource_info(r) for r in resources}
        except Exception as e:  # A missing library or bus must not end the listing.
            out.notes.append(f"VISA ({visa_library}): {type(e).__name__}: {e}")
            resources, details = (), {}
    out.notes += sorted(
        {f"VISA ({visa_library}): {w.message}" for w in caught if w.category is not ResourceWarning}
    )
    for r in resources:
        alias = getattr(details.get(r), "alias", None)
        out.found.append(Found("visa", r, alias or ""))
    return out


def list_serial_ports() -> Discovery:
    """Serial ports that pyserial sees (USB adapters, on-board UARTs)."""
    out = Discovery()
    try:
        from serial.tools import list_ports

        ports = list_ports.comports()
    except Exception as e:
        out.notes.append(f"serial: {type(e).__name__}: {e}")
        return out
    for p in sorted(ports, key=lambda p: p.device):
        text = p.description if p.description and p.description != "n/a" else ""
        if p.hwid and p.hwid != "n/a":
            text = f"{text} [{p.hwid}]".strip()
        out.found.append(Found("serial", p.device, text))
    return out


def probe(found: Found, timeout_s: float = 1.0) -> Found:
    """Ask ``found`` for its identity with ``*IDN?`` only; the error text if it fails.

    Opens the link of the matching driver, writes ``*IDN?``, waits up to ``timeout_s``
    (s) for one reply line, closes. Sends nothing else.
    """
    from crossbar_hil.drivers.protocol_backend import ProtocolBackend
    from crossbar_hil.drivers.serial_backend import SerialBackend
    from crossbar_hil.drivers.visa_backend import VisaBackend

    cls: type[ProtocolBackend] = VisaBackend if found.backend == "visa" else SerialBackend
    try:
        params = cls.params_model.model_validate({**found.params, "timeout_s": timeout_s})
        link = cls.open_link(params)
        try:
            link.write_line(encode_command("*IDN?"))
            identity = decode_reply("*IDN?", link.read_line())
        finally:
            link.close()
        return Found(found.backend, found.address, found.description, str(identity))
    except (HilError, ValueError, OSError) as e:
        return Found(found.backend, found.address, found.description, None, f"{type(e).__name__}: {e}")


def discover(
    *, visa: bool = True, serial: bool = True, visa_library: str = "@py", probe_timeout_s: float | None = None
) -> Discovery:
    """List VISA resources and serial ports; probe each when ``probe_timeout_s`` is given (s)."""
    out = Discovery()
    for part in ((list_visa_resources(visa_library=visa_library),) if visa else ()) + (
        (list_serial_ports(),) if serial else ()
    ):
        out.found += part.found
        out.notes += part.notes
    out.found = one_per_device(out.found)
    if probe_timeout_s is not None:
        out.found = [probe(f, probe_timeout_s) for f in out.found]
    return out


def named(address: str, description: str = "named in the request") -> Found:
    """The instrument at ``address``: a serial port (a path, ``COM<n>`` or ``socket://``) or else a
    VISA resource (raw TCP sockets, ``TCPIP::host::port::SOCKET``, cannot be discovered)."""
    text = address.strip()
    serial = text.startswith(("/", "socket://")) or text.upper().startswith("COM")
    return Found("serial" if serial else "visa", text, description)


def serve_probe(
    conn: Connection,
    timeout_s: float,
    addresses: Sequence[str] = (),
    held: Mapping[str, str] | None = None,
    visa_library: str = "@py",
) -> None:
    """The probe in a process of its own: list (only ``addresses`` when given), send
    ``("listed", Discovery)``, then probe each (reply timeout ``timeout_s``, s) and send
    ``("probed", index, Found)`` as each answers. An instrument in ``held`` (device key -> run
    id) is not opened: a run holds it."""
    try:
        if addresses:
            listed = Discovery(one_per_device([named(a) for a in addresses]))
        else:
            listed = discover(visa_library=visa_library)
        conn.send(("listed", listed))
        for index, found in enumerate(listed.found):
            holder = (held or {}).get(device_key(found.address))
            if holder is not None:
                found = replace(found, probe_error=f"not probed: run {holder} holds it")
            else:
                found = probe(found, timeout_s)
            conn.send(("probed", index, found))
    except (EOFError, OSError, BrokenPipeError):  # Nobody waits any more (the service's time ran out).
        pass
    finally:
        conn.close()


def one_per_device(found: list[Found]) -> list[Found]:
    """Each device once (:func:`~crossbar_hil.runs.device_key.device_key`): a serial port that VISA
    also lists as ``ASRL<path>::INSTR`` (or a symlink to one) is kept as the serial port, its
    description naming the VISA resource; the first seen otherwise. Order kept."""
    kept: dict[str, Found] = {}
    for f in found:
        key = device_key(f.address)
        other = kept.get(key)
        if other is None:
            kept[key] = f
            continue
        first, second = (f, other) if f.backend == "serial" and other.backend != "serial" else (other, f)
        note = f"also {second.backend} {second.address}"
        kept[key] = replace(first, description=f"{first.description} ({note})".strip())
    return list(kept.values())
