"""The emulator's instrument server: a crossbar served over the wire protocol (TCP or pty).

It stands in for a physical crossbar controller, so that the drivers are
exercised over a real transport. Each command line is parsed and range-checked
against the crossbar's shape, limits and capabilities *before* the crossbar is
touched (:func:`hil.protocol.codec.validate_command`): a refused command gets its
``ERR`` reply and changes nothing, and a ``PULS:LIST`` is applied all or nothing.
Valid commands go through the public :class:`~hil.backend.CrossbarBackend`
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
import tty
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Literal, Protocol, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from hil.backend import CrossbarBackend
from hil.errors import HilError
from hil.history import EpochRecord
from hil.observers import TrainingObserver
from hil.protocol.codec import (
    ERROR_CODES,
    ERROR_QUEUE_SIZE,
    MAX_LINE_CHARS,
    PROTOCOL_VERSION,
    TERMINATOR,
    CommandError,
    ErrorCode,
    ParsedCommand,
    encode_error_entry,
    encode_ok,
    encode_text,
    encode_values,
    parse_command,
    validate_command,
)

log = logging.getLogger(__name__)

Transport = Literal["tcp", "pty"]

_READ_CHUNK = 65536
_JOIN_TIMEOUT_S = 5.0

HANDOVER_S = 0.5
"""How long (s) a new TCP connection waits for the current one to end before it is refused.

A client that closes and at once reconnects would otherwise race the server noticing the
close; a session in use does not end within this time, so the newcomer is then refused."""


class FaultPlan(BaseModel):
    """Faults the server injects on purpose; all off by default.

    Commands are counted per server from 1, over all connections; every non-empty
    line received counts, including refused ones.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    reply_delay_s: float = Field(0.0, ge=0, le=60, description="Every reply is delayed (s).")
    drop_after: int | None = Field(
        None,
        ge=0,
        description="Answer N commands, then close the connection when command N+1 arrives "
        "(without executing it). Happens once; later connections are served normally. "
        "Over a pty the device is hung up for good.",
    )
    garble_at: int | None = Field(
        None,
        ge=1,
        description="Command N is executed but its reply line is corrupted (non-printable characters).",
    )
    mute_after: int | None = Field(
        None,
        ge=0,
        description="Answer N commands, then read but neither execute nor answer any "
        "further command; the connection stays open.",
    )


# ----------------------------------------------------------------- the controller logic
class CommandProcessor:
    """What a controller does with one command line: validate, execute, reply.

    Keeps the instrument's error queue (``SYST:ERR?``). Thread-safe: one command
    at a time, whatever the number of connections. ``MEAS:G?``, ``MEAS:ROW?`` and
    ``MEAS:COL?`` read the whole array and reply with a part, so with read noise
    they draw from the emulator's read-noise stream exactly like ``MEAS:ALL?``.
    """

    def __init__(self, backend: CrossbarBackend) -> None:
        self.backend = backend
        self._errors: deque[tuple[int, str]] = deque()
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[tuple[Any, ...]], str]] = {
            "*IDN?": lambda a: encode_text(self.backend.info.identity),
            "*CLS": self._clear_errors,
            "SYST:VERS?": lambda a: encode_text(PROTOCOL_VERSION),
            "SYST:ERR?": self._pop_error,
            "CONF:SHAPE?": lambda a: encode_values(self.backend.info.shape),
            "CONF:LIM?": self._limits,
            "CONF:CAP?": lambda a: encode_values(
                (self.backend.info.supports_reset, self.backend.info.supports_depression)
            ),
            "MEAS:G?": lambda a: encode_values([self._read(a[-1])[a[0], a[1]]]),
            "MEAS:ROW?": lambda a: encode_values(self._read(a[-1])[a[0], :]),
            "MEAS:COL?": lambda a: encode_values(self._read(a[-1])[:, a[0]]),
            "MEAS:ALL?": lambda a: encode_values(self._read(a[-1]).ravel()),
            "VMM?": lambda a: encode_values(self.backend.apply(np.array(a, dtype=float))),
            "PULS": lambda a: self._ok(self.backend.pulse(*a)),
            "PULS:LIST": lambda a: self._ok(self.backend.pulse_many(a)),
            "RST:DEV": lambda a: self._ok(self.backend.reset(*a)),
            "ABOR": lambda a: self._ok(self.backend.abort()),
        }

    def handle(self, line: str) -> str:
        """The reply line (without terminator) to one command line."""
        with self._lock:
            try:
                command = parse_command(line)
                validate_command(command, self.backend.info)
                return self._execute(command)
            except CommandError as exc:
                return self._refuse(exc)

    def refuse(self, error: CommandError) -> str:
        """Queue ``error`` and return its ``ERR`` reply (for lines the transport rejects)."""
        with self._lock:
            return self._refuse(error)

    @property
    def queued_errors(self) -> list[tuple[int, str]]:
        """A snapshot of the error queue, oldest first."""
        with self._lock:
            return list(self._errors)

    def _execute(self, command: ParsedCommand) -> str:
        try:
            return self._handlers[command.name](command.args)
        except HilError as exc:
            raise CommandError(ErrorCode.EXECUTION_FAULT, f"{command.name}: {exc}") from exc
        except Exception as exc:
            log.exception("%s failed while executing", command.name)
            raise CommandError(
                ErrorCode.EXECUTION_FAULT, f"{command.name}: {type(exc).__name__}: {exc}"
            ) from exc

    def _refuse(self, error: CommandError) -> str:
        reply = error.reply()
        entry = (error.code, reply.partition(",")[2])
        if len(self._errors) < ERROR_QUEUE_SIZE:
            self._errors.append(entry)
        elif self._errors[-1][0] != ErrorCode.QUEUE_OVERFLOW:
            self._errors[-1] = (ErrorCode.QUEUE_OVERFLOW, ERROR_CODES[ErrorCode.QUEUE_OVERFLOW])
        log.debug("refused: %s", reply)
        return reply

    def _read(self, v_read: float) -> np.ndarray:
        return self.backend.read_conductances(v_read)

    def _limits(self, _: tuple[Any, ...]) -> str:
        lim = self.backend.info.limits
        return encode_values(
            (
                lim.read_v_max,
                lim.pulse_v_max,
                lim.width_min_s,
                lim.width_max_s,
                lim.compliance_a,
                lim.max_batch,
            )
        )

    def _pop_error(self, _: tuple[Any, ...]) -> str:
        if not self._errors:
            return encode_error_entry(ErrorCode.NO_ERROR, ERROR_CODES[ErrorCode.NO_ERROR])
        return encode_error_entry(*self._errors.popleft())

    def _clear_errors(self, _: tuple[Any, ...]) -> str:
        self._errors.clear()
        return encode_ok()

    @staticmethod
    def _ok(_: object) -> str:
        return encode_ok()


def garble(reply: str) -> str:
    """A corrupted version of ``reply`` that no decoder can take for a valid line."""
    return "\x15" + reply[: max(1, len(reply) // 2)] + "\x7f"


# ----------------------------------------------------------------- transports
class _Stream(Protocol):
    def recv(self) -> bytes: ...  # b"" at end of stream or on stop
    def send(self, data: bytes) -> None: ...  # raises OSError when the peer is gone
    def close(self) -> None: ...


class _SocketStream:
    def __init__(self, conn: socket.socket, wake_fd: int) -> None:
        self.conn = conn
        self._wake_fd = wake_fd

    def recv(self) -> bytes:
        try:
            ready, _, _ = select.select([self.conn, self._wake_fd], [], [])
            return b"" if self._wake_fd in ready else self.conn.recv(_READ_CHUNK)
        except (OSError, ValueError):
            return b""

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def close(self) -> None:
        with suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)
        self.conn.close()


class _PtyStream:
    """The master side of a pseudo-terminal; the server keeps a slave fd open too, so that
    clients may open and close the device path any number of times."""

    def __init__(self, wake_fd: int) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._wake_fd = wake_fd
        self._closed = False

    def recv(self) -> bytes:
        while True:
            try:
                ready, _, _ = select.select([self.master, self._wake_fd], [], [])
                return b"" if self._wake_fd in ready else os.read(self.master, _READ_CHUNK)
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                return b""

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([], [self.master], [], 0.1)
            if self._closed or select.select([self._wake_fd], [], [], 0)[0]:
                raise OSError("pty server stopped")
            if writable:
                with suppress(BlockingIOError):
                    view = view[os.write(self.master, view) :]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.master)
            os.close(self.slave)


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
        self._pty: _PtyStream | None = None
        self._streams: set[_Stream] = set()
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
                self._pty = _PtyStream(self._wake_r)
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
            if isinstance(stream, _SocketStream):
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
            stream = _SocketStream(conn, self._wake_r)
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
            if isinstance(stream, _SocketStream):
                stream.close()
                self._idle.set()

    def _session(self, stream: _Stream) -> None:
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

    def _on_line(self, stream: _Stream, raw: bytes, too_long: bool) -> bool:
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
            if isinstance(stream, _PtyStream):
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

    Pass it to :func:`hil.trainer.train` as an observer of a run through a driver to
    ``server``; :meth:`per_epoch` then has one :class:`~collections.Counter` per
    :class:`~hil.history.EpochRecord`: the commands of that epoch, its update included.
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
