"""``hil experiment lim`` from the command line: CSV with its columns, plot, bad input refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from crossbar_hil.api.cli import main
from crossbar_hil.emulator.network.experiment import COLUMNS

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
