"""A run's owner is a process, not a pid: judged by pid, start time and boot id (issue 17, review
finding 3). A pid alone may belong to another process after a reboot or a SIGKILL; such a run held
its instrument forever."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossbar_hil.runs.owner import Liveness, Owner, boot_id, judge, owner_alive, process_owner, start_ticks
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig

HOST = socket.gethostname()
linux_only = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore(tmp_path / "runs.sqlite3")
    yield s
    s.close()


def running(store: RunStore, owner: str, queue: str = "TCPIP::bench") -> str:
    run = store.create_run(RunConfig(), owner=owner, queue=queue, instrument=queue)
    store.transition(run.id, RunStatus.RUNNING)
    return run.id


def reused_pid() -> str:
    """This process's pid with another start time: the pid now belongs to another process."""
    me = Owner.parse(process_owner())
    assert me.start_ticks is not None
    return str(Owner(HOST, os.getpid(), me.start_ticks + 1, me.boot_id))


@linux_only
def test_this_process_is_recorded_with_its_start_time_and_boot_id_and_judged_alive() -> None:
    me = Owner.parse(process_owner())
    assert (me.host, me.pid) == (HOST, os.getpid())
    assert me.start_ticks == start_ticks(os.getpid()) and me.boot_id == boot_id() is not None
    assert judge(process_owner()) is Liveness.ALIVE


@linux_only
def test_a_pid_now_used_by_another_process_or_of_an_earlier_boot_is_gone() -> None:
    assert judge(reused_pid()) is Liveness.GONE
    me = Owner.parse(process_owner())
    assert judge(str(Owner(HOST, os.getpid(), me.start_ticks, "another-boot"))) is Liveness.GONE
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert judge(str(Owner(HOST, child.pid, 1, me.boot_id))) is Liveness.GONE
    assert judge(f"{HOST}:{child.pid}") is Liveness.GONE  # An older owner: by pid, as before.


def test_an_owner_that_cannot_be_judged_is_unknown_and_kept_alive() -> None:
    assert judge(f"{HOST}:1") is Liveness.UNKNOWN  # Recorded by pid alone, and pid 1 runs.
    assert judge("another-host:123@456/boot") is Liveness.UNKNOWN
    assert owner_alive(f"{HOST}:1") and owner_alive("another-host:123")


@linux_only
def test_a_run_whose_pid_was_reused_is_interrupted_and_frees_its_instrument(store: RunStore) -> None:
    lost = running(store, reused_pid())
    kept = running(store, process_owner(), queue="TCPIP::other")
    assert store.holder("TCPIP::bench") is None
    assert store.recover() == [lost]
    assert store.get_run(lost).status is RunStatus.INTERRUPTED
    assert store.get_run(kept).status is RunStatus.RUNNING


def test_release_interrupts_a_run_no_process_is_seen_holding(store: RunStore) -> None:
    orphan = running(store, f"{HOST}:1")  # Pid 1 runs, but it is not this run's process.
    store.request_stop(orphan)
    assert store.recover() == [] and store.holder("TCPIP::bench") is not None  # Stuck stopping.
    run = store.release(orphan, "test")
    assert run.status is RunStatus.INTERRUPTED and "released by hand (test)" in str(run.error)
    assert "NOT confirmed at 0 V" in str(run.error)
    assert store.holder("TCPIP::bench") is None
    assert store.release(orphan, "again").status is RunStatus.INTERRUPTED  # Finished: as it is.


@linux_only
def test_release_refuses_a_run_whose_process_is_seen_running(store: RunStore) -> None:
    mine = running(store, process_owner())
    with pytest.raises(ValueError, match="which is running: stop the run"):
        store.release(mine, "test")
    assert store.get_run(mine).status is RunStatus.RUNNING


def gone_process() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return str(Owner(HOST, child.pid, 1, boot_id()))


@linux_only
def test_a_run_whose_worker_still_runs_is_held_though_its_owner_is_gone(store: RunStore) -> None:
    """A service killed (SIGKILL) while its run's worker, a process of its own, finishes the run and
    records it stopped: hil runs and hil train leave that run alone (review finding 14)."""
    finishing = running(store, gone_process())
    store.set_worker(finishing, process_owner())
    lost = running(store, gone_process(), queue="TCPIP::other")
    store.set_worker(lost, gone_process())
    assert store.recover() == [lost]
    assert store.get_run(finishing).status is RunStatus.RUNNING
    assert store.holder("TCPIP::bench") is not None and store.holder("TCPIP::other") is None


@linux_only
def test_a_starting_service_waits_for_a_worker_recording_its_run_s_end_then_interrupts_the_rest(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service killed while its run's worker stops the run: the next service, starting, waits
    (up to its grace) for that worker to record the run ``stopped`` rather than interrupt it and
    say "not confirmed at 0 V"; a run whose worker never records is interrupted after the grace."""
    from crossbar_hil.runs.execute import RunEnd, finish
    from crossbar_hil.runs.manager import RunManager
    from crossbar_hil.training.history import Outcome

    finishing = running(store, gone_process())
    store.set_worker(finishing, process_owner())  # This process plays its worker.
    waiting = threading.Event()
    looked = store.finishing

    def finishing_runs(alive: object = None) -> list[str]:
        ids = looked()
        if ids:
            waiting.set()  # The manager is waiting for the worker now.
        return ids

    monkeypatch.setattr(store, "finishing", finishing_runs)

    def worker_records_the_end() -> None:
        waiting.wait(60)
        finish(store, finishing, RunEnd.of(Outcome.STOPPED, "the service ended (SIGTERM)"))
        store.release_thread()

    recorder = threading.Thread(target=worker_records_the_end, daemon=True)
    recorder.start()
    manager = RunManager(store)
    try:
        assert manager.recover(workers=False, grace_s=60) == []
        recorder.join(60)
        run = store.get_run(finishing)
        assert run.status is RunStatus.STOPPED and run.error == "the service ended (SIGTERM)"

        wedged = running(store, gone_process(), queue="TCPIP::other")
        store.set_worker(wedged, process_owner())
        assert manager.recover(workers=False, grace_s=0.2) == [wedged]
        assert store.get_run(wedged).status is RunStatus.INTERRUPTED
    finally:
        manager.shutdown(10)


@pytest.mark.system
def test_a_run_in_a_process_of_its_own_records_its_worker_s_process(store: RunStore) -> None:
    from crossbar_hil.runs.manager import RunManager

    manager = RunManager(store, isolation="process")
    try:
        run, _ = manager.start(RunConfig.model_validate({"training": {"max_epochs": 1}}))
        assert manager.wait(run.id, 60)
    finally:
        manager.shutdown(10)
    worker = store.get_run(run.id).worker
    assert worker is not None and worker != manager.owner
    assert Owner.parse(worker).host == HOST and Owner.parse(worker).pid != os.getpid()
    assert judge(worker) is Liveness.GONE  # It ended with the run.
