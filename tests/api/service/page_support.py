"""Helpers of the web page's browser tests: ``hil serve`` in a subprocess, the system's Chromium.

A module of its own (not conftest.py), so that tests import it by a name no other test folder uses.
Chromium is Debian's (``.ci/run`` installs it when missing), driven by Playwright through its
executable path: nothing downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

TOKEN = "page-test-token-0123456789abcdef"
START_TIMEOUT_S = 60.0
"""Generous: the service starts on a loaded 2-core CI machine."""


def chromium_path() -> str:
    """The system's Chromium; skips off CI when it is missing, fails under CI=true."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    why = "no system Chromium (Debian: apt-get install chromium; .ci/run installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"under CI the browser tests need Chromium: {why}")
    pytest.skip(why)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running ``hil serve``: its base URL, token and an HTTP client with the token."""

    url: str
    token: str
    api: httpx.Client
    log: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def hil_serve(directory: Path) -> Iterator[Served]:
    """``hil serve`` on 127.0.0.1 (a free port) with a token file, in a subprocess; always stopped."""
    token_file = directory / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    port = free_port()
    log = directory / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_TRACE", "HIL_TOKEN")}
    env.update(MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "crossbar_hil.api", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--database", str(directory / "runs.sqlite3"), "--token-file", str(token_file)]
    with open(log, "wb") as out:
        proc = subprocess.Popen([*command, "--no-access-log"], stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                assert proc.poll() is None, f"hil serve exited: {log.read_text()}"
                try:
                    if api.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"hil serve did not answer: {log.read_text()}"
                time.sleep(0.1)
            yield Served(url, TOKEN, api, log)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Requests:
    """Every URL the page asked for, to check it asked its own service only."""

    urls: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    """Requests the browser refused to send (the service's Content-Security-Policy)."""

    def foreign(self, base: str) -> list[str]:
        """The URLs sent to another host than ``base``: data: URLs are not requests, a blob: URL
        is the page's own memory, and a request the browser blocked was never sent."""
        own = urlsplit(base).netloc
        sent = [u for u in self.urls if u not in self.blocked and not u.startswith("data:")]
        return [u for u in sent if urlsplit(u.removeprefix("blob:")).netloc != own]
