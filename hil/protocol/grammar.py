"""The protocol's number grammar and line hygiene, shared by both sides of the line.

Floats are written with ``repr(float(x))`` (shortest round trip), so a value crosses
the line bit-exactly; integers in decimal. Received lines are quoted in messages with a
bound (:func:`quote`).
"""

from __future__ import annotations

import math
import numbers
import operator
import re
from typing import Any

from crossbar_hil.protocol.commands import Kind

__all__ = [
    "INT_RE",
    "PRINTABLE_RE",
    "QUOTE_CHARS",
    "format_float",
    "format_int",
    "is_empty_line",
    "parse_number",
    "quote",
    "strip_terminator",
]

INT_RE = re.compile(r"[+-]?[0-9]+")
_DEC_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NONFINITE = frozenset({"nan", "inf", "-inf"})
PRINTABLE_RE = re.compile(r"[\x20-\x7e]*")


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


def parse_number(text: str, kind: Kind, *, reply: bool) -> int | float:
    """A number in the protocol grammar; ValueError if it is not one."""
    if kind is Kind.INT:
        if INT_RE.fullmatch(text):
            return _parse_int(text)
    elif _DEC_RE.fullmatch(text) or (reply and text in _NONFINITE):
        value = float(text)
        if reply or math.isfinite(value):
            return value
    raise ValueError(text)
