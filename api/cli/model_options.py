"""Command-line options built from a pydantic model's fields (:mod:`crossbar_hil.settings`).

One option per scalar field: ``--field-name`` (and, for a field in s or S, the name
without its unit suffix, e.g. ``--reset-time`` for ``reset_time_s``), its help, unit,
bounds and default from the model. Values are converted to numbers here and validated
by the model only (the caller validates the config it builds from :func:`setting_values`),
so an out-of-range value gets the model's message, naming the field.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from crossbar_hil.settings import Setting


def add_setting_options(
    group: argparse._ActionsContainer,
    settings: Iterable[Setting],
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Register one option per setting on ``group`` (its dest is the field's name).

    ``aliases`` gives further option strings of a field (names kept from earlier versions).
    """
    aliases = aliases or {}
    for s in settings:
        flags = [_flag(s.name)]
        if s.stem != s.name:
            flags.append(_flag(s.stem))
        flags += [a for a in aliases.get(s.name, ()) if a not in flags]
        help_text = s.describe().replace("%", "%%")
        if s.many:
            group.add_argument(
                *flags, dest=s.name, action="append", metavar=s.name.upper().removesuffix("S"), help=help_text
            )
        elif s.kind is bool:
            group.add_argument(
                *flags, dest=s.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif s.choices:
            group.add_argument(
                *flags, dest=s.name, type=_word, metavar="|".join(s.choices), default=None, help=help_text
            )
        else:
            metavar = {"S": "SIEMENS", "": {int: "N", str: "NAME", Path: "PATH"}.get(s.kind, "X")}.get(
                s.unit, s.unit.upper()
            )
            group.add_argument(
                *flags, dest=s.name, type=s.kind, metavar=metavar, default=None, help=help_text
            )


def setting_values(args: argparse.Namespace, settings: Iterable[Setting]) -> dict[str, Any]:
    """The fields the options set (only those given), to be validated by their model."""
    return {s.name: getattr(args, s.name) for s in settings if getattr(args, s.name, None) is not None}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _word(text: str) -> str:
    """A word option's value with ``-`` read as ``_`` (``as-is`` is the field's ``as_is``)."""
    return text.replace("-", "_")
