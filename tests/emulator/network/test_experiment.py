"""The ``lim`` experiment: its work items, one training per item, the table and its CSV columns."""

from __future__ import annotations

import concurrent.futures as cf
import csv
from pathlib import Path

import numpy as np

from crossbar_hil.emulator.network.experiment import (
    COLUMNS,
    LimExperiment,
    format_table,
    items,
    run_experiment,
    run_item,
    summarize,
    transfer_positions,
    write_csv,
)
from crossbar_hil.emulator.network.lim_device import lim_device
from crossbar_hil.emulator.network.tiles import MINUS, PLUS, Tile, TileConfig
from crossbar_hil.emulator.sweep.run import map_ordered

TINY = LimExperiment(hidden=4, train_samples=40, seeds=2, sections=("variation", "software"))


def test_items_cover_each_section_setting_and_seed() -> None:
    full = items(LimExperiment(seeds=2))
    sections = [i["section"] for i in full]
    assert sections.count("nonlinearity") == 4 * 4 * 2  # 4 rules x beta 0..3 x seeds
    assert sections.count("levels") == 3 * 3 * 2
    assert sections.count("variation") == 2 * 3 * 2
    assert "trace" not in sections  # no trace given
    assert {i["dead_zone"] for i in full if i["section"] == "dead_zone"} == {0.0}


def test_the_csv_has_the_documented_columns_and_a_row_per_setting(tmp_path: Path) -> None:
    with cf.ThreadPoolExecutor(max_workers=1) as ex:
        raw = run_experiment(TINY, ex)
    assert [r["seed"] for r in raw[:2]] == [0, 1]
    table = summarize(raw)
    assert len(table) == 2 * 3 + 1  # on/off-chip x sigma, and the software row
    with write_csv(table, tmp_path / "lim.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS)
    published = {(r["training"], r["sigma"]): r["published"] for r in rows if r["section"] == "variation"}
    assert published[("off-chip", "0.5")] == "79.24"
    assert all(0.0 <= float(r["accuracy_mean"]) <= 100.0 and r["seeds"] == "2" for r in rows)


def test_one_item_trains_on_tiles_and_counts_what_it_sent() -> None:
    item = {**items(TINY)[0], "seed": 5}
    out = run_item(item, TINY.model_dump(mode="json"))
    assert out["pulses"] > 0 and out["method"] == "method_b"
    assert out == run_item(item, TINY.model_dump(mode="json")) | {"samples_per_s": out["samples_per_s"]}


def test_off_chip_transfer_writes_each_weight_on_one_device_of_its_pair() -> None:
    tile = Tile(TileConfig(rows=2, cols=2, device=lim_device(2.0, 64)))
    rise = tile.config.scale_k * (tile.state.table - tile.state.table[0])
    w = np.array([[rise[10], -rise[3]], [0.0, 0.49 * rise[1] + 0.51 * rise[2]]])
    p = transfer_positions(w, tile)
    np.testing.assert_array_equal(p[PLUS], [[10, 0], [0, 2]])
    np.testing.assert_array_equal(p[MINUS], [[0, 3], [0, 0]])


def test_map_ordered_returns_results_in_work_order_and_reports_progress() -> None:
    seen: list[tuple[int, int, int]] = []
    with cf.ThreadPoolExecutor(max_workers=3) as ex:
        out = map_ordered(ex, pow, [(k, 2) for k in range(6)], lambda *a: seen.append(a), weight=lambda r: r)
    assert out == [0, 1, 4, 9, 16, 25]
    assert seen[-1] == (6, 6, 55)


def test_map_ordered_hands_each_result_over_as_it_arrives_with_its_index() -> None:
    got: dict[int, int] = {}
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        map_ordered(ex, pow, [(k, 2) for k in range(5)], on_result=got.__setitem__)
    assert got == {k: k * k for k in range(5)}


def test_the_software_row_leaves_the_device_and_training_fields_empty() -> None:
    """The float baseline has no device, levels, variation, on-/off-chip training or dead zone."""
    exp = LimExperiment(hidden=4, train_samples=30, seeds=1, sections=("software",))
    (item,) = items(exp)
    row = run_item(item, exp.model_dump(mode="json"))
    (summary,) = summarize([row])
    for field in ("beta_nl", "levels", "sigma", "training", "dead_zone", "device"):
        assert row.get(field, "-") == "-" and summary[field] == "-", field
    assert "sigma=-" in format_table([summary])


def test_method_c_counts_its_depressions_among_the_pulses() -> None:
    exp = LimExperiment(hidden=8, train_samples=200, seeds=1, sections=("dead_zone",))
    row = run_item(next(i for i in items(exp) if i["method"] == "method_c"), exp.model_dump(mode="json"))
    assert row["depressions"] > 0
    (summary,) = summarize([row])
    assert summary["depressions_mean"] == row["depressions"] and summary["pulses_mean"] == row["pulses"]
