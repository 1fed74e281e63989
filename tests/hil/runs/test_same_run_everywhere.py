"""A config trains the same through the procedure and through the run manager (the service's
path), the default config included: the default lives in the core, not in an edge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.procedures.training import run_training
from crossbar_hil.runs.manager import RunManager
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import TrainingResult, first_difference


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[RunManager]:
    store = RunStore(tmp_path / "runs.sqlite3")
    m = RunManager(store, isolation="thread")
    yield m
    m.shutdown(10)
    store.close()


@pytest.mark.parametrize(
    "body",
    [
        {},  # POST /runs {}
        {"backend": {"params": {"seed": 7}}},
        {"preset": "reference", "backend": {"params": {"seed": 3}}, "training": {"max_epochs": 8}},
        {"training": {"rule": "manhattan", "max_epochs": 5}, "backend": {"params": {"seed": 1}}},
    ],
)
def test_the_manager_runs_a_config_as_the_procedure_does(manager: RunManager, body: dict[str, Any]) -> None:
    config = RunConfig.model_validate(body)
    run, _ = manager.start(config)
    assert manager.wait(run.id, 30)
    direct = run_training(config, backend=EmulatedCrossbar.from_params(config.backend.params))
    stored_dict = manager.store.result(run.id)
    assert stored_dict is not None
    stored = TrainingResult.from_dict(stored_dict, direct.config.training, manager.store.epochs(run.id))
    assert first_difference(stored, direct.result) is None
    assert stored_dict["config"] == direct.config.model_dump(mode="json")  # The curve used, recorded.
    assert stored.beta == direct.result.beta


def test_the_default_run_is_the_recommended_one_with_curves_learned_in_situ(manager: RunManager) -> None:
    run, _ = manager.start(RunConfig())
    assert manager.wait(run.id, 30)
    result = manager.store.result(run.id)
    assert result is not None
    training = result["config"]["training"]
    assert result["config"]["preset"] == "recommended"
    assert training["rule"] == "planned" and training["gain"] == "calibrated"
    assert training["device_curve_siemens"] is None and training["curve_source"] == "auto"
    assert result["curve_source"] == "learned in situ" and result["feasibility"] is not None
    assert result["beta"] != RunConfig().training.beta  # Calibrated, not the field's 6e6.
