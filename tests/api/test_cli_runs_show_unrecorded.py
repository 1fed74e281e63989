"""``hil runs show`` of a run whose end was never recorded (its process killed, its recording
lost) claims nothing that was not recorded: not the outputs at 0 V, not the start state
(issue 17 review, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossbar_hil.api.cli import main
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig
from tests.hil.runs.test_run_store import record


@pytest.fixture
def killed(tmp_path: Path) -> tuple[Path, str]:
    """A store holding a run whose process died after 2 epochs (reset its devices, then SIGKILL)."""
    path = tmp_path / "runs.sqlite3"
    store = RunStore(path)
    run = store.create_run(RunConfig(), owner="host:1")
    store.transition(run.id, RunStatus.RUNNING)
    for epoch in range(3):
        store.record_epoch(run.id, record(epoch))
    assert store.recover(alive=lambda owner: False) == [run.id]
    store.close()
    return path, run.id


def test_show_says_the_outputs_and_the_start_are_not_known(
    killed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, run_id = killed
    assert main(["runs", "--database", str(path), "show", run_id]) == 0
    out = capsys.readouterr().out
    assert f"run {run_id}: interrupted" in out
    assert (
        "outputs at 0 V: not known (the process ended without recording its end); check the instrument" in out
    )
    assert "start: not recorded" in out
    assert "confirmed at 0 V" not in out and "not reset" not in out


def test_export_of_such_a_run_does_not_claim_a_start_state(
    killed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, run_id = killed
    assert main(["runs", "--database", str(path), "export", run_id]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["start_state"] is None and result["end_recorded"] is False
    assert result["outcome"] == "fault" and result["epochs"] == 2
