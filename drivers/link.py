"""What a transport to an instrument is (:class:`Link`) and the parameters every protocol backend takes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from time import monotonic
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from crossbar_hil.protocol.codec import MAX_LINE_CHARS, quote, strip_terminator
from crossbar_hil.seam import UserLimits
from crossbar_hil.seam.errors import CommunicationError, InstrumentTimeout, ProtocolError

MAX_REPLY_CHARS = MAX_LINE_CHARS
"""Longest reply line a link reads when the caller gives no bound (characters)."""

SLICE_S = 0.1
"""Longest single blocking wait (s) inside a link's read: the deadline and signals
(a second Ctrl-C) are checked at least this often."""

SWITCH_TIME_S = 0.01
"""Default allowance per pulse (s) for the controller's switching and settling, added to
the reply timeout of pulse commands on top of the pulse widths. Generous on purpose: a
timeout that is too long costs nothing, one that is too short faults a run."""


MAX_COMMAND_S = 3600.0
"""The longest a single command may take on the instrument (s): an instrument that reports
a longer pulse (``width_max_s``) is refused at the handshake, and reply timeouts derived
from durations are clamped to this."""


class LinkFaulted(CommunicationError):
    """Refused: an earlier communication error left the link in an uncertain state.

    Nothing was sent. Call :meth:`ProtocolBackend.resync` or open a new backend.
    """


@runtime_checkable
class Link(Protocol):
    """A line-based transport to one instrument.

    Implementations add and strip the line terminator, and raise
    :class:`InstrumentTimeout` when no complete line arrives within their
    timeout (a total deadline for the whole line, however the bytes drip in),
    :class:`ConnectionLost` when the peer is gone, and :class:`ProtocolError` for
    bytes that are not ASCII text or a line longer than ``max_chars``. Error
    messages quote at most the start of what was received, and its length
    (:func:`crossbar_hil.protocol.codec.quote`).
    """

    description: str
    """Where the link goes, for messages (e.g. the resource string)."""

    timeout_s: float
    """Base reply timeout (s): the wait for a command that takes no time itself."""

    def write_line(self, line: str) -> None:
        """Send one line (without terminator)."""

    def read_line(self, timeout_s: float | None = None, max_chars: int | None = None) -> str:
        """Receive one line (terminator stripped) within ``timeout_s`` (s; default
        :attr:`timeout_s`) of at most ``max_chars`` characters (default :data:`MAX_REPLY_CHARS`)."""

    def close(self) -> None:
        """Release the transport. Idempotent."""


class LinkParams(BaseModel):
    """Parameters common to every protocol backend (inf and NaN are refused)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timeout_s: float = Field(
        2.0,
        gt=0,
        le=3600,
        description="Longest wait for one reply (s), on top of the command's pulse time.",
    )
    switch_time_s: float = Field(
        SWITCH_TIME_S,
        ge=0,
        le=60,
        description="Allowance per pulse for switching and settling (s), added to the reply timeout.",
    )
    reset_time_s: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="Duration of the device's reset pulse (s), added to the RST:DEV reply timeout "
        "(default: the instrument's width_max_s).",
    )
    limits: UserLimits | None = Field(
        None,
        description="Stricter limits for this device; the stricter of these and CONF:LIM? apply.",
    )
    traffic_log: Path | None = Field(
        None, description="Append every command and reply, timestamped, to this file."
    )


class LineReader:
    """Assembles reply lines from the chunks of a byte stream, for every link.

    :meth:`read_line` keeps a **total deadline** for the line, however slowly its
    bytes drip in, and a **maximum length**: it never buffers more than
    ``max_chars`` + 2 bytes of one line. It waits in slices of at most
    :data:`SLICE_S`, so signal handlers (a second Ctrl-C) run promptly. Bytes after
    a line stay buffered for the next read (a late reply is read by the next read).
    """

    def __init__(self, description: str) -> None:
        self.description = description
        self.buffer = bytearray()

    def read_line(self, fill: Callable[[float], bytes], timeout_s: float, max_chars: int) -> str:
        """One line within ``timeout_s`` (s), at most ``max_chars`` characters.

        ``fill(wait_s)`` returns the bytes that arrived within ``wait_s`` (s), b"" if
        none (it raises :class:`ConnectionLost` when the peer is gone). Raises
        :class:`InstrumentTimeout` at the deadline and :class:`ProtocolError` for a line
        too long or not ASCII; messages quote only the start of what was received.
        """
        deadline = monotonic() + timeout_s
        limit = max_chars + 1  # a CR before the LF is allowed
        while (end := self.buffer.find(b"\n", 0, limit + 1)) < 0:
            if len(self.buffer) > limit:
                received = bytes(self.buffer[:limit])
                self.buffer.clear()
                raise ProtocolError(
                    f"{self.description}: reply longer than {max_chars} characters, the most "
                    f"this command can have; received {quote(received)} without a line end"
                )
            remaining = deadline - monotonic()
            if remaining <= 0:
                partial = f" (partial: {quote(bytes(self.buffer))})" if self.buffer else ""
                raise InstrumentTimeout(
                    f"{self.description}: no complete reply within {timeout_s:g} s{partial}"
                )
            self.buffer += fill(min(remaining, SLICE_S))
        raw = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        try:
            return strip_terminator(raw.decode("ascii"))
        except UnicodeDecodeError as e:
            raise ProtocolError(f"{self.description}: reply is not ASCII text: {quote(raw)}") from e
