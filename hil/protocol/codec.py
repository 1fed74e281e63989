"""The crossbar wire protocol, version 1.1: the one codec used by both ends of the line.

Drivers (the client side) call :func:`encode_command` and :func:`decode_reply`;
a controller or the emulator's instrument server (the server side) calls
:func:`parse_command`, :func:`validate_command` and the ``encode_*`` functions.
Every command is declared once, in :data:`COMMANDS` (in the spirit of PyMeasure's
``Instrument.control``): its name, its arguments (name, kind, unit, the physical
quantity that bounds it), its reply (kind and the names and units of its fields)
and how long it takes on the instrument (:class:`Duration`). The codec, the
emulated instrument's handlers (:mod:`crossbar_hil.emulator.instrument.controller`), the
drivers' reply timeouts and maximum reply lengths, and the ``CONF:LIM?`` /
``CONF:CAP?`` / ``CONF:SHAPE?`` field layouts all derive from it. The page
``PROTOCOL.md`` next to this module is the specification for firmware authors.

Floats are always written with ``repr(float(x))`` (shortest round-trip form), so
a value crosses the line bit-exactly in both directions.
"""

from __future__ import annotations

import math
import numbers
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Literal, NamedTuple

from crossbar_hil.seam import BackendInfo, Pulse
from crossbar_hil.seam.errors import DeviceFault, HilError, LimitError, ProtocolError

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


class CommandError(HilError):
    """A command line a controller must refuse: it is answered ``ERR <code>,<message>``."""

    def __init__(self, code: int, message: str) -> None:
        self.code = int(code)
        self.message = message
        super().__init__(f"{self.code},{message}")

    def reply(self) -> str:
        """The ``ERR`` reply line (without terminator): the code's title, then the detail."""
        return encode_error(self.code, f"{ERROR_CODES.get(self.code, 'Error')}: {self.message}")


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
        pulses = [Pulse(*p) for p in _variadic(spec, args)] if spec.form == "list" else [Pulse(*args)]
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
        n = len(reply.fields) if reply.count is None else _count(reply.count, shape)
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


# --------------------------------------------------------------------- numbers
_INT_RE = re.compile(r"[+-]?[0-9]+")
_DEC_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NONFINITE = frozenset({"nan", "inf", "-inf"})
_PRINTABLE_RE = re.compile(r"[\x20-\x7e]*")
_ERR_RE = re.compile(r"ERR ([0-9]{1,5}),(.*)")
_ENTRY_RE = re.compile(r"[+-]?[0-9]{1,5},.*")


QUOTE_CHARS: int = 80
"""How much of a received line an error message quotes (the rest is given as a length)."""


def quote(data: str | bytes, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of the first ``limit`` characters of ``data``, and its length when it is longer.

    Error messages quote received lines with this, so that an endless reply cannot
    make an endless message."""
    if len(data) <= limit:
        return repr(data)
    unit = "bytes" if isinstance(data, bytes) else "characters"
    return f"{data[:limit]!r}... ({len(data)} {unit})"


def strip_terminator(line: str) -> str:
    """``line`` without its terminator: one trailing LF, then one CR before it.

    The one place where the terminator is removed, on both sides of the line: any
    other CR left in the line is a non-printable character (``ERR 101``)."""
    return line.removesuffix("\n").removesuffix("\r")


def is_empty_line(line: str) -> bool:
    """True for a line that is not a command: nothing, or only spaces, before the terminator."""
    return not strip_terminator(line).strip(" ")


def format_float(x: Any) -> str:
    """``repr`` of ``float(x)``: the shortest text that reads back as the same float."""
    if isinstance(x, str | bytes) or not isinstance(x, numbers.Real):
        raise TypeError(f"expected a real number, got {type(x).__name__} {x!r}")
    return repr(float(x))


def format_int(x: Any) -> str:
    """Decimal text of an integer (Python or NumPy int; floats are refused)."""
    try:
        return str(operator.index(x))
    except TypeError:
        raise TypeError(f"expected an integer, got {type(x).__name__} {x!r}") from None


class _HugeInt(int):
    """An integer too long to convert exactly (Python refuses more than 4,300 digits):
    a value beyond any range that prints as the start of its text and its length."""

    text: str

    def __new__(cls, text: str) -> _HugeInt:
        value = super().__new__(cls, (-1 if text.startswith("-") else 1) * 10**_HUGE_DIGITS)
        value.text = text
        return value

    def __str__(self) -> str:
        return f"{self.text[:20]}...({len(self.text)} characters)"

    __repr__ = __str__


_HUGE_DIGITS = 30
"""An integer with more significant digits than this is beyond any index: kept as :class:`_HugeInt`."""


def _parse_int(text: str) -> int:
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > _HUGE_DIGITS:
        return _HugeInt(text)
    return -int(digits) if text.startswith("-") else int(digits)


def _parse_number(text: str, kind: Kind, *, reply: bool) -> int | float:
    """A number in the protocol grammar; ValueError if it is not one."""
    if kind is Kind.INT:
        if _INT_RE.fullmatch(text):
            return _parse_int(text)
    elif _DEC_RE.fullmatch(text) or (reply and text in _NONFINITE):
        value = float(text)
        if reply or math.isfinite(value):
            return value
    raise ValueError(text)


# --------------------------------------------------------------------- client side
def _variadic(spec: CommandSpec, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The entries of a per-row or list command given as one sequence or as separate arguments."""
    if spec.form != "fixed" and len(args) == 1 and _is_sequence(args[0]):
        return tuple(args[0])
    return args


def encode_command(name: str, *args: Any) -> str:
    """The command line (WITHOUT terminator) for ``name`` with ``args``.

    Indices are ints, voltages/widths are floats (V, s). ``VMM?`` takes the row
    voltages as one sequence (or as separate arguments); ``PULS:LIST`` takes a
    sequence of :class:`~crossbar_hil.seam.Pulse` (or 4-tuples), or the pulses as
    separate arguments. Raises ValueError for an unknown command, a wrong number of
    arguments or a non-finite float, TypeError for a wrong argument type.
    """
    spec = command_spec(name)
    args = _variadic(spec, args)
    if spec.form == "list":
        if not args:
            raise ValueError(f"{spec.name} needs at least one pulse")
        body = ";".join(_encode_fields(spec, tuple(p)) for p in args)
    elif spec.form == "per_row":
        if not args:
            raise ValueError(f"{spec.name} needs one voltage per row")
        body = ",".join(_encode_arg(spec, spec.args[0], a) for a in args)
    else:
        body = _encode_fields(spec, args)
    return f"{spec.name} {body}" if body else spec.name


def _is_sequence(x: Any) -> bool:
    return isinstance(x, Iterable) and not isinstance(x, str | bytes | Pulse)


def _encode_fields(spec: CommandSpec, values: tuple[Any, ...]) -> str:
    if len(values) != len(spec.args):
        names = ",".join(a.name for a in spec.args) or "no arguments"
        raise ValueError(f"{spec.name} takes {names}; got {len(values)} values: {values!r}")
    return ",".join(_encode_arg(spec, a, v) for a, v in zip(spec.args, values, strict=True))


def _encode_arg(spec: CommandSpec, arg: Arg, value: Any) -> str:
    if arg.kind is Kind.INT:
        return format_int(value)
    text = format_float(value)
    if not math.isfinite(float(value)):
        raise ValueError(f"{spec.name}: {arg.name}={value!r} {arg.unit} must be finite")
    return text


def decode_reply(name: str, line: str, *, shape: tuple[int, int] | None = None) -> str | list[float] | None:
    """Decode the reply ``line`` to command ``name`` (a trailing ``\\n`` / ``\\r\\n`` is ignored).

    Returns None for ``OK``; the text for ``*IDN?``, ``SYST:VERS?`` and ``SYST:ERR?``
    (``code,message``, see :func:`parse_error_entry`); otherwise a list of numbers:
    floats in S, A, V or s as the command states, and Python ints for integer
    fields (``CONF:SHAPE?``, ``CONF:CAP?``, the last field of ``CONF:LIM?``).
    With ``shape`` = (rows, cols) the length of row/column/all/VMM replies is checked.

    Raises :class:`~crossbar_hil.seam.errors.DeviceFault` (with ``.code``) for an ``ERR`` reply and
    :class:`~crossbar_hil.seam.errors.ProtocolError` for a garbled reply or one of the wrong kind
    or length, which is how a reply that belongs to another command is detected.
    """
    spec = command_spec(name)
    text = strip_terminator(line)
    if not text or not _PRINTABLE_RE.fullmatch(text):
        raise ProtocolError(f"{spec.name}: garbled reply {quote(line)}")
    if text.startswith("ERR"):
        match = _ERR_RE.fullmatch(text)
        if match is None:
            raise ProtocolError(f"{spec.name}: malformed error reply {quote(line)}")
        raise DeviceFault(match.group(2), int(match.group(1)))
    reply = spec.reply
    if text == "OK" or reply.kind is ReplyKind.OK:
        if text == "OK" and reply.kind is ReplyKind.OK:
            return None
        raise ProtocolError(f"{spec.name}: expected a {reply.kind.value} reply, got {quote(line)}")
    if reply.kind is ReplyKind.TEXT:
        return text
    if reply.kind is ReplyKind.ERROR_ENTRY:
        if not _ENTRY_RE.fullmatch(text):
            raise ProtocolError(f"{spec.name}: expected code,message, got {quote(line)}")
        return text
    return _decode_values(spec, text, shape)


def _decode_values(spec: CommandSpec, text: str, shape: tuple[int, int] | None) -> list[float]:
    reply = spec.reply
    parts = text.split(",")
    if reply.count is None:
        kinds = tuple(f.kind for f in reply.fields)
    else:
        expected = _count(reply.count, shape)
        if expected is not None and len(parts) != expected:
            raise ProtocolError(
                f"{spec.name}: expected {expected} values for shape {shape}, got {len(parts)}"
            )
        kinds = (reply.fields[0].kind,) * len(parts)
    if len(parts) != len(kinds):
        raise ProtocolError(f"{spec.name}: expected {len(kinds)} values, got {quote(text)}")
    try:
        return [_parse_number(p, k, reply=True) for p, k in zip(parts, kinds, strict=True)]
    except ValueError as exc:
        raise ProtocolError(f"{spec.name}: bad number {quote(exc.args[0])} in reply {quote(text)}") from None


def as_record(name: str, values: Sequence[int | float]) -> dict[str, int | float]:
    """The decoded values of a record reply (``CONF:LIM?``, ``CONF:CAP?``, ``CONF:SHAPE?``,
    ``MEAS:G?``) as {declared field name: value}."""
    spec = command_spec(name)
    if spec.reply.kind is not ReplyKind.VALUES or spec.reply.count is not None:
        raise ValueError(f"{spec.name} does not reply with a record")
    return dict(zip(spec.reply.names, values, strict=True))


def decode_record(name: str, line: str) -> dict[str, int | float]:
    """Decode the record reply ``line`` to ``name`` into {declared field name: value}."""
    values = decode_reply(name, line)
    assert isinstance(values, list)
    return as_record(name, values)


def encode_record(name: str, source: Any) -> str:
    """The record reply to ``name``: each declared field read from ``source`` by its name
    (an attribute, e.g. of :class:`~crossbar_hil.seam.Limits` for ``CONF:LIM?``)."""
    spec = command_spec(name)
    if spec.reply.kind is not ReplyKind.VALUES or spec.reply.count is not None:
        raise ValueError(f"{spec.name} does not reply with a record")
    values = [getattr(source, f.name) for f in spec.reply.fields]
    return encode_values(
        int(v) if f.kind is Kind.INT else v for f, v in zip(spec.reply.fields, values, strict=True)
    )


def _count(count: Count, shape: tuple[int, int] | None) -> int | None:
    if shape is None:
        return None
    rows, cols = shape
    return {"rows": rows, "cols": cols, "cells": rows * cols}[count]


def parse_error_entry(text: str) -> tuple[int, str]:
    """Split a ``SYST:ERR?`` reply ``code,message`` into (code, message)."""
    code, sep, message = text.partition(",")
    if not sep or not _INT_RE.fullmatch(code):
        raise ProtocolError(f"SYST:ERR?: expected code,message, got {quote(text)}")
    return int(code), message


# --------------------------------------------------------------------- server side
class ParsedCommand(NamedTuple):
    """A syntactically valid command: canonical name and typed arguments.

    ``args`` holds ints and floats in the order of the spec; for ``VMM?`` one float
    per row voltage (V); for ``PULS:LIST`` one :class:`~crossbar_hil.seam.Pulse` per entry.
    """

    name: str
    args: tuple[Any, ...]


def parse_command(line: str) -> ParsedCommand:
    """Parse one command line (terminator optional). Raises :class:`CommandError`.

    Checks syntax only (code 100, 101, 102, 103); ranges need the instrument's
    shape and limits, see :func:`validate_command`.
    """
    text = strip_terminator(line)
    if len(text) > MAX_LINE_CHARS:
        raise CommandError(ErrorCode.LINE_TOO_LONG, f"line longer than {MAX_LINE_CHARS} characters")
    if not _PRINTABLE_RE.fullmatch(text):
        raise CommandError(ErrorCode.SYNTAX, "line contains characters other than printable ASCII")
    header, _, body = text.strip().partition(" ")
    spec = COMMANDS.get(header.upper())
    if spec is None:
        raise CommandError(ErrorCode.UNKNOWN_COMMAND, quote(header))
    body = body.strip()
    if spec.form == "list":
        if not body:
            raise CommandError(ErrorCode.SYNTAX, f"{spec.name} needs at least one entry")
        entries = [_parse_fields(spec, e, f"entry {k}: ") for k, e in enumerate(body.split(";"))]
        return ParsedCommand(spec.name, tuple(Pulse(*e) for e in entries))
    if spec.form == "per_row":
        if not body:
            raise CommandError(ErrorCode.SYNTAX, f"{spec.name} needs one voltage per row")
        fields = _split(spec, body, "")
        return ParsedCommand(spec.name, tuple(_parse_arg(spec.args[0], f, "") for f in fields))
    return ParsedCommand(spec.name, _parse_fields(spec, body, ""))


def _split(spec: CommandSpec, body: str, where: str) -> list[str]:
    fields = [f.strip() for f in body.split(",")] if body else []
    if any(not f for f in fields):
        raise CommandError(ErrorCode.SYNTAX, f"{spec.name}: {where}empty argument in {quote(body)}")
    return fields


def _parse_fields(spec: CommandSpec, body: str, where: str) -> tuple[Any, ...]:
    fields = _split(spec, body.strip(), where)
    if len(fields) != len(spec.args):
        names = ",".join(a.name for a in spec.args) or "no arguments"
        raise CommandError(
            ErrorCode.SYNTAX, f"{spec.name}: {where}takes {names}; got {len(fields)} arguments"
        )
    return tuple(_parse_arg(a, f, where) for a, f in zip(spec.args, fields, strict=True))


def _parse_arg(arg: Arg, text: str, where: str) -> int | float:
    try:
        return _parse_number(text, arg.kind, reply=False)
    except ValueError:
        want = "an integer" if arg.kind is Kind.INT else "a finite decimal number"
        raise CommandError(ErrorCode.BAD_NUMBER, f"{where}{arg.name}={quote(text)} is not {want}") from None


def validate_command(command: ParsedCommand, info: BackendInfo) -> None:
    """Check a parsed command against the instrument's shape, limits and capabilities.

    Raises :class:`CommandError` with code 101 (wrong number of row voltages),
    200 (index), 201 (voltage), 202 (width), 203 (batch too long) or 204 (not
    supported). Entries of a ``PULS:LIST`` are checked in order; the first bad one
    is reported, so a controller applies a list only when this passes.

    The ranges themselves are checked by the same methods of
    :class:`~crossbar_hil.seam.BackendInfo` / :class:`~crossbar_hil.seam.Limits` that guard
    :class:`~crossbar_hil.seam.CrossbarBackend`; their :class:`~crossbar_hil.seam.errors.LimitError`
    becomes the ``ERR`` code of the quantity checked.
    """
    spec = COMMANDS[command.name]
    if spec.needs_reset:
        try:
            info.check_supports_reset(spec.name, *command.args)
        except LimitError:
            raise CommandError(
                ErrorCode.NOT_SUPPORTED, f"{spec.name}: this instrument has no reset"
            ) from None
    if spec.form == "list":
        _refuse_as(
            ErrorCode.BATCH_TOO_LONG, f"{spec.name}: ", info.limits.check_batch, "entries", len(command.args)
        )
        for k, entry in enumerate(command.args):
            _check_all(spec.args, entry, info, f"entry {k}: ")
    elif spec.form == "per_row":
        if len(command.args) != info.rows:
            raise CommandError(
                ErrorCode.SYNTAX,
                f"{spec.name}: needs {info.rows} voltages, got {len(command.args)}",
            )
        for j, v in enumerate(command.args):
            check_value(spec.args[0], v, info, f"row {j}: ")
    else:
        _check_all(spec.args, command.args, info, "")


def _check_all(args: Sequence[Arg], values: Sequence[Any], info: BackendInfo, where: str) -> None:
    for arg, value in zip(args, values, strict=True):
        check_value(arg, value, info, where)


_RANGE_CHECKS: dict[Quantity, tuple[ErrorCode, Callable[[BackendInfo, str, Any], None]]] = {
    Quantity.ROW: (ErrorCode.INDEX_OUT_OF_RANGE, BackendInfo.check_row),
    Quantity.COL: (ErrorCode.INDEX_OUT_OF_RANGE, BackendInfo.check_col),
    Quantity.READ_V: (ErrorCode.VOLTAGE_OUT_OF_RANGE, lambda i, f, v: i.limits.check_read_v(f, v)),
    Quantity.PULSE_V: (ErrorCode.VOLTAGE_OUT_OF_RANGE, lambda i, f, v: i.limits.check_amplitude(f, v)),
    Quantity.WIDTH: (ErrorCode.WIDTH_OUT_OF_RANGE, lambda i, f, v: i.limits.check_width(f, v)),
}
"""Per quantity: the ERR code of a violation and the check (shared with the backend)."""


def check_value(arg: Arg, value: int | float, info: BackendInfo, where: str = "") -> None:
    """Raise :class:`CommandError` if ``value`` of ``arg`` is outside the instrument's range."""
    code, check = _RANGE_CHECKS[arg.quantity]
    _refuse_as(code, where, check, info, arg.name, value)


def _refuse_as(code: ErrorCode, where: str, check: Callable[..., None], *args: Any) -> None:
    """Run ``check``; its :class:`LimitError` becomes a :class:`CommandError` with ``code``.

    The message is ``<where><field>=<value> <unit> outside <allowed> <unit>``, e.g.
    ``entry 1: col=9 outside integers [0, 3]``.
    """
    try:
        check(*args)
    except LimitError as e:
        value = format_float(e.value) if isinstance(e.value, float) else str(e.value)
        unit = f" {e.unit}" if e.unit else ""
        raise CommandError(code, f"{where}{e.field}={value}{unit} outside {e.allowed}{unit}") from None


def encode_ok() -> str:
    """The ``OK`` reply (without terminator)."""
    return "OK"


def encode_values(values: Iterable[Any]) -> str:
    """A value-list reply: ints as decimal integers, other numbers as ``repr(float)``."""
    parts = [format_int(v) if isinstance(v, numbers.Integral) else format_float(v) for v in values]
    if not parts:
        raise ValueError("a value reply needs at least one value")
    return ",".join(parts)


def clean_text(text: str, limit: int | None = None) -> str:
    """``text`` made safe for one reply line: non-printable-ASCII characters become ``?``,
    runs of whitespace one space; cut to ``limit`` characters."""
    cleaned = " ".join("".join(c if " " <= c <= "~" else "?" for c in part) for part in str(text).split())
    return cleaned if limit is None else cleaned[:limit]


def encode_text(text: str) -> str:
    """A text reply (``*IDN?``, ``SYST:VERS?``): one printable-ASCII line.

    ValueError if the text is empty or would read as ``OK`` or an ``ERR`` reply.
    """
    cleaned = clean_text(text)
    if not cleaned or cleaned == "OK" or cleaned.startswith("ERR"):
        raise ValueError(f"text reply {text!r} would be ambiguous on the line")
    return cleaned


def encode_error(code: int, message: str) -> str:
    """The ``ERR <code>,<message>`` reply; the message is made single-line and cut."""
    code = operator.index(code)
    if not 1 <= code <= 99999:
        raise ValueError(f"error code {code} must be in [1, 99999]")
    title = ERROR_CODES.get(code, "Error")
    return f"ERR {code},{clean_text(message, MAX_MESSAGE_CHARS) or title}"


def encode_error_entry(code: int, message: str) -> str:
    """The ``SYST:ERR?`` reply ``code,message`` (``0,No error`` when the queue is empty)."""
    return f"{operator.index(code)},{clean_text(message, MAX_MESSAGE_CHARS)}"
