"""``hil experiment lim`` and ``huang`` from the command line: CSV columns, plot, bad input refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from crossbar_hil.api.cli import main
from crossbar_hil.emulator.network.experiment import COLUMNS
from crossbar_hil.emulator.network.huang_experiment import COLUMNS as HUANG_COLUMNS

pytestmark = pytest.mark.system


def test_lim_writes_the_table_the_runs_and_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["experiment", "lim", "--sections", "variation,software", "--seeds", "2", "--hidden", "4"]
    rc = main([*argv, "--train-samples", "30", "--workers", "1", "--out", str(tmp_path)])
    assert rc == 0
    with (tmp_path / "lim.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS) and len(rows) == 7
    assert (tmp_path / "lim.png").stat().st_size > 0
    out = capsys.readouterr()
    assert "(Lim: 79.24)" in out.out and "experiment lim: 14/14" in out.err


def test_an_unknown_section_is_refused_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["experiment", "lim", "--sections", "colour", "--out", str(tmp_path)])
    assert rc == 2
    assert "sections" in capsys.readouterr().err
    assert not (tmp_path / "lim.csv").exists()


def test_a_missing_trace_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "experiment",
            "lim",
            "--sections",
            "trace",
            "--trace",
            str(tmp_path / "nope.dat"),
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 2
    assert "trace file not found" in capsys.readouterr().err


def test_the_same_table_comes_back_from_a_dask_scheduler(tmp_path: Path, dask_scheduler: str) -> None:
    """One executor path: the local pool and Dask give the same accuracies, pulses and resets."""
    argv = ["experiment", "lim", "--sections", "variation", "--seeds", "2", "--hidden", "4"]
    argv += ["--train-samples", "30", "--no-plots"]
    assert main([*argv, "--out", str(tmp_path / "local"), "--workers", "1"]) == 0
    assert main([*argv, "--out", str(tmp_path / "dask"), "--scheduler", dask_scheduler]) == 0

    def table(folder: str) -> list[dict[str, str]]:
        with (tmp_path / folder / "lim.csv").open(newline="") as f:
            return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in csv.DictReader(f)]

    assert table("dask") == table("local")
    assert len(table("local")) == 6


HUANG_TINY = ["--seeds", "2", "--hidden", "4", "--train-samples", "32", "--epochs", "1"]
HUANG_TINY += ["--nonlinearities", "1:-1,3:-3", "--modes", "mode1,mode2"]


def test_huang_writes_the_table_the_runs_and_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["experiment", "huang", *HUANG_TINY, "--workers", "1", "--out", str(tmp_path)])
    assert rc == 0
    with (tmp_path / "huang.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(HUANG_COLUMNS) and len(rows) == 2 * 2 * 2
    assert {r["network"] for r in rows} == {"mlp", "cnn"} and {r["a_d"] for r in rows} == {"-1", "-3"}
    with (tmp_path / "huang_runs.csv").open(newline="") as f:
        assert len(list(csv.DictReader(f))) == 16
    assert (tmp_path / "huang.png").stat().st_size > 0
    out = capsys.readouterr()
    assert "cnn  A_p=3     A_d=-3     mode2" in out.out and "experiment huang: 16/16" in out.err


def test_huang_options_are_the_models_fields_and_bad_values_are_refused_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = [tmp_path / n for n in "abcd"]  # files that exist: the dataset passes, the cnn cannot take it
    for f in idx:
        f.write_bytes(b"")
    for argv, named in (
        (["--nonlinearities", "1:2"], "nonlinearities"),
        (["--bits", "40"], "bits"),
        (["--networks", "cnn", "--dataset", "idx:" + ",".join(map(str, idx))], "networks"),
        (["--modes", "mode9"], "modes"),
    ):
        assert main(["experiment", "huang", *argv, "--out", str(tmp_path)]) == 2
        assert named in capsys.readouterr().err
    assert not (tmp_path / "huang.csv").exists()


def test_lim_takes_its_models_fields_as_options_and_the_old_dead_zone_name(tmp_path: Path) -> None:
    """(The software row has no dead zone, '-': the variation rows carry it.)"""
    argv = ["experiment", "lim", "--sections", "variation", "--seeds", "1", "--hidden", "4"]
    argv += [
        "--train-samples",
        "30",
        "--no-plots",
        "--workers",
        "1",
        "--output-gain",
        "2",
        "--dead-zone",
        "0.2",
    ]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    with (tmp_path / "lim.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["dead_zone"] for r in rows] == ["0.2"] * 6


@pytest.mark.parametrize(
    "argv",
    [
        ["huang", "--networks", "mlp", "--dataset", "nope"],
        ["huang", "--dataset", "nope"],
        ["lim", "--dataset", "nope"],
        ["lim", "--dataset", "idx:/nonexist/a,b,c,d"],
    ],
)
def test_a_bad_dataset_is_refused_before_any_worker_naming_the_option_and_the_allowed(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["experiment", *argv, "--out", str(tmp_path), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "--dataset" in err and "Traceback" not in err and "cnn takes" not in err
    assert "digits, mnist5k or idx:" in err or "not found: /nonexist/a" in err
    assert (
        not (tmp_path / "lim_runs.partial.csv").exists()
        and not (tmp_path / "huang_runs.partial.csv").exists()
    )


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_workers_must_be_a_positive_whole_number(
    workers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["experiment", "lim", "--workers", workers, "--out", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "1..1024" in err


def test_a_nonlinearity_that_is_not_a_pair_names_the_form_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["experiment", "huang", "--nonlinearities", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "A_p:A_d" in err and "at least 1 item" not in err and len(err.strip().splitlines()) == 1


def test_huang_says_its_devices_are_ideal_as_in_the_si(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["experiment", "huang", *HUANG_TINY, "--networks", "mlp", "--modes", "mode1", "--seeds", "1"]
    assert main([*argv, "--no-plots", "--workers", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no device-to-device variation" in out and "no cycle-to-cycle noise" in out
    assert "open loop onto the exact nominal curve" in out


def test_the_same_huang_table_comes_back_from_a_dask_scheduler(tmp_path: Path, dask_scheduler: str) -> None:
    argv = ["experiment", "huang", *HUANG_TINY, "--networks", "mlp", "--no-plots"]
    assert main([*argv, "--out", str(tmp_path / "local"), "--workers", "1"]) == 0
    assert main([*argv, "--out", str(tmp_path / "dask"), "--scheduler", dask_scheduler]) == 0

    def table(folder: str) -> list[dict[str, str]]:
        with (tmp_path / folder / "huang.csv").open(newline="") as f:
            return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in csv.DictReader(f)]

    assert table("dask") == table("local") and len(table("local")) == 4
