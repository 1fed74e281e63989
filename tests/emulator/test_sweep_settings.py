"""Every sweep.csv row names what its point trained with: device, rule, bands, epoch limit."""

from __future__ import annotations

import concurrent.futures as cf

from crossbar_hil.emulator.sweep import COLUMNS, rows, run_sweep
from crossbar_hil.emulator.sweep.table import header
from crossbar_hil.training.config import TrainingConfig


def test_each_row_names_device_rule_bands_and_epoch_limit_a_swept_one_its_own() -> None:
    base = TrainingConfig(max_epochs=7, f_plus=0.7, f_minus=-0.6)
    with cf.ThreadPoolExecutor(1) as ex:
        result = run_sweep({"rule": ["manhattan", "method_b"]}, range(2), ex, training=base)
    table = rows(result)
    assert [r["rule"] for r in table] == ["manhattan", "method_b"]
    for r in table:
        assert (r["device"], r["f_plus"], r["f_minus"], r["max_epochs"]) == ("built-in device", 0.7, -0.6, 7)
    assert header(result).count("rule") == 1  # A swept setting is one column.
    assert {"device", "rule", "f_plus", "f_minus", "max_epochs"} <= set(COLUMNS)


def test_a_swept_band_changes_the_rows_bands() -> None:
    with cf.ThreadPoolExecutor(1) as ex:
        result = run_sweep({"band": [0.5, 0.9]}, range(1), ex, training=TrainingConfig(max_epochs=2))
    assert [(r["f_plus"], r["f_minus"]) for r in rows(result)] == [(0.5, -0.5), (0.9, -0.9)]
