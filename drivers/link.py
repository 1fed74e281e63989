"""What a transport to an instrument is (:class:`Link`) and the parameters every protocol backend takes."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from hil.seam import UserLimits
from hil.seam.errors import CommunicationError

SWITCH_TIME_S = 0.01
"""Default allowance per pulse (s) for the controller's switching and settling, added to
the reply timeout of pulse commands on top of the pulse widths. Generous on purpose: a
timeout that is too long costs nothing, one that is too short faults a run."""


class LinkFaulted(CommunicationError):
    """Refused: an earlier communication error left the link in an uncertain state.

    Nothing was sent. Call :meth:`ProtocolBackend.resync` or open a new backend.
    """


@runtime_checkable
class Link(Protocol):
    """A line-based transport to one instrument.

    Implementations add and strip the line terminator, and raise
    :class:`InstrumentTimeout` when no complete line arrives within their
    timeout, :class:`ConnectionLost` when the peer is gone, and
    :class:`ProtocolError` for bytes that are not ASCII text.
    """

    description: str
    """Where the link goes, for messages (e.g. the resource string)."""

    timeout_s: float
    """Base reply timeout (s): the wait for a command that takes no time itself."""

    def write_line(self, line: str) -> None:
        """Send one line (without terminator)."""

    def read_line(self, timeout_s: float | None = None) -> str:
        """Receive one line (terminator stripped) within ``timeout_s`` (s; default :attr:`timeout_s`)."""

    def close(self) -> None:
        """Release the transport. Idempotent."""


class LinkParams(BaseModel):
    """Parameters common to every protocol backend."""

    model_config = ConfigDict(extra="forbid")

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
