"""Queues and pause requests in the store, and the run manager's queue per instrument (in threads)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from test_run_manager import Builder, config, wait_for_epochs

from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.runs.control import ControlTimes
from crossbar_hil.runs.manager import InstrumentBusy, NotControllable, RunManager, TooManyRuns
from crossbar_hil.runs.status import TRANSITIONS, RunStatus
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig

FAKE = "backend:fake"
"""The queue of the 'fake' backend (a slow emulator standing for one physical instrument)."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore(tmp_path / "runs.sqlite3")
    yield s
    s.close()


@pytest.fixture
def manager(store: RunStore) -> Iterator[RunManager]:
    m = RunManager(
        store,
        max_emulator_runs=1,
        build_backend=Builder(),
        backend_names=lambda: ["emulator", "fake"],
        times=ControlTimes(pause_timeout_s=60, poll_s=0.05),
    )
    yield m
    m.shutdown(10)


# ---------------------------------------------------------------------- the store
def test_paused_and_suspended_come_only_from_running_and_can_be_stopped() -> None:
    for status in (RunStatus.PAUSED, RunStatus.SUSPENDED):
        assert [a for a, targets in TRANSITIONS.items() if status in targets] == [RunStatus.RUNNING]
        assert TRANSITIONS[status] >= {RunStatus.RUNNING, RunStatus.STOPPING, RunStatus.FAILED}
        assert RunStatus.CONVERGED not in TRANSITIONS[status] and not status.finished


def test_waiting_runs_keep_their_order_through_moves_removals_and_starts(store: RunStore) -> None:
    ids = [store.create_run(RunConfig(), queue="q", wait=True).id for _ in range(4)]
    assert [(r.id, r.queue_position) for r in store.queued("q")] == list(zip(ids, [1, 2, 3, 4], strict=True))
    store.move(ids[3], 1)
    assert [r.id for r in store.queued("q")] == [ids[3], ids[0], ids[1], ids[2]]
    store.delete_run(ids[0])
    assert [(r.id, r.queue_position) for r in store.queued("q")] == [(ids[3], 1), (ids[1], 2), (ids[2], 3)]
    store.transition_out_of_queue(ids[3])
    assert [r.queue_position for r in store.queued("q")] == [1, 2]
    assert store.get_run(ids[3]).status is RunStatus.QUEUED and store.get_run(ids[3]).queue_position is None
    store.request_stop(ids[1])
    assert [r.id for r in store.queued("q")] == [ids[2]] and store.queued("other") == []
    with pytest.raises(ValueError, match="not waiting"):
        store.move(ids[3], 1)


def test_a_stop_ends_a_waiting_run_stopped_at_once_and_a_restart_leaves_it_so(store: RunStore) -> None:
    # `hil runs stop` writes to the store alone: no worker holds a waiting run to finish it.
    first, waiting = (store.create_run(RunConfig(), queue="q", wait=True, owner="gone:1") for _ in range(2))
    stopped = store.request_stop(first.id, "stop requested (hil runs stop)")
    assert stopped.status is RunStatus.STOPPED and stopped.outcome == "stopped"
    assert stopped.error == "stop requested (hil runs stop)" and stopped.queue_position is None
    assert [e.data["status"] for e in store.events(first.id)] == ["queued", "stopping", "stopped"]
    assert [(r.id, r.queue_position) for r in store.queued("q")] == [(waiting.id, 1)]
    assert store.recover(alive=lambda owner: False) == []
    assert store.get_run(first.id).status is RunStatus.STOPPED
    assert store.request_stop(first.id).status is RunStatus.STOPPED  # Idempotent.


def test_a_restart_stops_every_queue_with_runs_waiting_and_leaves_them_queued(store: RunStore) -> None:
    waiting = store.create_run(RunConfig(), queue="q", wait=True, owner="gone:1")
    started = store.create_run(RunConfig(), queue="q", owner="gone:1")
    store.transition(started.id, RunStatus.RUNNING)
    assert store.queue_state("q") == "started"
    assert store.recover(alive=lambda owner: False) == [started.id]
    assert store.stop_waiting_queues("restart") == ["q"]
    assert store.queue_state("q") == "stopped" and store.queue_states()["q"] == ("stopped", "restart")
    still = store.get_run(waiting.id)
    assert still.status is RunStatus.QUEUED and still.queue_position == 1


def test_the_managers_recovery_interrupts_lost_runs_and_stops_queues_with_runs_waiting(
    manager: RunManager, store: RunStore
) -> None:
    lost = store.create_run(RunConfig(), queue="q", owner="gone:1")
    store.transition(lost.id, RunStatus.RUNNING)
    waiting = store.create_run(RunConfig(), queue="q", wait=True, owner="gone:1")
    assert manager.recover(alive=lambda owner: False) == [lost.id]
    assert store.get_run(lost.id).status is RunStatus.INTERRUPTED
    assert store.queue_state("q") == "stopped" and store.get_run(waiting.id).queue_position == 1


def test_pause_requests_need_a_running_run_and_resume_withdraws_them(store: RunStore) -> None:
    run = store.create_run(RunConfig())
    with pytest.raises(ValueError, match="only a running run can be paused"):
        store.request_pause(run.id, "now")
    with pytest.raises(ValueError, match="nothing to resume"):
        store.request_resume(run.id)
    store.transition(run.id, RunStatus.RUNNING)
    assert store.request_pause(run.id, "after_epoch").pause_request == "after_epoch"
    assert store.control(run.id) == (RunStatus.RUNNING, "after_epoch", None)
    assert store.request_resume(run.id).pause_request is None
    store.request_pause(run.id, "now")
    store.transition(run.id, RunStatus.PAUSED, change="paused")
    store.request_resume(run.id)
    resumed = store.transition(run.id, RunStatus.RUNNING, change="resumed")
    assert resumed.status is RunStatus.RUNNING and resumed.pause_request is None
    last = store.events(run.id)[-1].data
    assert last["status"] == "running" and last["change"] == "resumed"


def test_a_pause_asked_again_while_the_worker_resumes_is_kept(store: RunStore) -> None:
    run = store.create_run(RunConfig())
    store.transition(run.id, RunStatus.RUNNING)
    store.request_pause(run.id, "now")
    store.transition(run.id, RunStatus.PAUSED, change="paused")
    store.request_resume(run.id)
    # Still `paused`: the worker has not taken the resume yet.
    assert store.request_pause(run.id, "after_epoch").pause_request == "after_epoch"
    store.transition(run.id, RunStatus.RUNNING, change="resumed")
    assert store.control(run.id) == (RunStatus.RUNNING, "after_epoch", None)  # Paused again next.
    store.request_stop(run.id)
    assert store.transition(run.id, RunStatus.STOPPED).pause_request is None  # Cleared at the end.


def test_queued_paused_resumed_suspended_reconnected_are_events_of_their_own(store: RunStore) -> None:
    """A run that waits in its queue, pauses, resumes, is suspended and reconnects: each of those
    status changes is named by its change on the stream (with a status event's data); the others
    stay ``status``, and a run that starts at once was never waiting (its first event is ``status``)."""
    waiting = store.create_run(RunConfig(), queue="q", wait=True)
    at_once = store.create_run(RunConfig(), queue="r")
    store.transition(waiting.id, RunStatus.RUNNING)
    store.transition(waiting.id, RunStatus.PAUSED, change="paused", detail={"when": "now"})
    store.transition(waiting.id, RunStatus.RUNNING, change="resumed")
    store.transition(waiting.id, RunStatus.SUSPENDED, change="suspended", detail={"reason": "link"})
    store.transition(waiting.id, RunStatus.RUNNING, change="reconnected", detail={"attempts": 2})
    store.request_stop(waiting.id, "enough")
    store.transition(waiting.id, RunStatus.STOPPED, outcome="stopped")
    events = store.events(waiting.id)
    assert [(e.name, e.data["status"]) for e in events] == [
        ("queued", "queued"),
        ("status", "running"),
        ("paused", "paused"),
        ("resumed", "running"),
        ("suspended", "suspended"),
        ("reconnected", "running"),
        ("status", "stopping"),
        ("status", "stopped"),
    ]
    assert events[0].data["queue_position"] == 1 and events[4].data["reason"] == "link"
    assert {"run_id", "status", "outcome", "error"} <= set(events[2].data)
    assert [e.name for e in store.events(at_once.id)] == ["status"]


# ---------------------------------------------------------------------- the manager
def test_a_busy_instrument_refuses_or_queues_and_the_queue_runs_in_order(
    manager: RunManager, store: RunStore
) -> None:
    # The first run lasts until stopped: it holds the instrument however slow this test is.
    first, _ = manager.start(config("fake", max_epochs=500))
    with pytest.raises(InstrumentBusy, match="queue this run"):
        manager.start(config("fake", max_epochs=3))
    queued = [manager.start(config("fake", max_epochs=2, seed=s), if_busy="queue")[0] for s in (1, 2)]
    assert [(r.status, r.queue_position) for r in queued] == [(RunStatus.QUEUED, 1), (RunStatus.QUEUED, 2)]
    wait_for_epochs(store, first.id, 1)  # Running, so that the stop ends a run that started.
    manager.stop(first.id)
    for run in (first, *queued):
        assert _wait_started_and_ended(manager, store, run.id)
    runs = [store.get_run(r.id) for r in (first, *queued)]
    assert [r.status for r in runs] == [RunStatus.STOPPED, RunStatus.NOT_CONVERGED, RunStatus.NOT_CONVERGED]
    starts = [r.started_at for r in runs]
    assert starts == sorted(starts) and runs[0].ended_at <= starts[1] and runs[1].ended_at <= starts[2]


def _wait_started_and_ended(manager: RunManager, store: RunStore, run_id: str) -> bool:
    import time

    deadline = time.monotonic() + 30
    while store.get_run(run_id).status is RunStatus.QUEUED or not manager.wait(run_id, 0.05):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    while not store.get_run(run_id).status.finished:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_stopped_queue_starts_nothing_until_started_and_a_waiting_run_can_be_removed(
    manager: RunManager, store: RunStore
) -> None:
    first, _ = manager.start(config("fake", max_epochs=200))
    manager.stop_queue(FAKE)
    second, _ = manager.start(config("fake", max_epochs=1), if_busy="queue")
    third, _ = manager.start(config("fake", max_epochs=1), if_busy="queue")
    manager.remove(third.id)
    assert [r.id for r in store.queued(FAKE)] == [second.id]
    manager.stop(first.id)
    assert manager.wait(first.id, 10)
    assert store.get_run(second.id).status is RunStatus.QUEUED  # The queue is stopped.
    assert manager.start_queue(FAKE) == [second.id]
    assert _wait_started_and_ended(manager, store, second.id)
    with pytest.raises(NotControllable):
        manager.move(first.id, 1)


def test_a_failed_run_stops_its_queue_unless_it_says_continue(manager: RunManager, store: RunStore) -> None:
    first, _ = manager.start(config("fake", max_epochs=200))
    # Unreachable when its turn comes: it fails, naming why, and stops the queue.
    bad, _ = manager.start(config("fake", max_epochs=1, unreachable=True), if_busy="queue")
    after, _ = manager.start(config("fake", max_epochs=1), if_busy="queue")
    manager.stop(first.id)
    assert _wait_started_and_ended(manager, store, bad.id)
    failed = store.get_run(bad.id)
    assert failed.status is RunStatus.FAILED and "no answer" in (failed.error or "")
    _wait_until(lambda: store.queue_state(FAKE) == "stopped")  # Once the manager saw the failure.
    assert store.get_run(after.id).status is RunStatus.QUEUED
    manager.remove(after.id)
    going, _ = manager.start(config("fake", max_epochs=200))
    bad2, _ = manager.start(
        config("fake", max_epochs=1, unreachable=True), if_busy="queue", on_failure="continue"
    )
    last, _ = manager.start(config("fake", max_epochs=1), if_busy="queue")
    manager.start_queue(FAKE)
    manager.stop(going.id)
    assert _wait_started_and_ended(manager, store, last.id)
    assert store.get_run(bad2.id).status is RunStatus.FAILED
    assert store.get_run(last.id).status is RunStatus.NOT_CONVERGED


def test_emulator_runs_queue_beyond_the_limit(manager: RunManager, store: RunStore) -> None:
    first, _ = manager.start(config(max_epochs=200, slow=True))
    with pytest.raises(TooManyRuns):
        manager.start(config(max_epochs=1))
    waiting, _ = manager.start(config(max_epochs=1), if_busy="queue")
    assert waiting.queue == "emulator" and waiting.queue_position == 1
    wait_for_epochs(store, first.id, 1)
    manager.stop(first.id)
    assert _wait_started_and_ended(manager, store, waiting.id)


def test_pause_and_resume_through_the_manager(manager: RunManager, store: RunStore) -> None:
    run, _ = manager.start(config("fake", max_epochs=200))
    wait_for_epochs(store, run.id, 2)
    manager.pause(run.id, "after_epoch")
    _wait_status(store, run.id, RunStatus.PAUSED)
    paused_at = store.get_run(run.id).epochs
    manager.resume(run.id)
    wait_for_epochs(store, run.id, paused_at + 2)
    manager.stop(run.id)
    assert manager.wait(run.id, 10)
    got = store.get_run(run.id)
    assert got.status is RunStatus.STOPPED
    assert [r.epoch for r in store.epochs(run.id)] == list(range(got.epochs + 1))  # Epoch 0, then trained.
    with pytest.raises(NotControllable):
        manager.pause(run.id)


def _wait_until(condition: Callable[[], bool]) -> None:
    import time

    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.01)


def _wait_status(store: RunStore, run_id: str, status: RunStatus) -> None:
    import time

    deadline = time.monotonic() + 10
    while store.get_run(run_id).status is not status:
        assert time.monotonic() < deadline, store.get_run(run_id).status
        time.sleep(0.01)


def test_the_stored_settings_are_the_ones_the_run_used_a_calibrated_gain_included(
    manager: RunManager, store: RunStore
) -> None:
    requested = RunConfig.model_validate({"training": {"gain": "calibrated", "max_epochs": 3}})
    run, _ = manager.start(requested)
    assert manager.wait(run.id, 30)
    result = store.result(run.id)
    assert result is not None
    stored_beta = store.get_run(run.id).config["training"]["beta"]
    assert stored_beta == result["beta"] == result["config"]["training"]["beta"]
    assert stored_beta != requested.training.beta  # Calibrated: not the requested gain.


class GatedBuilder(Builder):
    """A builder whose backends with ``gated`` params wait for :attr:`gate` (a worker still checking
    its instrument), saying so through :attr:`entered`."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.gate = threading.Event(), threading.Event()

    def __call__(self, name: str, params: Mapping[str, Any]) -> EmulatedCrossbar:
        if params.get("gated"):
            self.entered.set()
            assert self.gate.wait(30)
        return super().__call__(name, {k: v for k, v in params.items() if k != "gated"})


@pytest.fixture
def gated(store: RunStore) -> Iterator[tuple[RunManager, GatedBuilder]]:
    builder = GatedBuilder()
    m = RunManager(
        store, build_backend=builder, backend_names=lambda: ["fake"], times=ControlTimes(poll_s=0.05)
    )
    yield m, builder
    builder.gate.set()
    m.shutdown(10)


def _taken_from_queue_and_checking(manager: RunManager, builder: GatedBuilder) -> tuple[str, str]:
    """A run going, a gated one waiting behind it; the first stopped: the second is being checked."""
    first, _ = manager.start(config("fake", max_epochs=200))
    second, _ = manager.start(config("fake", max_epochs=1, gated=True), if_busy="queue")
    manager.stop(first.id)
    assert builder.entered.wait(10)
    return first.id, second.id


def test_an_emergency_stop_during_the_check_of_a_run_from_its_queue_ends_it_stopped(
    gated: tuple[RunManager, GatedBuilder], store: RunStore
) -> None:
    manager, builder = gated
    _, second = _taken_from_queue_and_checking(manager, builder)
    manager.emergency_stop("test")
    builder.gate.set()
    _wait_until(lambda: store.get_run(second).status.finished)
    run = store.get_run(second)
    assert (run.status, run.outcome) == (RunStatus.STOPPED, "stopped") and "emergency stop" in (
        run.error or ""
    )


def test_a_shutdown_during_the_check_of_a_run_from_its_queue_puts_it_back_first(
    gated: tuple[RunManager, GatedBuilder], store: RunStore
) -> None:
    manager, builder = gated
    _, second = _taken_from_queue_and_checking(manager, builder)
    third, _ = manager.start(config("fake", max_epochs=1), if_busy="queue")
    closing = threading.Thread(target=manager.shutdown, args=(10,))
    closing.start()
    _wait_until(lambda: manager._closed)
    builder.gate.set()
    closing.join(30)
    assert [(r.id, r.queue_position) for r in store.queued(FAKE)] == [(second, 1), (third.id, 2)]
    assert store.get_run(second).status is RunStatus.QUEUED


def test_an_emergency_stop_stops_the_queues_and_clearing_it_starts_none(
    manager: RunManager, store: RunStore
) -> None:
    first, _ = manager.start(config("fake", max_epochs=200))
    waiting, _ = manager.start(config("fake", max_epochs=1), if_busy="queue")
    manager.emergency_stop("smoke")
    assert manager.wait(first.id, 10)
    state, reason = store.queue_states()[FAKE]
    assert state == "stopped" and "emergency stop: smoke" in (reason or "")
    manager.clear_emergency_stop()
    assert manager.advance(FAKE) == []  # What the queue watcher does each second.
    assert store.get_run(waiting.id).status is RunStatus.QUEUED
    assert manager.start_queue(FAKE) == [waiting.id]  # A person starts it.
    assert _wait_started_and_ended(manager, store, waiting.id)
