"""Executing a stored run: a stop written in the store (as `hil runs stop` does) is honoured at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.runs.execute import execute, finish
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore
from crossbar_hil.seam.limits import Pulse
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.stop import StopSignal


class SlowResets(EmulatedCrossbar):
    """The emulator, each device reset taking ``delay_s`` (s), counted: the start-state resets
    (16 on the reference task) last long enough to stop the run among them."""

    delay_s = 0.1

    def __init__(self) -> None:
        super().__init__()
        self.resets = 0
        self.pulse_count = 0

    def _reset(self, row: int, col: int) -> None:
        time.sleep(self.delay_s)
        self.resets += 1
        super()._reset(row, col)

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        self.pulse_count += len(pulses)
        super()._pulse_many(pulses)


def test_a_run_stopped_in_the_store_while_queued_sends_nothing(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    config = RunConfig.model_validate({"training": {"max_epochs": 5, "patience": 0}})
    run = store.create_run(config)
    RunStore(store.path).request_stop(run.id)  # As `hil runs stop` does, from another process.
    backend = SlowResets()
    backend.delay_s = 0.0
    end = execute(store, run.id, config, backend, StopSignal())
    finish(store, run.id, end)
    got = store.get_run(run.id)
    assert got.status is RunStatus.STOPPED and got.epochs == 0
    assert backend.resets == 0 and backend.pulse_count == 0
    assert store.pulse_log_count(run.id, "pulse") == store.pulse_log_count(run.id, "reset") == 0
    store.close()


def test_a_stop_in_the_store_is_honoured_before_the_next_operation_not_after_the_epoch(
    tmp_path: Path,
) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    config = RunConfig.model_validate({"training": {"max_epochs": 5, "patience": 0}})
    run = store.create_run(config)
    backend = SlowResets()
    ends = []
    runner = threading.Thread(
        target=lambda: ends.append(execute(store, run.id, config, backend, StopSignal()))
    )
    runner.start()
    deadline = time.monotonic() + 10
    while backend.resets < 2:
        assert time.monotonic() < deadline and runner.is_alive(), "the start-state resets did not begin"
        time.sleep(0.01)
    RunStore(store.path).request_stop(run.id)
    at_request = backend.resets
    runner.join(10)
    assert not runner.is_alive()
    # Polled every 0.2 s: at most a few 0.1 s resets more, never the 16 of the start and an epoch.
    assert backend.resets <= at_request + 4 < 16, (at_request, backend.resets)
    assert backend.pulse_count == 0
    finish(store, run.id, ends[0])
    assert store.get_run(run.id).status is RunStatus.STOPPED
    store.close()


def test_a_run_stopped_before_it_ran_ends_with_the_stored_reason_not_a_generic_one(tmp_path: Path) -> None:
    """The service shutting down between a run's admission and its start: the reason the store
    holds (written by the stop) is the one recorded at its end."""
    store = RunStore(tmp_path / "runs.sqlite3")
    config = RunConfig.model_validate({"training": {"max_epochs": 5, "patience": 0}})
    run = store.create_run(config)
    RunStore(store.path).request_stop(run.id, "the service is shutting down")
    backend = SlowResets()
    backend.delay_s = 0.0
    end = execute(store, run.id, config, backend, StopSignal())
    finish(store, run.id, end)
    got = store.get_run(run.id)
    assert got.status is RunStatus.STOPPED and got.error == "the service is shutting down"
    assert [e.data["error"] for e in store.events(run.id, 0) if e.kind == "status"][-1] == got.error
    store.close()
