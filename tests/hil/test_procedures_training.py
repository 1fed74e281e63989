"""The training procedure: outputs checked before anything is sent, results written whatever
the outcome, with the metadata a lab needs; a long history stays small in the JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.procedures.outputs import OutputPathError
from crossbar_hil.procedures.training import RunOutputs, run_training
from crossbar_hil.seam.errors import ConnectionLost, DeviceFault, RunStopped
from crossbar_hil.training.config import RunConfig, TrainingConfig
from crossbar_hil.training.history import thinned


class _Counting(EmulatedCrossbar):
    """Counts pulses and resets; fails the n-th pulse batch when asked."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__(EmulatorConfig(seed=0))
        self.sent = 0
        self.fail_at = fail_at

    def _pulse_many(self, pulses):  # type: ignore[no-untyped-def]
        self.sent += 1
        if self.fail_at is not None and self.sent >= self.fail_at:
            raise ConnectionLost("cable pulled")
        super()._pulse_many(pulses)

    def _reset(self, row: int, col: int) -> None:
        self.sent += 1
        super()._reset(row, col)


def test_an_unwritable_output_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    backend = _Counting()
    outputs = RunOutputs.beside_json(tmp_path / "missing" / "run.json")
    with pytest.raises(OutputPathError):
        run_training(RunConfig(), backend=backend, outputs=outputs)
    assert backend.sent == 0 and backend.closed


def test_a_faulted_run_still_writes_its_json_and_csv(tmp_path: Path) -> None:
    outputs = RunOutputs.beside_json(tmp_path / "run.json")
    assert outputs.csv == tmp_path / "run.csv"
    run = run_training(RunConfig(preset="reference"), backend=_Counting(fail_at=16 + 3), outputs=outputs)
    assert run.result.outcome == "fault"
    data = json.loads(outputs.json.read_text())  # type: ignore[union-attr]
    assert data["outcome"] == "fault" and "cable pulled" in data["error_message"]
    assert len(data["history"]) == 3 and data["start_reset_devices"][0] == [0, 0]
    with outputs.csv.open() as f:  # type: ignore[union-attr]
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1", "2"]


def test_thinning_keeps_first_and_last_and_at_most_the_limit() -> None:
    assert thinned(5, None) == [0, 1, 2, 3, 4] and thinned(5, 10) == [0, 1, 2, 3, 4]
    kept = thinned(100_001, 1000)
    assert len(kept) <= 1000 and kept[0] == 0 and kept[-1] == 100_000
    assert kept == sorted(set(kept))


def test_the_json_is_bounded_for_a_long_run() -> None:
    config = RunConfig(training=TrainingConfig(max_epochs=3000, patience=0))
    run = run_training(config, backend=EmulatedCrossbar(EmulatorConfig(seed=0)))
    assert len(run.result.history) == 3001
    assert len(run.to_json()) < 3_000_000
    assert len(run.to_dict(history_limit=None)["history"]) == 3001


@pytest.mark.parametrize(
    ("diagnosis", "expected", "never"),
    [
        ("infeasible_draw", "--seed", "--beta"),
        ("gain_too_low", "--beta 1.8e+07", "--max-epochs"),
        ("saturated_pair", "--rule method_b", "--max-epochs"),
        ("epoch_limit", "--max-epochs 100", "--rule"),
    ],
)
def test_the_advice_for_a_run_that_did_not_converge_follows_its_diagnosis(
    diagnosis: str, expected: str, never: str
) -> None:
    from crossbar_hil.procedures.training import TrainingRun, what_to_try
    from crossbar_hil.training.history import TrainingResult

    result = TrainingResult(outcome="max_epochs", diagnosis=diagnosis)  # type: ignore[arg-type]
    config = RunConfig(training=TrainingConfig(beta=6e6, max_epochs=50))
    tips = "\n".join(what_to_try(TrainingRun(config, "test", result)))
    assert expected in tips and never not in tips


def test_a_converged_run_gets_no_advice() -> None:
    from crossbar_hil.procedures.training import TrainingRun, what_to_try
    from crossbar_hil.training.history import TrainingResult

    assert what_to_try(TrainingRun(RunConfig(), "test", TrainingResult(outcome="converged"))) == []


class _ResetFails(_Counting):
    """The third start-state reset fails with an instrument error; counts aborts."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.resets = 0
        self.pulses = 0
        self.aborted = 0

    def _reset(self, row: int, col: int) -> None:
        self.resets += 1
        if self.resets == 3:
            raise self.error
        super()._reset(row, col)

    def _pulse_many(self, pulses):  # type: ignore[no-untyped-def]
        self.pulses += len(pulses)
        super()._pulse_many(pulses)

    def _abort(self) -> None:
        self.aborted += 1
        super()._abort()


@pytest.mark.parametrize(
    ("error", "outcome", "message"),
    [
        (
            DeviceFault("reset failed: instrument error"),
            "fault",
            "DeviceFault: reset failed: instrument error",
        ),
        (RunStopped("stop pressed during the reset"), "stopped", "stop pressed during the reset"),
    ],
)
def test_a_failure_during_the_start_reset_ends_the_run_with_it_and_sends_nothing_more(
    error: Exception, outcome: str, message: str
) -> None:
    backend = _ResetFails(error)
    shown = []
    run = run_training(
        RunConfig(training=TrainingConfig(rule="manhattan", max_epochs=5)),
        backend=backend,
        on_prepared=shown.append,
    )
    assert run.result.outcome == outcome and message in (run.result.error_message or "")
    assert backend.resets == 3 and backend.pulses == 0 and run.result.history == []
    assert run.result.start_reset_devices == [(0, 0), (0, 1)]
    assert backend.aborted >= 1 and shown == []  # 0 V; no verdict shown for a start that failed


class _AbortFails(_Counting):
    """Every abort fails: the link to the instrument is gone by then."""

    def _abort(self) -> None:
        raise ConnectionLost("no route to instrument")


def test_a_failed_abort_at_close_is_carried_into_the_result(tmp_path: Path) -> None:
    outputs = RunOutputs.beside_json(tmp_path / "run.json")
    backend = _AbortFails()
    run = run_training(RunConfig(training=TrainingConfig(max_epochs=2)), backend=backend, outputs=outputs)
    assert backend.closed and run.result.outcome == "max_epochs"
    warning = "could not be confirmed (ConnectionLost: no route to instrument) - check the instrument"
    assert warning in (run.result.error_message or "")
    assert warning in json.loads(outputs.json.read_text())["error_message"]  # type: ignore[union-attr]


def test_after_a_fault_a_failed_abort_is_reported_once_after_the_fault() -> None:
    class _Both(_AbortFails):
        def __init__(self) -> None:
            super().__init__(fail_at=16 + 2)

    run = run_training(RunConfig(training=TrainingConfig(max_epochs=5)), backend=_Both())
    message = run.result.error_message or ""
    assert run.result.outcome == "fault" and message.startswith("ConnectionLost: cable pulled")
    assert message.count("could not be confirmed") == 1


def test_without_a_curve_the_run_learns_them_in_situ_and_never_asks_the_backend() -> None:
    class NoPeeking(EmulatedCrossbar):
        def device_curve_siemens(self) -> NDArray[np.float64]:
            raise AssertionError("the default run asked the emulator for its exact curve")

    run = run_training(RunConfig(training={"max_epochs": 2}), backend=NoPeeking(EmulatorConfig(seed=3)))
    assert run.config.training.device_curve_siemens is None
    assert run.result.curve_source == "learned in situ"
    assert "device curves: learned in situ" in run.result.notes
    assert run.result.feasibility is not None and run.result.probe_pulses > 0
    assert "gain calibrated" in " ".join(run.result.notes)


def test_asked_for_the_oracle_the_run_uses_the_backends_curve_records_it_and_names_it() -> None:
    backend = EmulatedCrossbar(EmulatorConfig(seed=3))
    expected = backend.config.scale_k * (backend.table - backend.table[0])
    run = run_training(RunConfig(training={"max_epochs": 2, "curve_source": "oracle"}), backend=backend)
    assert run.config.training.device_curve_siemens == pytest.approx(expected.tolist(), rel=0, abs=0)
    assert run.result.curve_source is not None and run.result.curve_source.startswith("oracle")
    assert run.result.probe_pulses == 0


def test_a_curve_in_the_config_wins_over_the_backends() -> None:
    own = tuple(2e-7 * m for m in range(6))
    run = run_training(
        RunConfig(training={"max_epochs": 1, "device_curve_siemens": own}),
        backend=EmulatedCrossbar(EmulatorConfig(seed=3)),
    )
    assert run.config.training.device_curve_siemens == own


class _NoCurve(EmulatedCrossbar):
    """The emulator as a backend that does not know its device curve (like an instrument)."""

    def device_curve_siemens(self) -> None:
        return None


def test_the_oracle_asked_of_a_backend_without_a_curve_is_refused_before_anything_is_sent() -> None:
    backend = _NoCurve(EmulatorConfig(seed=3))
    with pytest.raises(ValueError, match=r"curve_source='oracle'.*knows no device curve"):
        run_training(RunConfig(training={"curve_source": "oracle"}), backend=backend)
    assert np.all(backend.position == 0)


def test_curve_source_none_leaves_the_run_without_one_and_says_so() -> None:
    cfg = RunConfig(training={"max_epochs": 1, "curve_source": "none"})
    run = run_training(cfg, backend=_NoCurve(EmulatorConfig(seed=3)))
    assert run.config.training.device_curve_siemens is None and run.result.feasibility is None
    fallback = "no device curve (curve_source='none'): the planned rule makes Manhattan steps only"
    assert fallback in run.result.notes
    assert run.result.curve_source is None


@pytest.mark.parametrize("diagnosis", ["gain_too_low", "saturated_pair"])
def test_the_advice_never_suggests_the_calibrated_gain_a_run_already_had(diagnosis: str) -> None:
    from crossbar_hil.procedures.training import TrainingRun, what_to_try
    from crossbar_hil.training.history import Outcome, TrainingResult

    config = RunConfig()  # the recommended settings: gain calibrated
    result = TrainingResult(Outcome.MAX_EPOCHS, diagnosis=diagnosis, curve_source="learned in situ")  # type: ignore[arg-type]
    tips = " ".join(what_to_try(TrainingRun(config, "instrument", result)))
    assert "--gain calibrated" not in tips and "--gain-fraction" in tips
    fixed = RunConfig(training={"gain": "fixed"})
    assert "--gain calibrated" in " ".join(what_to_try(TrainingRun(fixed, "instrument", result)))
