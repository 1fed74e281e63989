"""Conductance traces: one device's conductance after each of N identical pulses.

Two file formats are read:

* the instrument ``.dat`` format of the reference measurement SP291D1NR100: a
  header of ``Name (unit):value`` lines (number of pulses, reset/ON/OFF/read
  voltages and durations, temperature), a column-title line starting with
  ``Time stamp``, then rows ``t, V, I, V-, I-, R`` that cycle through pulse,
  zero and read rows. Conductance is ``G = 1/R`` of each read row (the row whose
  voltage equals the header's read voltage).
* a plain CSV with one column of conductances in S (an optional title line and
  ``#`` comments are allowed).

:func:`write_dat` writes the ``.dat`` format, so a device characterised on the
bench can be replayed by the emulator. Malformed files raise
:class:`TraceFormatError` naming the file, the line and what was expected.

**Plausibility.** A trace drives a whole emulated crossbar, so a value no device
can have is refused, naming the line: a resistance outside
:data:`PLAUSIBLE_RESISTANCE_OHM` (a conductance outside its inverse), and a cell that
is not a number where a number belongs (the current columns too; the second
voltage and current may be empty). The resistance is not checked against the
currents: the reference instrument repeats its current readings between reads.

**Partial traces.** A recording that was stopped or faulted part way is written
with the pulses it has and the header line ``Pulses Requested: N``
(:attr:`PulseProtocol.pulses_requested`); :attr:`Trace.partial` tells.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from crossbar_hil.seam.errors import HilError

PLAUSIBLE_RESISTANCE_OHM = (1.0, 1e12)
"""Smallest and largest resistance (Ohm) a trace may hold: 1 Ohm is a short (or a value in the
wrong unit), 1 TOhm is below what a read can resolve. Conductances: the inverse, in S."""


class TraceFormatError(HilError, ValueError):
    """A trace file is malformed. Names the file, the 1-based line and what was expected."""

    def __init__(self, path: str | Path, line: int | None, expected: str) -> None:
        self.path = str(path)
        self.line = line
        self.expected = expected
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {expected}")


class PulseProtocol(BaseModel):
    """How a trace was recorded (the ``.dat`` header), SI units."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    n_pulses: int = Field(ge=1, description="Number of potentiating pulses after the reset.")
    reset_v: float = Field(description="Reset (initial) pulse amplitude (V).")
    reset_width_s: float = Field(gt=0, description="Reset pulse width (s).")
    read_v: float = Field(description="Read voltage (V).")
    on_v: float = Field(description="Potentiating pulse amplitude (V).")
    on_width_s: float = Field(gt=0, description="Potentiating pulse width (s).")
    off_v: float = Field(0.0, description="Voltage between pulses (V).")
    off_width_s: float = Field(0.0, ge=0, description="Time at the OFF voltage (s).")
    wait_s: float = Field(0.0, ge=0, description="Wait before each read (s).")
    temperature_k: float | None = Field(None, description="Temperature (K), if recorded.")
    pulses_requested: int | None = Field(
        None, ge=1, description="Pulses the recording asked for, when it ended early (partial trace)."
    )


@dataclass(frozen=True)
class Trace:
    """Conductance (S) at position m = 0 (after reset) .. n_pulses (after the last pulse)."""

    conductances_siemens: NDArray[np.float64]
    protocol: PulseProtocol | None = None
    source: str = "<memory>"
    timestamps_s: NDArray[np.float64] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        g = np.asarray(self.conductances_siemens, dtype=float)
        if g.ndim != 1 or g.size < 2:
            raise ValueError(f"{self.source}: a trace needs at least 2 conductances, got {g.shape}")
        if not np.all(np.isfinite(g)) or np.any(g <= 0):
            raise ValueError(f"{self.source}: conductances must be finite and > 0 S")
        g.setflags(write=False)
        object.__setattr__(self, "conductances_siemens", g)

    @property
    def n_pulses(self) -> int:
        """Number of pulses the trace covers (positions 0..n_pulses)."""
        return int(self.conductances_siemens.size - 1)

    @property
    def partial(self) -> bool:
        """True when the recording ended before the pulses it asked for."""
        p = self.protocol
        return p is not None and p.pulses_requested is not None and p.pulses_requested > self.n_pulses


# Allowed units of each kind of header value, with their factor to SI.
_UNITS: dict[str, dict[str, float]] = {
    "count": {"": 1.0},
    "voltage": {"v": 1.0, "mv": 1e-3},
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6},
    "temperature": {"k": 1.0},
}
# Header name (before the unit) -> (PulseProtocol field, kind of value).
_HEADER_FIELDS: dict[str, tuple[str, str]] = {
    "number of pulses": ("n_pulses", "count"),
    "initial voltage": ("reset_v", "voltage"),
    "initial voltage duration": ("reset_width_s", "time"),
    "read voltage": ("read_v", "voltage"),
    "on voltage": ("on_v", "voltage"),
    "ton": ("on_width_s", "time"),
    "off voltage": ("off_v", "voltage"),
    "toff": ("off_width_s", "time"),
    "twait": ("wait_s", "time"),
    "temperature": ("temperature_k", "temperature"),
    "pulses requested": ("pulses_requested", "count"),
}
_HEADER_RE = re.compile(r"^\s*(?P<name>[^():]+?)\s*(?:\((?P<unit>[^)]*)\))?\s*:\s*(?P<value>.*?)\s*$")
_REQUIRED = ("n_pulses", "reset_v", "reset_width_s", "read_v", "on_v", "on_width_s")
_COLUMNS = 6


def load_trace(path: str | Path) -> Trace:
    """Read a trace from a ``.dat`` instrument file or a one-column CSV (chosen by content)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise FileNotFoundError(f"trace file not found: {p}") from None
    except UnicodeDecodeError as e:
        raise TraceFormatError(p, None, f"expected a text file ({e.reason})") from None
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    if ":" in first:
        return parse_dat(lines, p)
    return parse_csv(lines, p)


def parse_dat(lines: Sequence[str], source: str | Path = "<memory>") -> Trace:
    """Parse the lines of an instrument ``.dat`` trace (see the module docstring)."""
    bad = partial(TraceFormatError, source)
    values: dict[str, float] = {}
    body_start = None
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.lower().startswith("time stamp"):
            body_start = n
            break
        m = _HEADER_RE.match(line)
        if m is None:
            raise bad(n, f"expected a header line 'Name (unit):value' or the column titles, got {line!r}")
        name = m["name"].strip().lower()
        if name not in _HEADER_FIELDS:
            continue  # Unknown header fields are kept out, not fatal: instruments add fields.
        key, kind = _HEADER_FIELDS[name]
        unit = (m["unit"] or "").strip().lower()
        if unit not in _UNITS[kind]:
            allowed = ", ".join(repr(u) for u in _UNITS[kind]) if kind != "count" else "no unit"
            raise bad(n, f"expected a {kind} unit ({allowed}) for {m['name'].strip()!r}, got {m['unit']!r}")
        try:
            value = float(m["value"])
        except ValueError:
            raise bad(n, f"expected a number for {m['name'].strip()!r}, got {m['value']!r}") from None
        values[key] = value * _UNITS[kind][unit]
    if body_start is None:
        raise bad(None, "expected a column-title line starting with 'Time stamp'")
    missing = [k for k in _REQUIRED if k not in values]
    if missing:
        raise bad(body_start, f"expected header fields {missing} before the column titles")
    if values["n_pulses"] != int(values["n_pulses"]):
        raise bad(None, f"expected an integer Number of Pulses, got {values['n_pulses']}")
    values["n_pulses"] = int(values["n_pulses"])
    if "pulses_requested" in values:
        values["pulses_requested"] = int(values["pulses_requested"])
    protocol = PulseProtocol(**values)  # type: ignore[arg-type]

    reads: list[float] = []
    times: list[float] = []
    read_tol = max(1e-6, 1e-3 * abs(protocol.read_v))
    for n, raw in enumerate(lines[body_start:], start=body_start + 1):
        line = raw.strip()
        if not line:
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != _COLUMNS:
            raise bad(n, f"expected {_COLUMNS} comma-separated columns, got {len(cells)}")
        t, v, _, _, _, r = (_number(bad, n, cells, k, optional=k in (3, 4)) for k in range(_COLUMNS))
        if abs(v - protocol.read_v) > read_tol:
            continue  # A pulse, reset or zero row.
        _check_resistance(bad, n, r)
        reads.append(1.0 / r)
        times.append(t)
    expected = protocol.n_pulses + 1
    if len(reads) != expected:
        raise bad(
            None,
            f"expected {expected} read rows (Number of Pulses + 1, at {protocol.read_v} V), "
            f"found {len(reads)}",
        )
    return Trace(np.array(reads), protocol, str(source), np.array(times))


def parse_csv(lines: Sequence[str], source: str | Path = "<memory>") -> Trace:
    """Parse a one-column CSV of conductances in S; a non-numeric first line is a title."""
    bad = partial(TraceFormatError, source)
    g: list[float] = []
    seen_data = False
    for n, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip().rstrip(",")
        if not line:
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 1:
            raise bad(n, f"expected one column (conductance in S), got {len(cells)}")
        try:
            value = float(cells[0])
        except ValueError:
            if not seen_data and not g:
                seen_data = True  # A title line.
                continue
            raise bad(n, f"expected a conductance in S, got {cells[0]!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise bad(n, f"expected a positive finite conductance in S, got {value}")
        low, high = (1.0 / x for x in reversed(PLAUSIBLE_RESISTANCE_OHM))
        if not low <= value <= high:
            raise bad(n, f"implausible conductance {value:g} S: a device lies within [{low:g}, {high:g}] S")
        seen_data = True
        g.append(value)
    if len(g) < 2:
        raise bad(None, f"expected at least 2 conductances, found {len(g)}")
    return Trace(np.array(g), None, str(source))


_COLUMN_TITLES = (
    "time stamp (s)",
    "voltage (V)",
    "current (A)",
    "second voltage (V)",
    "second current (A)",
    "resistance (Ohm)",
)


def _number(
    bad: partial[TraceFormatError], n: int, cells: list[str], k: int, optional: bool = False
) -> float:
    """Cell ``k`` of line ``n`` as a finite number (``nan`` when ``optional`` and empty)."""
    text = cells[k]
    if optional and not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise bad(n, f"expected a number, the {_COLUMN_TITLES[k]} in column {k + 1}, got {text!r}")
    return value


def _check_resistance(bad: partial[TraceFormatError], n: int, r: float) -> None:
    low, high = PLAUSIBLE_RESISTANCE_OHM
    if not low <= r <= high:
        raise bad(
            n,
            f"implausible resistance {r:g} Ohm in a read row: a device lies within "
            f"[{low:g}, {high:g}] Ohm (check the unit and the value)",
        )


def write_dat(path: str | Path, trace: Trace, protocol: PulseProtocol | None = None) -> Path:
    """Write ``trace`` in the instrument ``.dat`` format that :func:`parse_dat` reads.

    The rows follow the reference measurement: reset pulse, zero, read, then for
    each pulse: pulse, zero, read. The pulse rows carry no measured current
    (written as 0) because a crossbar controller does not report it.
    """
    proto = protocol or trace.protocol
    if proto is None:
        raise ValueError("write_dat needs the pulse protocol (amplitudes and widths) for the header")
    if proto.n_pulses != trace.n_pulses:
        raise ValueError(f"protocol has {proto.n_pulses} pulses, trace has {trace.n_pulses}")
    g = trace.conductances_siemens
    times = trace.timestamps_s if trace.timestamps_s is not None else np.arange(g.size, dtype=float)
    out = [
        f"Number of Pulses: {proto.n_pulses}",
        f"Initial Voltage Duration (ms): {proto.reset_width_s * 1e3:.6g}",
        f"Initial Voltage (V):{proto.reset_v:.6E}",
        f"Read Voltage (V):{proto.read_v:.6E}",
        f"ON Voltage (V):{proto.on_v:.6E}",
        f"tON (ms):{proto.on_width_s * 1e3:.6g}",
        f"OFF Voltage (V):{proto.off_v:.6E}",
        f"tOFF (ms):{proto.off_width_s * 1e3:.6g}",
        f"tWait (ms):{proto.wait_s * 1e3:.6g}",
    ]
    if proto.temperature_k is not None:
        out.append(f"Temperature (K): {proto.temperature_k:.6E}")
    if proto.pulses_requested is not None:
        out.append(f"Pulses Requested: {proto.pulses_requested}")
    out.append("Time stamp (s), Voltage (V), Current (A), Voltage (V), Current (A),Resistance (Ohm)")
    for m, (gm, t) in enumerate(zip(g, times, strict=True)):
        amp = proto.reset_v if m == 0 else proto.on_v
        out.append(f"{t:.13E},{amp:.6E},0.000000E+0,,,0.000000E+0")
        out.append(f"{t:.13E},{proto.off_v:.6E},0.000000E+0,,,0.000000E+0")
        i = gm * proto.read_v
        out.append(f"{t:.13E},{proto.read_v:.6E},{i:.6E},{-proto.read_v:.6E},{-i:.6E},{1.0 / gm:.6E}")
    p = Path(path)
    p.write_text("\r\n".join(out) + "\r\n", encoding="utf-8")
    return p
