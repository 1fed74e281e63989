"""``hil train --rule ...``: the rule options reach the run, and the summary counts the instrument use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossbar_hil.api.cli import main

pytestmark = pytest.mark.system


def test_method_b_run_reports_resets_verify_pulses_and_instrument_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.json"
    argv = [
        "train",
        "--builtin",
        "--seed",
        "3",
        "--gain",
        "fixed",
        "--max-epochs",
        "30",
        "-q",
        "--json",
        str(out),
    ]
    rc = main([*argv, "--rule", "method_b", "--reset-time", "0.5", "--saturation-tol", "1e-12"])
    assert rc == 0
    data = json.loads(out.read_text())
    training = data["config"]["training"]
    assert (training["rule"], training["reset_time_s"], training["saturation_tol_siemens"]) == (
        "method_b",
        0.5,
        1e-12,
    )
    assert data["total_resets"] > 0
    assert data["instrument_time_s"] == pytest.approx(
        0.5 * data["total_resets"] + 1e-3 * data["total_pulses"]
    )
    text = capsys.readouterr().out
    assert (
        f"instrument: {data['total_pulses']} pulses ({data['total_verify_pulses']} read-verify), "
        f"{data['total_resets']} resets, {data['instrument_time_s']:.3f} s" in text
    )


def test_online_update_is_passed_on(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    argv = ["train", "--builtin", "--max-epochs", "2", "-q", "--rule", "manhattan", "--update", "online"]
    assert main([*argv, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["config"]["training"]["update"] == "online"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rule", "method_x"], "known rules: manhattan, method_a, method_b, method_c"),
        (["--update", "sometimes"], "training.update='sometimes'"),
        (["--rule", "method_c"], "supports_depression = False"),
        (["--rule", "method_c", "--param", "depression=true", "--depress-v", "1"], "depress_v"),
        (["--reset-time", "0"], "training.reset_time_s=0.0"),
    ],
)
def test_bad_rule_input_exits_2_naming_it(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--builtin", "-q", *argv]) == 2
    assert message in capsys.readouterr().err
