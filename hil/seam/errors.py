"""The typed errors of crossbar-hil.

Callers catch by meaning, not by transport: a lab script can tell "my
request was out of range and nothing was sent" (:class:`LimitError`) from
"the link to the instrument broke" (:class:`CommunicationError`) from "the
instrument or device itself reported a problem" (:class:`DeviceFault`).
"""

from __future__ import annotations

from pydantic import ValidationError


class HilError(Exception):
    """Base of every error raised by crossbar-hil."""


class LimitError(HilError, ValueError):
    """A value was outside the backend's limits; nothing was sent to hardware.

    Attributes name the offending field, the value and the allowed range so
    that a message can be shown to a user as is.
    """

    def __init__(self, field: str, value: object, allowed: str, unit: str = "") -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.unit = unit
        suffix = f" {unit}" if unit else ""
        super().__init__(
            f"{field}={value!r}{suffix} is out of range: allowed {allowed}{suffix}; nothing was sent"
        )


class CommunicationError(HilError):
    """The link to the instrument failed: the state of the instrument is uncertain."""


class InstrumentTimeout(CommunicationError):
    """The instrument did not answer within the timeout."""


class ConnectionLost(CommunicationError):
    """The connection to the instrument was closed or dropped."""


class ProtocolError(CommunicationError):
    """A reply could not be decoded or did not belong to the command sent (out of sync)."""


class DeviceFault(HilError):
    """The instrument answered with an error, or a device misbehaved."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message if code is None else f"instrument error {code}: {message}")


class BackendClosed(HilError):
    """An operation was attempted on a backend that has been closed."""


class RunStopped(HilError):
    """A stop was requested; raised inside a run to end it before the next pulse."""


def describe_validation_error(error: ValidationError) -> str:
    """The field path, the value given and what is allowed: one line for one problem, else
    one line per problem under a heading."""
    lines = []
    for e in error.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"]) or "(config)"
        given = f"={e['input']!r}" if "input" in e and not isinstance(e["input"], dict) else ""
        message = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}{given}: {message}")
    if len(lines) == 1:
        return f"invalid configuration: {lines[0]}"
    return "invalid configuration:\n  " + "\n  ".join(lines)


def reply_free_reason(error: BaseException) -> str:
    """``error`` as one line for someone other than the operator (a remote client): what the
    instrument said (a protocol or device error quotes its reply) is left out, so a request
    cannot make the service read out a foreign service's answer."""
    if isinstance(error, ProtocolError | DeviceFault):
        return (
            f"{type(error).__name__}: the instrument did not answer as a crossbar controller "
            "(its reply is not shown here; check the address, or probe it with `hil instruments --probe` "
            "on the machine)"
        )
    return f"{type(error).__name__}: {error}"
