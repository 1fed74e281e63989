"""A model's scalar fields as settings: unit from the name, bounds and help from the field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from crossbar_hil.settings import settings, unit_of


class Model(BaseModel):
    width_s: float = Field(1e-3, gt=0, le=1.0, description="Pulse width.")
    tol_siemens: float = Field(0.0, ge=0, description="Tolerance.")
    count: int = Field(3, ge=1, description="How many.")
    mode: Literal["a", "b"] = Field("a", description="Which mode.")
    on: bool = Field(False, description="Switch.")
    curve: tuple[float, ...] | None = Field(None, description="Not one word: left out.")


def test_scalar_fields_in_order_with_kind_choices_bounds_and_unit() -> None:
    found = {s.name: s for s in settings(Model)}
    assert list(found) == ["width_s", "tol_siemens", "count", "mode", "on"]
    assert (found["width_s"].kind, found["width_s"].unit, found["width_s"].bounds) == (
        float,
        "s",
        "> 0, <= 1",
    )
    assert (found["mode"].kind, found["mode"].choices) == (str, ("a", "b"))
    assert found["tol_siemens"].stem == "tol" and found["count"].stem == "count"
    assert found["width_s"].describe() == "Pulse width. [> 0, <= 1 s] (default 0.001)"
    assert found["mode"].describe() == "Which mode. [one of a, b] (default a)"


def test_defaults_can_come_from_elsewhere_and_fields_can_be_skipped() -> None:
    found = {s.name: s for s in settings(Model, {"count": 7}, skip=("on",))}
    assert found["count"].default == 7 and "on" not in found


def test_units_follow_the_name_suffix() -> None:
    assert [unit_of(n) for n in ("pulse_v", "i_a", "t_s", "g_siemens", "beta")] == ["V", "A", "s", "S", ""]
