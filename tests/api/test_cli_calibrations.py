"""``hil characterize --all`` keeps a calibration; ``hil calibrations`` lists, shows, exports, deletes it;
``hil train`` on the same instrument uses it and says which one (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossbar_hil.api.cli import main
from crossbar_hil.runs.store import STORE_ENV


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs.sqlite3"
    monkeypatch.setenv(STORE_ENV, str(path))
    return path


def test_characterize_all_then_train_uses_the_newest_calibration(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["characterize", "--builtin", "--seed", "2", "--all", "--pulses", "25", "-q"]) == 0
    out = capsys.readouterr().out
    assert "calibrated 16 devices with 25 pulses" in out and str(database) in out
    assert main(["calibrations", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 1 and listed[0]["devices"] == 16 and listed[0]["n_pulses"] == 25
    cal_id = listed[0]["id"]

    result = tmp_path / "run.json"
    assert main(["train", "--builtin", "--seed", "2", "--json", str(result), "-q"]) == 0
    run = json.loads(result.read_text())
    assert run["curve_source"].startswith("calibration of ") and cal_id in run["curve_source"]
    assert len(run["config"]["training"]["device_curve_siemens"]) == 4  # per device: 4 x 4 x 26
    assert main(["train", "--builtin", "--seed", "3", "--json", str(result), "-q"]) == 0
    assert json.loads(result.read_text())["curve_source"] == "learned in situ"  # another instrument
    opt_out = ["train", "--builtin", "--seed", "2", "--device-curve", "learned", "--json", str(result), "-q"]
    assert main(opt_out) == 0
    assert json.loads(result.read_text())["curve_source"] == "learned in situ"  # opted out
    capsys.readouterr()

    assert main(["calibrations", "show", cal_id]) == 0
    assert json.loads(capsys.readouterr().out)["identity"].endswith("seed=2")
    assert main(["calibrations", "export", cal_id, "-o", str(tmp_path / "exp")]) == 0
    assert sorted(p.name for p in (tmp_path / "exp").iterdir())[:2] == ["calibration.json", "r0c0.dat"]
    assert main(["calibrations", "delete", cal_id]) == 0
    assert main(["calibrations", "show", cal_id]) == 2
    assert f"no calibration '{cal_id}'" in capsys.readouterr().err


def test_characterize_a_subset_and_bad_devices_are_refused_naming_the_option(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["characterize", "--builtin", "--devices", "0,0;1,1", "--pulses", "5", "-q"]) == 0
    assert "calibrated 2 devices" in capsys.readouterr().out
    assert main(["characterize", "--builtin", "--devices", "0;1", "-q"]) == 2
    assert "--devices='0;1'" in capsys.readouterr().err
