"""The run holds its instrument in the store before it is opened (issue 17, review findings 7, 12,
13): ``hil train`` and the service's worker reserve first, so a refusal never follows a handshake
with an instrument another run drives, and a late refusal sends no ``ABOR``; a run stopped between
its creation and ``running`` sends nothing; a store error while naming the holder is a clear exit 3.
The real command and the run manager on the emulated instrument over TCP, commands counted on the
wire."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from crossbar_hil.api.cli import main
from crossbar_hil.api.cli import train as train_cli
from crossbar_hil.emulator.testing import InstrumentServer, running_server
from crossbar_hil.runs import local
from crossbar_hil.runs.errors import EmergencyStopLatched, InstrumentBusy
from crossbar_hil.runs.manager import ESTOP_SETTING, RunManager, instrument_key, queue_key
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import STORE_ENV, Run, RunStore
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.seam.registry import create_backend
from crossbar_hil.training.config import RunConfig

pytestmark = pytest.mark.system

OTHER = f"{socket.gethostname()}:{os.getppid()}"
"""Another live process (this test's parent): a hil train, or the service, elsewhere."""
DRIVES = ("MEAS:ALL?", "VMM?", "PULS:LIST", "RST:DEV")
"""The commands that drive an output."""


@pytest.fixture
def server() -> Iterator[InstrumentServer]:
    with running_server() as s:
        yield s


@pytest.fixture
def store() -> Iterator[RunStore]:
    s = RunStore(Path(os.environ[STORE_ENV]))
    yield s
    s.close()


def argv(server: InstrumentServer, *more: str) -> list[str]:
    return [
        "train",
        "-q",
        "--backend",
        "visa",
        "--resource",
        server.resource_string,
        "--max-epochs",
        "1",
        *more,
    ]


def visa(server: InstrumentServer) -> RunConfig:
    return RunConfig.model_validate(
        {
            "backend": {"name": "visa", "params": {"resource": server.resource_string}},
            "training": {"max_epochs": 1},
        }
    )


def take(store: RunStore, config: RunConfig) -> Run:
    """What another process does to take the instrument: an exclusive create."""
    return store.create_run(
        config,
        instrument=instrument_key(config.backend),
        queue=queue_key(config.backend),
        owner=OTHER,
        exclusive=True,
    )


def test_hil_train_holds_the_instrument_before_it_opens_it(
    server: InstrumentServer,
    store: RunStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    opened = train_cli.open_backend
    refused: list[str] = []

    def open_while_another_takes_it(*args: Any) -> Any:
        try:  # The service's worker (or another hil train) takes the instrument now.
            take(store, visa(server))
        except InstrumentBusy as e:
            refused.append(e.run_id)
        return opened(*args)

    monkeypatch.setattr(train_cli, "open_backend", open_while_another_takes_it)
    assert main(argv(server)) == 0, capsys.readouterr().err
    (run,), total = store.list_runs()
    assert refused == [run.id] and total == 1 and run.status.finished
    assert server.command_counts()["*IDN?"] == 1 and server.command_counts()["ABOR"] == 1  # Its own end.


def test_a_run_stopped_between_its_creation_and_running_sends_nothing(
    server: InstrumentServer,
    store: RunStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    begin = local.begin

    def stopped_first(store_: RunStore, run_id: str, wired: Any) -> Any:
        store_.request_stop(run_id, "stop requested (hil runs stop)")  # From another terminal, just now.
        return begin(store_, run_id, wired)

    monkeypatch.setattr(local, "begin", stopped_first)
    assert main(argv(server, "--max-epochs", "50")) == 4
    assert "stopped before it began: nothing was sent" in capsys.readouterr().err
    counts = server.command_counts()
    assert not any(counts[c] for c in DRIVES) and counts["ABOR"] == 1, counts  # Its close: no training.
    (run,), _ = store.list_runs()
    assert run.status is RunStatus.STOPPED and run.error == "stop requested (hil runs stop)"
    assert store.epoch_records(run.id) == 0


def test_a_store_error_while_naming_the_holder_is_exit_3_with_nothing_sent(
    server: InstrumentServer,
    store: RunStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    held = take(store, visa(server))
    get_run = RunStore.get_run

    def failing(self: RunStore, run_id: str) -> Run:
        if run_id == held.id:
            raise sqlite3.OperationalError("disk I/O error")
        return get_run(self, run_id)

    monkeypatch.setattr(RunStore, "holder", lambda self, queue, besides_owner=None: None)  # The check raced.
    monkeypatch.setattr(RunStore, "get_run", failing)
    assert main(argv(server)) == 3
    err = capsys.readouterr().err
    assert f"in use by run {held.id} (its record cannot be read: OperationalError: disk I/O error)" in err
    assert server.command_count == 0


def test_a_late_refusal_of_the_service_s_worker_sends_no_abort(
    server: InstrumentServer, store: RunStore
) -> None:
    def build_while_latched(name: str, params: Mapping[str, Any]) -> CrossbarBackend:
        backend = create_backend(name, params)
        store.set_setting(ESTOP_SETTING, {"reason": "smoke", "at": "now"})  # Latched while it is checked.
        return backend

    manager = RunManager(store, build_backend=build_while_latched)
    try:
        with pytest.raises(EmergencyStopLatched):
            manager.start(visa(server))
    finally:
        manager.shutdown(10)
    counts = server.command_counts()
    assert counts["*IDN?"] == 1 and counts["ABOR"] == 0 and not any(counts[c] for c in DRIVES), counts
