"""Faults the emulated instrument injects on purpose, so that the drivers' error paths can be tested."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FaultPlan(BaseModel):
    """Faults the server injects on purpose; all off by default.

    Commands are counted per server from 1, over all connections; every non-empty
    line received counts, including refused ones.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    reply_delay_s: float = Field(0.0, ge=0, le=60, description="Every reply is delayed (s).")
    drop_after: int | None = Field(
        None,
        ge=0,
        description="Answer N commands, then close the connection when command N+1 arrives "
        "(without executing it). Happens once; later connections are served normally. "
        "Over a pty the device is hung up for good.",
    )
    garble_at: int | None = Field(
        None,
        ge=1,
        description="Command N is executed but its reply line is corrupted (non-printable characters).",
    )
    mute_after: int | None = Field(
        None,
        ge=0,
        description="Answer N commands, then read but neither execute nor answer any "
        "further command; the connection stays open.",
    )


def garble(reply: str) -> str:
    """A corrupted version of ``reply`` that no decoder can take for a valid line."""
    return "\x15" + reply[: max(1, len(reply) // 2)] + "\x7f"
