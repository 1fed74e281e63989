"""``GET /instruments?probe=true`` (issue 17 item 1): the probe runs in a process of its own, so the
service process never opens a device; one ``*IDN?`` per instrument, none to an instrument a run holds.

Checked from the operating system, not by a spy in the service: while the emulated instrument
(TCP) holds the probe's ``*IDN?`` reply back, the test reads which processes own a socket connected
to it (``/proc``): the worker, never the service's process (here this test's, which runs uvicorn
in a thread)."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_support import AUTH, TOKEN, live_service

from crossbar_hil.api.service.settings import ServiceSettings
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.server import InstrumentServer, running_server
from crossbar_hil.runs.manager import instrument_key, queue_key
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads socket owners from /proc"),
]


def owners_of_connections_to(port: int) -> set[int]:
    """Pids of the processes holding a TCP socket whose remote end is ``port`` on this machine."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] != "0":
                    inodes.add(f"socket:[{fields[9]}]")
    owners = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:  # Gone meanwhile, or not ours to read.
            continue
        if links & inodes:
            owners.add(int(pid))
    return owners


@pytest.fixture
def slow_instrument() -> Iterator[InstrumentServer]:
    """The emulated instrument over TCP, each reply held back 2 s: a connection stays open long
    enough to see who holds it."""
    with running_server(faults=FaultPlan(reply_delay_s=2.0)) as server:
        yield server


@pytest.fixture
def service(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = ServiceSettings(database=tmp_path / "runs.sqlite3", token=TOKEN)
    with live_service(settings) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client


def probe(service: httpx.Client, *addresses: str) -> httpx.Response:
    params = {"probe": "true", "probe_timeout_s": 5, "address": list(addresses)}
    return service.get("/instruments", params=params, headers=AUTH)


def test_a_probe_asks_one_idn_from_a_process_of_its_own(
    service: httpx.Client, slow_instrument: InstrumentServer
) -> None:
    answer: list[httpx.Response] = []
    asking = threading.Thread(target=lambda: answer.append(probe(service, slow_instrument.resource_string)))
    asking.start()
    try:
        assert slow_instrument.wait_for_commands(1, timeout_s=60), "the probe never asked"
        owners = owners_of_connections_to(slow_instrument.address[1])  # The reply is held back now.
    finally:
        asking.join()
    assert owners and os.getpid() not in owners, owners  # Someone asked: never the service's process.
    (r,) = answer
    assert r.status_code == 200, r.text
    (found,) = r.json()["found"]
    assert found["identity"].startswith("crossbar-hil,EmulatedCrossbar") and found["probe_error"] is None
    assert slow_instrument.command_counts() == {"*IDN?": 1}  # One line, nothing else (no ABOR).


def test_an_instrument_a_run_holds_is_not_probed(tmp_path: Path, slow_instrument: InstrumentServer) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    config = RunConfig.model_validate(
        {"backend": {"name": "visa", "params": {"resource": slow_instrument.resource_string}}}
    )
    parent = f"{socket.gethostname()}:{os.getppid()}"  # A live process other than the service's.
    spec = config.backend
    held = store.create_run(config, instrument=instrument_key(spec), queue=queue_key(spec), owner=parent)
    store.transition(held.id, RunStatus.RUNNING)  # As hil train records its run.
    store.close()
    settings = ServiceSettings(database=tmp_path / "runs.sqlite3", token=TOKEN)
    with live_service(settings) as url, httpx.Client(base_url=url, timeout=120) as client:
        # A service that starts leaves a live process's run (hil train's) as it is.
        assert client.get(f"/runs/{held.id}").json()["status"] == "running"
        r = probe(client, f"socket://localhost:{slow_instrument.address[1]}")  # Another spelling.
    assert r.status_code == 200, r.text
    (found,) = r.json()["found"]
    assert found["identity"] is None and found["probe_error"] == f"not probed: run {held.id} holds it"
    assert slow_instrument.command_count == 0


def test_a_probe_reaches_only_the_service_s_instrument_hosts(service: httpx.Client) -> None:
    r = probe(service, "TCPIP::192.0.2.7::5025::SOCKET", "/dev/null")
    assert r.status_code == 422, r.text
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert "not an instrument host" in errors["address.0"] and "address.1" not in errors
    assert service.get("/instruments", params={"probe": "true"}).status_code == 401  # The token, first.
