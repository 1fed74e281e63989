"""``hil train`` records its run in the run store as the service records its runs (issue 17 item 7):
``hil runs`` and the service list it; a store that cannot be used never costs the training or its
files; one run per instrument and the emergency-stop latch hold for it; a stop written in the store
stops it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crossbar_hil.api.cli import main
from crossbar_hil.api.cli.train import ProgressLine
from crossbar_hil.api.service.app import create_app
from crossbar_hil.api.service.settings import ServiceSettings
from crossbar_hil.runs import local, recorder
from crossbar_hil.runs.manager import ESTOP_SETTING
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import STORE_ENV, RunStore
from crossbar_hil.training.config import RunConfig

LONG = ["--preset", "reference", "--max-epochs", "100000", "--patience", "0"]
"""A run that only a stop ends (the reference settings do not converge on the built-in device)."""


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def store_path() -> Path:
    return Path(os.environ[STORE_ENV])  # Each test's own (tests/conftest.py).


def only_run(path: Path) -> tuple[RunStore, str]:
    store = RunStore(path)
    runs, total = store.list_runs()
    assert total == 1, [r.id for r in runs]
    return store, runs[0].id


def test_hil_train_records_its_run_as_the_service_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result_path = tmp_path / "r.json"
    code, out, _ = run_cli(capsys, "train", "--builtin", "--seed", "3", "--json", str(result_path))
    assert code == 0
    result = json.loads(result_path.read_text())
    store, run_id = only_run(store_path())
    run = store.get_run(run_id)
    assert run.status is RunStatus.CONVERGED and run.outcome == result["outcome"] == "converged"
    assert run.epochs == result["epochs"] and run.pulses == result["total_pulses"]
    assert store.epoch_records(run_id) == len(result["history"]) == run.epochs + 1
    assert [r.to_dict() for r in store.epochs(run_id)] == result["history"]
    assert store.pulse_log_count(run_id, "pulse") == result["total_pulses"] + result["probe_pulses"]
    statuses = [e.data["status"] for e in store.events(run_id) if e.kind == "status"]
    assert statuses == ["queued", "running", "converged"]
    # The settings it used, the calibrated gain among them (not the requested 6e6).
    assert RunConfig().training.beta == 6e6 != result["beta"]
    assert run.config == result["config"] and run.config["training"]["beta"] == result["beta"]
    assert f"run store: run {run_id} in {store_path()}" in out
    # hil runs show prints the summary hil train printed.
    code, shown, _ = run_cli(capsys, "runs", "show", run_id)
    summary = out.split("results:")[0].strip()
    assert code == 0 and summary in shown and "CONVERGED after 1 epoch (" in shown
    # And the service lists it, with the same counts.
    with TestClient(create_app(ServiceSettings(database=store_path()))) as client:
        (listed,) = client.get("/runs").json()["items"]
        assert (listed["id"], listed["status"], listed["epochs"]) == (run_id, "converged", result["epochs"])
        assert client.get(f"/runs/{run_id}/pulses").json()["total"] == store.pulse_log_count(run_id)
    store.close()


def test_no_record_leaves_the_store_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run_cli(capsys, "train", "--builtin", "--no-record", "--json", str(tmp_path / "r.json"))
    assert code == 0 and (tmp_path / "r.json").is_file() and not store_path().exists()


def unusable(kind: str, tmp_path: Path) -> Path:
    """A run store path that cannot be used, as ``kind`` says."""
    if kind == "not a database":
        path = tmp_path / "runs.sqlite3"
        path.write_bytes(b"these are not the bytes of an SQLite file\n" * 100)
        return path
    if kind == "unwritable":  # Its folder cannot be made: a file is in the way (root ignores modes).
        (tmp_path / "afile").write_text("x")
        return tmp_path / "afile" / "runs.sqlite3"
    path = tmp_path / "locked.sqlite3"
    RunStore(path).close()
    return path


@pytest.mark.parametrize("kind", ["not a database", "unwritable", "locked"])
def test_a_store_that_cannot_be_used_is_said_in_one_line_and_the_training_goes_on(
    kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = unusable(kind, tmp_path)
    holder = sqlite3.connect(path if kind == "locked" else ":memory:", isolation_level=None)
    if kind == "locked":  # Another writer holds the lock longer than hil train waits for it.
        monkeypatch.setattr(local, "BUSY_TIMEOUT_S", 0.2)
        holder.execute("BEGIN EXCLUSIVE")
    try:
        argv = ["train", "--builtin", "-q", "--database", str(path), "--json", str(tmp_path / "r.json")]
        code, _, err = run_cli(capsys, *argv)
    finally:
        holder.close()
    assert code == 0 and json.loads((tmp_path / "r.json").read_text())["outcome"] == "converged"
    (line,) = err.strip().splitlines()
    assert line.startswith(f"hil train: not recorded: the run store {path} cannot be used (")
    assert line.endswith("the training goes on and its files are written")


def failing_from(epoch: int, error: str, *, times: int | None = None):  # type: ignore[no-untyped-def]
    """``RunStore.record_epochs`` refusing (``error``) every batch holding ``epoch`` or a later
    one, ``times`` times (None: for good), as a store another process keeps locked does."""
    record_epochs, failed = RunStore.record_epochs, []

    def failing(self: RunStore, run_id: str, batch):  # type: ignore[no-untyped-def]
        if any(r.epoch >= epoch for r, _ in batch) and (times is None or len(failed) < times):
            failed.append([r.epoch for r, _ in batch])
            raise sqlite3.OperationalError(error)
        return record_epochs(self, run_id, batch)

    return failing, failed


@pytest.fixture
def every_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder commits every epoch and tries a failed commit again at the next one."""
    monkeypatch.setattr(recorder, "BATCH_S", 0.0)
    monkeypatch.setattr(recorder, "RETRY_S", 0.0)


@pytest.mark.usefixtures("every_epoch")
def test_a_store_busy_for_a_while_costs_no_record_and_the_run_ends_as_it_did(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing, failed = failing_from(2, "database is locked", times=2)
    monkeypatch.setattr(RunStore, "record_epochs", failing)
    argv = ["train", "--builtin", "-q", "--preset", "reference", "--max-epochs", "6", "--patience", "0"]
    code, out, err = run_cli(capsys, *argv, "--json", str(tmp_path / "r.json"))
    result = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and result["epochs"] == 6 and result["outcome"] == "max_epochs"
    assert failed == [[2], [2, 3]]  # Kept, and tried again with the next epoch.
    behind, caught_up = err.strip().splitlines()
    assert "is behind from epoch 2 (OperationalError: database is locked); the training goes on" in behind
    assert caught_up.endswith("caught up: no epoch lost")
    store, run_id = only_run(store_path())
    run = store.get_run(run_id)
    assert run.status is RunStatus.NOT_CONVERGED and run.outcome == "max_epochs" and run.error is None
    assert [r.to_dict() for r in store.epochs(run_id)] == result["history"]  # Every epoch, no gap.
    assert store.result(run_id) is not None and f"run store: run {run_id}" in out
    store.close()


@pytest.mark.usefixtures("every_epoch")
def test_a_store_that_fails_for_good_records_the_real_end_with_its_gap_and_says_what_is_lost(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing, _ = failing_from(2, "database is locked")
    monkeypatch.setattr(RunStore, "record_epochs", failing)
    argv = ["train", "--builtin", "-q", "--preset", "reference", "--max-epochs", "5", "--patience", "0"]
    code, out, err = run_cli(capsys, *argv)  # No --json, no --plots: nothing else keeps the history.
    assert code == 0 and "NOT converged after 5 epochs" in out
    lines = err.strip().splitlines()
    assert "is behind from epoch 2" in lines[0]
    assert "stopped at epoch 2: OperationalError: database is locked" in lines[-1]
    assert lines[-1].endswith("no files were asked for (--json, --plots): its history from epoch 2 is lost")
    assert "its history there ends before epoch 2" in out
    store, run_id = only_run(store_path())
    run = store.get_run(run_id)
    assert run.status is RunStatus.NOT_CONVERGED and run.outcome == "max_epochs"  # Not interrupted.
    assert "the stored history ends before epoch 2 (no files were written)" in str(run.error)
    assert [r.epoch for r in store.epochs(run_id)] == [0, 1]  # What was recorded is kept.
    assert store.result(run_id)["epochs"] == 5  # type: ignore[index]  # The real result.
    store.close()


@pytest.mark.usefixtures("every_epoch")
def test_a_run_stopped_after_its_recording_stopped_is_still_recorded_stopped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_epoch = ProgressLine.on_epoch
    failing, _ = failing_from(2, "disk I/O error")

    def ctrl_c_at_epoch_4(self: ProgressLine, record) -> None:  # type: ignore[no-untyped-def]
        on_epoch(self, record)
        if record.epoch == 4:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(RunStore, "record_epochs", failing)
    monkeypatch.setattr(ProgressLine, "on_epoch", ctrl_c_at_epoch_4)
    code, _, err = run_cli(capsys, "train", "--builtin", *LONG, "--json", str(tmp_path / "r.json"))
    assert code == 4 and json.loads((tmp_path / "r.json").read_text())["outcome"] == "stopped", err
    store, run_id = only_run(store_path())
    run = store.get_run(run_id)
    assert run.status is RunStatus.STOPPED and "stopped by Ctrl-C; recording stopped midway" in str(run.error)
    assert "see its files" in str(run.error)
    store.close()


def test_a_latched_emergency_stop_refuses_hil_train(capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore(store_path())
    store.set_setting(ESTOP_SETTING, {"reason": "smoke in the lab", "at": "2026-12-05T00:00:00"})
    code, _, err = run_cli(capsys, "train", "--builtin", "-q")
    assert code == 3 and "emergency stop is latched" in err and "smoke in the lab" in err
    assert store.list_runs()[1] == 0
    store.close()


def test_a_stop_written_in_the_store_stops_a_hil_train_run(capsys: pytest.CaptureFixture[str]) -> None:
    stopped: list[int] = []

    def stop_from_elsewhere() -> None:  # As `hil runs stop` does, from another process.
        store = RunStore(store_path())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs, _ = store.list_runs()
            if runs and runs[0].epochs >= 3:
                store.request_stop(runs[0].id, "stop requested (hil runs stop)")
                stopped.append(runs[0].epochs)
                break
            time.sleep(0.01)
        store.close()

    helper = threading.Thread(target=stop_from_elsewhere)
    helper.start()
    code, _, err = run_cli(capsys, "train", "--builtin", "-q", *LONG)
    helper.join()
    assert code == 4 and stopped, err
    store, run_id = only_run(store_path())
    run = store.get_run(run_id)
    assert run.status is RunStatus.STOPPED and run.error == "stop requested (hil runs stop)"
    assert stopped[0] <= run.epochs == store.epoch_records(run_id) - 1 < 100_000
    store.close()


def test_hil_train_says_when_it_is_paused_from_the_store_and_when_it_resumes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[RunStatus] = []

    def pause_then_resume_from_elsewhere() -> None:  # As `hil runs pause` and `resume` do.
        store = RunStore(store_path())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(seen) < 3:
            runs, _ = store.list_runs()
            run = runs[0] if runs else None
            if run is not None and not seen and run.epochs >= 3:
                store.request_pause(run.id, "after_epoch")
                seen.append(run.status)
            elif run is not None and len(seen) == 1 and run.status is RunStatus.PAUSED:
                seen.append(run.status)
                store.request_resume(run.id)
            elif run is not None and len(seen) == 2 and run.status is RunStatus.RUNNING:
                seen.append(run.status)
                store.request_stop(run.id, "stop requested (hil runs stop)")
            time.sleep(0.01)
        store.close()

    helper = threading.Thread(target=pause_then_resume_from_elsewhere)
    helper.start()
    code, _, err = run_cli(capsys, "train", "--builtin", "-q", *LONG)
    helper.join()
    assert code == 4 and seen == [RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.RUNNING], err
    _, run_id = only_run(store_path())
    lines = err.strip().splitlines()
    paused = f"hil train: paused by a request (run {run_id}): resume with hil runs resume {run_id}"
    assert lines[-2:] == [paused, "hil train: resumed"]
