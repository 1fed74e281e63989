"""The service's exit: every run going is asked to stop, and no waiting run starts after it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from crossbar_hil.api.service.server import stop_runs
from crossbar_hil.runs.manager import RunManager
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore(tmp_path / "runs.sqlite3")
    yield s
    s.close()


def long_run() -> RunConfig:
    """An emulator run that goes on until stopped (the reference settings do not converge on it)."""
    return RunConfig.model_validate(
        {"preset": "reference", "training": {"max_epochs": 100000, "patience": 0}}
    )


def test_stopping_the_runs_at_exit_starts_no_waiting_run(store: RunStore) -> None:
    manager = RunManager(store, max_emulator_runs=1)
    try:
        going, _ = manager.start(long_run())
        waiting, _ = manager.start(long_run(), if_busy="queue")
        app = FastAPI()
        app.state.manager = manager
        stop_runs(app)
        assert manager.wait(going.id, 30)
        assert store.get_run(going.id).status is RunStatus.STOPPED
        time.sleep(0.2)  # Room for a (wrong) start of the next run; not a speed bound.
        assert manager.active_runs() == []
        assert [(r.id, r.queue_position) for r in store.queued("emulator")] == [(waiting.id, 1)]
    finally:
        manager.shutdown(10)
