"""Drivers against instruments that misbehave on the wire (issue 11): a total deadline per reply,
a maximum reply length from the command and the shape, bounded error messages, a Ctrl-C that
gets through, and absurd limits refused at the handshake. Through real sockets and a real pty."""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from crossbar_hil.drivers.link import MAX_COMMAND_S, LinkFaulted
from crossbar_hil.drivers.protocol_backend import ProtocolBackend
from crossbar_hil.drivers.serial_backend import SerialBackend
from crossbar_hil.drivers.testing import FakeLink, handshake_replies
from crossbar_hil.drivers.visa_backend import VisaBackend
from crossbar_hil.seam.errors import (
    CommunicationError,
    ConnectionLost,
    InstrumentTimeout,
    ProtocolError,
)

pytestmark = pytest.mark.system

TIMEOUT_S = 0.5
"""The drivers' base reply timeout in these tests (s)."""
LONG_TIMEOUT_S = 30.0
"""A reply timeout no loaded machine reaches in these tests (s): where the behaviour under test
must end a read before its deadline, the error's kind (not the time taken) tells which ended it."""
INTERRUPT_TIMEOUT_S = 8.0
"""The deadline of the interrupted read (s): far after the interrupt (0.3 s), and short, for the
ABOR at close then waits it out on the dripping line."""
HANG_GUARD_S = 60.0
"""Longer than any deadline here (s): a read that has not ended by then never would."""

Write = Callable[[bytes], None]


class MisbehavingInstrument:
    """Answers the handshake like a 4 x 4 instrument, then misbehaves on ``MEAS:ALL?``:

    * ``drip``: one byte every 20 ms, never a line end (VISA's own timeout never fires);
    * ``babble``: 64 KiB chunks without a line end, as fast as the reader takes them.

    Other commands answer OK. Runs in a thread on any byte stream (``read``/``write``).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.replies = handshake_replies()
        self.stop = threading.Event()
        self.sent_bytes = 0

    def serve(self, fd_read: Callable[[], bytes], write: Write) -> None:
        buffer = b""
        misbehaving = False
        while not self.stop.is_set():
            if misbehaving:
                chunk = b"1" if self.mode == "drip" else b"1," * 32768
                try:
                    write(chunk)
                except OSError:
                    return
                self.sent_bytes += len(chunk)
                if self.mode == "drip":
                    time.sleep(0.02)
                continue
            data = fd_read()
            if data is None:
                continue
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                name = line.decode().split(" ")[0]
                if name == "MEAS:ALL?":
                    misbehaving = True
                    break
                write((self.replies.get(name, "OK") + "\n").encode())


@contextmanager
def tcp_instrument(mode: str) -> Iterator[tuple[str, MisbehavingInstrument]]:
    """A misbehaving instrument on 127.0.0.1 (one connection); yields its host:port."""
    fake = MisbehavingInstrument(mode)
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:

            def read() -> bytes | None:
                return conn.recv(65536) if select.select([conn], [], [], 0.05)[0] else None

            fake.serve(read, conn.sendall)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", fake
    finally:
        fake.stop.set()
        listener.close()
        thread.join(5)


@contextmanager
def pty_instrument(mode: str) -> Iterator[tuple[str, MisbehavingInstrument]]:
    """A misbehaving instrument on the master side of a new pty; yields the device path."""
    import tty

    fake = MisbehavingInstrument(mode)
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)

    def read() -> bytes | None:
        return os.read(master, 65536) if select.select([master], [], [], 0.05)[0] else None

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view and not fake.stop.is_set():
            if select.select([], [master], [], 0.05)[1]:
                try:
                    view = view[os.write(master, view) :]
                except BlockingIOError:
                    continue

    thread = threading.Thread(target=fake.serve, args=(read, write), daemon=True)
    thread.start()
    try:
        yield os.ttyname(slave), fake
    finally:
        fake.stop.set()
        thread.join(5)
        os.close(master)
        os.close(slave)


DRIVERS = ("visa-tcp", "visa-pty", "serial-tcp", "serial-pty")


@contextmanager
def connected(driver: str, mode: str, timeout_s: float = TIMEOUT_S) -> Iterator[ProtocolBackend]:
    opener = pty_instrument if driver.endswith("pty") else tcp_instrument
    with opener(mode) as (where, _):
        if driver.startswith("visa"):
            if driver == "visa-tcp":
                host, port = where.split(":")
                resource = f"TCPIP::{host}::{port}::SOCKET"
            else:
                resource = f"ASRL{where}::INSTR"
            backend: ProtocolBackend = VisaBackend.from_params({"resource": resource, "timeout_s": timeout_s})
        else:
            port = where if driver == "serial-pty" else f"socket://{where}"
            backend = SerialBackend.from_params({"port": port, "timeout_s": timeout_s})
        with backend:
            yield backend


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_dripping_instrument_fails_at_the_deadline_with_a_short_message(driver: str) -> None:
    with connected(driver, "drip") as backend:
        start = time.monotonic()
        with pytest.raises(InstrumentTimeout) as err:
            backend.read_conductances(0.05)
        elapsed = time.monotonic() - start
    # At least the reply's deadline; and it ends although bytes keep coming (a deadline that
    # moved with each byte would never end: HANG_GUARD_S catches that, not the machine's speed).
    assert TIMEOUT_S <= elapsed < HANG_GUARD_S, f"{elapsed:.2f} s"
    message = str(err.value)
    assert f"no complete reply within {TIMEOUT_S:g} s" in message
    assert "partial: b'111" in message and len(message) < 300


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_babbling_instrument_is_cut_at_the_longest_possible_reply(driver: str) -> None:
    # A timeout far longer than any machine takes to deliver 400 characters: the read must end
    # by the length cut (a ProtocolError), whatever the load; a timeout would be an InstrumentTimeout.
    with connected(driver, "babble", timeout_s=LONG_TIMEOUT_S) as backend:
        with pytest.raises(ProtocolError) as err:
            backend.read_conductances(0.05)
        limit = backend.max_reply_chars("MEAS:ALL?")
        assert isinstance(backend.fault, ProtocolError)
    assert limit == 16 * 25
    message = str(err.value)
    assert f"reply longer than {limit} characters" in message and len(message) < 400


def test_a_second_ctrl_c_gets_through_a_dripping_reply() -> None:
    """Well before the deadline, an interrupt (SIGINT's KeyboardInterrupt) ends the read at once
    and leaves the backend faulted: it sends nothing more until resynchronised."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread")

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        # The deadline is far off: only the interrupt can end the read with a KeyboardInterrupt
        # (the deadline would end it with an InstrumentTimeout), whatever the load.
        with connected("visa-tcp", "drip", timeout_s=INTERRUPT_TIMEOUT_S) as backend:
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(KeyboardInterrupt):
                backend.read_conductances(0.05)
            assert isinstance(backend.fault, CommunicationError)
            with pytest.raises(LinkFaulted):
                backend.pulse(0, 0, 2.0, 1e-3)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------- absurd limits
@pytest.mark.parametrize(
    ("lim", "field"),
    [
        ("0.2,2.5,1e-06,1e308,0.001,256", "width_max_s=1e+308 s"),
        ("0.2,2.5,1e-06,inf,0.001,256", "width_max_s=inf s"),
        ("0.2,2.5,1e-06,7200.0,0.001,256", "width_max_s=7200.0 s"),
        ("nan,2.5,1e-06,2.0,0.001,256", "read_v_max=nan V"),
        ("0.2,2.5,1e-06,2.0,inf,256", "compliance_a=inf A"),
    ],
)
def test_absurd_limits_are_refused_at_the_handshake(lim: str, field: str) -> None:
    link = FakeLink({"CONF:LIM?": lim})
    with pytest.raises(ProtocolError, match="CONF:LIM") as err:
        ProtocolBackend(link)
    assert field in str(err.value)
    assert link.closed


def test_derived_timeouts_are_clamped() -> None:
    lim = f"0.2,2.5,1e-06,{MAX_COMMAND_S!r},0.001,256"
    with ProtocolBackend(FakeLink({"CONF:LIM?": lim})) as backend:
        longest = [(0, 0, 2.0, MAX_COMMAND_S)] * 256
        assert backend.reply_timeout_s("PULS:LIST", longest) == 2.0 + MAX_COMMAND_S
        assert backend.reply_timeout_s("RST:DEV", 0, 0) == 2.0 + MAX_COMMAND_S
        assert backend.reply_timeout_s("MEAS:ALL?", 0.05) == 2.0


def test_replies_are_read_with_the_longest_length_the_command_allows() -> None:
    link = FakeLink({"MEAS:ALL?": ",".join(["1e-07"] * 16)})
    with ProtocolBackend(link) as backend:
        backend.read_conductances(0.05)
        backend.pulse(0, 0, 2.0, 1e-3)
    assert link.limits[5:7] == [16 * 25, 210]  # after the handshake


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_link_params_refuse_nonfinite_values(value: str) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        VisaBackend.from_params({"resource": "TCPIP::127.0.0.1::1::SOCKET", "timeout_s": float(value)})


def test_a_refused_client_learns_at_once_that_the_instrument_is_in_use() -> None:
    """Not "no reply within 2 s": the newcomer reads ERR 400 and says "in use", in well under
    the timeout, even with many others refused before it."""
    from crossbar_hil.emulator.testing import running_server

    with running_server() as server, VisaBackend.from_params({"resource": server.resource_string}):
        others = [socket.create_connection(server.address) for _ in range(20)]
        try:
            # ConnectionLost "in use", not an InstrumentTimeout after the (long) timeout.
            with pytest.raises(ConnectionLost, match="in use by another client"):
                VisaBackend.from_params({"resource": server.resource_string, "timeout_s": LONG_TIMEOUT_S})
        finally:
            for s in others:
                s.close()
