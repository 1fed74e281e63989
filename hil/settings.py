"""Every setting declared once: a pydantic model's fields as the edges show them.

A field's name, type, unit, bounds, default and help are read from its model
(PyMeasure-style: the instrument's parameters declare themselves), so the CLI's
options (``crossbar_hil.api.cli.model_options``), the sweep grid's parameters
(``crossbar_hil.emulator.sweep.grid``) and the API schema (pydantic's own) all
follow a field added to a model, with no other edit. The unit comes from the
field name's suffix (ARCHITECTURE.md, "Units in names"): ``_v`` V, ``_a`` A,
``_s`` s, ``_siemens`` S; or, where a name cannot carry it, from the field's
``json_schema_extra={"unit": ...}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel

UNITS: dict[str, str] = {"_siemens": "S", "_v": "V", "_a": "A", "_s": "s"}
"""Field-name suffix -> unit (the longest suffix that matches wins)."""

Kind = type[int] | type[float] | type[bool] | type[str] | type[Path]


@dataclass(frozen=True)
class Setting:
    """One scalar field of a model: what an option or a grid parameter needs to know of it."""

    name: str
    """The field's name."""
    kind: Kind
    """int, float, bool or str (a Literal field is str with :attr:`choices`); Path for a path
    field and str for a list of words (:attr:`many`), both only when asked for (``paths_and_lists``)."""
    help: str
    """The field's description."""
    default: Any
    """The value used without the option."""
    choices: tuple[str, ...] = ()
    """The allowed values of a Literal field; empty otherwise."""
    bounds: str = ""
    """The field's numeric constraints, e.g. ``> 0, < 1``; empty when it has none."""
    many: bool = False
    """A list of words (``list[str]``): the option is given once per word."""
    unit: str = ""
    """The unit: the field's ``json_schema_extra={"unit": ...}`` where a name cannot carry it
    (``beta``: 1/A), else the one its name's suffix gives; ``""`` for a plain number or a word."""

    @property
    def stem(self) -> str:
        """The name without its unit suffix (``reset_time_s`` -> ``reset_time``)."""
        for suffix in sorted(UNITS, key=len, reverse=True):
            if self.name.endswith(suffix) and UNITS[suffix] in ("s", "S"):
                return self.name.removesuffix(suffix)
        return self.name

    def describe(self) -> str:
        """The help, then what is allowed in brackets (with the unit) and the default in parentheses."""
        unit = f" {self.unit}" if self.unit else ""
        text = self.help.rstrip(".") + "."
        if self.choices:
            text += f" [one of {', '.join(self.choices)}]"
        if self.bounds:
            text += f" [{self.bounds}{unit}]"
        if self.many:
            text += " Repeat the option for more."
        if isinstance(self.default, list):
            text += f" (default {', '.join(map(str, self.default)) or 'none'})"
        elif self.default is not None:
            shown = f"{self.default:g}" if isinstance(self.default, float) else str(self.default)
            text += f" (default {shown})"
        return text


def unit_of(name: str) -> str:
    """The unit a field name's suffix gives, or ``""``."""
    for suffix in sorted(UNITS, key=len, reverse=True):
        if name.endswith(suffix):
            return UNITS[suffix]
    return ""


def settings(
    model: type[BaseModel],
    defaults: Mapping[str, Any] | None = None,
    skip: Iterable[str] = (),
    *,
    paths_and_lists: bool = False,
) -> list[Setting]:
    """The scalar fields of ``model`` (int, float, bool, str, a Literal of str) in declaration order.

    ``defaults`` overrides the fields' own defaults (e.g. those of a preset); fields in
    ``skip``, and fields of any other type (tuples, nested models, optional values), are
    left to hand-written options. With ``paths_and_lists``, a ``Path`` (or ``Path | None``)
    field and a ``list[str]`` field are settings too (a service's folders and host names; a
    sweep grid has no use for them).
    """
    defaults = defaults or {}
    out = []
    skipped = set(skip)
    for name, info in model.model_fields.items():
        if name in skipped:
            continue
        kind, choices = _scalar(info.annotation)
        many = False
        if kind is None and paths_and_lists:
            kind, many = _path_or_list(info.annotation)
        if kind is None:
            continue
        own = None if info.is_required() else info.get_default(call_default_factory=True)
        default = defaults.get(name, own)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        unit = str(extra.get("unit") or unit_of(name))
        out.append(
            Setting(name, kind, info.description or "", default, choices, _bounds(info.metadata), many, unit)
        )
    return out


def _scalar(annotation: Any) -> tuple[Kind | None, tuple[str, ...]]:
    if annotation in (int, float, bool, str):
        return annotation, ()
    if get_origin(annotation) is Literal and all(isinstance(a, str) for a in get_args(annotation)):
        return str, tuple(get_args(annotation))
    return None, ()  # Optional, tuples, paths, nested models: not one word on a command line.


def _path_or_list(annotation: Any) -> tuple[Kind | None, bool]:
    """(Path, False) for ``Path`` or ``Path | None``; (str, True) for ``list[str]``."""
    if annotation is Path:
        return Path, False
    if get_origin(annotation) in (Union, UnionType) and set(get_args(annotation)) == {Path, NoneType}:
        return Path, False
    if get_origin(annotation) is list and get_args(annotation) == (str,):
        return str, True
    return None, False


_BOUND_SIGNS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _bounds(metadata: Iterable[Any]) -> str:
    parts = []
    for item in metadata:
        if isinstance(item, annotated_types.BaseMetadata):
            for attr, sign in _BOUND_SIGNS:
                value = getattr(item, attr, None)
                if value is not None:
                    parts.append(f"{sign} {value:g}")
    return ", ".join(parts)
