"""The client side of the protocol (drivers): encode commands, decode replies and records."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from crossbar_hil.protocol.commands import (
    Arg,
    CommandSpec,
    Kind,
    ReplyKind,
    command_spec,
    entry_count,
    variadic_args,
)
from crossbar_hil.protocol.grammar import (
    INT_RE,
    PRINTABLE_RE,
    format_float,
    format_int,
    parse_number,
    quote,
    strip_terminator,
)
from crossbar_hil.seam.errors import DeviceFault, ProtocolError

__all__ = ["as_record", "decode_record", "decode_reply", "encode_command", "parse_error_entry"]

_ERR_RE = re.compile(r"ERR ([0-9]{1,5}),(.*)")
_ENTRY_RE = re.compile(r"[+-]?[0-9]{1,5},.*")


def encode_command(name: str, *args: Any) -> str:
    """The command line (WITHOUT terminator) for ``name`` with ``args``.

    Indices are ints, voltages/widths are floats (V, s). ``VMM?`` takes the row
    voltages as one sequence (or as separate arguments); ``PULS:LIST`` takes a
    sequence of :class:`~crossbar_hil.seam.Pulse` (or 4-tuples), or the pulses as
    separate arguments. Raises ValueError for an unknown command, a wrong number of
    arguments or a non-finite float, TypeError for a wrong argument type.
    """
    spec = command_spec(name)
    args = variadic_args(spec, args)
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
    if not text or not PRINTABLE_RE.fullmatch(text):
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
        expected = entry_count(reply.count, shape)
        if expected is not None and len(parts) != expected:
            raise ProtocolError(
                f"{spec.name}: expected {expected} values for shape {shape}, got {len(parts)}"
            )
        kinds = (reply.fields[0].kind,) * len(parts)
    if len(parts) != len(kinds):
        raise ProtocolError(f"{spec.name}: expected {len(kinds)} values, got {quote(text)}")
    try:
        return [parse_number(p, k, reply=True) for p, k in zip(parts, kinds, strict=True)]
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


def parse_error_entry(text: str) -> tuple[int, str]:
    """Split a ``SYST:ERR?`` reply ``code,message`` into (code, message)."""
    code, sep, message = text.partition(",")
    if not sep or not INT_RE.fullmatch(code):
        raise ProtocolError(f"SYST:ERR?: expected code,message, got {quote(text)}")
    return int(code), message
