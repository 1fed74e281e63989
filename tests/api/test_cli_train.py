"""``hil train`` from the command line: runs, writes JSON, refuses bad input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossbar_hil.api.cli import main
from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.procedures.training import run_training
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import TrainingResult, first_difference

pytestmark = pytest.mark.system


def test_train_writes_a_json_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    rc = main(
        ["train", "--builtin", "--seed", "0", "--gain", "fixed", "--beta", "3e7", "--json", str(out), "-q"]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["outcome"] == "converged" and data["config"]["training"]["beta"] == 3e7
    assert data["beta"] == 3e7 and data["feasible"] is True
    assert data["config"]["backend"]["params"] == {"seed": 0}
    assert "CONVERGED after" in capsys.readouterr().out


def test_progress_and_summary_on_a_run_that_does_not_converge(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(["train", "--builtin", "--seed", "0", "--preset", "reference", "--max-epochs", "3"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "NOT converged after 3 epochs" in captured.out
    assert "test:" in captured.out
    assert captured.err.count("epoch ") == 4  # one progress line per epoch (not a terminal)


def test_the_reference_preset_is_the_reference_and_options_override_it(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    argv = ["train", "--builtin", "--preset", "reference", "--max-epochs", "2", "--json", str(out), "-q"]
    assert main(argv) == 0
    training = json.loads(out.read_text())["config"]["training"]
    assert training["target_high"] == 0.8 and training["target_low"] == -0.8
    assert training["beta"] == 6e6 and training["gain"] == "fixed" and training["rule"] == "manhattan"
    assert training["max_epochs"] == 2 and not training["ignore_in_band"]
    assert main([*argv, "--target-high", "1", "--target-low", "-1"]) == 0
    training = json.loads(out.read_text())["config"]["training"]
    assert training["target_high"] == 1.0 and training["target_low"] == -1.0


def test_says_before_training_whether_the_bands_can_be_met_and_why_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Seed 3 of the built-in device: at the reference gain neuron 0 cannot meet its bands (checked with
    # the emulator's own curve, asked for by name: the reference's Manhattan rule learns none).
    argv = ["train", "--builtin", "--seed", "3", "--preset", "reference", "--device-curve", "oracle"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    before = captured.err.split("[")[0]  # what is printed before the first progress line
    assert "feasibility at beta = 6e+06 1/A: NOT feasible" in before
    assert "neuron 0: INFEASIBLE" in before and "nA short of the 183.1 nA it needs" in before
    assert "likely reason: gain too low" in captured.out


def test_the_default_calibrates_the_gain_and_converges(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--builtin", "--seed", "3"]) == 0
    captured = capsys.readouterr()
    assert "gain calibrated" in captured.err and "CONVERGED after 1 epoch (" in captured.out


def test_a_characterised_curve_file_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A linear device of 5 steps of 20 nS (a one-column CSV of conductances, as hil characterize
    # writes them), times K = 10: the check before training then reasons with that curve.
    curve = tmp_path / "curve.csv"
    curve.write_text("\n".join(str(4.5e-7 + 2e-8 * m) for m in range(6)) + "\n")
    argv = [
        "train",
        "--builtin",
        "--seed",
        "3",
        "--device-curve",
        str(curve),
        "--curve-scale",
        "10",
        "--json",
        "-",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["training"]["device_curve_siemens"] == pytest.approx([2e-7 * m for m in range(6)])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--beta", "-1"], "training.beta=-1.0: Input should be greater than 0"),
        (["--f-plus", "1.5"], "training.f_plus=1.5: Input should be less than 1"),
        (["--max-epochs", "-3"], "training.max_epochs=-3"),
        (["--trace", "/no/such/trace.dat"], "trace file not found: /no/such/trace.dat"),
        (["--backend", "nope"], "backend 'nope' is not registered"),
        (["--param", "seed"], "--param expects KEY=VALUE"),
        (["--param", "scale_k=-2"], "scale_k"),
        (["--target-high", "1.5"], "training.target_high=1.5"),
        (["--device-curve", "/no/such/curve.dat"], "--device-curve: file not found"),
    ],
)
def test_bad_input_exits_2_naming_the_field(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "-q", *argv]) == 2
    assert message in capsys.readouterr().err


def test_trace_from_environment(
    reference_trace_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HIL_TRACE", str(reference_trace_path))
    assert main(["train", "-q", "--max-epochs", "1"]) == 0
    assert "EmulatedCrossbar,trace,seed=0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"training": {"pulse_v": 3.0}}, "training.pulse_v=3.0 V is out of range"),
        (
            {"task": {"train": [{"pattern": "01010", "target": "1"}]}},
            "task has 5 inputs but the crossbar has 4 rows",
        ),
    ],
)
def test_a_run_that_does_not_fit_the_backend_exits_2_before_any_pulse(
    tmp_path: Path, config: dict, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "run.json"
    f.write_text(json.dumps(config))
    assert main(["train", "-q", "--builtin", "--config", str(f)]) == 2
    assert message in capsys.readouterr().err


def test_the_cli_default_is_the_core_default(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    assert main(["train", "--builtin", "--json", str(out), "-q"]) == 0
    data = json.loads(out.read_text())
    direct = run_training(RunConfig(), backend=EmulatedCrossbar())  # What POST /runs {} runs.
    assert data["config"] == direct.config.model_dump(mode="json")
    assert data["config"]["preset"] == "recommended"
    cli = TrainingResult.from_dict(data, direct.config.training)
    assert first_difference(cli, direct.result) is None


def test_the_first_output_says_which_test_patterns_the_training_set_does_not_cover(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["train", "--builtin", "--max-epochs", "1"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("note: bits 3 and 4 differ in every training pattern")
    assert "8 test patterns where they agree" in first and "data/README.md" in first


def test_the_summary_names_the_curve_source_and_counts_the_probes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIL_DB", str(tmp_path / "none.sqlite3"))  # no calibrations
    out = tmp_path / "run.json"
    assert main(["train", "--builtin", "--seed", "0", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    captured = capsys.readouterr()
    assert "device curves: learned in situ" in captured.err
    assert data["curve_source"] == "learned in situ" and data["probe_pulses"] > 0
    assert f"to learn the device curves: {data['probe_pulses']} pulses" in captured.out
