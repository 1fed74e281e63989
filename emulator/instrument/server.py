"""The emulator's instrument server: a crossbar served over the wire protocol (TCP or pty).

It stands in for a physical crossbar controller, so that the drivers are
exercised over a real transport. Each command line is parsed and range-checked
against the crossbar's shape, limits and capabilities *before* the crossbar is
touched (:func:`hil.protocol.codec.validate_command`): a refused command gets its
``ERR`` reply and changes nothing, and a ``PULS:LIST`` is applied all or nothing.
Valid commands go through the public :class:`~hil.seam.CrossbarBackend`
methods, so the values returned over the line are bit for bit those the crossbar
returns when used directly.

Like a physical controller, it serves **one client at a time** over TCP: a
connection that arrives while another is open is closed at once, with a log
line, so two drivers can never both pulse the same crossbar (PROTOCOL.md,
section 1).

Usage::

    with running_server(EmulatorConfig(seed=3)) as server:
        VisaBackend.from_params({"resource": server.resource_string})
        ...
        assert server.command_counts()["PULS:LIST"] == 12

:class:`FaultPlan` makes the link misbehave on purpose (delays, dropped
connection, a garbled reply, an instrument that stops answering) so that the
drivers' error paths can be tested. See ``hil/protocol/PROTOCOL.md``.
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
from typing import Any, Self

from emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from emulator.instrument.controller import CommandProcessor
from emulator.instrument.faults import FaultPlan, garble
from emulator.instrument.transports import PtyStream, SocketStream, Stream, Transport
from hil.protocol.codec import MAX_LINE_CHARS, TERMINATOR, CommandError, ErrorCode
from hil.seam import CrossbarBackend
from hil.training.history import EpochRecord
from hil.training.observers import TrainingObserver

log = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 5.0

HANDOVER_S = 0.5
"""How long (s) a new TCP connection waits for the current one to end before it is refused.

A client that closes and at once reconnects would otherwise race the server noticing the
close; a session in use does not end within this time, so the newcomer is then refused."""


def command_name(line: str) -> str:
    """The command name (header, upper case) of a received line, e.g. ``PULS:LIST``."""
    return line.strip().partition(" ")[0].upper()


class InstrumentServer:
    """Serves a crossbar over the wire protocol, on TCP or on a pseudo-terminal.

    Use :meth:`start` / :meth:`stop` or a ``with`` block (or :func:`running_server`).
    TCP serves **one connection at a time** (like a physical controller): a second
    connection while one is open is closed at once and logged (after waiting up to
    :data:`HANDOVER_S` for the first to end). A pty is one device; the server cannot
    tell who opened it (the serial driver locks it, see :mod:`drivers.serial_backend`).
    Attributes for tests: :attr:`commands` (every command line received, in order),
    :attr:`connections` (TCP connections served), :attr:`refused` (TCP connections
    closed because another was open); :meth:`command_counts` counts by command name.
    """

    def __init__(
        self,
        crossbar: CrossbarBackend,
        *,
        transport: Transport = "tcp",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        if transport not in ("tcp", "pty"):
            raise ValueError(f"transport must be 'tcp' or 'pty', not {transport!r}")
        self.crossbar = crossbar
        self.transport: Transport = transport
        self.faults = faults or FaultPlan()
        self.processor = CommandProcessor(crossbar)
        self.commands: list[str] = []
        """Every command line received (terminator removed), in order, over all connections."""
        self.connections = 0
        self.refused = 0
        self._host, self._port = host, port
        self._idle = threading.Event()
        self._idle.set()
        self._count = threading.Condition()
        self._dropped = False
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._listener: socket.socket | None = None
        self._bound: tuple[str, int] | None = None
        self._pty: PtyStream | None = None
        self._streams: set[Stream] = set()
        self._threads: list[threading.Thread] = []
        self._streams_lock = threading.Lock()
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
    def command_count(self) -> int:
        """How many command lines the server has received."""
        return len(self.commands)

    def command_names(self, start: int = 0, stop: int | None = None) -> list[str]:
        """Names of the commands ``start`` to ``stop`` (indices into :attr:`commands`)."""
        with self._count:
            lines = self.commands[start:stop]
        return [command_name(line) for line in lines]

    def command_counts(self, start: int = 0, stop: int | None = None) -> Counter[str]:
        """How many commands of each name the server received, in ``commands[start:stop]``."""
        return Counter(self.command_names(start, stop))

    def wait_for_commands(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block until at least ``count`` commands were received; False on timeout."""
        with self._count:
            return self._count.wait_for(lambda: len(self.commands) >= count, timeout_s)

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
        for thread in self._threads:
            thread.join(_JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("server thread %s did not stop", thread.name)
        if self._listener is not None:
            self._listener.close()
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
        thread = threading.Thread(target=target, name=f"instrument-server-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------- serving
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select([self._listener, self._wake_r], [], [])
                if self._wake_r in ready:
                    return
                conn, peer = self._listener.accept()
            except OSError:
                return
            if not self._idle.wait(HANDOVER_S) or self._stopping.is_set():
                self.refused += 1
                log.warning(
                    "refused connection from %s:%d: connection %d is using the instrument "
                    "(one client at a time)",
                    *peer[:2],
                    self.connections,
                )
                with suppress(OSError):
                    conn.close()
                continue
            self._idle.clear()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections += 1
            log.info("connection %d from %s:%d", self.connections, *peer[:2])
            stream = SocketStream(conn, self._wake_r)
            self._spawn(lambda s=stream: self._serve(s), f"conn-{self.connections}")

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
                self._idle.set()

    def _session(self, stream: Stream) -> None:
        buffer = bytearray()
        too_long = False
        while not self._stopping.is_set():
            data = stream.recv()
            if not data:
                return
            buffer += data
            while (end := buffer.find(b"\n")) >= 0:
                raw, too_long_line = bytes(buffer[:end]), too_long
                del buffer[: end + 1]
                too_long = False
                if not self._on_line(stream, raw, too_long_line):
                    return
            if len(buffer) > MAX_LINE_CHARS + 1:
                too_long = True
                del buffer[:-16]

    def _on_line(self, stream: Stream, raw: bytes, too_long: bool) -> bool:
        """Handle one received line; False when the connection must end."""
        line = raw.decode("latin-1").removesuffix("\r")
        if not line.strip() and not too_long:
            return True
        with self._count:
            self.commands.append(line if not too_long else f"<too long>...{line}")
            n = len(self.commands)
            self._count.notify_all()
        log.debug("<- [%d] %.200s", n, line)
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


class CommandsPerEpoch(TrainingObserver):
    """Counts, per epoch of a training run, the commands a server received (by name).

    Pass it to :func:`hil.training.trainer.train` as an observer of a run through a driver to
    ``server``; :meth:`per_epoch` then has one :class:`~collections.Counter` per
    :class:`~hil.training.history.EpochRecord`: the commands of that epoch, its update included.
    A new run starts a new count.
    """

    def __init__(self, server: InstrumentServer) -> None:
        self.server = server
        self.marks: list[int] = []
        """``server.command_count`` at the start of the run and after each epoch."""

    def on_start(self, *args: object) -> None:
        """Mark the start of a run."""
        self.marks = [self.server.command_count]

    def on_epoch(self, record: EpochRecord) -> None:
        """Mark the end of an epoch (its update sent)."""
        self.marks.append(self.server.command_count)

    def per_epoch(self) -> list[Counter[str]]:
        """Commands by name, one counter per epoch of the last run."""
        return [self.server.command_counts(a, b) for a, b in zip(self.marks, self.marks[1:], strict=False)]


@contextmanager
def running_server(
    config: EmulatorConfig | None = None,
    *,
    transport: Transport = "tcp",
    faults: FaultPlan | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    crossbar: CrossbarBackend | None = None,
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
        with InstrumentServer(backend, transport=transport, host=host, port=port, faults=faults) as server:
            yield server
    finally:
        if owned:
            backend.close()
