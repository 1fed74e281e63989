"""What a crossbar controller does with one command line: validate, execute, reply.

The controller semantics of the wire protocol (``hil/protocol/PROTOCOL.md``),
independent of any transport: the instrument server feeds it lines, a test can
feed it lines directly.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from hil.protocol.codec import (
    ERROR_CODES,
    ERROR_QUEUE_SIZE,
    PROTOCOL_VERSION,
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
from hil.seam import CrossbarBackend
from hil.seam.errors import HilError

log = logging.getLogger(__name__)


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
