"""How the service is set up: address, database, token, limits, CORS."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from crossbar_hil.runs.control import ControlTimes
from crossbar_hil.runs.store import default_path

TOKEN_ENV = "HIL_TOKEN"
"""Environment variable holding the bearer token of the service."""


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]", "testserver")
"""Host names of a loopback service (``testserver``: Starlette's test client)."""


class ServiceSettings(BaseModel):
    """Settings of one service process."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to bind; loopback by default.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 = any free port).")
    database: Path = Field(default_factory=default_path, description="Run store (SQLite file).")
    token: SecretStr | None = Field(
        None, description="Bearer token for every request that starts, stops or deletes a run."
    )
    max_emulator_runs: int = Field(8, ge=0, le=1000, description="Emulator runs side by side, at most.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (none: off).")
    instrument_hosts: list[str] = Field(
        default_factory=lambda: ["localhost"],
        min_length=1,
        description="Hosts a run may reach over TCP (socket:// ports, TCPIP resources); loopback by default.",
    )
    trace_dir: Path | None = Field(
        None,
        description="Folder of trace files (.dat, .csv) an emulator run may replay by name "
        "(backend.params.trace_name; GET /traces lists them). Paths in a request stay refused.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(LOOPBACK_NAMES),
        min_length=1,
        description="Host names a request may be addressed to (the Host header), against DNS rebinding: "
        "a web page whose name resolves to 127.0.0.1 still sends its own name. The bind address is "
        "added; '*' allows any.",
    )
    run_isolation: Literal["process", "thread"] = Field(
        "process",
        description="Each run in a process of its own (a busy service cannot slow the instrument's "
        "loop), or in a thread of the service.",
    )

    times: ControlTimes = Field(
        default_factory=ControlTimes,
        description="How long a run waits paused or suspended, and how it polls and retries (s).",
    )

    @model_validator(mode="after")
    def _token_off_loopback(self) -> Self:
        if self.token is None and not is_loopback(self.host):
            raise ValueError(
                f"host={self.host!r} is not a loopback address: the service refuses to serve it "
                f"without a token (give a token file or set {TOKEN_ENV})"
            )
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            raise ValueError("token: use at least 16 characters")
        return self


def host_names(settings: ServiceSettings) -> list[str]:
    """The Host header values the service answers: the allowed names and the bind address; any
    (``*``) for a service bound to every interface without names of its own."""
    names = list(settings.allowed_hosts)
    if settings.host in ("0.0.0.0", "::", ""):
        return names if set(names) != set(LOOPBACK_NAMES) else ["*"]
    return [*names, settings.host, f"[{settings.host}]"] if ":" in settings.host else [*names, settings.host]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(token_file: Path | None = None) -> SecretStr | None:
    """The token from ``token_file`` (first line) or ``$HIL_TOKEN``; None when neither is given.
    A token file anyone on the machine may write is refused (anyone could set the token)."""
    if token_file is not None:
        if token_file.stat().st_mode & 0o002:
            raise ValueError(
                f"token file {token_file} is writable by every user: anyone could set the token; "
                f"chmod 600 {token_file}"
            )
        text = token_file.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"token file {token_file} is empty")
        return SecretStr(text.splitlines()[0].strip())
    value = os.environ.get(TOKEN_ENV, "").strip()
    return SecretStr(value) if value else None


def new_token_file(path: Path) -> SecretStr:
    """Write a new random token to ``path`` (readable by its owner only) and return it."""
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # An existing file keeps its mode through O_CREAT: make it owner-only.
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return SecretStr(token)
