"""What a crossbar controller does with one command line: validate, execute, reply.

The controller semantics of the wire protocol (``hil/protocol/PROTOCOL.md``),
independent of any transport: the instrument server feeds it lines, a test can
feed it lines directly.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from crossbar_hil.protocol.codec import (
    COMMANDS,
    ERROR_CODES,
    ERROR_QUEUE_SIZE,
    PROTOCOL_VERSION,
    CommandError,
    CommandSpec,
    ErrorCode,
    ParsedCommand,
    encode_error_entry,
    encode_ok,
    encode_record,
    encode_text,
    encode_values,
    parse_command,
    validate_command,
)
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.seam.errors import HilError

log = logging.getLogger(__name__)

Handler = Callable[["CommandProcessor", tuple[Any, ...]], str]
"""What the instrument does for one command: (processor, parsed arguments) -> reply line."""

HANDLERS: dict[str, Handler] = {}
"""The instrument's handler of every declared command, keyed by its name in :data:`COMMANDS`."""


def handles(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of the declared command ``name``.

    KeyError at import time for a name that :data:`~crossbar_hil.protocol.codec.COMMANDS` does
    not declare, so no handler can exist for a command the protocol does not have."""
    spec = COMMANDS[name]

    def register(handler: Handler) -> Handler:
        if spec.name in HANDLERS:
            raise ValueError(f"two handlers for {spec.name}")
        HANDLERS[spec.name] = handler
        return handler

    return register


def missing_handlers(
    handlers: Mapping[str, Handler] = HANDLERS, commands: Mapping[str, CommandSpec] = COMMANDS
) -> list[str]:
    """Declared commands that have no handler in ``handlers`` (empty when complete)."""
    return [name for name in commands if name not in handlers]


class CommandProcessor:
    """What a controller does with one command line: validate, execute, reply.

    Keeps the instrument's error queue (``SYST:ERR?``). Thread-safe: one command
    at a time, whatever the number of connections. ``MEAS:G?``, ``MEAS:ROW?`` and
    ``MEAS:COL?`` read the whole array and reply with a part, so with read noise
    they draw from the emulator's read-noise stream exactly like ``MEAS:ALL?``.
    Every declared command has its handler (:data:`HANDLERS`); a processor refuses
    to start otherwise.
    """

    def __init__(self, backend: CrossbarBackend) -> None:
        if missing := missing_handlers():
            raise RuntimeError(f"the instrument has no handler for declared commands {missing}")
        self.backend = backend
        self._errors: deque[tuple[int, str]] = deque()
        self._lock = threading.Lock()

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
            return HANDLERS[command.name](self, command.args)
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

    def read(self, read_v: float) -> np.ndarray:
        """All conductances (S) read at ``read_v`` (V)."""
        return self.backend.read_conductances(read_v)


# ------------------------------------------------------------------ the handlers
@handles("*IDN?")
def _identity(p: CommandProcessor, _: tuple[Any, ...]) -> str:
    return encode_text(p.backend.info.identity)


@handles("SYST:VERS?")
def _version(p: CommandProcessor, _: tuple[Any, ...]) -> str:
    return encode_text(PROTOCOL_VERSION)


@handles("SYST:ERR?")
def _pop_error(p: CommandProcessor, _: tuple[Any, ...]) -> str:
    if not p._errors:
        return encode_error_entry(ErrorCode.NO_ERROR, ERROR_CODES[ErrorCode.NO_ERROR])
    return encode_error_entry(*p._errors.popleft())


@handles("*CLS")
def _clear_errors(p: CommandProcessor, _: tuple[Any, ...]) -> str:
    p._errors.clear()
    return encode_ok()


# The configuration records: each declared reply field is read by its name.
@handles("CONF:SHAPE?")
def _shape(p: CommandProcessor, _: tuple[Any, ...]) -> str:
    return encode_record("CONF:SHAPE?", p.backend.info)


@handles("CONF:LIM?")
def _limits(p: CommandProcessor, _: tuple[Any, ...]) -> str:
    return encode_record("CONF:LIM?", p.backend.info.limits)


@handles("CONF:CAP?")
def _capabilities(p: CommandProcessor, _: tuple[Any, ...]) -> str:
    return encode_record("CONF:CAP?", p.backend.info)


@handles("MEAS:G?")
def _meas_one(p: CommandProcessor, a: tuple[Any, ...]) -> str:
    return encode_values([p.read(a[-1])[a[0], a[1]]])


@handles("MEAS:ROW?")
def _meas_row(p: CommandProcessor, a: tuple[Any, ...]) -> str:
    return encode_values(p.read(a[-1])[a[0], :])


@handles("MEAS:COL?")
def _meas_col(p: CommandProcessor, a: tuple[Any, ...]) -> str:
    return encode_values(p.read(a[-1])[:, a[0]])


@handles("MEAS:ALL?")
def _meas_all(p: CommandProcessor, a: tuple[Any, ...]) -> str:
    return encode_values(p.read(a[-1]).ravel())


@handles("VMM?")
def _vmm(p: CommandProcessor, a: tuple[Any, ...]) -> str:
    return encode_values(p.backend.apply(np.array(a, dtype=float)))


@handles("PULS")
def _pulse(p: CommandProcessor, a: tuple[Any, ...]) -> str:
    p.backend.pulse(*a)
    return encode_ok()


@handles("PULS:LIST")
def _pulse_list(p: CommandProcessor, a: tuple[Any, ...]) -> str:
    p.backend.pulse_many(a)
    return encode_ok()


@handles("RST:DEV")
def _reset(p: CommandProcessor, a: tuple[Any, ...]) -> str:
    p.backend.reset(*a)
    return encode_ok()


@handles("ABOR")
def _abort(p: CommandProcessor, _: tuple[Any, ...]) -> str:
    p.backend.abort()
    return encode_ok()
