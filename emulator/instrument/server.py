"""The emulator's instrument server: a crossbar served over the wire protocol (TCP or pty).

It stands in for a physical crossbar controller, so that the drivers are
exercised over a real transport. Each command line is parsed and range-checked
against the crossbar's shape, limits and capabilities *before* the crossbar is
touched (:func:`crossbar_hil.protocol.codec.validate_command`): a refused command gets its
``ERR`` reply and changes nothing, and a ``PULS:LIST`` is applied all or nothing.
Valid commands go through the public :class:`~crossbar_hil.seam.CrossbarBackend`
methods, so the values returned over the line are bit for bit those the crossbar
returns when used directly.

Like a physical controller, it serves **one client at a time** over TCP: a
connection that arrives while another is open is answered at once with one line,
``ERR 400,Instrument in use: ...``, and closed, without holding up the accept loop
(PROTOCOL.md, section 1). The one session ends after :attr:`ServerOptions.idle_timeout_s`
without a complete command (never while a command executes), and TCP keepalive
notices a peer that vanished. Accept errors (e.g. no file descriptor left) are
logged and retried after a short back-off: the server never stops accepting.
Its memory stays flat: it counts every command but keeps only the most recent
lines (:class:`~crossbar_hil.emulator.instrument.records.CommandRecord`), and forgets finished
connection threads.

Usage::

    with running_server(EmulatorConfig(seed=3)) as server:
        VisaBackend.from_params({"resource": server.resource_string})
        ...
        assert server.command_counts()["PULS:LIST"] == 12

:class:`FaultPlan` makes the link misbehave on purpose (delays, dropped
connection, a garbled reply, an instrument that stops answering) so that the
drivers' error paths can be tested. Test helpers: :mod:`crossbar_hil.emulator.testing`.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from time import monotonic
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.instrument.controller import CommandProcessor
from crossbar_hil.emulator.instrument.faults import FaultPlan, garble
from crossbar_hil.emulator.instrument.records import CommandRecord, command_name, shortened
from crossbar_hil.emulator.instrument.transports import PtyStream, SocketStream, Stream, Transport
from crossbar_hil.protocol.codec import (
    MAX_LINE_CHARS,
    TERMINATOR,
    CommandError,
    ErrorCode,
    encode_error,
    is_empty_line,
)
from crossbar_hil.seam import CrossbarBackend

log = logging.getLogger(__name__)

__all__ = ["HANDOVER_S", "InstrumentServer", "ServerOptions", "command_name", "running_server"]

_JOIN_TIMEOUT_S = 5.0

HANDOVER_S = 0.5
"""How long (s) a new TCP connection may wait for the current session to end, when that
session's client has already closed its end (a client that closes and at once reconnects
must not race the server noticing the close). A newcomer while the session's client is
still connected is refused at once."""

LINGER_S = 1.0
"""How long (s) a refused connection is kept half-closed, its input read and dropped, so
that the refusal line reaches the client before the connection is closed."""

MAX_LINGERING = 64
"""Most refused connections kept lingering at once; beyond, they are closed at once."""

ACCEPT_BACKOFF_S = (0.01, 1.0)
"""First and longest pause (s) after a failed ``accept()``; doubles while failures go on."""

DEFAULT_IDLE_TIMEOUT_S = 300.0
"""Default idle timeout of a TCP session (s): see :class:`ServerOptions`."""


IN_USE_REPLY = encode_error(
    ErrorCode.IN_USE,
    "Instrument in use: another client is connected (one client at a time); try again when it has closed",
)
"""The line a refused connection receives (PROTOCOL.md, section 1)."""

_IN_USE = (IN_USE_REPLY + TERMINATOR).encode("ascii")


class ServerOptions(BaseModel):
    """How the server treats its TCP session (PROTOCOL.md, section 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    idle_timeout_s: float = Field(
        DEFAULT_IDLE_TIMEOUT_S,
        ge=0,
        le=7 * 86400,
        description="Close the TCP session when no complete command line arrived for this "
        "long (s), counted from the last reply, so never while a command executes; 0 = never.",
    )
    keepalive_s: float = Field(
        30.0,
        ge=1,
        le=7200,
        description="TCP keepalive: probe an idle session's peer after this long (s), then every "
        "keepalive_s / 3 s; 3 probes unanswered end the session.",
    )
    recent_lines: int = Field(10_000, ge=0, le=1_000_000, description="Command lines kept for tests.")


class InstrumentServer:
    """Serves a crossbar over the wire protocol, on TCP or on a pseudo-terminal.

    Use :meth:`start` / :meth:`stop` or a ``with`` block (or :func:`running_server`).
    TCP serves **one connection at a time** (like a physical controller): a second
    connection while one is open gets ``ERR 400`` and is closed at once, logged. A
    pty is one device; the server cannot tell who opened it (the serial driver locks
    it, see :mod:`crossbar_hil.drivers.serial_backend`); no idle timeout applies there.
    Attributes for tests: :attr:`commands` (the most recent command lines received),
    :attr:`connections` (TCP connections served), :attr:`refused` (TCP connections
    refused because another was open), :attr:`accept_errors`, :attr:`idle_closed`;
    :meth:`command_counts` counts by command name.
    """

    def __init__(
        self,
        crossbar: CrossbarBackend,
        *,
        transport: Transport = "tcp",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        options: ServerOptions | None = None,
    ) -> None:
        if transport not in ("tcp", "pty"):
            raise ValueError(f"transport must be 'tcp' or 'pty', not {transport!r}")
        self.crossbar = crossbar
        self.transport: Transport = transport
        self.faults = faults or FaultPlan()
        self.options = options or ServerOptions()
        self.processor = CommandProcessor(crossbar)
        self.record = CommandRecord(self.options.recent_lines)
        """Every command line counted, the most recent kept (cut to their start)."""
        self.connections = 0
        self.refused = 0
        self.accept_errors = 0
        self.idle_closed = 0
        self._host, self._port = host, port
        self._idle = threading.Event()
        self._idle.set()
        self._session_conn: socket.socket | None = None
        self._dropped = False
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._listener: socket.socket | None = None
        self._bound: tuple[str, int] | None = None
        self._pty: PtyStream | None = None
        self._streams: set[Stream] = set()
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        self._streams_lock = threading.Lock()
        self._lingering: dict[socket.socket, float] = {}
        self._answered_once: set[socket.socket] = set()
        self._started = False

    # ------------------------------------------------------------- addresses
    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of the TCP listener; the port is the one actually bound.

        Stays available after :meth:`stop` (for messages and logs)."""
        if self._bound is None:
            raise RuntimeError("not a started TCP server")
        return self._bound

    @property
    def device_path(self) -> str:
        """Path of the pty slave device, e.g. ``/dev/pts/7`` (pty transport)."""
        if self._pty is None:
            raise RuntimeError("not a started pty server")
        return self._pty.path

    @property
    def resource_string(self) -> str:
        """VISA resource: ``TCPIP::<host>::<port>::SOCKET`` or ``ASRL<path>::INSTR``."""
        if self.transport == "tcp":
            host, port = self.address
            return f"TCPIP::{host}::{port}::SOCKET"
        return f"ASRL{self.device_path}::INSTR"

    @property
    def serial_url(self) -> str:
        """pyserial port: ``socket://<host>:<port>`` or the pty device path."""
        if self.transport == "tcp":
            host, port = self.address
            return f"socket://{host}:{port}"
        return self.device_path

    @property
    def commands(self) -> list[str]:
        """The most recent command lines received (terminator removed, long lines cut),
        oldest first; at most :attr:`ServerOptions.recent_lines`."""
        return self.record.lines(self.record.first_kept)

    @property
    def command_count(self) -> int:
        """How many command lines the server has received in all."""
        return self.record.total

    def command_names(self, start: int = 0, stop: int | None = None) -> list[str]:
        """Names of the commands numbered ``start`` to ``stop`` (from 0, over the server's
        life; only recent ones are kept)."""
        return [command_name(line) for line in self.record.lines(start, stop)]

    def command_counts(self, start: int = 0, stop: int | None = None) -> Counter[str]:
        """How many commands of each name the server received: all of them by default
        (kept as counters), or among the recent lines numbered ``start`` to ``stop``."""
        if start == 0 and stop is None:
            return +self.record.counts()
        return Counter(self.command_names(start, stop))

    def wait_for_commands(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block until at least ``count`` commands were received; False on timeout."""
        return self.record.wait_for(count, timeout_s)

    # ------------------------------------------------------------- life cycle
    def start(self) -> Self:
        """Open the transport and start serving in background threads."""
        if self._started:
            raise RuntimeError("server already started")
        self._started = True
        self._wake_r, self._wake_w = os.pipe()
        try:
            if self.transport == "tcp":
                self._listener = socket.create_server((self._host, self._port))
                host, port = self._listener.getsockname()[:2]
                self._bound = (host, port)
                self._spawn(self._accept_loop, "accept")
            else:
                self._pty = PtyStream(self._wake_r)
                self._spawn(lambda: self._serve(self._pty), "pty")
        except BaseException:
            self.stop()
            raise
        where = self.resource_string
        log.info("serving %s over %s at %s", self.crossbar.info.identity, self.transport, where)
        return self

    def stop(self) -> None:
        """Stop serving: wake and join every thread, close every socket and fd. Idempotent."""
        if self._stopping.is_set() or not self._started:
            return
        self._stopping.set()
        with suppress(OSError):
            os.write(self._wake_w, b"x")
        with self._streams_lock:
            streams = list(self._streams)
        for stream in streams:
            if isinstance(stream, SocketStream):
                with suppress(OSError):
                    stream.conn.shutdown(socket.SHUT_RDWR)
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("server thread %s did not stop", thread.name)
        if self._listener is not None:
            self._listener.close()
        for sock in list(self._lingering):
            self._drop_lingering(sock)
        if self._pty is not None:
            self._pty.close()
        for stream in streams:
            with suppress(OSError):
                stream.close()
        for fd in (self._wake_r, self._wake_w):
            with suppress(OSError):
                os.close(fd)
        log.info("stopped the %s server after %d commands", self.transport, self.command_count)

    def __enter__(self) -> Self:
        return self if self._started else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        """Run ``target`` in a thread that is forgotten once it has finished."""

        def run() -> None:
            try:
                target()
            finally:
                with self._threads_lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"instrument-server-{name}", daemon=True)
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    @property
    def live_threads(self) -> int:
        """Server threads still running (the accept loop and the session, at most)."""
        with self._threads_lock:
            return len(self._threads)

    # ------------------------------------------------------------- serving
    def _accept_loop(self) -> None:
        """Accept connections until stopped; refusals never wait; accept errors are retried."""
        assert self._listener is not None
        backoff_s = 0.0
        while not self._stopping.is_set():
            now = monotonic()
            for sock in [s for s, end in self._lingering.items() if end <= now]:
                self._drop_lingering(sock)
            wait_s = min(self._lingering.values(), default=now + 1.0) - now
            watched: list[socket.socket | int] = [self._listener, self._wake_r, *self._lingering]
            try:
                ready, _, _ = select.select(watched, [], [], max(0.0, wait_s))
            except (OSError, ValueError) as exc:
                if self._stopping.wait(ACCEPT_BACKOFF_S[0]):
                    return
                log.warning("waiting for connections failed: %s", exc)
                continue
            if self._wake_r in ready:
                return
            for ready_one in ready:
                if isinstance(ready_one, socket.socket) and ready_one in self._lingering:
                    self._drain_lingering(ready_one)
            if self._listener not in ready:
                continue
            try:
                conn, peer = self._listener.accept()
            except OSError as exc:
                if self._stopping.is_set():
                    return
                self.accept_errors += 1
                backoff_s = min(max(2 * backoff_s, ACCEPT_BACKOFF_S[0]), ACCEPT_BACKOFF_S[1])
                log.warning("accept failed (%s); retrying in %.2f s", exc, backoff_s)
                if self._stopping.wait(backoff_s):
                    return
                continue
            backoff_s = 0.0
            self._admit(conn, peer)

    def _admit(self, conn: socket.socket, peer: Any) -> None:
        """Serve ``conn`` if the instrument is free (or about to be); refuse it otherwise."""
        free = self._idle.is_set() or (self._session_closing() and self._idle.wait(HANDOVER_S))
        if not free or self._stopping.is_set():
            self._refuse(conn, peer)
            return
        self._idle.clear()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._keepalive(conn)
        self._session_conn = conn
        self.connections += 1
        log.info("connection %d from %s:%d", self.connections, *peer[:2])
        stream = SocketStream(conn, self._wake_r)
        self._spawn(lambda: self._serve(stream), f"conn-{self.connections}")

    def _session_closing(self) -> bool:
        """True when the client of the current session has closed its end."""
        conn = self._session_conn
        if conn is None:
            return True
        try:
            return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _refuse(self, conn: socket.socket, peer: Any) -> None:
        """Answer ``ERR 400`` and close: at once, without waiting for anything."""
        self.refused += 1
        log.warning(
            "refused connection from %s:%d: connection %d is using the instrument (one client at a time)",
            *peer[:2],
            self.connections,
        )
        conn.setblocking(False)
        with suppress(OSError):
            conn.send(_IN_USE)
        if len(self._lingering) >= MAX_LINGERING:
            conn.close()
            return
        self._lingering[conn] = monotonic() + LINGER_S

    def _drain_lingering(self, sock: socket.socket) -> None:
        """Read and drop what a refused client sent: its first command line is answered
        with the refusal again (a client may discard what came before it asked), then the
        connection is half-closed; it is closed when the client closes, or at its deadline."""
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop_lingering(sock)
        elif b"\n" in data and sock in self._answered_once:
            return
        elif b"\n" in data:
            self._answered_once.add(sock)
            with suppress(OSError):
                sock.send(_IN_USE)
                sock.shutdown(socket.SHUT_WR)

    def _drop_lingering(self, sock: socket.socket) -> None:
        self._lingering.pop(sock, None)
        self._answered_once.discard(sock)
        with suppress(OSError):
            sock.close()

    def _keepalive(self, conn: socket.socket) -> None:
        """TCP keepalive on the session: a vanished peer ends it (Linux options where present)."""
        idle = max(1, round(self.options.keepalive_s))
        with suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for name, value in (
                ("TCP_KEEPIDLE", idle),
                ("TCP_KEEPINTVL", max(1, idle // 3)),
                ("TCP_KEEPCNT", 3),
            ):
                if hasattr(socket, name):
                    conn.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)

    def _serve(self, stream: Any) -> None:
        with self._streams_lock:
            self._streams.add(stream)
        try:
            self._session(stream)
        except OSError as exc:
            if not self._stopping.is_set():
                log.info("connection ended: %s", exc)
        finally:
            with self._streams_lock:
                self._streams.discard(stream)
            if isinstance(stream, SocketStream):
                stream.close()
                self._session_conn = None
                self._idle.set()

    def _session(self, stream: Stream) -> None:
        """Read lines and answer them until the end of the stream, a stop or the idle timeout.

        Lines are split at LF only; the terminator (LF, and one CR before it) is removed
        in one place, :func:`crossbar_hil.protocol.codec.strip_terminator`, when the line is parsed.
        """
        buffer = bytearray()
        too_long = False
        idle_s = self.options.idle_timeout_s if isinstance(stream, SocketStream) else 0.0
        deadline = monotonic() + idle_s if idle_s else None
        while not self._stopping.is_set():
            wait_s = None if deadline is None else deadline - monotonic()
            if wait_s is not None and wait_s <= 0:
                self.idle_closed += 1
                log.warning("closing the session: no complete command for %g s (idle timeout)", idle_s)
                return
            data = stream.recv(wait_s)
            if data is None:
                continue
            if not data:
                return
            buffer += data
            while (end := buffer.find(b"\n")) >= 0:
                raw, too_long_line = bytes(buffer[:end]), too_long
                del buffer[: end + 1]
                too_long = False
                if not self._on_line(stream, raw.decode("latin-1"), too_long_line):
                    return
                if deadline is not None:
                    deadline = monotonic() + idle_s
            if len(buffer) > MAX_LINE_CHARS + 1:
                too_long = True
                del buffer[:-16]

    def _on_line(self, stream: Stream, line: str, too_long: bool) -> bool:
        """Handle one received line (LF removed); False when the connection must end."""
        if is_empty_line(line) and not too_long:
            return True
        n = self.record.add(line if not too_long else f"<too long>...{line}")
        log.debug("<- [%d] %s", n, shortened(line))
        faults = self.faults
        if faults.drop_after is not None and n > faults.drop_after and not self._dropped:
            self._dropped = True
            log.warning("fault: dropping the connection at command %d", n)
            if isinstance(stream, PtyStream):
                stream.close()
            return False
        if faults.mute_after is not None and n > faults.mute_after:
            log.warning("fault: not answering command %d", n)
            return True
        if too_long:
            error = CommandError(ErrorCode.LINE_TOO_LONG, f"line longer than {MAX_LINE_CHARS} characters")
            reply = self.processor.refuse(error)
        else:
            reply = self.processor.handle(line)
        if faults.garble_at == n:
            log.warning("fault: garbling the reply to command %d", n)
            reply = garble(reply)
        if faults.reply_delay_s and self._stopping.wait(faults.reply_delay_s):
            return False
        log.debug("-> [%d] %.200s", n, reply)
        stream.send((reply + TERMINATOR).encode("ascii"))
        return True


@contextmanager
def running_server(
    config: EmulatorConfig | None = None,
    *,
    transport: Transport = "tcp",
    faults: FaultPlan | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    crossbar: CrossbarBackend | None = None,
    options: ServerOptions | None = None,
) -> Iterator[InstrumentServer]:
    """A started :class:`InstrumentServer` for the ``with`` block; always stopped after.

    Serves ``crossbar`` if given, else a new :class:`EmulatedCrossbar` built from
    ``config`` (closed on exit). ``port=0`` picks a free port (see ``.address``).
    """
    if crossbar is not None and config is not None:
        raise ValueError("give either config or crossbar, not both")
    owned = crossbar is None
    backend = crossbar if crossbar is not None else EmulatedCrossbar(config)
    try:
        with InstrumentServer(
            backend, transport=transport, host=host, port=port, faults=faults, options=options
        ) as server:
            yield server
    finally:
        if owned:
            backend.close()
