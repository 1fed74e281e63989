"""The instrument server over real transports: replies, refusals that change nothing, faults."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import serial

import crossbar_hil.emulator.instrument.server as server_module
from crossbar_hil.api.cli import emulate
from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.instrument.controller import CommandProcessor
from crossbar_hil.emulator.instrument.faults import FaultPlan, garble
from crossbar_hil.emulator.instrument.server import IN_USE_REPLY, InstrumentServer
from crossbar_hil.emulator.testing import running_server
from crossbar_hil.protocol import (
    COMMANDS,
    ERROR_CODES,
    PROTOCOL_VERSION,
    ErrorCode,
    decode_reply,
    encode_command,
)
from crossbar_hil.protocol.codec import ERROR_QUEUE_SIZE, MAX_LINE_CHARS
from crossbar_hil.seam import Limits, Pulse
from crossbar_hil.seam.errors import DeviceFault, ProtocolError

pytestmark = pytest.mark.system

NOISY = EmulatorConfig(seed=7, read_noise=0.02, step_noise=0.2, limits=Limits(max_batch=4))
TIMEOUT_S = 5.0


class LineClient:
    """A raw line client over a socket or a file descriptor (no driver code involved)."""

    def __init__(self, sock: socket.socket | None = None, fd: int | None = None) -> None:
        self.sock, self.fd = sock, fd
        self.buffer = b""

    def send(self, data: bytes | str) -> None:
        raw = data.encode("ascii") if isinstance(data, str) else data
        if self.sock is not None:
            self.sock.sendall(raw)
        else:
            assert self.fd is not None
            while raw:
                raw = raw[os.write(self.fd, raw) :]

    def _recv(self, timeout_s: float) -> bytes | None:
        """Some bytes, b"" at end of stream, None on timeout."""
        source = self.sock if self.sock is not None else self.fd
        if not select.select([source], [], [], timeout_s)[0]:
            return None
        if self.sock is not None:
            return self.sock.recv(65536)
        try:
            return os.read(self.fd, 65536)
        except OSError:
            return b""

    def readline(self, timeout_s: float = TIMEOUT_S) -> str | None:
        """One reply line (terminator removed); None on timeout; raises EOFError at end."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            chunk = self._recv(max(0.0, deadline - time.monotonic()))
            if chunk is None:
                return None
            if not chunk:
                raise EOFError("connection closed")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode("ascii")

    def query(self, line: str) -> str:
        self.send(line + "\n")
        reply = self.readline()
        assert reply is not None, f"no reply to {line!r}"
        return reply

    def readlines(self, n: int, timeout_s: float = TIMEOUT_S) -> list[str]:
        """Exactly ``n`` reply lines; fails if they do not all come within ``timeout_s`` each."""
        lines = []
        for k in range(n):
            line = self.readline(timeout_s)
            assert line is not None, f"only {k} of {n} reply lines came"
            lines.append(line)
        return lines


@contextmanager
def tcp_client(server: InstrumentServer) -> Iterator[LineClient]:
    with socket.create_connection(server.address, timeout=TIMEOUT_S) as sock:
        yield LineClient(sock=sock)


@pytest.fixture
def server() -> Iterator[InstrumentServer]:
    with running_server(NOISY) as srv:
        yield srv


@pytest.fixture
def client(server: InstrumentServer) -> Iterator[LineClient]:
    with tcp_client(server) as c:
        yield c


def state(crossbar: EmulatedCrossbar) -> tuple:
    """Everything a command could change: positions, conductances, RNG states, aborts."""
    return (
        crossbar.position.copy(),
        crossbar.conductances().copy(),
        crossbar._step_rng.bit_generator.state,
        crossbar._read_rng.bit_generator.state,
        crossbar.aborts,
    )


def assert_same_state(a: tuple, b: tuple) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2:] == b[2:]


# ----------------------------------------------------------------- a session over TCP
def test_raw_tcp_session_matches_the_crossbar_bit_for_bit(
    server: InstrumentServer, client: LineClient
) -> None:
    twin = EmulatedCrossbar(NOISY)
    info = twin.info
    assert client.query("*IDN?") == info.identity
    assert client.query("syst:vers?") == PROTOCOL_VERSION
    assert decode_reply("CONF:SHAPE?", client.query("CONF:SHAPE?")) == [4, 4]
    lim = info.limits
    assert decode_reply("CONF:LIM?", client.query("CONF:LIM?")) == [
        lim.read_v_max,
        lim.pulse_v_max,
        lim.width_min_s,
        lim.width_max_s,
        lim.compliance_a,
        4,
    ]
    assert client.query("CONF:CAP?") == "1,0"

    pulses = [Pulse(0, 1, 2.0, 1e-3), Pulse(2, 3, 2.0, 1e-3), Pulse(0, 1, 2.0, 1e-3)]
    v = [0.1, -0.1, 0.1, -0.1]
    script = [
        ("MEAS:ALL?", (0.05,), lambda: twin.read_conductances(0.05).ravel()),
        ("PULS", (1, 1, 2.0, 1e-3), lambda: twin.pulse(1, 1, 2.0, 1e-3)),
        ("PULS:LIST", (pulses,), lambda: twin.pulse_many(pulses)),
        ("VMM?", (v,), lambda: twin.apply(v)),
        ("MEAS:G?", (0, 1, 0.05), lambda: [twin.read_conductances(0.05)[0, 1]]),
        ("MEAS:ROW?", (2, 0.05), lambda: twin.read_conductances(0.05)[2]),
        ("MEAS:COL?", (3, -0.05), lambda: twin.read_conductances(-0.05)[:, 3]),
        ("RST:DEV", (0, 1), lambda: twin.reset(0, 1)),
        ("ABOR", (), twin.abort),
        ("MEAS:ALL?", (0.05,), lambda: twin.read_conductances(0.05).ravel()),
    ]
    for name, args, direct in script:
        got = decode_reply(name, client.query(encode_command(name, *args)), shape=(4, 4))
        expected = direct()
        if got is None:
            assert expected is None or isinstance(expected, int)
        else:
            assert [x.hex() for x in got] == [float(x).hex() for x in expected], name
    assert_same_state(state(server.crossbar), state(twin))
    assert len(server.commands) == 5 + len(script)


def test_exactly_one_reply_line_per_command_even_when_pipelined(
    server: InstrumentServer, client: LineClient
) -> None:
    lines = [
        "*IDN?",
        "",
        "MEAS:ALL? 0.05",
        "   ",
        "PULS 0,0,2.0,0.001",
        "BOGUS",
        "PULS 0,0",
        "PULS 9,0,2.0,0.001",
        "VMM? 0.1,0.1,0.1,0.1",
        "SYST:ERR?",
        "ABOR",
        "MEAS:G? 0,0,x",
    ]
    client.send("".join(line + ("\r\n" if k % 2 else "\n") for k, line in enumerate(lines)))
    commands = [line for line in lines if line.strip()]
    replies = client.readlines(len(commands))
    # No extra line hides behind them: the next line read answers the next command.
    assert client.query("SYST:VERS?") == PROTOCOL_VERSION
    assert server.commands == [*commands, "SYST:VERS?"]
    kinds = ["text", "values", "OK", "ERR 100", "ERR 101", "ERR 200", "values", "100,", "OK", "ERR 102"]
    for reply, kind in zip(replies, kinds, strict=True):
        if kind == "text":
            assert reply.startswith("crossbar-hil")
        elif kind == "values":
            assert all(float(x) for x in reply.split(","))
        else:
            assert reply.startswith(kind), (reply, kind)


# ----------------------------------------------------------------- every refusal changes nothing
REFUSALS = [
    ("FOO 1,2", ErrorCode.UNKNOWN_COMMAND),
    ("PULS:LIS 0,0,2.0,0.001", ErrorCode.UNKNOWN_COMMAND),
    ("PULS 0,0,2.0", ErrorCode.SYNTAX),
    ("RST:DEV 0,0,1", ErrorCode.SYNTAX),
    ("ABOR now", ErrorCode.SYNTAX),
    ("VMM? 0.1,0.1", ErrorCode.SYNTAX),
    ("PULS:LIST 0,0,2.0,0.001;", ErrorCode.SYNTAX),
    ("PULS:LIST 0,0,2.0,0.001;1,1,2.0", ErrorCode.SYNTAX),
    ("PULS 0,0,2.0V,0.001", ErrorCode.BAD_NUMBER),
    ("PULS 0.0,0,2.0,0.001", ErrorCode.BAD_NUMBER),
    ("PULS 0,0,nan,0.001", ErrorCode.BAD_NUMBER),
    ("PULS:LIST 0,0,2.0,0.001;1,1,two,0.001", ErrorCode.BAD_NUMBER),
    ("PULS 0,0,2.6,0.001", ErrorCode.VOLTAGE_OUT_OF_RANGE),
    ("PULS 0,0,-3.0,1.0", ErrorCode.VOLTAGE_OUT_OF_RANGE),
    ("MEAS:ALL? 0.5", ErrorCode.VOLTAGE_OUT_OF_RANGE),
    ("MEAS:G? 0,0,-0.3", ErrorCode.VOLTAGE_OUT_OF_RANGE),
    ("VMM? 0.1,0.1,0.1,0.25", ErrorCode.VOLTAGE_OUT_OF_RANGE),
    ("PULS 0,0,2.0,1e-9", ErrorCode.WIDTH_OUT_OF_RANGE),
    ("PULS 0,0,-2.0,5.0", ErrorCode.WIDTH_OUT_OF_RANGE),
    ("PULS 4,0,2.0,0.001", ErrorCode.INDEX_OUT_OF_RANGE),
    ("PULS 0,-1,2.0,0.001", ErrorCode.INDEX_OUT_OF_RANGE),
    ("RST:DEV 0,4", ErrorCode.INDEX_OUT_OF_RANGE),
    ("MEAS:ROW? 4,0.05", ErrorCode.INDEX_OUT_OF_RANGE),
    ("MEAS:COL? 7,0.05", ErrorCode.INDEX_OUT_OF_RANGE),
    ("PULS:LIST 0,0,2.0,0.001;1,1,2.0,0.001;2,2,2.0,0.001;3,9,2.0,0.001", ErrorCode.INDEX_OUT_OF_RANGE),
    ("PULS:LIST 0,0,2.0,0.001;1,1,2.0,0.001;2,2,2.6,0.001", ErrorCode.VOLTAGE_OUT_OF_RANGE),
    ("PULS:LIST 0,0,2.0,0.001;1,1,2.0,3.0", ErrorCode.WIDTH_OUT_OF_RANGE),
    ("PULS:LIST " + ";".join(["0,0,2.0,0.001"] * 5), ErrorCode.BATCH_TOO_LONG),
]


@pytest.mark.parametrize(("line", "code"), REFUSALS)
def test_refused_command_gets_documented_reply_and_changes_nothing(
    server: InstrumentServer, client: LineClient, line: str, code: ErrorCode
) -> None:
    assert client.query("PULS:LIST 0,0,2.0,0.001;1,1,2.0,0.001;1,1,2.0,0.001") == "OK"
    before = state(server.crossbar)
    reply = client.query(line)
    assert reply.startswith(f"ERR {int(code)},{ERROR_CODES[code]}: ")
    assert_same_state(state(server.crossbar), before)
    with pytest.raises(DeviceFault) as err:
        header = line.split(" ")[0]
        decode_reply(header if header in COMMANDS else "ABOR", reply)
    assert err.value.code == code
    assert client.query("SYST:ERR?") == reply.removeprefix("ERR ")
    assert client.query("SYST:ERR?") == "0,No error"


def test_garbage_bytes_and_overlong_lines_are_refused(server: InstrumentServer, client: LineClient) -> None:
    before = state(server.crossbar)
    client.send(b"PULS 0,0,2.0,0.001\xff\n")
    assert client.readline().startswith("ERR 101,")
    client.send(b"PULS\t0,0,2.0,0.001\n")
    assert client.readline().startswith("ERR 101,")
    client.send(b"PULS:LIST " + b"0,0,2.0,0.001;" * (MAX_LINE_CHARS // 14 + 10) + b"\n")
    assert client.readline().startswith("ERR 103,")
    assert_same_state(state(server.crossbar), before)
    assert client.query("MEAS:G? 0,0,0.05")  # still in sync
    assert len(server.commands) == 4


def test_valid_batch_is_applied_in_order_like_pulse_many(
    server: InstrumentServer, client: LineClient
) -> None:
    twin = EmulatedCrossbar(NOISY)
    batch = [Pulse(3, 0, 2.0, 1e-3), Pulse(3, 0, 2.0, 1e-3), Pulse(3, 0, -2.0, 1.0), Pulse(3, 0, 2.0, 1e-3)]
    assert client.query(encode_command("PULS:LIST", batch)) == "OK"
    twin.pulse_many(batch)
    assert_same_state(state(server.crossbar), state(twin))
    assert server.crossbar.position[3, 0] == 1


def test_error_queue_is_fifo_bounded_and_cleared(client: LineClient) -> None:
    for k in range(ERROR_QUEUE_SIZE + 5):
        assert client.query(f"NOPE{k}").startswith("ERR 100,")
    entries = [client.query("SYST:ERR?") for _ in range(ERROR_QUEUE_SIZE + 1)]
    assert entries[0] == "100,Unknown command: 'NOPE0'"
    assert entries[ERROR_QUEUE_SIZE - 2] == f"100,Unknown command: 'NOPE{ERROR_QUEUE_SIZE - 2}'"
    assert entries[ERROR_QUEUE_SIZE - 1] == "350,Error queue overflow"
    assert entries[ERROR_QUEUE_SIZE] == "0,No error"
    client.query("NOPE")
    assert client.query("*CLS") == "OK"
    assert client.query("SYST:ERR?") == "0,No error"


def test_execution_failure_is_err_300() -> None:
    crossbar = EmulatedCrossbar()
    processor = CommandProcessor(crossbar)
    crossbar.close()
    reply = processor.handle("MEAS:ALL? 0.05")
    assert reply.startswith("ERR 300,Device or execution fault: MEAS:ALL?:")
    assert processor.queued_errors[0][0] == 300


def test_one_client_at_a_time(
    server: InstrumentServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A handover wait far longer than the read timeout: a newcomer refused only after waiting
    # for it would time out below. Tested by what happens, not by how fast a busy machine is.
    monkeypatch.setattr(server_module, "HANDOVER_S", 100 * TIMEOUT_S)
    with tcp_client(server) as a:
        assert a.query("PULS 2,2,2.0,0.001") == "OK"
        with tcp_client(server) as b:
            b.send("PULS 2,2,2.0,0.001\nXYZ\n")
            assert b.readline() == IN_USE_REPLY  # at once, without the handover wait...
            assert b.readline() == IN_USE_REPLY  # ...and again for its first command line,
            with pytest.raises((EOFError, ConnectionResetError)):  # then closed, never executed
                b.readline()
        assert server.refused == 1
        assert any("refused connection" in r.getMessage() for r in caplog.records)
        assert a.query("SYST:ERR?") == "0,No error"  # b's lines were never executed
        assert a.query("PULS 2,2,2.0,0.001") == "OK"  # a still owns the instrument
    with tcp_client(server) as c:  # once a has gone, the next client is served
        assert c.query("MEAS:G? 2,2,0.05")
    assert server.crossbar.position[2, 2] == 2
    assert server.connections == 2
    assert server.command_counts() == {"PULS": 2, "SYST:ERR?": 1, "MEAS:G?": 1}


# ----------------------------------------------------------------- pty
def test_session_over_the_pty_with_pyserial() -> None:
    with running_server(NOISY, transport="pty") as srv:
        assert srv.device_path.startswith("/dev/")
        assert srv.resource_string == f"ASRL{srv.device_path}::INSTR"
        twin = EmulatedCrossbar(NOISY)
        for _ in range(2):  # the device can be opened again after a client closed it
            with serial.Serial(srv.device_path, baudrate=115200, timeout=TIMEOUT_S) as port:
                port.write(b"*IDN?\r\nPULS 1,2,2.0,0.001\nMEAS:ALL? 0.05\n")
                assert port.readline() == (twin.info.identity + "\n").encode()
                assert port.readline() == b"OK\n"
                twin.pulse(1, 2, 2.0, 1e-3)
                got = decode_reply("MEAS:ALL?", port.readline().decode("ascii"))
                assert got == twin.read_conductances(0.05).ravel().tolist()
        assert len(srv.commands) == 6


def test_session_over_the_pty_with_os_open() -> None:
    with running_server(transport="pty") as srv:
        fd = os.open(srv.device_path, os.O_RDWR | os.O_NOCTTY)
        try:
            c = LineClient(fd=fd)
            assert c.query("CONF:SHAPE?") == "4,4"
            assert c.query("PULS 0,0,9,0.001").startswith("ERR 201,")
            long_batch = encode_command("PULS:LIST", [Pulse(0, 0, 2.0, 1e-3)] * 200)
            assert c.query(long_batch) == "OK"
            assert len(c.query("MEAS:ALL? 0.05").split(",")) == 16
        finally:
            os.close(fd)
        assert srv.crossbar.position[0, 0] == min(200, srv.crossbar.n_max)


# ----------------------------------------------------------------- faults, seen from the client
def test_reply_delay() -> None:
    delay_s = 0.8
    with running_server(faults=FaultPlan(reply_delay_s=delay_s)) as srv, tcp_client(srv) as c:
        c.send("*IDN?\n")
        assert c.readline(timeout_s=delay_s / 4) is None  # the reply cannot be early
        assert c.readline(timeout_s=TIMEOUT_S).startswith("crossbar-hil")
        t0 = time.monotonic()
        c.query("ABOR")
        assert time.monotonic() - t0 >= delay_s * 0.99


def test_drop_after_closes_the_connection_without_executing() -> None:
    with running_server(faults=FaultPlan(drop_after=2)) as srv:
        with tcp_client(srv) as c:
            assert c.query("PULS 0,0,2.0,0.001") == "OK"
            assert c.query("*IDN?").startswith("crossbar-hil")
            c.send("PULS 0,0,2.0,0.001\n")
            with pytest.raises(EOFError):
                c.readline()
        assert srv.crossbar.position[0, 0] == 1
        with tcp_client(srv) as c:  # the drop happens once; the instrument is still there
            assert c.query("PULS 0,0,2.0,0.001") == "OK"
        assert srv.crossbar.position[0, 0] == 2
        assert len(srv.commands) == 4


def test_drop_over_the_pty_hangs_up() -> None:
    with running_server(transport="pty", faults=FaultPlan(drop_after=1)) as srv:
        fd = os.open(srv.device_path, os.O_RDWR | os.O_NOCTTY)
        try:
            c = LineClient(fd=fd)
            assert c.query("ABOR") == "OK"
            c.send("ABOR\n")
            with pytest.raises(EOFError):
                c.readline()
        finally:
            os.close(fd)


def test_garble_at_corrupts_one_reply_but_executes() -> None:
    with running_server(faults=FaultPlan(garble_at=2)) as srv, tcp_client(srv) as c:
        assert decode_reply("*IDN?", c.query("*IDN?"))
        with pytest.raises(ProtocolError):
            decode_reply("PULS", c.query("PULS 1,0,2.0,0.001"))
        with pytest.raises(ProtocolError):  # even a free-text reply is caught when garbled
            decode_reply("*IDN?", garble(srv.crossbar.info.identity))
        assert decode_reply("PULS", c.query("PULS 1,0,2.0,0.001")) is None
        assert srv.crossbar.position[1, 0] == 2


def test_mute_after_keeps_the_connection_but_never_answers() -> None:
    with running_server(faults=FaultPlan(mute_after=1)) as srv, tcp_client(srv) as c:
        assert c.query("ABOR") == "OK"
        c.send("PULS 0,0,2.0,0.001\n*IDN?\n")
        assert srv.wait_for_commands(3, TIMEOUT_S)
        assert c.readline(timeout_s=0.3) is None  # no reply, and no end of stream
        assert srv.crossbar.position[0, 0] == 0
        assert srv.commands[1:] == ["PULS 0,0,2.0,0.001", "*IDN?"]


def test_fault_plan_is_validated() -> None:
    with pytest.raises(ValueError):
        FaultPlan(reply_delay_s=-1)
    with pytest.raises(ValueError):
        FaultPlan(garble_at=0)
    with pytest.raises(ValueError):
        FaultPlan(mute_after=1, bogus=2)


# ----------------------------------------------------------------- life cycle
def listening_tcp_ports() -> set[int]:
    """TCP ports on which THIS process has a listening socket (Linux /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for row in f.read().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_stop_releases_port_threads_and_connections() -> None:
    threads_before = set(threading.enumerate())
    with running_server(faults=FaultPlan(reply_delay_s=60)) as srv:
        address = srv.address
        assert address[0] == "127.0.0.1" and address[1] > 0
        assert address[1] in listening_tcp_ports()
        assert any(t.name.startswith("instrument-server") for t in threading.enumerate())
        assert srv.resource_string == f"TCPIP::127.0.0.1::{address[1]}::SOCKET"
        assert srv.serial_url == f"socket://127.0.0.1:{address[1]}"
        sock = socket.create_connection(address, timeout=TIMEOUT_S)
        sock.sendall(b"*IDN?\n")  # the server is now waiting 60 s to reply
        assert srv.wait_for_commands(1, TIMEOUT_S)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 30  # Not the 60 s reply: the stop does not wait for it.
    assert srv.crossbar.closed
    assert srv.address == address  # still known, for messages
    sock.settimeout(TIMEOUT_S)
    assert sock.recv(100) == b""
    sock.close()
    assert address[1] not in listening_tcp_ports()  # the listener is closed
    assert set(threading.enumerate()) - threads_before == set()  # every server thread ended


def test_pty_server_stops_and_closes_fds() -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    with running_server(transport="pty") as srv:
        assert os.path.exists(srv.device_path)
    assert len(os.listdir("/proc/self/fd")) == fds_before
    with pytest.raises(RuntimeError):
        _ = InstrumentServer(EmulatedCrossbar(), transport="pty").device_path


def test_server_serves_a_given_crossbar_and_leaves_it_open() -> None:
    crossbar = EmulatedCrossbar(EmulatorConfig(seed=3))
    with running_server(crossbar=crossbar) as srv, tcp_client(srv) as c:
        assert c.query("*IDN?").endswith("seed=3")
    assert not crossbar.closed
    with pytest.raises(ValueError):
        InstrumentServer(crossbar, transport="usb")  # type: ignore[arg-type]


# ----------------------------------------------------------------- hil emulate
def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    emulate.add_parser(parser.add_subparsers())
    return parser.parse_args(argv)


@pytest.mark.parametrize("where", [["--tcp", "127.0.0.1:0"], ["--pty"]])
def test_cli_emulate_serves_until_stopped(where: list[str], monkeypatch) -> None:
    monkeypatch.delenv("HIL_TRACE", raising=False)
    args = _parse(["emulate", *where, "--seed", "5", "--k", "20"])
    stop, out = threading.Event(), io.StringIO()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(args.func(args, stop=stop, out=out)))
    thread.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while "Serving" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        text = out.getvalue()
        assert "seed=5" in text and f"protocol {PROTOCOL_VERSION}" in text
        port = next(line.split()[-1] for line in text.splitlines() if "pyserial" in line)
        with serial.serial_for_url(port, timeout=TIMEOUT_S) as link:
            link.write(b"MEAS:ALL? 0.05\n")
            got = decode_reply("MEAS:ALL?", link.readline().decode())
        expected = EmulatedCrossbar(EmulatorConfig(seed=5, scale_k=20)).read_conductances(0.05)
        assert got == expected.ravel().tolist()
    finally:
        stop.set()
        thread.join(TIMEOUT_S)
    assert result == [0]
    assert "stopped after 1 commands" in out.getvalue()


def test_cli_rejects_bad_addresses() -> None:
    with pytest.raises(SystemExit):
        _parse(["emulate", "--tcp", "localhost"])
    with pytest.raises(SystemExit):
        _parse(["emulate", "--tcp", "127.0.0.1:5025", "--pty"])
    assert _parse(["emulate", "--tcp", "[::1]:5025"]).tcp == ("::1", 5025)
