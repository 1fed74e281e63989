"""Results whose output path fails at the end of a run are kept elsewhere, and said so in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.procedures.training import RunOutputs, run_training
from crossbar_hil.training.config import RunConfig


def test_an_output_directory_gone_during_the_run_keeps_the_results_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    gone = tmp_path / "out"
    gone.mkdir()
    outputs = RunOutputs.beside_json(gone / "r.json", None)
    run = run_training(
        RunConfig.model_validate({"training": {"max_epochs": 2}}),
        backend=EmulatedCrossbar.from_params({}),
        outputs=outputs,
        on_prepared=lambda prepared: shutil.rmtree(gone),  # Passed the check, fails at the end.
    )
    kept = sorted(cwd.iterdir())
    assert [p.suffix for p in kept] == [".csv", ".json"] and sorted(run.written) == kept
    assert json.loads(kept[1].read_text())["outcome"] == run.result.outcome
    assert len(run.write_notes) == 2
    assert all(str(gone) in note and "instead" in note and "\n" not in note for note in run.write_notes)


def test_hil_train_says_where_the_results_went_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crossbar_hil.api.cli import main
    from crossbar_hil.procedures import training

    monkeypatch.chdir(tmp_path)
    target = tmp_path / "sys" / "r.json"
    target.parent.mkdir()
    real = training.write_text_atomic

    def refusing(path: object, text: object) -> Path:
        if Path(str(path)).parent == target.parent:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, text)  # type: ignore[arg-type]

    monkeypatch.setattr(training, "write_text_atomic", refusing)
    assert main(["train", "--max-epochs", "2", "--quiet", "--json", str(target)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    notes = [line for line in err.splitlines() if "could not write" in line]
    assert len(notes) == 2 and all("Permission denied" in n and "instead" in n for n in notes)
    assert len(list(tmp_path.glob("r-*.json"))) == 1
