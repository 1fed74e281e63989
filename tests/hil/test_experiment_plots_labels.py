"""The huang figure labels its x axis with the pairs A_p:A_d and its title with the modes it has;
the lim figure draws a panel per section it has."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")
from crossbar_hil.reports.experiment_plots import huang_figure, lim_figure

LIM_SECTIONS = ["nonlinearity", "levels", "variation"]


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


X_OF = {"nonlinearity": "beta_nl", "levels": "levels", "variation": "sigma"}
LABEL_OF = {"nonlinearity": "nonlinearity", "levels": "levels", "variation": "device-to-device"}


def lim_rows(sections: list[str]) -> list[dict]:
    row = {"method": "method_b", "training": "on-chip", "accuracy_mean": 50.0, "accuracy_sd": 1.0}
    return [{"section": s, X_OF[s]: v, **row} for s in sections for v in (1.0, 2.0)]


@pytest.mark.parametrize("sections", [["nonlinearity"], ["nonlinearity", "variation"], LIM_SECTIONS])
def test_the_lim_figure_draws_one_panel_per_section_it_has_and_none_empty(sections: list[str]) -> None:
    axes = lim_figure(lim_rows(sections), "digits").axes
    assert len(axes) == len(sections)
    assert all(ax.lines for ax in axes)
    assert [ax.get_xlabel().split()[0] for ax in axes] == [LABEL_OF[s] for s in sections]
