"""What a run's worker obeys while it holds the instrument: a stop that lands just before the worker
records its own status change (resumed, suspended, reconnected) still ends the run stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.runs.control import ControlledBackend, ControlTimes, RunControl
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore
from crossbar_hil.seam.errors import CommunicationError, RunStopped
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.stop import StopSignal
from tests.hil.runs.test_run_store import record


class DroppingCrossbar(EmulatedCrossbar):
    """The emulator, its next conductance read (or ABOR, with ``drop_abort``) failing on the link
    when ``drop`` is set (the emulator counts the ABORs it takes: ``aborts``)."""

    drop = False
    drop_abort = False

    def _read_conductances(self, read_v: float) -> Any:
        if self.drop and not self.drop_abort:
            self.drop = False
            raise CommunicationError("the link dropped")
        return super()._read_conductances(read_v)

    def _abort(self) -> None:
        if self.drop and self.drop_abort:
            self.drop = False
            raise CommunicationError("the link dropped")
        super()._abort()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore(tmp_path / "runs.sqlite3")
    yield s
    s.close()


def running(store: RunStore) -> tuple[str, RunControl]:
    """A running run and its control (not polling: the test says when the worker reads the store)."""
    run_id = store.create_run(RunConfig()).id
    store.transition(run_id, RunStatus.RUNNING)
    times = ControlTimes(poll_s=0.01, retry_first_s=0.01, suspend_timeout_s=5)
    return run_id, RunControl(store, run_id, StopSignal(), times)


def stop_when(store: RunStore, run_id: str, status: RunStatus) -> None:
    """Write a stop (as ``hil runs stop`` does, unseen by the worker) once the run is ``status``."""

    def listener(rid: str, seq: int) -> None:
        if rid == run_id and store.get_run(run_id).status is status:
            store.request_stop(run_id, "stop requested (hil runs stop)")

    store.add_listener(listener)


def test_a_stop_written_while_paused_ends_the_resume_as_a_stop(store: RunStore) -> None:
    run_id, control = running(store)
    backend = ControlledBackend(EmulatedCrossbar(), control, None)
    stop_when(store, run_id, RunStatus.PAUSED)  # Between the resume request and the worker's `running`.
    with pytest.raises(RunStopped, match="hil runs stop"):
        backend.hold("now")
    assert store.get_run(run_id).status is RunStatus.STOPPING


def test_a_stop_written_before_a_link_drop_ends_the_run_as_a_stop(store: RunStore) -> None:
    run_id, control = running(store)
    inner = DroppingCrossbar()
    backend = ControlledBackend(inner, control, DroppingCrossbar)
    store.request_stop(run_id, "stop requested (hil runs stop)")  # Not read by the worker yet.
    inner.drop = True
    with pytest.raises(RunStopped, match="hil runs stop"):
        backend.read_conductances(0.05)
    assert store.get_run(run_id).status is RunStatus.STOPPING


def test_a_stop_written_while_suspended_ends_the_reconnection_as_a_stop(store: RunStore) -> None:
    run_id, control = running(store)
    inner = DroppingCrossbar()
    backend = ControlledBackend(inner, control, DroppingCrossbar)
    stop_when(store, run_id, RunStatus.SUSPENDED)
    inner.drop = True
    with pytest.raises(RunStopped, match="hil runs stop"):
        backend.read_conductances(0.05)
    assert store.get_run(run_id).status is RunStatus.STOPPING


def test_a_link_drop_during_the_abort_of_a_pause_suspends_the_run_and_pauses_on_the_new_link(
    store: RunStore,
) -> None:
    run_id, control = running(store)
    inner = DroppingCrossbar()
    reopened: list[DroppingCrossbar] = []

    def reopen() -> DroppingCrossbar:
        reopened.append(DroppingCrossbar())
        return reopened[-1]

    backend = ControlledBackend(inner, control, reopen)
    inner.drop = inner.drop_abort = True
    backend.hold("now")  # Nothing asks to stay paused: it pauses, then resumes at once.
    changes = [e.data.get("change", e.data["status"]) for e in store.events(run_id)]
    assert changes == ["queued", "running", "suspended", "reconnected", "paused", "resumed"]
    assert backend.inner is reopened[0] and reopened[0].aborts == 1  # 0 V on the new link.
    assert store.get_run(run_id).status is RunStatus.RUNNING


def test_a_pause_asked_now_that_an_epoch_end_meets_first_says_both_and_commits_the_epochs_first(
    store: RunStore,
) -> None:
    run_id, control = running(store)
    ControlledBackend(EmulatedCrossbar(), control, None)  # The control's backend, paused at the epoch's end.
    said: list[str] = []
    control.flush = lambda: said.append("epochs committed")

    def resume_when_paused(rid: str, seq: int) -> None:
        if rid == run_id and store.get_run(run_id).status is RunStatus.PAUSED:
            said.append("paused")
            store.request_resume(run_id)

    store.add_listener(resume_when_paused)
    store.request_pause(run_id, "now")
    control.sync()
    control.start_polling()  # Reads the resume.
    try:
        control.on_epoch(record(3))  # The epoch's end comes before the next operation.
    finally:
        control.close()
    (paused,) = [e for e in store.events(run_id) if e.data.get("change") == "paused"]
    assert paused.data["when"] == "now" and paused.data["paused_at"] == "after_epoch"
    assert said == ["epochs committed", "paused", "epochs committed"]  # Before `paused`, and `resumed`.
    assert store.get_run(run_id).status is RunStatus.RUNNING
