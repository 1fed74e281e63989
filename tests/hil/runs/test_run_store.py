"""The run store: schema and migrations, runs, one transaction per epoch, pulse log, events, recovery."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import crossbar_hil.runs.store as store_module
from crossbar_hil.runs.calibrations import Calibrations
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import PulseLogEntry, RunNotFound, RunStore, StoreError
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import EpochRecord


def record(epoch: int, pulses: int = 3) -> EpochRecord:
    rng = np.random.default_rng(epoch)
    return EpochRecord(
        epoch=epoch,
        conductances_siemens=rng.random((4, 4)) * 1e-6,
        weights_siemens=rng.random((4, 2)) * 1e-6,
        currents_a=rng.random((6, 4)) * 1e-7,
        activations=rng.random((6, 2)) * 2 - 1,
        in_band=rng.random((6, 2)) > 0.5,
        error=float(rng.random()),
        pulses=pulses,
    )


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path / "runs.sqlite3")
    yield s
    s.close()


def test_a_new_file_has_the_current_schema_in_wal_mode(store: RunStore) -> None:
    assert store.schema_version == store_module.SCHEMA_VERSION
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_older_file_is_migrated_and_a_newer_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.sqlite3"
    RunStore(path).close()

    def add_notes(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE runs ADD COLUMN notes TEXT")

    current = store_module.SCHEMA_VERSION
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(store_module.MIGRATIONS, current + 1, add_notes)
    migrated = RunStore(path)
    assert migrated.schema_version == current + 1
    with sqlite3.connect(path) as db:
        assert "notes" in [row[1] for row in db.execute("PRAGMA table_info(runs)")]
    migrated.close()
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", current)
    with pytest.raises(
        StoreError, match=f"schema {current + 1}; this crossbar-hil reads up to {current}: upgrade"
    ):
        RunStore(path)


def test_a_version_1_file_gets_the_calibrations_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.sqlite3"
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 1)
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'calibrations'").fetchone()
    monkeypatch.undo()
    migrated = RunStore(path)
    assert migrated.schema_version == store_module.SCHEMA_VERSION
    assert Calibrations(migrated).list() == []
    migrated.close()


def test_a_runs_epochs_count_the_epochs_trained_not_the_records(store: RunStore) -> None:
    run = store.create_run(RunConfig())
    store.transition(run.id, RunStatus.RUNNING)
    assert store.get_run(run.id).epochs == 0
    for epoch in range(3):
        store.record_epoch(run.id, record(epoch, pulses=2))
    # The read before training (epoch 0), then 2 epochs trained: what hil train says "after 2 epochs".
    assert (store.get_run(run.id).epochs, store.epoch_records(run.id)) == (2, 3)


def test_a_version_3_file_counts_epochs_trained_after_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.sqlite3"
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 3)
    old = RunStore(path)
    ran, never = old.create_run(RunConfig()).id, old.create_run(RunConfig()).id
    old.transition(ran, RunStatus.RUNNING)
    with sqlite3.connect(path) as db:  # As version 3 wrote them: one per record.
        for epoch in range(4):
            db.execute(
                "INSERT INTO epochs VALUES (?, ?, 't', 0.5, 1, ?)",
                (ran, epoch, json.dumps(record(epoch).to_dict())),
            )
        db.execute("UPDATE runs SET epochs = 4 WHERE id = ?", (ran,))
    old.close()
    monkeypatch.undo()
    migrated = RunStore(path)
    assert (migrated.get_run(ran).epochs, migrated.get_run(never).epochs) == (3, 0)
    assert migrated.epoch_records(ran) == 4
    migrated.close()


def test_an_sqlite_file_that_is_not_a_run_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not a crossbar-hil run store"):
        RunStore(path)


def test_runs_are_listed_newest_first_filtered_by_status_and_paginated(store: RunStore) -> None:
    ids = [store.create_run(RunConfig()).id for _ in range(5)]
    store.transition(ids[1], RunStatus.RUNNING)
    store.transition(ids[3], RunStatus.RUNNING)
    page, total = store.list_runs(limit=2, offset=1)
    assert total == 5 and [r.id for r in page] == [ids[3], ids[2]]
    running, total = store.list_runs([RunStatus.RUNNING])
    assert total == 2 and {r.id for r in running} == {ids[1], ids[3]}
    with pytest.raises(RunNotFound):
        store.get_run("nope")


def test_an_epoch_its_pulses_and_its_event_are_committed_together(store: RunStore) -> None:
    run = store.create_run(RunConfig())
    store.transition(run.id, RunStatus.RUNNING)
    log = [
        PulseLogEntry(sent_at="t", kind="pulse", row=0, col=1, amplitude_v=2.0, width_s=1e-3),
        PulseLogEntry(sent_at="t", kind="reset", row=2, col=3),
    ]
    assert store.record_epoch(run.id, record(0), log) is RunStatus.RUNNING
    with pytest.raises(sqlite3.IntegrityError):  # The same epoch again: the whole transaction is refused.
        store.record_epoch(run.id, record(0), log)
    got = store.get_run(run.id)
    assert (got.epochs, got.pulses, store.pulse_log_count(run.id)) == (0, 3, 2)  # Epoch 0 trains nothing.
    assert store.pulse_log(run.id)[1].model_dump() == {
        "epoch": 0,
        "sent_at": "t",
        "kind": "reset",
        "row": 2,
        "col": 3,
        "amplitude_v": None,
        "width_s": None,
    }
    (stored,) = store.epochs(run.id)
    assert stored.to_dict() == record(0).to_dict()  # Bit for bit, through JSON text.
    events = store.events(run.id)
    assert [(e.seq, e.kind) for e in events] == [(1, "status"), (2, "status"), (3, "epoch")]
    assert events[2].data["record"] == record(0).to_dict()


def test_a_stop_request_is_seen_by_the_next_epoch_write(store: RunStore) -> None:
    run = store.create_run(RunConfig())
    store.transition(run.id, RunStatus.RUNNING)
    assert store.request_stop(run.id).status is RunStatus.STOPPING
    assert store.request_stop(run.id).status is RunStatus.STOPPING  # Idempotent.
    assert store.record_epoch(run.id, record(0)) is RunStatus.STOPPING


def test_runs_of_a_dead_process_become_interrupted_with_their_epochs(store: RunStore) -> None:
    dead = store.create_run(RunConfig(), owner="host:1")
    alive = store.create_run(RunConfig(), owner="host:2")
    done = store.create_run(RunConfig(), owner="host:1")
    for run in (dead, alive, done):
        store.transition(run.id, RunStatus.RUNNING)
    store.record_epoch(dead.id, record(0))
    store.record_epoch(dead.id, record(1))
    store.transition(done.id, RunStatus.CONVERGED)
    assert store.recover(alive=lambda owner: owner == "host:2") == [dead.id]
    got = store.get_run(dead.id)
    assert got.status is RunStatus.INTERRUPTED and "host:1" in (got.error or "")
    assert [r.epoch for r in store.epochs(dead.id)] == [0, 1]
    assert store.get_run(alive.id).status is RunStatus.RUNNING
    assert store.get_run(done.id).status is RunStatus.CONVERGED


def test_the_default_recovery_checks_the_pid_on_this_host(store: RunStore) -> None:
    import os
    import socket
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    mine = store.create_run(RunConfig())
    gone = store.create_run(RunConfig(), owner=f"{socket.gethostname()}:{child.pid}")
    assert mine.owner.partition("@")[0] == f"{socket.gethostname()}:{os.getpid()}"  # Then @start/boot
    assert store.recover() == [gone.id]


def test_only_finished_runs_can_be_deleted_and_everything_of_them_goes(store: RunStore) -> None:
    run = store.create_run(RunConfig())
    store.transition(run.id, RunStatus.RUNNING)
    store.record_epoch(
        run.id,
        record(0),
        [PulseLogEntry(sent_at="t", kind="pulse", row=0, col=1, amplitude_v=2.0, width_s=1e-3)],
    )
    with pytest.raises(ValueError, match="still active"):
        store.delete_run(run.id)
    store.transition(run.id, RunStatus.FAILED, error="boom")
    store.delete_run(run.id)
    with pytest.raises(RunNotFound):
        store.get_run(run.id)
    with sqlite3.connect(store.path) as db:
        for table in ("epochs", "pulse_log", "events"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_settings_are_kept_and_cleared(store: RunStore) -> None:
    store.set_setting("emergency_stop", {"reason": "x"})
    assert RunStore(store.path).get_setting("emergency_stop") == {"reason": "x"}
    store.set_setting("emergency_stop", None)
    assert store.get_setting("emergency_stop") is None


def test_close_leaves_a_live_threads_connection_usable_and_closes_a_finished_threads(store: RunStore) -> None:
    """A run's listener thread may be inside a query when the run ends and closes the store:
    closing a connection under a running statement crashes the interpreter, so close() lets a
    live thread's connection go (it still answers) and closes only those nobody can be using."""
    import threading

    run = store.create_run(RunConfig())
    ready, release, done = threading.Event(), threading.Event(), threading.Event()
    answers: list[object] = []

    def listener() -> None:
        answers.append(store.get_run(run.id).status)  # Opens this thread's connection.
        ready.set()
        release.wait(30)
        answers.append(store.get_run(run.id).status)  # After close(): still answers.
        done.set()

    finished = threading.Thread(target=lambda: store.get_run(run.id))
    finished.start()
    finished.join()
    dead = next(db for db, owner in store._all.items() if owner is finished)
    live = threading.Thread(target=listener)
    live.start()
    assert ready.wait(30)
    kept = next(db for db, owner in store._all.items() if owner is live)
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        dead.execute("SELECT 1")  # The finished thread's connection is closed ...
    assert kept.execute("SELECT 1").fetchone()[0] == 1  # ... the live one's is not.
    release.set()
    assert done.wait(30)
    live.join()
    assert answers == [RunStatus.QUEUED, RunStatus.QUEUED]


def test_a_reservation_withdrawn_leaves_nothing_unless_it_was_stopped_meanwhile(store: RunStore) -> None:
    """A run created to hold its instrument before it was opened, given up (the instrument did not
    answer): deleted; one stopped meanwhile ends stopped (a stop is never recorded as anything else)."""
    given_up = store.create_run(RunConfig(), queue="TCPIP::bench")
    store.withdraw(given_up.id, "not used")
    with pytest.raises(RunNotFound):
        store.get_run(given_up.id)
    stopped = store.create_run(RunConfig(), queue="TCPIP::bench")
    store.request_stop(stopped.id, "stop requested (hil runs stop)")
    store.withdraw(stopped.id, "stop requested (hil runs stop)")
    run = store.get_run(stopped.id)
    assert run.status is RunStatus.STOPPED and run.error == "stop requested (hil runs stop)"
    assert [e.data["status"] for e in store.events(stopped.id)][-1] == "stopped"


def test_a_run_outcome_is_the_one_outcome_vocabulary_and_stays_its_string_in_json(store: RunStore) -> None:
    from crossbar_hil.runs.store import Run
    from crossbar_hil.training.history import Outcome

    run = store.create_run(RunConfig())
    store.transition(run.id, RunStatus.RUNNING)
    ended = store.transition(run.id, RunStatus.NOT_CONVERGED, outcome=Outcome.MAX_EPOCHS)
    assert ended.outcome is Outcome.MAX_EPOCHS
    assert json.loads(ended.model_dump_json())["outcome"] == "max_epochs"
    schema = Run.model_json_schema()
    (enum,) = [s for s in schema["properties"]["outcome"]["anyOf"] if "$ref" in s]
    assert schema["$defs"][enum["$ref"].rsplit("/", 1)[1]]["enum"] == [o.value for o in Outcome]
