"""The instrument side of the protocol (a controller, the emulator's server): parse and
validate commands, encode replies and errors."""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from crossbar_hil.protocol import grammar
from crossbar_hil.protocol.commands import (
    COMMANDS,
    ERROR_CODES,
    MAX_LINE_CHARS,
    MAX_MESSAGE_CHARS,
    Arg,
    CommandSpec,
    ErrorCode,
    Kind,
    Quantity,
    ReplyKind,
    command_spec,
)
from crossbar_hil.seam import BackendInfo, Pulse
from crossbar_hil.seam.errors import HilError, LimitError

__all__ = [
    "CommandError",
    "ParsedCommand",
    "check_value",
    "clean_text",
    "encode_error",
    "encode_error_entry",
    "encode_ok",
    "encode_record",
    "encode_text",
    "encode_values",
    "parse_command",
    "validate_command",
]


class CommandError(HilError):
    """A command line a controller must refuse: it is answered ``ERR <code>,<message>``."""

    def __init__(self, code: int, message: str) -> None:
        self.code = int(code)
        self.message = message
        super().__init__(f"{self.code},{message}")

    def reply(self) -> str:
        """The ``ERR`` reply line (without terminator): the code's title, then the detail."""
        return encode_error(self.code, f"{ERROR_CODES.get(self.code, 'Error')}: {self.message}")


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
    text = grammar.strip_terminator(line)
    if len(text) > MAX_LINE_CHARS:
        raise CommandError(ErrorCode.LINE_TOO_LONG, f"line longer than {MAX_LINE_CHARS} characters")
    if not grammar.PRINTABLE_RE.fullmatch(text):
        raise CommandError(ErrorCode.SYNTAX, "line contains characters other than printable ASCII")
    header, _, body = text.strip().partition(" ")
    spec = COMMANDS.get(header.upper())
    if spec is None:
        raise CommandError(ErrorCode.UNKNOWN_COMMAND, grammar.quote(header))
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
        raise CommandError(ErrorCode.SYNTAX, f"{spec.name}: {where}empty argument in {grammar.quote(body)}")
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
        return grammar.parse_number(text, arg.kind, reply=False)
    except ValueError:
        want = "an integer" if arg.kind is Kind.INT else "a finite decimal number"
        raise CommandError(
            ErrorCode.BAD_NUMBER, f"{where}{arg.name}={grammar.quote(text)} is not {want}"
        ) from None


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
        value = grammar.format_float(e.value) if isinstance(e.value, float) else str(e.value)
        unit = f" {e.unit}" if e.unit else ""
        raise CommandError(code, f"{where}{e.field}={value}{unit} outside {e.allowed}{unit}") from None


def encode_ok() -> str:
    """The ``OK`` reply (without terminator)."""
    return "OK"


def encode_values(values: Iterable[Any]) -> str:
    """A value-list reply: ints as decimal integers, other numbers as ``repr(float)``."""
    parts = [
        grammar.format_int(v) if isinstance(v, numbers.Integral) else grammar.format_float(v) for v in values
    ]
    if not parts:
        raise ValueError("a value reply needs at least one value")
    return ",".join(parts)


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
