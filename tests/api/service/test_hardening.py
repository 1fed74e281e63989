"""Smaller holes closed: Host header, token file modes, out-of-range seed and gain, export errors,
nothing recorded after a run's end."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from crossbar_hil.api.service.app import create_app
from crossbar_hil.api.service.settings import ServiceSettings, new_token_file, read_token
from crossbar_hil.emulator.config import EmulatorConfig
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig, TrainingConfig
from crossbar_hil.training.history import EpochRecord


@pytest.mark.system
def test_a_request_addressed_to_a_foreign_host_name_is_refused(settings: ServiceSettings) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert client.get("/health", headers={"Host": "localhost"}).status_code == 200
        for rebound in ("attacker.example", "attacker.example:8000", "127.0.0.1.attacker.example"):
            assert client.get("/runs", headers={"Host": rebound}).status_code == 400


def test_an_existing_token_file_is_made_owner_only_and_a_world_writable_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("old\n")
    path.chmod(0o644)
    new_token_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o666)
    with pytest.raises(ValueError, match="writable by every user"):
        read_token(path)
    path.chmod(0o600)
    assert read_token(path) is not None


def test_a_seed_beyond_64_bits_and_an_absurd_gain_are_refused_by_the_models() -> None:
    with pytest.raises(ValidationError, match="seed"):
        EmulatorConfig(seed=2**63)
    assert EmulatorConfig(seed=2**63 - 1).seed == 2**63 - 1
    with pytest.raises(ValidationError, match="beta"):
        TrainingConfig(beta=1e308)


def test_hil_runs_export_to_an_unwritable_path_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crossbar_hil.api.cli import main

    store = RunStore(tmp_path / "runs.sqlite3")
    run = store.create_run(RunConfig())
    store.close()
    code = main(
        ["runs", "--database", str(tmp_path / "runs.sqlite3"), "export", run.id, "--format", "csv",
         "-o", str(tmp_path / "missing" / "r.csv")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot write" in err and len(err.splitlines()) == 1


def test_an_epoch_arriving_after_the_run_was_marked_interrupted_is_not_stored(tmp_path: Path) -> None:
    from crossbar_hil.emulator.crossbar import EmulatedCrossbar
    from crossbar_hil.procedures.training import run_training

    record = run_training(
        RunConfig.model_validate({"training": {"max_epochs": 1}}), backend=EmulatedCrossbar()
    )
    epoch: EpochRecord = record.result.history[0]
    store = RunStore(tmp_path / "runs.sqlite3")
    run = store.create_run(RunConfig(), owner="gone-host:1")
    store.transition(run.id, RunStatus.RUNNING)
    assert store.recover(alive=lambda owner: False) == [run.id]  # A restarted service.
    assert store.record_epoch(run.id, epoch) is RunStatus.INTERRUPTED  # The old process's last epoch.
    assert store.get_run(run.id).epochs == 0 and store.epochs(run.id) == []
    store.close()
    assert os.path.exists(tmp_path / "runs.sqlite3")
