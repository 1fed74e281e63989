"""The huang figure labels its x axis with the pairs A_p:A_d and its title with the modes it has."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")
from crossbar_hil.reports.experiment_plots import huang_figure


def rows(modes: list[str]) -> list[dict]:
    return [
        {
            "network": "mlp",
            "mode": m,
            "a_p": a_p,
            "a_d": a_d,
            "levels": 255,
            "accuracy_mean": 50.0,
            "accuracy_sd": 1.0,
        }
        for m in modes
        for a_p, a_d in ((1.0, -1.0), (3.0, -5.0))
    ]


def test_the_x_axis_names_each_pair_and_the_title_the_modes_given() -> None:
    ax = huang_figure(rows(["mode1", "mode3"]), "digits").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1:-1", "3:-5"]
    assert "A_p:A_d" in ax.get_xlabel()
    assert "modes mode1, mode3" in ax.get_title() and "four" not in ax.get_title()


def test_one_mode_is_named_alone() -> None:
    title = huang_figure(rows(["mode2"]), "digits").axes[0].get_title()
    assert title.endswith("updating mode mode2")
