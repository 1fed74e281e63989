"""The protocol's declarations: its constants, its error codes and every command, declared once.

:data:`COMMANDS` holds each command's name, arguments (name, kind, unit, the physical
quantity that bounds it), reply (kind, field names and units) and duration on the
instrument; both sides of the line (:mod:`~crossbar_hil.protocol.client`,
:mod:`~crossbar_hil.protocol.instrument`) and ``PROTOCOL.md`` derive from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Literal

from crossbar_hil.seam import Pulse

__all__ = [
    "COMMANDS",
    "ERROR_CODES",
    "ERROR_QUEUE_SIZE",
    "MAX_LINE_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_NUMBER_CHARS",
    "MAX_TEXT_CHARS",
    "PROTOCOL_VERSION",
    "TERMINATOR",
    "Arg",
    "CommandSpec",
    "Count",
    "Duration",
    "ErrorCode",
    "Form",
    "Kind",
    "Quantity",
    "Reply",
    "ReplyKind",
    "Value",
    "command_duration_s",
    "command_spec",
    "entry_count",
    "max_reply_chars",
    "variadic_args",
]

PROTOCOL_VERSION: str = "1.1"
"""Version of this protocol; the ``SYST:VERS?`` reply."""

TERMINATOR: str = "\n"
"""Line terminator sent by both sides; a receiver also accepts ``\\r\\n``."""

MAX_NUMBER_CHARS: int = 24
"""Longest number in a reply: ``repr`` of a float, e.g. ``-2.2250738585072014e-308``."""

MAX_TEXT_CHARS: int = 4096
"""Longest text reply (``*IDN?``, ``SYST:VERS?``) a driver reads before refusing the reply."""

MAX_LINE_CHARS: int = 1 << 20
"""Longest command line (without terminator) the emulator accepts; longer lines get ERR 103."""

ERROR_QUEUE_SIZE: int = 16
"""Capacity of the instrument's error queue (``SYST:ERR?``)."""

MAX_MESSAGE_CHARS: int = 200
"""Longest message in an ``ERR`` reply; longer messages are cut."""


class ErrorCode(IntEnum):
    """Numeric codes of ``ERR <code>,<message>`` replies and of the error queue."""

    NO_ERROR = 0
    UNKNOWN_COMMAND = 100
    SYNTAX = 101
    BAD_NUMBER = 102
    LINE_TOO_LONG = 103
    INDEX_OUT_OF_RANGE = 200
    VOLTAGE_OUT_OF_RANGE = 201
    WIDTH_OUT_OF_RANGE = 202
    BATCH_TOO_LONG = 203
    NOT_SUPPORTED = 204
    EXECUTION_FAULT = 300
    COMPLIANCE = 301
    QUEUE_OVERFLOW = 350
    IN_USE = 400


ERROR_CODES: dict[int, str] = {
    ErrorCode.NO_ERROR: "No error",
    ErrorCode.UNKNOWN_COMMAND: "Unknown command",
    ErrorCode.SYNTAX: "Syntax error",
    ErrorCode.BAD_NUMBER: "Bad number",
    ErrorCode.LINE_TOO_LONG: "Line too long",
    ErrorCode.INDEX_OUT_OF_RANGE: "Index out of range",
    ErrorCode.VOLTAGE_OUT_OF_RANGE: "Voltage out of range",
    ErrorCode.WIDTH_OUT_OF_RANGE: "Pulse width out of range",
    ErrorCode.BATCH_TOO_LONG: "Batch too long",
    ErrorCode.NOT_SUPPORTED: "Not supported by this instrument",
    ErrorCode.EXECUTION_FAULT: "Device or execution fault",
    ErrorCode.COMPLIANCE: "Current compliance reached",
    ErrorCode.QUEUE_OVERFLOW: "Error queue overflow",
    ErrorCode.IN_USE: "Instrument in use",
}
"""Every error code of the protocol with its title (the start of the ERR message)."""


# --------------------------------------------------------------------- the command table
class Kind(StrEnum):
    """How a number is written on the line."""

    INT = "int"
    FLOAT = "float"


class Quantity(StrEnum):
    """The physical meaning of an argument, which decides its allowed range."""

    ROW = "row"
    COL = "col"
    READ_V = "read_v"
    PULSE_V = "pulse_v"
    WIDTH = "width"


@dataclass(frozen=True)
class Arg:
    """One argument of a command."""

    name: str
    kind: Kind
    unit: str
    quantity: Quantity


class ReplyKind(StrEnum):
    """What a command is answered with (besides ``ERR``, possible for every command)."""

    OK = "ok"
    TEXT = "text"
    ERROR_ENTRY = "error_entry"
    VALUES = "values"


Count = Literal["rows", "cols", "cells"]


@dataclass(frozen=True)
class Value:
    """One field of a value reply: its name, how it is written, its unit."""

    name: str
    kind: Kind
    unit: str = ""


@dataclass(frozen=True)
class Reply:
    """The reply of a command. ``VALUES`` replies have either ``fields`` (a fixed record,
    one value per field, in order) or one ``fields[0]`` repeated ``count`` times
    (rows, cols or rows*cols)."""

    kind: ReplyKind
    fields: tuple[Value, ...] = ()
    count: Count | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The field names, in order (for a record reply)."""
        return tuple(f.name for f in self.fields)

    @property
    def unit(self) -> str:
        """The unit of a repeated field (``S`` or ``A``); empty for records."""
        return self.fields[0].unit if self.count is not None else ""


class Duration(StrEnum):
    """How long a command takes on the instrument, on top of the driver's base timeout.

    ``INSTANT``: a query or a read (the base timeout covers it). ``PULSE_WIDTHS``:
    the sum of the ``width_s`` of its pulses plus the switching time per pulse.
    ``RESET_PULSE``: the device's reset pulse plus one switching time.
    """

    INSTANT = "instant"
    PULSE_WIDTHS = "pulse_widths"
    RESET_PULSE = "reset_pulse"


Form = Literal["fixed", "per_row", "list"]


@dataclass(frozen=True)
class CommandSpec:
    """One command, declared once: name, arguments, reply, duration.

    ``form`` says how ``args`` are used: ``fixed`` (exactly these, comma-separated),
    ``per_row`` (``args[0]`` once per row, comma-separated) or ``list`` (entries of
    ``args`` separated by ``;``, at most ``max_batch`` entries).
    """

    name: str
    summary: str
    args: tuple[Arg, ...] = ()
    reply: Reply = Reply(ReplyKind.OK)
    form: Form = "fixed"
    needs_reset: bool = False
    duration: Duration = Duration.INSTANT


_ROW = Arg("row", Kind.INT, "", Quantity.ROW)
_COL = Arg("col", Kind.INT, "", Quantity.COL)
_READ_V = Arg("v", Kind.FLOAT, "V", Quantity.READ_V)
_PULSE = (
    _ROW,
    _COL,
    Arg("amp_v", Kind.FLOAT, "V", Quantity.PULSE_V),
    Arg("width_s", Kind.FLOAT, "s", Quantity.WIDTH),
)
_F, _I = Kind.FLOAT, Kind.INT


def _record(*fields: Value) -> Reply:
    return Reply(ReplyKind.VALUES, fields)


def _repeated(count: Count, name: str, unit: str) -> Reply:
    return Reply(ReplyKind.VALUES, (Value(name, _F, unit),), count)


_SPECS: tuple[CommandSpec, ...] = (
    CommandSpec("*IDN?", "Identity text.", reply=Reply(ReplyKind.TEXT)),
    CommandSpec("*CLS", "Clear the error queue."),
    CommandSpec("SYST:VERS?", "Protocol version, e.g. 1.1.", reply=Reply(ReplyKind.TEXT)),
    CommandSpec(
        "SYST:ERR?",
        "Pop the oldest queued error: code,message (0,No error if empty).",
        reply=Reply(ReplyKind.ERROR_ENTRY),
    ),
    CommandSpec("CONF:SHAPE?", "rows,cols.", reply=_record(Value("rows", _I), Value("cols", _I))),
    CommandSpec(
        "CONF:LIM?",
        "The instrument's limits.",
        reply=_record(
            Value("read_v_max", _F, "V"),
            Value("pulse_v_max", _F, "V"),
            Value("width_min_s", _F, "s"),
            Value("width_max_s", _F, "s"),
            Value("compliance_a", _F, "A"),
            Value("max_batch", _I),
        ),
    ),
    CommandSpec(
        "CONF:CAP?",
        "Capabilities (1 or 0).",
        reply=_record(Value("supports_reset", _I), Value("supports_depression", _I)),
    ),
    CommandSpec(
        "MEAS:G?", "Conductance of one device (S).", (_ROW, _COL, _READ_V), _record(Value("g", _F, "S"))
    ),
    CommandSpec("MEAS:ROW?", "Conductances of one row (S).", (_ROW, _READ_V), _repeated("cols", "g", "S")),
    CommandSpec("MEAS:COL?", "Conductances of one column (S).", (_COL, _READ_V), _repeated("rows", "g", "S")),
    CommandSpec("MEAS:ALL?", "All conductances, row-major (S).", (_READ_V,), _repeated("cells", "g", "S")),
    CommandSpec(
        "VMM?",
        "Drive row j with v_j (V); column currents (A).",
        (_READ_V,),
        _repeated("cols", "i", "A"),
        form="per_row",
    ),
    CommandSpec("PULS", "One pulse on device (row, col).", _PULSE, duration=Duration.PULSE_WIDTHS),
    CommandSpec(
        "PULS:LIST",
        "A batch of pulses, applied in order, all or nothing.",
        _PULSE,
        form="list",
        duration=Duration.PULSE_WIDTHS,
    ),
    CommandSpec(
        "RST:DEV",
        "The device's reset pulse on (row, col).",
        (_ROW, _COL),
        needs_reset=True,
        duration=Duration.RESET_PULSE,
    ),
    CommandSpec("ABOR", "All outputs to 0 V."),
)

COMMANDS: Mapping[str, CommandSpec] = {s.name: s for s in _SPECS}
"""Every command of the protocol by its (upper-case) name."""


def command_duration_s(name: str, *args: Any, switch_time_s: float, reset_time_s: float) -> float:
    """How long (s) command ``name`` with ``args`` (as given to :func:`encode_command`)
    takes on the instrument, by its declared :class:`Duration`.

    ``switch_time_s`` is the allowance per pulse for switching and settling,
    ``reset_time_s`` the device's reset pulse. Non-finite widths count as 0 (such a
    command is refused before it is sent).
    """
    spec = command_spec(name)
    if spec.duration is Duration.RESET_PULSE:
        return reset_time_s + switch_time_s
    if spec.duration is Duration.PULSE_WIDTHS:
        pulses = [Pulse(*p) for p in variadic_args(spec, args)] if spec.form == "list" else [Pulse(*args)]
        widths = math.fsum(w for p in pulses if math.isfinite(w := float(p.width_s)))
        return widths + len(pulses) * switch_time_s
    return 0.0


def max_reply_chars(name: str, shape: tuple[int, int] | None = None) -> int:
    """The longest reply line (without terminator) that command ``name`` can have.

    Derived from the declared reply: a value list is at most its number of fields
    times :data:`MAX_NUMBER_CHARS` plus the commas (a repeated field needs ``shape``;
    without it the largest shape, 64 x 64... is not assumed: 1 MiB); text at most
    :data:`MAX_TEXT_CHARS`; an ``ERR`` reply at most ``ERR 99999,`` and
    :data:`MAX_MESSAGE_CHARS`. A driver refuses a longer reply without reading on.
    """
    reply = command_spec(name).reply
    error = len("ERR 99999,") + MAX_MESSAGE_CHARS
    if reply.kind is ReplyKind.VALUES:
        n = len(reply.fields) if reply.count is None else entry_count(reply.count, shape)
        if n is None:
            return MAX_LINE_CHARS
        return max(error, n * (MAX_NUMBER_CHARS + 1))
    if reply.kind is ReplyKind.TEXT:
        return max(error, MAX_TEXT_CHARS)
    return error


def command_spec(name: str) -> CommandSpec:
    """The spec of command ``name`` (case-insensitive); ValueError for an unknown name."""
    try:
        return COMMANDS[name.strip().upper()]
    except KeyError:
        raise ValueError(f"unknown protocol command {name!r}") from None


def variadic_args(spec: CommandSpec, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The entries of a per-row or list command given as one sequence or as separate arguments."""
    if spec.form != "fixed" and len(args) == 1 and _is_sequence(args[0]):
        return tuple(args[0])
    return args


def _is_sequence(x: Any) -> bool:
    return isinstance(x, Iterable) and not isinstance(x, str | bytes | Pulse)


def entry_count(count: Count, shape: tuple[int, int] | None) -> int | None:
    if shape is None:
        return None
    rows, cols = shape
    return {"rows": rows, "cols": cols, "cells": rows * cols}[count]
