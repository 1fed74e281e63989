"""Trace files: the instrument .dat format, one-column CSV, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossbar_hil.trace_file import PulseProtocol, Trace, TraceFormatError, load_trace, write_dat

PROTOCOL = PulseProtocol(
    n_pulses=3,
    reset_v=-2.0,
    reset_width_s=1.0,
    read_v=0.05,
    on_v=2.0,
    on_width_s=1e-3,
    off_v=0.0,
    off_width_s=0.1,
    wait_s=0.1,
    temperature_k=300.0,
)
G = np.array([4.5e-7, 4.9e-7, 5.0e-7, 5.1e-7])


@pytest.fixture
def dat_file(tmp_path: Path) -> Path:
    return write_dat(tmp_path / "dev.dat", Trace(G, PROTOCOL))


def test_reference_trace_parses_with_its_header(reference_trace_path: Path) -> None:
    trace = load_trace(reference_trace_path)
    p = trace.protocol
    assert p is not None
    assert (p.n_pulses, p.on_v, p.reset_v, p.read_v) == (50, 2.0, -2.0, 0.05)
    assert p.on_width_s == pytest.approx(1e-3) and p.reset_width_s == pytest.approx(1.0)
    assert p.temperature_k == pytest.approx(449.1)
    assert trace.n_pulses == 50
    g = trace.conductances_siemens
    assert g[0] == pytest.approx(1 / 2.200317e6)  # first read after the reset
    assert g[-1] == pytest.approx(1 / 1.921340e6)
    assert g.min() > 4.4e-7 and g.max() < 5.4e-7
    # Facts of the reference trace (ARCHITECTURE.md): spike at pulse 18, 18 of 49 later steps go down.
    assert int(np.argmax(g)) == 18
    assert int(np.sum(np.diff(g)[1:] < 0)) == 18


def test_dat_round_trip_keeps_conductances_and_header(dat_file: Path) -> None:
    trace = load_trace(dat_file)
    np.testing.assert_allclose(trace.conductances_siemens, G, rtol=1e-6)
    assert trace.protocol == PROTOCOL


def test_csv_with_title_and_comments(tmp_path: Path) -> None:
    f = tmp_path / "g.csv"
    f.write_text("conductance_S\n# after reset\n4.5e-7\n4.9e-7,\n\n5.0e-7\n")
    np.testing.assert_array_equal(load_trace(f).conductances_siemens, [4.5e-7, 4.9e-7, 5.0e-7])


def _mangle(path: Path, lineno: int, new: str) -> Path:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = new
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("lineno", "new", "line", "expected"),
    [
        (3, "Initial Voltage (V):minus two", 3, "expected a number for 'Initial Voltage'"),
        (3, "this is not a header", 3, "expected a header line"),
        (6, "tON (ns):1000", 6, "expected a time unit ('s', 'ms', 'us', 'µs') for 'tON', got 'ns'"),
        (1, "Number of Pulses (V): 3", 1, "expected a count unit (no unit)"),
        (12, "1.0,5.0E-2,2.4E-8,-5.0E-2", 12, "expected 6 comma-separated columns, got 4"),
        (14, "1.0,5.0E-2,2.4E-8,-5.0E-2,-2.1E-8,abc", 14, "resistance (Ohm) in column 6"),
        (14, "1.0,5.0E-2,2.4E-8,-5.0E-2,-2.1E-8,-5", 14, "implausible resistance -5 Ohm"),
        (12, "x,2.0,1e-3,,,1e3", 12, "time stamp (s) in column 1, got 'x'"),
        # Implausible values: a resistance no device has, a non-number in a current column.
        (14, "1.0,5.0E-2,2.4E-8,-5.0E-2,-2.1E-8,1.99E-6", 14, "implausible resistance 1.99e-06 Ohm"),
        (14, "1.0,5.0E-2,2.4E-8,-5.0E-2,-2.1E-8,2E13", 14, "implausible resistance 2e+13 Ohm"),
        (14, "1.0,5.0E-2,n/a,-5.0E-2,-2.1E-8,2.2E6", 14, "current (A) in column 3, got 'n/a'"),
        (14, "1.0,5.0E-2,2.4E-8,-5.0E-2,oops,2.2E6", 14, "second current (A) in column 5, got 'oops'"),
        (12, "1.0,2.0,nan,,,1e3", 12, "current (A) in column 3, got 'nan'"),
    ],
)
def test_malformed_dat_names_file_line_and_expectation(
    dat_file: Path, lineno: int, new: str, line: int, expected: str
) -> None:
    with pytest.raises(TraceFormatError) as info:
        load_trace(_mangle(dat_file, lineno, new))
    assert info.value.line == line
    assert expected in str(info.value)
    assert str(dat_file) in str(info.value)


def test_csv_with_an_implausible_conductance_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "g.csv"
    f.write_text("conductance_S\n4.5e-7\n5.0e5\n")
    with pytest.raises(TraceFormatError, match="implausible conductance 500000 S") as info:
        load_trace(f)
    assert info.value.line == 3


def test_a_partial_trace_round_trips_its_marker(tmp_path: Path) -> None:
    partial = PROTOCOL.model_copy(update={"pulses_requested": 50})
    trace = load_trace(write_dat(tmp_path / "p.dat", Trace(G, partial)))
    assert trace.partial and trace.protocol is not None and trace.protocol.pulses_requested == 50
    assert not load_trace(write_dat(tmp_path / "c.dat", Trace(G, PROTOCOL))).partial


def test_dat_without_column_titles(dat_file: Path) -> None:
    text = "\n".join(ln for ln in dat_file.read_text().splitlines() if not ln.startswith("Time"))
    dat_file.write_text(text)
    with pytest.raises(TraceFormatError, match="or the column titles") as info:
        load_trace(dat_file)
    assert info.value.line == 11  # the first data row, where the titles were expected


def test_dat_with_missing_reads_says_how_many(dat_file: Path) -> None:
    lines = dat_file.read_text().splitlines()
    dat_file.write_text("\n".join(lines[:-1]) + "\n")  # drop the last read row
    with pytest.raises(TraceFormatError, match=r"expected 4 read rows .* found 3"):
        load_trace(dat_file)


def test_dat_missing_required_header(dat_file: Path) -> None:
    lines = [ln for ln in dat_file.read_text().splitlines() if not ln.startswith("ON Voltage")]
    dat_file.write_text("\n".join(lines))
    with pytest.raises(TraceFormatError, match="on_v"):
        load_trace(dat_file)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4.5e-7\nnot-a-number\n", r":2: expected a conductance in S"),
        ("4.5e-7\n-1e-7\n", r":2: expected a positive finite conductance"),
        ("4.5e-7,1\n", r":1: expected one column"),
        ("4.5e-7\n", "expected at least 2 conductances"),
    ],
)
def test_malformed_csv(tmp_path: Path, text: str, expected: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(TraceFormatError, match=expected):
        load_trace(f)


def test_binary_and_missing_files(tmp_path: Path) -> None:
    f = tmp_path / "blob.dat"
    f.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(TraceFormatError, match="expected a text file"):
        load_trace(f)
    with pytest.raises(FileNotFoundError, match="trace file not found"):
        load_trace(tmp_path / "nope.dat")
