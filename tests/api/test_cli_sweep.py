"""``hil sweep`` from the command line: CSV, plots, progress, and clear errors naming the parameter."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from matplotlib.image import imread

from crossbar_hil.api.cli import main
from crossbar_hil.emulator.sweep import COLUMNS

pytestmark = pytest.mark.system


def test_sweep_writes_the_table_plots_and_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sweep", "--builtin", "--grid", "beta=3e7,3e8", "--grid", "band=0.7,0.8", "--seeds", "30"]
    rc = main([*argv, "--out", str(tmp_path), "--workers", "1", "--chunk-size", "20"])
    out = capsys.readouterr()
    assert rc == 0
    with (tmp_path / "sweep.csv").open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["point", "beta", "band", *COLUMNS] and len(table) == 4
    assert "[3] beta=3e+08, band=0.8: converged" in out.out
    assert "sweep: 8/8 chunks, 120/120 trainings" in out.err  # one progress line per chunk
    for name in ("share_beta", "share_band", "epochs"):
        image = imread(tmp_path / f"{name}.png")
        assert image.shape[0] > 300 and image.std() > 0.05  # a drawn figure, not a blank canvas


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("speed=1e6", "unknown grid parameter 'speed'"),
        ("beta=abc", "grid parameter 'beta': 'abc' is not a number"),
        ("read_noise=2", "grid parameter read_noise=2.0: "),
        ("device=/no/such.dat", "grid parameter 'device': '/no/such.dat' is not builtin, trace"),
    ],
)
def test_bad_grid_is_refused_naming_the_parameter(
    grid: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        ["sweep", "--builtin", "--grid", grid, "--seeds", "3", "--out", str(tmp_path), "--workers", "1"]
    )
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "sweep.csv").exists()


def test_scheduler_option_runs_the_same_sweep_on_dask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dask_scheduler: str
) -> None:
    argv = [
        "sweep",
        "--builtin",
        "--grid",
        "beta=3e7,3e8",
        "--seeds",
        "24",
        "--chunk-size",
        "10",
        "--no-plots",
    ]
    assert main([*argv, "--out", str(tmp_path / "local"), "--workers", "1"]) == 0
    assert main([*argv, "--out", str(tmp_path / "dask"), "--scheduler", dask_scheduler]) == 0
    for name in ("sweep.csv", "epochs.csv"):
        assert (tmp_path / "dask" / name).read_text() == (tmp_path / "local" / name).read_text()
