"""The wire-protocol codec: bit-exact numbers, the command table, and every refusal."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

from crossbar_hil.protocol import (
    COMMANDS,
    ERROR_CODES,
    PROTOCOL_VERSION,
    CommandError,
    ErrorCode,
    decode_reply,
    encode_command,
    encode_error,
    encode_error_entry,
    encode_ok,
    encode_text,
    encode_values,
    parse_command,
    parse_error_entry,
    validate_command,
)
from crossbar_hil.protocol.codec import (
    MAX_LINE_CHARS,
    MAX_MESSAGE_CHARS,
    CommandSpec,
    Duration,
    ReplyKind,
    command_duration_s,
    decode_record,
    encode_record,
    is_empty_line,
    max_reply_chars,
    quote,
    strip_terminator,
)
from crossbar_hil.seam import BackendInfo, Limits, Pulse
from crossbar_hil.seam.errors import DeviceFault, LimitError, ProtocolError

INFO = BackendInfo(identity="test", rows=4, cols=4, limits=Limits(max_batch=3))

HARD_FLOATS = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    0.1 + 0.2,
    1 / 3,
    1e-7,
    5.3e-07,
    4.5123456789012345e-7,
    123456789.123456789,
    1e22,
    1e23,
    9007199254740993.0,
    math.pi,
    -math.e,
]


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _random_floats(n: int) -> list[float]:
    rng = np.random.default_rng(42)
    mags = rng.uniform(-300, 300, n)
    return [float(s * m) for s, m in zip(rng.standard_normal(n), 10.0**mags, strict=True)]


# ----------------------------------------------------------------- numbers
def test_reply_values_round_trip_bit_exact() -> None:
    values = HARD_FLOATS + _random_floats(500)
    decoded = decode_reply("MEAS:ALL?", encode_values(values) + "\n")
    assert isinstance(decoded, list)
    assert [_bits(v) for v in decoded] == [_bits(v) for v in values]


def test_command_floats_round_trip_bit_exact() -> None:
    for values in (HARD_FLOATS, _random_floats(300)):
        parsed = parse_command(encode_command("VMM?", values))
        assert [_bits(v) for v in parsed.args] == [_bits(v) for v in values]


def test_numpy_scalars_encode_like_python_numbers() -> None:
    x = np.float64(4.5123456789012345e-7)
    assert encode_values([x, np.int64(3), np.float32(0.5)]) == f"{float(x)!r},3,0.5"
    assert encode_command("MEAS:G?", np.int64(1), np.int32(2), np.float64(0.05)) == ("MEAS:G? 1,2,0.05")


def test_nonfinite_values_may_be_replied_but_never_commanded() -> None:
    assert [repr(v) for v in decode_reply("MEAS:ROW?", "nan,inf,-inf,1.0")] == [
        "nan",
        "inf",
        "-inf",
        "1.0",
    ]
    with pytest.raises(ValueError, match="finite"):
        encode_command("PULS", 0, 0, math.nan, 1e-3)
    for text in ("nan", "inf", "1e999"):
        with pytest.raises(CommandError) as err:
            parse_command(f"MEAS:ALL? {text}")
        assert err.value.code == ErrorCode.BAD_NUMBER


# ----------------------------------------------------------------- the table round trip
SAMPLE_ARGS: dict[str, tuple[object, ...]] = {
    "MEAS:G?": (1, 2, 0.05),
    "MEAS:ROW?": (3, -0.05),
    "MEAS:COL?": (0, 0.1),
    "MEAS:ALL?": (0.05,),
    "VMM?": ((0.1, -0.1, 0.1, -0.1),),
    "PULS": (2, 3, 2.0, 0.001),
    "PULS:LIST": ([Pulse(0, 1, 2.0, 1e-3), Pulse(3, 3, -2.0, 1.0)],),
    "RST:DEV": (1, 1),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_encodes_and_parses_back(name: str) -> None:
    args = SAMPLE_ARGS.get(name, ())
    line = encode_command(name, *args)
    assert "\n" not in line and "\r" not in line
    parsed = parse_command(line + "\r\n")
    assert parsed.name == name
    expected = tuple(args[0]) if COMMANDS[name].form != "fixed" else args
    assert parsed.args == expected
    validate_command(parsed, INFO)


def test_variadic_commands_take_separate_arguments_too() -> None:
    assert encode_command("VMM?", 0.1, -0.1) == encode_command("VMM?", [0.1, -0.1])
    pulses = (Pulse(0, 0, 2.0, 1e-3), (1, 1, 2.0, 1e-3))
    assert encode_command("PULS:LIST", *pulses) == "PULS:LIST 0,0,2.0,0.001;1,1,2.0,0.001"


def test_parse_is_case_insensitive_and_tolerates_spaces() -> None:
    parsed = parse_command("  puls:list 0 , 1,2, 1e-3 ;1,0,2,0.001  \n")
    assert parsed == ("PULS:LIST", (Pulse(0, 1, 2.0, 1e-3), Pulse(1, 0, 2.0, 1e-3)))
    assert isinstance(parsed.args[0].row, int) and isinstance(parsed.args[0].amplitude_v, float)


@pytest.mark.parametrize(
    ("name", "args", "error"),
    [
        ("NOPE?", (), ValueError),
        ("PULS", (0, 0, 2.0), ValueError),
        ("PULS", (0.0, 0, 2.0, 1e-3), TypeError),
        ("MEAS:ALL?", ("0.05",), TypeError),
        ("PULS:LIST", ([],), ValueError),
        ("*IDN?", (1,), ValueError),
    ],
)
def test_encode_command_refuses_bad_calls(name: str, args: tuple, error: type) -> None:
    with pytest.raises(error):
        encode_command(name, *args)


# ----------------------------------------------------------------- decoding replies
def test_decode_kinds() -> None:
    assert decode_reply("PULS", "OK\n") is None
    assert decode_reply("ABOR", encode_ok()) is None
    assert decode_reply("*IDN?", "crossbar-hil,Emulated,0\r\n") == "crossbar-hil,Emulated,0"
    assert decode_reply("SYST:VERS?", PROTOCOL_VERSION) == PROTOCOL_VERSION
    shape = decode_reply("CONF:SHAPE?", "4,4")
    assert shape == [4, 4] and all(isinstance(v, int) for v in shape)
    cap = decode_reply("CONF:CAP?", encode_values([True, False]))
    assert cap == [1, 0]
    lim = decode_reply("CONF:LIM?", "0.2,2.5,1e-06,2.0,0.001,256")
    assert lim == [0.2, 2.5, 1e-6, 2.0, 1e-3, 256] and isinstance(lim[-1], int)
    assert decode_reply("SYST:ERR?", "0,No error") == "0,No error"
    assert parse_error_entry(encode_error_entry(201, "Voltage, out of range")) == (
        201,
        "Voltage, out of range",
    )


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("MEAS:ALL?", "OK"),  # OK to a query: out of sync
        ("PULS", "1.0,2.0"),  # values to an action
        ("PULS", "crossbar"),
        ("*IDN?", "OK"),
        ("MEAS:G?", "1.0,abc"),
        ("MEAS:G?", "1.0,2.0"),  # one value expected
        ("CONF:SHAPE?", "4.0,4"),  # ints expected
        ("CONF:LIM?", "0.2,2.5"),
        ("MEAS:ALL?", ""),
        ("MEAS:ALL?", "\r\n"),
        ("MEAS:ALL?", "1.0,,2.0"),
        ("MEAS:ALL?", "1.0\x152.0"),
        ("MEAS:ALL?", "1.0,2.0é"),
        ("PULS", "ERR"),
        ("PULS", "ERR x,bad code"),
        ("PULS", "ERROR 1"),
        ("SYST:ERR?", "No error"),
        ("MEAS:ALL?", "1_0"),
    ],
)
def test_decode_refuses_wrong_or_garbled_replies(name: str, line: str) -> None:
    with pytest.raises(ProtocolError):
        decode_reply(name, line)


def test_decode_checks_lengths_when_shape_is_known() -> None:
    row = encode_values([1e-6] * 4)
    assert len(decode_reply("MEAS:ROW?", row, shape=(2, 4))) == 4
    assert len(decode_reply("MEAS:COL?", encode_values([1e-6] * 2), shape=(2, 4))) == 2
    assert len(decode_reply("MEAS:ALL?", encode_values([1e-6] * 8), shape=(2, 4))) == 8
    assert len(decode_reply("VMM?", row, shape=(2, 4))) == 4
    for name in ("MEAS:COL?", "MEAS:ALL?"):
        with pytest.raises(ProtocolError, match="expected"):
            decode_reply(name, row, shape=(2, 4))


def test_err_reply_raises_device_fault_with_code() -> None:
    with pytest.raises(DeviceFault) as err:
        decode_reply("MEAS:ALL?", "ERR 201,Voltage out of range: v=3.0 V, outside [-0.2, 0.2] V")
    assert err.value.code == 201
    assert "v=3.0 V, outside" in str(err.value)


@pytest.mark.parametrize(
    "message", ["two\nlines", "cr\rhere", "tab\tand ümlaut", "ends with newline\n", "a" * 1000]
)
def test_error_messages_cannot_break_the_line(message: str) -> None:
    line = encode_error(300, message)
    assert line.isascii() and line.isprintable() and "\n" not in line
    assert len(line) <= len("ERR 300,") + MAX_MESSAGE_CHARS
    with pytest.raises(DeviceFault) as err:
        decode_reply("PULS", line + "\n")
    assert err.value.code == 300


def test_text_replies_cannot_be_mistaken() -> None:
    assert encode_text("crossbar\nhil") == "crossbar hil"
    for bad in ("OK", "ERR 1,x", "", "  "):
        with pytest.raises(ValueError):
            encode_text(bad)
    with pytest.raises(ValueError):
        encode_values([])


# ----------------------------------------------------------------- server-side refusals
@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("FOO 1,2", ErrorCode.UNKNOWN_COMMAND),
        ("MEAS:G", ErrorCode.UNKNOWN_COMMAND),
        ("", ErrorCode.UNKNOWN_COMMAND),
        ("*IDN? 1", ErrorCode.SYNTAX),
        ("PULS 0,0,2.0", ErrorCode.SYNTAX),
        ("PULS 0,0,2.0,1e-3,7", ErrorCode.SYNTAX),
        ("PULS 0,,2.0,1e-3", ErrorCode.SYNTAX),
        ("PULS:LIST", ErrorCode.SYNTAX),
        ("PULS:LIST 0,0,2.0,1e-3;", ErrorCode.SYNTAX),
        ("PULS:LIST 0,0,2.0,1e-3;1,1,2.0", ErrorCode.SYNTAX),
        ("VMM?", ErrorCode.SYNTAX),
        ("MEAS:ALL?\t0.05", ErrorCode.SYNTAX),
        ("MEAS:ALL? 0.05é", ErrorCode.SYNTAX),
        ("MEAS:G? 1.0,0,0.05", ErrorCode.BAD_NUMBER),
        ("MEAS:G? 1,0,volts", ErrorCode.BAD_NUMBER),
        ("PULS 0,0,2.0,1e-3s", ErrorCode.BAD_NUMBER),
        ("PULS 0,0,0x2,1e-3", ErrorCode.BAD_NUMBER),
        ("PULS 0,0,1_0,1e-3", ErrorCode.BAD_NUMBER),
        ("MEAS:ALL? " + "1" * MAX_LINE_CHARS, ErrorCode.LINE_TOO_LONG),
    ],
)
def test_parse_command_refusals(line: str, code: ErrorCode) -> None:
    with pytest.raises(CommandError) as err:
        parse_command(line)
    assert err.value.code == code
    reply = err.value.reply()
    assert reply.startswith(f"ERR {int(code)},{ERROR_CODES[code]}: ")
    assert reply.isascii() and reply.isprintable()


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("MEAS:G? 4,0,0.05", ErrorCode.INDEX_OUT_OF_RANGE),
        ("MEAS:G? 0,-1,0.05", ErrorCode.INDEX_OUT_OF_RANGE),
        ("MEAS:ROW? 9,0.05", ErrorCode.INDEX_OUT_OF_RANGE),
        ("RST:DEV 0,4", ErrorCode.INDEX_OUT_OF_RANGE),
        ("MEAS:ALL? 0.21", ErrorCode.VOLTAGE_OUT_OF_RANGE),
        ("VMM? 0.1,0.1,0.1,-0.3", ErrorCode.VOLTAGE_OUT_OF_RANGE),
        ("VMM? 0.1,0.1,0.1", ErrorCode.SYNTAX),
        ("PULS 0,0,2.6,1e-3", ErrorCode.VOLTAGE_OUT_OF_RANGE),
        ("PULS 0,0,-2.6,1e-3", ErrorCode.VOLTAGE_OUT_OF_RANGE),
        ("PULS 0,0,2.0,1e-7", ErrorCode.WIDTH_OUT_OF_RANGE),
        ("PULS 0,0,2.0,2.5", ErrorCode.WIDTH_OUT_OF_RANGE),
        ("PULS:LIST 0,0,2,1e-3;0,0,2,1e-3;0,0,2,1e-3;0,0,2,1e-3", ErrorCode.BATCH_TOO_LONG),
        ("PULS:LIST 0,0,2,1e-3;0,0,2,3.0", ErrorCode.WIDTH_OUT_OF_RANGE),
    ],
)
def test_validate_command_refusals(line: str, code: ErrorCode) -> None:
    with pytest.raises(CommandError) as err:
        validate_command(parse_command(line), INFO)
    assert err.value.code == code


def test_limits_are_inclusive_like_the_backend() -> None:
    lim = INFO.limits
    for line in (
        f"PULS 3,3,{-lim.pulse_v_max!r},{lim.width_max_s!r}",
        f"PULS 0,0,{lim.pulse_v_max!r},{lim.width_min_s!r}",
        f"MEAS:ALL? {lim.read_v_max!r}",
    ):
        validate_command(parse_command(line), INFO)


def test_reset_refused_without_capability() -> None:
    info = INFO.model_copy(update={"supports_reset": False})
    with pytest.raises(CommandError) as err:
        validate_command(parse_command("RST:DEV 0,0"), info)
    assert err.value.code == ErrorCode.NOT_SUPPORTED


# ----------------------------------------------------------------- the specification page
def test_protocol_page_documents_every_command_and_code() -> None:
    import crossbar_hil.protocol

    page = (Path(crossbar_hil.protocol.__file__).parent / "PROTOCOL.md").read_text(encoding="utf-8")
    assert f"version {PROTOCOL_VERSION}" in page.lower()
    for name in COMMANDS:
        assert f"`{name}" in page, name
    for code, title in ERROR_CODES.items():
        assert f"| {code} | {title} |" in page, (code, title)
    assert set(ERROR_CODES) == {int(c) for c in ErrorCode}


# ----------------------------------------------------------------- one check for both ends
@pytest.mark.parametrize("row", [-1, 0, 3, 4])
@pytest.mark.parametrize("amp", [-2.6, -2.5, 0.0, 2.5, 2.5000000000000004])
@pytest.mark.parametrize("width", [9e-7, 1e-6, 2.0, 2.0000000000000004])
def test_the_server_refuses_exactly_what_the_backend_refuses(row: int, amp: float, width: float) -> None:
    pulse = Pulse(row, 1, amp, width)
    try:
        INFO.check_pulse("pulse", pulse)
        backend_error = None
    except LimitError as e:
        backend_error = e
    line = encode_command("PULS", *pulse)
    if backend_error is None:
        validate_command(parse_command(line), INFO)
        return
    with pytest.raises(CommandError) as err:
        validate_command(parse_command(line), INFO)
    field = backend_error.field.rsplit(".", 1)[1]
    code = {
        "row": ErrorCode.INDEX_OUT_OF_RANGE,
        "amplitude_v": ErrorCode.VOLTAGE_OUT_OF_RANGE,
        "width_s": ErrorCode.WIDTH_OUT_OF_RANGE,
    }[field]
    assert err.value.code == code
    assert f"outside {backend_error.allowed}" in err.value.message  # the same allowed range


def test_refusal_messages_name_value_range_and_unit() -> None:
    cases = {
        "PULS 0,0,3.0,0.001": "amp_v=3.0 V outside [-2.5, 2.5] V",
        "PULS:LIST 0,0,2.0,0.001;0,9,2.0,0.001": "entry 1: col=9 outside integers [0, 3]",
        "VMM? 0.1,0.1,0.1,-0.3": "row 3: v=-0.3 V outside [-0.2, 0.2] V",
        "PULS 0,0,2.0,5.0": "width_s=5.0 s outside [1e-06, 2.0] s",
        "PULS:LIST 0,0,2,1e-3;0,0,2,1e-3;0,0,2,1e-3;0,0,2,1e-3": "PULS:LIST: entries=4 outside [1, 3]",
    }
    for line, message in cases.items():
        with pytest.raises(CommandError) as err:
            validate_command(parse_command(line), INFO)
        assert err.value.message == message


# ----------------------------------------------------------------- the declaration
def _doc_row(page: str, name: str) -> str:
    rows = [line for line in page.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"{name}: expected one row in the command tables of PROTOCOL.md"
    return rows[0]


@pytest.mark.parametrize("spec", list(COMMANDS.values()), ids=list(COMMANDS))
def test_protocol_page_matches_the_declaration(spec: CommandSpec) -> None:
    """Each declared command has its row: argument names, reply field names, units."""
    import crossbar_hil.protocol

    page = (Path(crossbar_hil.protocol.__file__).parent / "PROTOCOL.md").read_text(encoding="utf-8")
    row = _doc_row(page, spec.name)
    names = ",".join(a.name for a in spec.args)
    if spec.form == "fixed":
        assert f"| {f'`{names}`' if names else 'none'} " in row
    elif spec.form == "list":
        assert f"| `{names};" in row
    else:
        assert f"| `{spec.args[0].name}0," in row
    reply = spec.reply
    if reply.kind is ReplyKind.VALUES and len(reply.fields) > 1:
        assert f"`{','.join(reply.names)}`" in row
    for unit in {f.unit for f in reply.fields} | {a.unit for a in spec.args}:
        assert not unit or any(f"{a}{unit}{b}" in row for a in "( " for b in "),;"), unit
    if spec.duration is not Duration.INSTANT:
        timing = page[page.index("## 5. Timing") : page.index("## 6.")]
        assert f"`{spec.name}`" in timing


def test_a_command_missing_from_the_page_fails_the_check() -> None:
    with pytest.raises(AssertionError):
        _doc_row("| `PULS` | `row,col,amp_v,width_s` | OK |", "PULS:LIST")


def test_record_layouts_come_from_the_declaration() -> None:
    limits = Limits(read_v_max=0.25, max_batch=17)
    line = encode_record("CONF:LIM?", limits)
    assert line == "0.25,2.5,1e-06,2.0,0.001,17"
    assert Limits(**decode_record("CONF:LIM?", line)) == limits
    assert decode_record("CONF:CAP?", encode_record("CONF:CAP?", INFO)) == {
        "supports_reset": 1,
        "supports_depression": 0,
    }
    assert COMMANDS["CONF:LIM?"].reply.names == tuple(Limits.model_fields)
    with pytest.raises(ValueError, match="record"):
        encode_record("MEAS:ALL?", INFO)


def test_durations_follow_the_declared_rule() -> None:
    rules = {"switch_time_s": 0.01, "reset_time_s": 1.5}
    assert command_duration_s("MEAS:ALL?", 0.05, **rules) == 0.0
    assert command_duration_s("PULS", 0, 0, 2.0, 0.25, **rules) == pytest.approx(0.26)
    pulses = [Pulse(0, 0, 2.0, 0.1), Pulse(1, 1, 2.0, 0.2)]
    assert command_duration_s("PULS:LIST", pulses, **rules) == pytest.approx(0.32)
    assert command_duration_s("RST:DEV", 0, 0, **rules) == pytest.approx(1.51)
    timed = {n for n, s in COMMANDS.items() if s.duration is not Duration.INSTANT}
    assert timed == {"PULS", "PULS:LIST", "RST:DEV"}


def test_maximum_reply_lengths_follow_the_declaration_and_the_shape() -> None:
    longest = ",".join(["-2.2250738585072014e-308"] * 16)
    assert len(longest) <= max_reply_chars("MEAS:ALL?", (4, 4)) < 2 * len(longest)
    assert max_reply_chars("MEAS:ALL?", (64, 64)) == 64 * 64 * 25
    assert max_reply_chars("VMM?", (64, 2)) < max_reply_chars("VMM?", (2, 64))
    err = encode_error(300, "x" * 1000)
    assert len(err) <= max_reply_chars("PULS") < 300
    assert max_reply_chars("MEAS:ALL?") == MAX_LINE_CHARS  # shape not known yet


# ----------------------------------------------------------------- framing (PROTOCOL.md section 1)
@pytest.mark.parametrize("char", ["\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\r"])
def test_whitespace_other_than_spaces_is_a_syntax_error(char: str) -> None:
    assert is_empty_line("   \n") and is_empty_line("\r\n") and is_empty_line("")
    line = f" {char} \r\n"
    assert not is_empty_line(line)
    with pytest.raises(CommandError) as err:
        parse_command(line)
    assert err.value.code == ErrorCode.SYNTAX


def test_the_terminator_is_stripped_once() -> None:
    assert strip_terminator("RST:DEV 0,0\r\n") == "RST:DEV 0,0"
    assert strip_terminator("RST:DEV 0,0\r\r\n") == "RST:DEV 0,0\r"
    with pytest.raises(CommandError) as err:
        parse_command("RST:DEV 0,0\r\r\n")
    assert err.value.code == ErrorCode.SYNTAX


@pytest.mark.parametrize("digits", [31, 4301, 100_000])
def test_an_index_with_any_number_of_digits_is_out_of_range(digits: int) -> None:
    line = f"PULS {'9' * digits},0,2.0,0.001"
    with pytest.raises(CommandError) as err:
        validate_command(parse_command(line), INFO)
    assert err.value.code == ErrorCode.INDEX_OUT_OF_RANGE
    assert len(err.value.reply()) < 300 and f"({digits} characters)" in err.value.message
    with pytest.raises(CommandError) as neg:
        validate_command(parse_command(f"PULS 0,-{'0' * digits}1,2.0,0.001"), INFO)
    assert neg.value.code == ErrorCode.INDEX_OUT_OF_RANGE


def test_quotes_are_bounded() -> None:
    assert quote("abc") == "'abc'"
    text = quote(b"x" * 10**6)
    assert len(text) < 120 and "(1000000 bytes)" in text
    with pytest.raises(ProtocolError) as err:
        decode_reply("MEAS:G?", "1e-07," * 10**5)
    assert len(str(err.value)) < 400
