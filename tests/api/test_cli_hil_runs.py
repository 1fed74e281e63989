"""``hil runs`` and ``hil serve`` from the command line, on the store the service writes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from crossbar_hil.api.cli import main
from crossbar_hil.procedures.training import RESULT_SCHEMA_VERSION
from crossbar_hil.runs.manager import RunManager
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig

pytestmark = pytest.mark.system


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A store with one finished emulator run (10 epochs) and one queued run."""
    path = tmp_path / "runs.sqlite3"
    store = RunStore(path)
    manager = RunManager(store)
    reference = {"preset": "reference", "training": {"max_epochs": 10, "patience": 0}}  # Lasts its epochs.
    run, _ = manager.start(RunConfig.model_validate(reference))
    assert manager.wait(run.id, 10)
    store.create_run(RunConfig())
    store.close()
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_show_export_and_stop(
    database: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = ["runs", "--database", str(database)]
    code, out, _ = run_cli(capsys, *db, "list", "--json")
    listing = json.loads(out)
    assert code == 0 and listing["total"] == 2
    queued, done = listing["items"]
    assert (queued["status"], done["status"]) == ("queued", "not_converged")
    code, out, _ = run_cli(capsys, *db, "list", "--status", "not_converged")
    assert code == 0 and done["id"] in out and queued["id"] not in out and "1 of 1 runs" in out
    code, out, _ = run_cli(capsys, *db, "show", done["id"], "--json")
    assert json.loads(out)["epochs"] == 10  # Epochs trained, as the summary says: not the 11 records.
    code, out, _ = run_cli(capsys, *db, "list")
    (row,) = [line.split() for line in out.splitlines() if line.startswith(done["id"])]
    assert row[-2:] == ["10", str(done["pulses"])]
    code, out, _ = run_cli(capsys, *db, "show", done["id"])  # The summary hil train prints.
    assert code == 0 and "NOT converged after 10 epochs" in out and f"run {done['id']}: not_converged" in out
    code, out, _ = run_cli(capsys, *db, "export", done["id"])
    result = json.loads(out)
    assert (
        result["schema_version"] == RESULT_SCHEMA_VERSION
        and len(result["history"]) == 11
        and result["outcome"] == "max_epochs"
    )
    target = tmp_path / "h.csv"
    assert run_cli(capsys, *db, "export", done["id"], "--format", "csv", "-o", str(target))[0] == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [int(r["epoch"]) for r in rows] == list(range(11))
    assert [float(r["error"]) for r in rows] == [e["error"] for e in result["history"]]
    code, out, _ = run_cli(capsys, *db, "stop", queued["id"])
    assert code == 0 and "stopping" in out
    assert run_cli(capsys, *db, "stop", queued["id"])[0] == 0
    for action in ("show", "stop", "pause", "resume", "delete"):
        code, _, err = run_cli(capsys, *db, action, "nope")
        assert code == 2 and "no run 'nope'" in err, (action, code, err)


def test_a_missing_database_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "runs", "--database", str(tmp_path / "none.sqlite3"), "list")
    assert code == 2 and "no run store" in err


def test_serve_refuses_a_public_address_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIL_TOKEN", raising=False)
    code, _, err = run_cli(capsys, "serve", "--host", "0.0.0.0", "--database", str(tmp_path / "db"))
    assert code == 2 and "not a loopback address" in err and "token" in err
    assert not (tmp_path / "db").exists()


def test_serve_on_loopback_without_a_token_writes_one_for_its_owner(tmp_path: Path) -> None:
    from crossbar_hil.api.cli import build_parser
    from crossbar_hil.api.cli.serve import settings_from

    args = build_parser().parse_args(["serve", "--database", str(tmp_path / "db")])
    settings, written = settings_from(args)
    assert written == tmp_path / "db.token" and written.stat().st_mode & 0o077 == 0
    assert settings.token is not None and written.read_text().strip() == settings.token.get_secret_value()
    again, kept = settings_from(args)  # The next start keeps it: scripts and browsers stay signed in.
    assert kept == written and again.token is not None
    assert again.token.get_secret_value() == settings.token.get_secret_value()


def test_serve_takes_the_run_times_from_the_model_with_its_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crossbar_hil.api.cli import build_parser
    from crossbar_hil.api.cli.serve import settings_from
    from crossbar_hil.runs.control import ControlTimes

    given = ["--pause-timeout-s", "60", "--suspend-timeout", "5", "--poll-s", "0.1"]
    args = build_parser().parse_args(["serve", "--database", str(tmp_path / "db"), *given])
    times = settings_from(args)[0].times
    assert times == ControlTimes(pause_timeout_s=60, suspend_timeout_s=5, poll_s=0.1)
    assert (
        settings_from(build_parser().parse_args(["serve", "--database", str(tmp_path / "db")]))[0].times
        == ControlTimes()
    )  # The model's defaults, declared once.
    monkeypatch.delenv("HIL_TOKEN", raising=False)
    code, _, err = run_cli(capsys, "serve", "--database", str(tmp_path / "db2"), "--suspend-timeout-s", "-1")
    assert code == 2 and "suspend_timeout_s" in err and not (tmp_path / "db2.token").exists()


@pytest.mark.parametrize(
    "bad", [["--max-emulator-runs", "-1"], ["--port", "70000"], ["--max-emulator-runs", "5000"]]
)
def test_serve_with_bad_settings_writes_no_token_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, bad: list[str]
) -> None:
    monkeypatch.delenv("HIL_TOKEN", raising=False)
    code, _, err = run_cli(capsys, "serve", "--database", str(tmp_path / "db"), *bad)
    assert code == 2 and ("max_emulator_runs" in err or "port" in err)
    assert not (tmp_path / "db.token").exists()


def test_pause_resume_queue_and_delete_act_through_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.sqlite3"
    store = RunStore(path)
    manager = RunManager(store, max_emulator_runs=1)
    manager.watch_queues(0.1)
    db = ["runs", "--database", str(path)]
    slow = {"preset": "reference", "training": {"max_epochs": 100000, "patience": 0}}
    try:
        going, _ = manager.start(RunConfig.model_validate(slow))
        waiting = [
            manager.start(RunConfig.model_validate({"training": {"max_epochs": 1}}), if_busy="queue")[0]
            for _ in range(2)
        ]
        wait_for(lambda: store.get_run(going.id).status == "running")  # Not paused while queued.
        assert run_cli(capsys, *db, "pause", going.id, "--when", "now")[0] == 0
        wait_for(lambda: store.get_run(going.id).status == "paused")
        assert run_cli(capsys, *db, "resume", going.id)[0] == 0
        wait_for(lambda: store.get_run(going.id).status == "running")
        code, out, _ = run_cli(capsys, *db, "queue", "list", "--json")
        queue = json.loads(out)["queues"][0]
        assert code == 0 and queue["name"] == "emulator" and queue["state"] == "started"
        assert [i["id"] for i in queue["items"]] == [w.id for w in waiting]
        assert run_cli(capsys, *db, "queue", "move", waiting[1].id, "1")[0] == 0
        assert run_cli(capsys, *db, "delete", waiting[0].id)[0] == 0
        assert run_cli(capsys, *db, "queue", "stop", "emulator")[0] == 0
        code, _, err = run_cli(capsys, *db, "delete", going.id)
        assert code == 2 and "still active" in err
        assert run_cli(capsys, *db, "stop", going.id)[0] == 0
        assert manager.wait(going.id, 20)
        assert store.get_run(waiting[1].id).status == "queued"  # The queue is stopped.
        assert run_cli(capsys, *db, "queue", "start", "emulator")[0] == 0  # The manager sees it.
        wait_for(lambda: store.get_run(waiting[1].id).status.finished)
        code, _, err = run_cli(capsys, *db, "pause", going.id)
        assert code == 2 and "only a running run can be paused" in err
    finally:
        manager.shutdown(20)
        store.close()


def wait_for(condition: object, timeout_s: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.02)
