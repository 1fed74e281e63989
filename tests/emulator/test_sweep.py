"""Sweeps: grid parsing, the sweep table and its CSV columns, local and Dask execution agree."""

from __future__ import annotations

import concurrent.futures as cf
import csv
from pathlib import Path

import numpy as np
import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.sweep import COLUMNS, GridError, parse_grid, points, rows, run_sweep, write_tables
from crossbar_hil.emulator.sweep.grid import PARAMETERS, configs
from crossbar_hil.emulator.sweep.table import EPOCH_COLUMNS
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train

pytestmark = pytest.mark.system

GRID = {"beta": [6e6, 3e8], "targets": [0.8, 1.0]}
SEEDS = range(40)


# ------------------------------------------------------------------ grid
def test_a_grid_item_gives_values_of_the_parameters_type() -> None:
    grid = parse_grid(["beta=6e6,3e8", "max_epochs=10:30:3", "rule=manhattan", "ignore_in_band=true,false"])
    assert grid == {
        "beta": [6e6, 3e8],
        "max_epochs": [10, 20, 30],
        "rule": ["manhattan"],
        "ignore_in_band": [True, False],
    }
    assert len(points(grid)) == 2 * 3 * 2
    assert points({"beta": [1.0, 2.0], "k": [5.0, 6.0]}) == [
        {"beta": 1.0, "k": 5.0},
        {"beta": 1.0, "k": 6.0},
        {"beta": 2.0, "k": 5.0},
        {"beta": 2.0, "k": 6.0},
    ]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("speed=1e6", "unknown grid parameter 'speed'; known: rule, update, beta"),
        ("beta=fast", "grid parameter 'beta': 'fast' is not a number"),
        ("max_epochs=2.5", "grid parameter 'max_epochs': '2.5' is not an integer"),
        ("beta", "grid item 'beta': expected NAME=V1,V2"),
        ("beta=1:2", "grid parameter 'beta': a range is START:STOP:COUNT"),
        ("beta=1:2:0", "grid parameter 'beta': COUNT must be a positive integer"),
        ("ignore_in_band=maybe", "grid parameter 'ignore_in_band': 'maybe' is not true or false"),
        ("rule=", "grid parameter 'rule': empty value"),
    ],
)
def test_grid_parsing_errors_name_the_parameter(item: str, message: str) -> None:
    with pytest.raises(GridError) as e:
        parse_grid([item])
    assert message in str(e.value)


def test_a_parameter_given_twice_is_refused() -> None:
    with pytest.raises(GridError, match="grid parameter 'beta' is given twice"):
        parse_grid(["beta=1e6", "beta=2e6"])


def test_an_out_of_range_value_names_its_parameter_not_the_others() -> None:
    point = {"beta": 6e6, "read_noise": 3.0, "targets": 1.0}
    with pytest.raises(GridError) as e:
        configs(point, EmulatorConfig(), TrainingConfig())
    text = str(e.value)
    assert text.startswith("grid parameter read_noise=3.0:") and "beta" not in text.split(":")[0]


def test_every_parameter_reaches_its_config_field(reference_trace_path: Path) -> None:
    emu, cfg = configs(
        {"beta": 1e7, "targets": 0.9, "band": 0.7, "k": 12.0, "shift_sigma": 0.3, "step_noise": 0.1},
        EmulatorConfig(),
        TrainingConfig(),
    )
    assert (cfg.beta, cfg.target_high, cfg.target_low, cfg.f_plus, cfg.f_minus) == (1e7, 0.9, -0.9, 0.7, -0.7)
    assert (emu.scale_k, emu.shifts.sigma, emu.step_noise) == (12.0, 0.3, 0.1)
    emu, _ = configs({"device": str(reference_trace_path)}, EmulatorConfig(), TrainingConfig())
    assert emu.trace == reference_trace_path
    assert set(PARAMETERS) >= {"beta", "targets", "band", "k", "shift_mu", "rule", "read_noise", "device"}


# ------------------------------------------------------------------ table
@pytest.fixture(scope="module")
def local_result():  # type: ignore[no-untyped-def]
    with cf.ProcessPoolExecutor(max_workers=2) as ex:
        return run_sweep(GRID, SEEDS, ex, chunk_size=15)


def test_the_csv_has_its_documented_columns(local_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sweep_csv, epochs_csv = write_tables(local_result, tmp_path)
    with sweep_csv.open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["point", "beta", "targets", *COLUMNS]
    assert len(table) == 4 and all(COLUMNS[c] for c in COLUMNS)
    for row in table:
        n, won = int(row["seeds"]), int(row["converged"])
        assert n == len(SEEDS) and float(row["share"]) == won / n
        assert float(row["share_low"]) <= won / n <= float(row["share_high"])
        assert row["feasible"] == ""  # no feasibility check was asked for
    with epochs_csv.open() as f:
        epochs = list(csv.DictReader(f))
    assert list(epochs[0]) == list(EPOCH_COLUMNS)
    for row in table:
        k = row["point"]
        assert sum(int(e["count"]) for e in epochs if e["point"] == k) == int(row["converged"])


def test_the_table_is_what_single_trainings_give(local_result) -> None:  # type: ignore[no-untyped-def]
    """Point (beta 3e8, targets 1.0) recounted with Trainer on EmulatedCrossbar, seed by seed."""
    k = local_result.points.index({"beta": 3e8, "targets": 1.0})
    cfg = TrainingConfig(beta=3e8, target_high=1.0, target_low=-1.0)
    runs = [train(EmulatedCrossbar(EmulatorConfig(seed=s)), Task.reference(), cfg) for s in SEEDS]
    assert local_result.converged[k].tolist() == [r.converged for r in runs]
    assert local_result.epochs[k].tolist() == [r.epochs for r in runs]
    assert 0 < local_result.converged[k].sum() < len(SEEDS)
    row = rows(local_result)[k]
    assert row["converged"] == sum(r.converged for r in runs)


def test_chunking_does_not_change_the_table(local_result) -> None:  # type: ignore[no-untyped-def]
    with cf.ThreadPoolExecutor(max_workers=1) as ex:
        whole = run_sweep(GRID, SEEDS, ex, chunk_size=1000)
    assert rows(whole) == rows(local_result)


def test_a_rule_without_a_batched_form_runs_one_crossbar_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from crossbar_hil.training.rules.manhattan import Manhattan

    def no_batch(self, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError("rule 'manhattan' has no batched form")

    with cf.ThreadPoolExecutor(max_workers=1) as ex:
        batched = run_sweep({"beta": [3e8]}, range(8), ex)
        monkeypatch.setattr(Manhattan, "batched_pulses", no_batch)
        single = run_sweep({"beta": [3e8]}, range(8), ex)
    assert (batched.paths, single.paths) == (["batched"], ["single"])
    np.testing.assert_array_equal(batched.epochs, single.epochs)


# ------------------------------------------------------------------ Dask
def test_the_dask_path_returns_the_same_table_as_the_local_path(local_result, dask_scheduler: str) -> None:  # type: ignore[no-untyped-def]
    from distributed import Client

    with Client(dask_scheduler) as client:
        remote = run_sweep(GRID, SEEDS, client.get_executor(), chunk_size=15)
    assert rows(remote) == rows(local_result)
    np.testing.assert_array_equal(remote.epochs, local_result.epochs)


def test_feasibility_columns_when_the_check_exists() -> None:
    """Filled by crossbar_hil.training.feasibility: a converged draw is feasible."""
    pytest.importorskip("crossbar_hil.training.feasibility", reason="the feasibility check is not merged yet")
    with cf.ThreadPoolExecutor(max_workers=1) as ex:
        result = run_sweep({"beta": [3e8]}, range(30), ex, feasibility=True)
    assert result.feasible is not None
    assert not np.any(result.converged & ~result.feasible)
    row = rows(result)[0]
    assert row["feasible"] == int(result.feasible.sum()) and row["feasible_share"] == row["feasible"] / 30
