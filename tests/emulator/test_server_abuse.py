"""The instrument server under abuse (issue 11): it never stops serving, never holds the
instrument for an idle or a refused client, keeps its memory flat, and frames lines
exactly as PROTOCOL.md says. Every test goes through real sockets (or a child process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_server import TIMEOUT_S, LineClient, tcp_client

import crossbar_hil.emulator.instrument.server as server_module
import crossbar_hil.protocol
from crossbar_hil.emulator.config import EmulatorConfig
from crossbar_hil.emulator.instrument.controller import HANDLERS, missing_handlers
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.records import LINE_CHARS
from crossbar_hil.emulator.instrument.server import (
    ACCEPT_BACKOFF_S,
    DEFAULT_IDLE_TIMEOUT_S,
    HANDOVER_S,
    IN_USE_REPLY,
    LINGER_S,
    ServerOptions,
)
from crossbar_hil.emulator.testing import running_server
from crossbar_hil.protocol import COMMANDS

pytestmark = pytest.mark.system

PAGE = (Path(crossbar_hil.protocol.__file__).parent / "PROTOCOL.md").read_text(encoding="utf-8")
ROOT = Path(__file__).resolve().parents[2]


def _rss_mb() -> float:
    """Resident memory of this process (MB)."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


# ----------------------------------------------------------------- handlers follow the declaration
def test_every_declared_command_has_a_handler() -> None:
    assert missing_handlers() == []
    assert set(HANDLERS) == set(COMMANDS)
    partial = {name: h for name, h in HANDLERS.items() if name != "PULS:LIST"}
    assert missing_handlers(partial) == ["PULS:LIST"]


def test_an_instrument_with_a_missing_handler_refuses_to_start(monkeypatch) -> None:
    monkeypatch.delitem(HANDLERS, "ABOR")
    with pytest.raises(RuntimeError, match="ABOR"), running_server():
        pass


# ----------------------------------------------------------------- 1. accept errors are transient
_CHILD = """
import os, resource, sys
from crossbar_hil.emulator.testing import running_server
with running_server() as server:
    used = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    filler = []
    try:
        while True:
            filler.append(open(os.devnull))
    except OSError:
        pass
    filler.pop().close()  # room for exactly one more descriptor: the first client
    print(server.address[1], flush=True)
    sys.stdin.read()
    print("accept_errors", server.accept_errors, flush=True)
"""


def test_the_server_keeps_accepting_after_accept_errors() -> None:
    """Out of file descriptors: accept() fails; once one is free the waiting client is served."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        port = int(child.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as first:
            a = LineClient(sock=first)
            assert a.query("*IDN?").startswith("crossbar-hil")
            second = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
            time.sleep(0.3)  # the server tries to accept it and fails: no descriptor left
        # The first client has gone, its descriptor is free: the second is served.
        with second:
            b = LineClient(sock=second)
            b.send("*IDN?\n")
            reply = b.readline(timeout_s=TIMEOUT_S)
        assert reply is not None and reply.startswith("crossbar-hil")
        out, _ = child.communicate("", timeout=TIMEOUT_S)
        errors = int(out.split()[-1])
        assert errors >= 1  # accept() did fail, and the loop went on
        assert errors < 0.3 / ACCEPT_BACKOFF_S[0] + 5  # with a back-off, not a busy loop
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_forced_accept_error_is_logged_and_retried(caplog) -> None:
    with running_server() as server:
        listener = server._listener
        real = listener.accept
        failures = iter([OSError(24, "Too many open files"), ConnectionAbortedError(103, "aborted")])

        def flaky() -> tuple:
            error = next(failures, None)
            if error is not None:
                raise error
            return real()

        server._listener = type("Flaky", (), {"accept": staticmethod(flaky), "fileno": listener.fileno})()
        try:
            with tcp_client(server) as c:
                assert c.query("*IDN?").startswith("crossbar-hil")
        finally:
            server._listener = listener
        assert server.accept_errors == 2
    assert sum("accept failed" in r.getMessage() for r in caplog.records) == 2


# ----------------------------------------------------------------- 2. bounded memory
def test_memory_stays_flat_over_commands_connections_and_huge_lines() -> None:
    """A loose bound; benchmarks/bench_server_memory.py prints the figures."""
    big = b"MEAS:G? 0,0," + b"1" * ((1 << 20) - 20) + b"\n"  # 1 MiB, under the line limit: ERR 102
    with running_server(options=ServerOptions(recent_lines=1000)) as server:
        with tcp_client(server) as c:  # warm up
            c.send(b"*IDN?\n" * 100)
            c.readlines(100)
        rss0 = _rss_mb()
        with tcp_client(server) as c:
            for _ in range(64):
                c.send(big)
                assert c.readline().startswith("ERR 102")
            for _ in range(20):
                c.send(b"MEAS:G? 0,0,0.05\n" * 1000)
                c.readlines(1000)
        for _ in range(200):
            with tcp_client(server) as c:
                c.query("*CLS")
        assert server.wait_for_commands(64 + 20_000 + 200 + 100)
        deadline = time.monotonic() + TIMEOUT_S
        while server.live_threads > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        grown = _rss_mb() - rss0
        assert server.live_threads == 1  # the accept loop; every finished session forgotten
        assert len(server.commands) == 1000
        assert max(len(line) for line in server.commands) <= LINE_CHARS + 40
        assert server.command_count == 100 + 64 + 20_000 + 200
        assert server.command_counts()["MEAS:G?"] == 20_064
    assert grown < 40, f"server memory grew by {grown:.1f} MB"  # 64 MiB of lines were sent


# ----------------------------------------------------------------- 5. refusals at once
def test_a_hundred_newcomers_are_each_refused_at_once(caplog, monkeypatch: pytest.MonkeyPatch) -> None:
    # A handover wait far longer than the read timeout: a refusal that waited for it (as each
    # did, 0.5 s, before the fix) times out here, whatever the machine's speed.
    monkeypatch.setattr(server_module, "HANDOVER_S", 100 * TIMEOUT_S)
    with running_server() as server, tcp_client(server) as owner:
        assert owner.query("PULS 0,0,2.0,0.001") == "OK"
        newcomers = []
        for _ in range(100):
            sock = socket.create_connection(server.address, timeout=TIMEOUT_S)
            assert LineClient(sock=sock).readline(timeout_s=TIMEOUT_S) == IN_USE_REPLY
            newcomers.append(sock)
        assert server.refused == 100
        assert owner.query("PULS 0,0,2.0,0.001") == "OK"  # the owner never noticed
        for sock in newcomers:
            sock.close()
    assert server.crossbar.position[0, 0] == 2


def test_the_protocol_page_states_the_refusal() -> None:
    section = PAGE[PAGE.index("* **One client at a time.**") : PAGE.index("* **Idle timeout.**")]
    prefix = IN_USE_REPLY.split(":")[0]
    assert f"`{prefix}: ...`" in section
    assert f"at the latest\n  {LINGER_S:g} s" in section
    assert f"waits up to {HANDOVER_S:g} s" in section
    assert "| 400 | Instrument in use |" in PAGE


# ----------------------------------------------------------------- 6. idle timeout
def test_an_idle_session_is_closed_and_the_instrument_freed() -> None:
    options = ServerOptions(idle_timeout_s=0.3)
    with running_server(options=options) as server:
        with tcp_client(server) as idle:
            assert idle.query("*IDN?")
            time.sleep(0.6)
            with pytest.raises((EOFError, ConnectionResetError)):
                idle.readline(timeout_s=TIMEOUT_S)
        with tcp_client(server) as next_client:
            assert next_client.query("*IDN?")
        assert server.idle_closed == 1 and server.refused == 0


def test_a_slow_command_is_never_cut_by_the_idle_timeout() -> None:
    options = ServerOptions(idle_timeout_s=0.2)
    with (
        running_server(options=options, faults=FaultPlan(reply_delay_s=0.6)) as server,
        tcp_client(server) as c,
    ):
        assert c.query("PULS 0,0,2.0,0.001") == "OK"  # executing for 0.6 s > 0.2 s
        assert c.query("SYST:ERR?") == "0,No error"
        assert server.idle_closed == 0


def test_the_session_has_tcp_keepalive() -> None:
    with running_server(options=ServerOptions(keepalive_s=12)) as server, tcp_client(server) as c:
        c.query("*IDN?")
        conn = server._session_conn
        assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 12


def test_the_protocol_page_states_the_idle_timeout() -> None:
    section = PAGE[PAGE.index("* **Idle timeout.**") : PAGE.index("* **Accepting never stops.**")]
    text = " ".join(section.split())
    assert f"idle timeout is {DEFAULT_IDLE_TIMEOUT_S:g} s by default" in text
    assert f"first probe after {ServerOptions().keepalive_s:g} s idle" in text
    assert "`hil emulate --idle-timeout S`" in text
    assert "never counts" in text
    accept = PAGE[PAGE.index("* **Accepting never stops.**") :]
    lo, hi = ACCEPT_BACKOFF_S
    assert f"{lo * 1000:g} ms, doubling to at most {hi:g} s" in " ".join(accept.split())


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0])
def test_server_options_refuse_nonfinite_values(value: float) -> None:
    with pytest.raises(ValueError, match="idle_timeout_s"):
        ServerOptions(idle_timeout_s=value)


# ----------------------------------------------------------------- 7. framing, as the page says
WHITESPACE = ["\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\r"]


def test_the_protocol_page_lists_the_whitespace_that_is_refused() -> None:
    text = " ".join(PAGE[PAGE.index("* **Empty lines**") :].split())
    assert "A line of other whitespace (tab, VT, FF, `0x1C`..`0x1F`, `0x85`, `0xA0`, or an extra CR)" in text
    assert "refused with `ERR 101`" in text
    assert "`RST:DEV 0,0\\r\\r\\n` is refused with `ERR 101` and not executed" in " ".join(PAGE.split())


@pytest.mark.parametrize("char", WHITESPACE, ids=[f"0x{ord(c):02x}" for c in WHITESPACE])
def test_whitespace_lines_get_err_101_over_tcp(char: str) -> None:
    with running_server() as server, tcp_client(server) as c:
        c.send((" " + char + char + "\n").encode("latin-1"))
        assert c.readline(timeout_s=TIMEOUT_S).startswith("ERR 101,")
        c.send(b"   \n\r\n")  # spaces only, and a bare CR LF: empty lines, no reply
        assert c.query("SYST:ERR?").startswith("101,")


def test_an_extra_cr_is_refused_and_not_executed() -> None:
    with running_server() as server, tcp_client(server) as c:
        assert c.query("PULS 0,0,2.0,0.001") == "OK"
        assert c.query("RST:DEV 0,0\r\r").startswith("ERR 101,")
        assert server.crossbar.position[0, 0] == 1  # no reset happened
        assert c.query("RST:DEV 0,0\r") == "OK"  # one CR before the LF is the terminator
        assert server.crossbar.position[0, 0] == 0


def test_a_huge_index_gets_err_200_over_tcp() -> None:
    with running_server() as server, tcp_client(server) as c:
        reply = c.query(f"PULS {'7' * 5000},0,2.0,0.001")
        assert reply.startswith("ERR 200,") and "(5000 characters)" in reply
        assert len(reply) < 300


# ----------------------------------------------------------------- 8. hil emulate refuses inf
@pytest.mark.parametrize(("flag", "value", "field"), [("--k", "inf", "scale_k"), ("--k", "nan", "scale_k")])
def test_hil_emulate_refuses_nonfinite_settings(flag: str, value: str, field: str, capsys) -> None:
    from crossbar_hil.api.cli import main

    assert main(["emulate", "--tcp", "127.0.0.1:0", flag, value]) == 2
    assert field in capsys.readouterr().err


def test_hil_emulate_takes_an_idle_timeout(monkeypatch, capsys) -> None:
    from test_server import _parse

    from crossbar_hil.api.cli import emulate

    args = _parse(["emulate", "--tcp", "127.0.0.1:0", "--idle-timeout", "0.25"])
    seen: list[ServerOptions] = []
    real = emulate.running_server

    def spy(*a, **kw):
        seen.append(kw["options"])
        return real(*a, **kw)

    monkeypatch.setattr(emulate, "running_server", spy)
    stop = threading.Event()
    stop.set()
    with open(os.devnull, "w") as out:
        assert args.func(args, stop=stop, out=out) == 0
    assert seen[0].idle_timeout_s == 0.25
    # Without the option the model's default applies (the option is built from ServerOptions).
    assert _parse(["emulate"]).idle_timeout_s is None
    assert ServerOptions().idle_timeout_s == DEFAULT_IDLE_TIMEOUT_S
    bad = _parse(["emulate", "--idle-timeout", "inf"])
    assert bad.func(bad, stop=stop) == 2
    assert "idle_timeout_s" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("model", "values", "field"),
    [
        (EmulatorConfig, {"scale_k": float("inf")}, "scale_k"),
        (EmulatorConfig, {"shifts": {"sigma": float("nan")}}, "sigma"),
        (FaultPlan, {"reply_delay_s": float("nan")}, "reply_delay_s"),
        (ServerOptions, {"keepalive_s": float("inf")}, "keepalive_s"),
    ],
)
def test_emulator_models_refuse_inf_and_nan(model: type, values: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        model(**values)
