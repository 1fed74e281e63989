"""Sweep figures say what they show: units, ±V for symmetric values, no line between categories,
and the device, rule, bands and epoch limit the points trained with (issue 18 item 7)."""

from __future__ import annotations

from typing import Any

from crossbar_hil.reports.sweep_plots import SweptAxis, epochs_figure, settings_line, share_figure

AXES = {"beta": SweptAxis("1/A"), "targets": SweptAxis(symmetric=True)}


def row(point: int, share: float, **params: Any) -> dict[str, Any]:
    settings = {
        "device": "built-in device",
        "rule": "manhattan",
        "f_plus": 0.8,
        "f_minus": -0.8,
        "max_epochs": 50,
    }
    return {
        "point": point,
        "seeds": 10,
        "share": share,
        "share_low": share / 2,
        "share_high": share,
        **settings,
        **params,
    }


GRID_ROWS = [
    row(0, 0.1, beta=6e6, targets=0.8),
    row(1, 0.2, beta=6e6, targets=1.0),
    row(2, 0.5, beta=3e7, targets=0.8),
    row(3, 0.9, beta=3e7, targets=1.0),
]


def test_beta_carries_its_unit_and_targets_read_plus_minus() -> None:
    fig = share_figure(GRID_ROWS, "beta", ["beta", "targets"], AXES)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "beta (1/A)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["targets=±0.8", "targets=±1"]


def test_the_title_names_device_rule_bands_and_epoch_limit() -> None:
    title = share_figure(GRID_ROWS, "beta", ["beta", "targets"], AXES).get_suptitle()
    for part in ("built-in device", "rule manhattan", "bands f > 0.8, f < -0.8", "epoch limit 50"):
        assert part in title
    assert "built-in device" in epochs_figure(GRID_ROWS, [], ["beta", "targets"], AXES).get_suptitle()
    swept_rule = [row(0, 0.1, rule="manhattan"), row(1, 0.2, rule="method_b")]
    assert "rule: swept" in settings_line(swept_rule)


def test_no_line_joins_two_categorical_values() -> None:
    rules = [row(0, 0.1, rule="manhattan"), row(1, 0.6, rule="method_b")]
    ax = share_figure(rules, "rule", ["rule"], AXES).axes[0]
    drawn = [line for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert drawn and all(line.get_linestyle() == "None" for line in drawn)
    numeric = share_figure(GRID_ROWS, "beta", ["beta", "targets"], AXES).axes[0]
    assert any(line.get_linestyle() == "-" for line in numeric.get_lines())
