"""Helpers of the service tests: the token, a real uvicorn server, an SSE reader, waits.

A module of its own (not conftest.py), so that tests import it by a name no other test folder uses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from crossbar_hil.api.service.app import create_app
from crossbar_hil.api.service.settings import ServiceSettings

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextmanager
def live_service(settings: ServiceSettings) -> Iterator[str]:
    """The service under a real uvicorn on 127.0.0.1 (a free port); its base URL. Always stopped."""
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "uvicorn did not stop"


SERVE = [sys.executable, "-m", "crossbar_hil.api", "serve", "--port", "0", "--no-access-log"]
SERVING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@contextmanager
def serve_process(database: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``hil serve`` in a process of its own on 127.0.0.1 (a free port), with the test token, on
    ``database``: the process and its base URL once it serves (its log read on, so that it never
    blocks on a full pipe). Killed at the end if the test did not end it."""
    proc = subprocess.Popen(
        [*SERVE, "--database", str(database)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "HIL_TOKEN": TOKEN},
    )
    try:
        assert proc.stderr is not None
        url = next(m.group(1) for line in proc.stderr if (m := SERVING.search(line)))
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def read_events(response: httpx.Response, stop_after: int | None = None) -> list[dict[str, Any]]:
    """Parse a ``text/event-stream`` response into events (id, event, data); stop after ``stop_after``."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in current:
                events.append(current)
                if stop_after is not None and len(events) >= stop_after:
                    break
            current = {}
        elif line.startswith(":") or line.startswith("retry:"):
            continue
        else:
            key, _, value = line.partition(": ")
            current[key] = int(value) if key == "id" else json.loads(value) if key == "data" else value
    return events


def wait_status(
    client: httpx.Client, run_id: str, statuses: set[str], timeout_s: float = 30
) -> dict[str, Any]:
    """Poll the run until its status is one of ``statuses``; returns it."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stayed {run['status']}"
        time.sleep(0.02)


def wait_epochs(client: httpx.Client, run_id: str, n: int, timeout_s: float = 30) -> int:
    """Poll the run until at least ``n`` epochs are trained (``epochs``: epoch 0, the read before
    training, is not one); returns how many."""
    deadline = time.monotonic() + timeout_s
    while (seen := client.get(f"/runs/{run_id}").json()["epochs"]) < n:
        assert time.monotonic() < deadline, f"run {run_id} did not reach {n} epochs"
        time.sleep(0.01)
    return seen
