"""The parameters a sweep can vary, the grid syntax, and the configs of each grid point.

A grid is ``{parameter: [values]}``; its points are every combination, in the
order the parameters were given. Each point overrides a base
:class:`~crossbar_hil.emulator.config.EmulatorConfig` and
:class:`~crossbar_hil.training.config.TrainingConfig`.
Text form (the CLI's ``--grid``): ``NAME=V1,V2,...`` or, for a number,
``NAME=START:STOP:COUNT`` (evenly spaced, ends included). Every error names
the parameter and what is allowed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from crossbar_hil.emulator.config import EmulatorConfig, ShiftDistribution
from crossbar_hil.emulator.devices import DeviceModel
from crossbar_hil.resources import TRACE_ENV, trace_from_env
from crossbar_hil.seam.errors import HilError
from crossbar_hil.settings import settings
from crossbar_hil.training.config import TrainingConfig

Value = float | int | str | bool
Overrides = dict[str, dict[str, Any]]
"""``{"emulator": {...}, "shifts": {...}, "training": {...}}`` field overrides."""


class GridError(HilError, ValueError):
    """A grid that cannot be run; the message names the parameter."""


@dataclass(frozen=True)
class Parameter:
    """One sweepable parameter: its type, meaning, and where it goes in the configs."""

    name: str
    kind: type
    help: str
    apply: Callable[[Overrides, Any], None]
    unit: str = ""
    """Unit of the value, named on the sweep's plots (e.g. '1/A')."""
    symmetric: bool = False
    """The value V stands for +-V (targets, band): written so on the plots."""


def _set(section: str, *fields: str, sign: tuple[int, ...] = ()) -> Callable[[Overrides, Any], None]:
    """Set ``fields`` of ``section`` to the value (times ``sign[i]`` when given)."""

    def apply(o: Overrides, v: Any) -> None:
        for i, f in enumerate(fields):
            o[section][f] = v * sign[i] if sign else v

    return apply


def _device(o: Overrides, v: str) -> None:
    """builtin | trace ($HIL_TRACE) | a trace file (.dat/.csv) | a device-model JSON file."""
    if v == "builtin":
        o["emulator"].update(trace=None, device=None)
    elif v == "trace":
        path = trace_from_env()
        if path is None:
            raise GridError(f"grid parameter 'device': 'trace' needs ${TRACE_ENV} set to a trace file")
        o["emulator"].update(trace=str(path), device=None)
    elif v.endswith(".json"):
        try:
            model = TypeAdapter(DeviceModel).validate_json(Path(v).read_text(encoding="utf-8"))
        except (OSError, ValidationError) as e:
            raise GridError(f"grid parameter 'device': cannot read a device model from {v}: {e}") from None
        o["emulator"].update(trace=None, device=model.model_dump(mode="json"))
    else:
        if not Path(v).is_file():
            raise GridError(
                f"grid parameter 'device': {v!r} is not builtin, trace, a device .json or a trace file"
            )
        o["emulator"].update(trace=v, device=None)


def _symmetric(name: str, help_text: str, plus: str, minus: str) -> Parameter:
    """A value V that sets training field ``plus`` to +V and ``minus`` to -V."""
    return Parameter(name, float, help_text, _set("training", plus, minus, sign=(1, -1)), symmetric=True)


COMPOSITES: tuple[Parameter, ...] = (
    _symmetric("targets", "Symmetric target values +-T of the error.", "target_high", "target_low"),
    _symmetric("band", "Symmetric band edges: f > +B for class 1, f < -B for class 0.", "f_plus", "f_minus"),
    Parameter(
        "k", float, "Scale factor K from device table to crossbar (scale_k).", _set("emulator", "scale_k")
    ),
    Parameter("device", str, _device.__doc__ or "", _device),
)
"""Parameters that set more than one field, or read a file, or keep a short name."""

EMULATOR_SKIP = ("rows", "cols", "seed")
"""EmulatorConfig fields a grid does not vary: the task's shape, and the seed (the sweep's own axis)."""


def parameters_for(
    training: type[TrainingConfig] = TrainingConfig, emulator: type[EmulatorConfig] = EmulatorConfig
) -> dict[str, Parameter]:
    """Every parameter a grid may vary: each scalar field of ``training``, of ``emulator`` (but
    :data:`EMULATOR_SKIP`) and of its shift distribution (``shift_<field>``), with the model's
    help, then :data:`COMPOSITES`."""
    derived = [(s, "training", s.name) for s in settings(training)]
    derived += [(s, "emulator", s.name) for s in settings(emulator, skip=EMULATOR_SKIP)]
    derived += [(s, "shifts", f"shift_{s.name}") for s in settings(ShiftDistribution)]
    out: dict[str, Parameter] = {}
    for s, section, name in derived:
        out[name] = Parameter(name, s.kind, s.describe(), _set(section, s.name), unit=s.unit)
    for p in COMPOSITES:
        out[p.name] = p
    if len(out) != len(derived) + len(COMPOSITES):
        raise RuntimeError("two grid parameters share a name: rename a field or a composite")
    return out


PARAMETERS: dict[str, Parameter] = parameters_for()
"""Every parameter a grid may vary, by name."""

Grid = dict[str, list[Value]]

_KINDS = {float: "a number", int: "an integer", bool: "true or false", str: "a name"}


def parse_value(param: Parameter, text: str) -> Value:
    """One value of ``param`` from text; the error names the parameter and the expected type."""
    text = text.strip()
    try:
        if param.kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if param.kind is int:
            return int(text)
        if param.kind is float:
            return float(text)
    except ValueError:
        raise GridError(f"grid parameter {param.name!r}: {text!r} is not {_KINDS[param.kind]}") from None
    if not text:
        raise GridError(f"grid parameter {param.name!r}: empty value")
    return text


def parameter(name: str) -> Parameter:
    """The parameter called ``name``; the error lists the known ones."""
    try:
        return PARAMETERS[name]
    except KeyError:
        raise GridError(f"unknown grid parameter {name!r}; known: {', '.join(PARAMETERS)}") from None


def parse_item(item: str) -> tuple[str, list[Value]]:
    """``NAME=V1,V2`` or ``NAME=START:STOP:COUNT`` into the name and its values."""
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise GridError(f"grid item {item!r}: expected NAME=V1,V2,... or NAME=START:STOP:COUNT")
    param = parameter(name)
    if ":" in text and param.kind in (int, float):
        parts = text.split(":")
        if len(parts) != 3:
            raise GridError(f"grid parameter {name!r}: a range is START:STOP:COUNT, got {text!r}")
        start, stop = (float(parse_value(param, t)) for t in parts[:2])
        count = parts[2].strip()
        if not count.isdigit() or int(count) < 1:
            raise GridError(f"grid parameter {name!r}: COUNT must be a positive integer, got {count!r}")
        values: list[Value] = [param.kind(v) for v in np.linspace(start, stop, int(count))]
        if param.kind is int and len(set(values)) < len(values):
            raise GridError(f"grid parameter {name!r}: {text!r} repeats integer values")
        return name, values
    values = [parse_value(param, t) for t in text.split(",")]
    if not values:
        raise GridError(f"grid parameter {name!r}: no values")
    return name, values


def parse_grid(items: Sequence[str]) -> Grid:
    """A grid from ``--grid`` items; a parameter given twice is an error."""
    grid: Grid = {}
    for item in items:
        name, values = parse_item(item)
        if name in grid:
            raise GridError(f"grid parameter {name!r} is given twice")
        grid[name] = values
    return grid


def points(grid: Mapping[str, Sequence[Value]]) -> list[dict[str, Value]]:
    """Every combination of the grid's values, the first parameter varying slowest."""
    for name, values in grid.items():
        parameter(name)
        if not values:
            raise GridError(f"grid parameter {name!r}: no values")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def configs(
    point: Mapping[str, Value], emulator: EmulatorConfig, training: TrainingConfig
) -> tuple[EmulatorConfig, TrainingConfig]:
    """The validated configs of one grid point; an invalid value names its parameter."""
    try:
        return _validated(point, emulator, training)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
    culprits = []
    for name, value in point.items():
        try:
            _validated({name: value}, emulator, training)
        except ValidationError:
            culprits.append(f"{name}={value!r}")
    what = ", ".join(culprits) or ", ".join(f"{k}={v!r}" for k, v in point.items())
    which = "grid parameter" if len(culprits) == 1 else "grid parameters"
    raise GridError(f"{which} {what}: {problems}")


def _validated(
    point: Mapping[str, Value], emulator: EmulatorConfig, training: TrainingConfig
) -> tuple[EmulatorConfig, TrainingConfig]:
    o: Overrides = {"emulator": {}, "shifts": {}, "training": {}}
    for name, value in point.items():
        parameter(name).apply(o, value)
    shifts = emulator.shifts.model_validate({**emulator.shifts.model_dump(), **o["shifts"]})
    emu = type(emulator).model_validate({**emulator.model_dump(), **o["emulator"], "shifts": shifts})
    cfg = type(training).model_validate({**training.model_dump(), **o["training"]})
    return emu, cfg


def describe() -> str:
    """One line per parameter, for --help."""
    return "\n".join(f"  {p.name} ({p.kind.__name__}): {p.help}" for p in PARAMETERS.values())


def to_json(point: Mapping[str, Value]) -> str:
    """A grid point as compact JSON (for logs)."""
    return json.dumps(dict(point), separators=(",", ":"))
