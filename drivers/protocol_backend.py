"""`ProtocolBackend`: a :class:`CrossbarBackend` that speaks the crossbar wire protocol.

The protocol itself (commands, arguments, units, reply kinds) lives in
:mod:`crossbar_hil.protocol.codec` and ``hil/protocol/PROTOCOL.md``; this module only
decides *which* command each backend operation sends and what happens when the
link fails. Transports plug in as a :class:`Link` (one line out, one line in):
:mod:`crossbar_hil.drivers.visa_backend` (PyVISA) and :mod:`crossbar_hil.drivers.serial_backend` (pyserial)
differ only in theirs.

One backend operation is one command and one reply line:

=====================  ==========================================
operation              command
=====================  ==========================================
``read_conductances``  ``MEAS:ALL? v`` (row-major, S)
``apply``              ``VMM? v0,..`` (column currents, A)
``pulse_many``         ``PULS:LIST`` (the batch, at most ``max_batch``)
``reset``              ``RST:DEV row,col``
``abort``              ``ABOR``
=====================  ==========================================

At connect the backend asks ``*IDN?``, ``SYST:VERS?``, ``CONF:SHAPE?``,
``CONF:LIM?`` and ``CONF:CAP?`` and builds its :class:`BackendInfo` from the
answers, so limits are the instrument's own, narrowed by the optional user
``limits`` (:class:`~crossbar_hil.seam.UserLimits`: the stricter of each value).

**Reply timeouts.** A controller replies only after a command has completed
(``PROTOCOL.md`` section 5), so the wait for one reply is the base ``timeout_s``
plus the command's own duration, by the rule its declaration gives
(:func:`crossbar_hil.protocol.codec.command_duration_s`): for ``PULS:LIST`` the sum of its
pulse widths plus ``switch_time_s`` per pulse (the controller's switching and
settling, default :data:`SWITCH_TIME_S`); for ``RST:DEV`` the device's reset
pulse, which protocol 1.1 cannot report, so ``reset_time_s`` (default: the
instrument's ``width_max_s``, the longest pulse it can apply at all) plus
``switch_time_s``; clamped to :data:`~crossbar_hil.drivers.link.MAX_COMMAND_S`. The wait is a
total deadline for the whole reply line, and a reply longer than the command can
have (:func:`crossbar_hil.protocol.codec.max_reply_chars`, from the declaration and the
shape) is refused as a :class:`ProtocolError` without reading on. A ``CONF:LIM?``
with a value that is not finite, or a ``width_max_s`` beyond ``MAX_COMMAND_S``, is
refused at connect.

**One client.** A controller serves one connection at a time and refuses any
other at once with ``ERR 400`` (``PROTOCOL.md`` section 1): that reply, or a
connection closed during the handshake, raises :class:`ConnectionLost` saying
the instrument is in use.

**Failures.** A reply that does not come within the timeout raises
:class:`InstrumentTimeout`, a closed or dropped link :class:`ConnectionLost`, a
reply that cannot be decoded or does not fit the command (out of sync)
:class:`ProtocolError`. An ``ERR`` reply raises :class:`DeviceFault` and leaves
the link usable: the instrument answered, in sync.

After a communication error the backend is *faulted*:

1. if the link may still carry bytes (not :class:`ConnectionLost`), it sends
   ``ABOR`` at once and waits for its ``OK`` behind any reply still owed;
2. every later operation raises :class:`LinkFaulted` **without writing
   anything**: no pulse is sent on a link whose state is uncertain;
3. :meth:`ProtocolBackend.abort` still tries ``ABOR`` (and raises if it cannot
   be confirmed); :meth:`~CrossbarBackend.close` releases the link;
4. :meth:`ProtocolBackend.resync` clears the fault on a live link: it discards
   stale replies until the instrument's identity comes back to ``*IDN?``.
   Otherwise open a new backend.

**Traffic log.** Every command and reply (and every link error) is logged at
DEBUG level on the ``crossbar_hil.traffic`` logger, with the round-trip time of
each reply, and appended to ``traffic_log`` (a file, with ISO timestamps) when
one is given. It costs nothing while both are off.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from time import perf_counter
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from crossbar_hil.drivers.link import MAX_COMMAND_S, SWITCH_TIME_S, Link, LinkFaulted, LinkParams
from crossbar_hil.drivers.traffic import TrafficLog
from crossbar_hil.protocol.codec import (
    COMMANDS,
    PROTOCOL_VERSION,
    ErrorCode,
    as_record,
    command_duration_s,
    decode_reply,
    encode_command,
    max_reply_chars,
)
from crossbar_hil.seam import BackendInfo, CrossbarBackend, Limits, Pulse, UserLimits
from crossbar_hil.seam.errors import (
    BackendClosed,
    CommunicationError,
    ConnectionLost,
    DeviceFault,
    HilError,
    ProtocolError,
    describe_validation_error,
)

log = logging.getLogger(__name__)


class ProtocolBackend(CrossbarBackend):
    """A crossbar reached over a :class:`Link` with the crossbar wire protocol.

    Subclasses only say how to open their link (:meth:`open_link`) and which
    parameters it takes (:attr:`params_model`); :meth:`from_params` is the
    registry factory.
    """

    params_model: ClassVar[type[LinkParams]] = LinkParams
    backend_name: ClassVar[str] = "protocol"

    def __init__(
        self,
        link: Link,
        *,
        traffic_log: Path | None = None,
        limits: UserLimits | None = None,
        switch_time_s: float = SWITCH_TIME_S,
        reset_time_s: float | None = None,
    ) -> None:
        super().__init__()
        self._link = link
        self._traffic = TrafficLog(traffic_log, link.description)
        self._owed = 0
        self._fault: CommunicationError | None = None
        self._link_lost = False
        self._shape: tuple[int, int] | None = None
        self.in_flight: str | None = None
        """The command awaiting its reply, with its reply timeout (for a user waiting on a stop)."""
        self.switch_time_s = switch_time_s
        """Allowance per pulse (s) added to the reply timeout of pulse commands."""
        self.reset_time_s = 0.0 if reset_time_s is None else reset_time_s
        try:
            self.instrument_info = self._handshake()
            """What the instrument reported, before the user limits."""
            self._info = self.instrument_info.model_copy(
                update={"limits": self.instrument_info.limits.stricter(limits)}
            )
        except ConnectionLost as e:
            self._release()
            raise ConnectionLost(
                f"{link.description}: the instrument closed the connection during the handshake: it "
                "may be in use by another client (a controller serves one at a time); close the other "
                f"client and try again ({e})"
            ) from e
        except DeviceFault as e:
            self._release()
            if e.code != ErrorCode.IN_USE:
                raise
            raise ConnectionLost(
                f"{link.description}: the instrument is in use by another client "
                f"(a controller serves one at a time): {e}"
            ) from e
        except BaseException:
            self._release()
            raise
        self._shape = self._info.shape
        self.reset_time_s = (
            reset_time_s if reset_time_s is not None else self.instrument_info.limits.width_max_s
        )
        """Duration (s) allowed for the device's reset pulse in the RST:DEV reply timeout."""

    # ------------------------------------------------------------ construction
    @classmethod
    def open_link(cls, params: Any) -> Link:
        """Open the transport described by ``params`` (an instance of :attr:`params_model`)."""
        raise NotImplementedError(f"{cls.__name__} does not say how to open its link")

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None) -> Self:
        """Validate ``params`` with :attr:`params_model`, open the link, connect."""
        try:
            p = cls.params_model.model_validate(dict(params or {}))
        except ValidationError as e:
            raise ValueError(f"backend {cls.backend_name!r}: {describe_validation_error(e)}") from None
        link = cls.open_link(p)
        try:
            return cls(
                link,
                traffic_log=p.traffic_log,
                limits=p.limits,
                switch_time_s=p.switch_time_s,
                reset_time_s=p.reset_time_s,
            )
        except BaseException:
            link.close()
            raise

    def _handshake(self) -> BackendInfo:
        identity = self._query_text("*IDN?")
        version = self._query_text("SYST:VERS?")
        if version.split(".")[0] != PROTOCOL_VERSION.split(".")[0]:
            raise ProtocolError(
                f"{identity!r} speaks protocol {version}; this driver speaks {PROTOCOL_VERSION}"
            )
        shape = self._query_record("CONF:SHAPE?")
        rows, cols = (_count(shape[k], "CONF:SHAPE?") for k in ("rows", "cols"))
        lim = self._query_record("CONF:LIM?")
        caps = self._query_record("CONF:CAP?")
        _check_limits(identity, lim)
        try:
            limits = Limits.model_validate({**lim, "max_batch": _count(lim["max_batch"], "CONF:LIM?")})
            return BackendInfo(
                identity=identity,
                rows=rows,
                cols=cols,
                limits=limits,
                **{name: bool(value) for name, value in caps.items()},
            )
        except ValidationError as e:
            raise ProtocolError(f"{identity!r} reported an impossible configuration: {e}") from None

    # ------------------------------------------------------------ state
    @property
    def info(self) -> BackendInfo:
        return self._info

    @property
    def link(self) -> Link:
        """The transport (for diagnostics)."""
        return self._link

    @property
    def fault(self) -> CommunicationError | None:
        """The communication error that faulted the backend, or None while healthy."""
        return self._fault

    def resync(self) -> None:
        """Clear a fault on a live link: discard stale replies until ``*IDN?`` answers.

        Raises :class:`ConnectionLost` if the link is gone and
        :class:`CommunicationError` if the identity does not come back; the
        backend then stays faulted.
        """
        with self._lock:
            if self._closed:
                raise BackendClosed(f"{self._info.identity}: backend is closed")
            if self._fault is None:
                return
            if self._link_lost:
                raise ConnectionLost(f"{self._link.description}: link lost; open a new backend")
            self._send(encode_command("*IDN?"))
            for _ in range(self._owed + 2):
                line = self._receive()
                if line == self._info.identity:
                    break
            else:
                raise ProtocolError(f"{self._link.description}: identity did not come back")
            self._owed = 0
            self._fault = None
            log.info("%s: resynchronised", self._link.description)

    def reply_timeout_s(self, name: str, *args: Any) -> float:
        """How long to wait (s) for the reply to command ``name`` with ``args``.

        The link's base timeout plus what the command takes on the instrument, by
        its declared duration (:func:`~crossbar_hil.protocol.codec.command_duration_s`): the
        pulse widths and :attr:`switch_time_s` per pulse for ``PULS`` and ``PULS:LIST``,
        :attr:`reset_time_s` and :attr:`switch_time_s` for ``RST:DEV``. The duration is
        clamped to :data:`~crossbar_hil.drivers.link.MAX_COMMAND_S`.
        """
        duration_s = command_duration_s(
            name, *args, switch_time_s=self.switch_time_s, reset_time_s=self.reset_time_s
        )
        return self._link.timeout_s + min(duration_s, MAX_COMMAND_S)

    def max_reply_chars(self, name: str) -> int:
        """The longest reply to ``name`` this backend reads (characters, terminator excluded);
        from the declared reply and the crossbar's shape."""
        return max_reply_chars(name, self._shape)

    # ------------------------------------------------------------ CrossbarBackend
    def _read_conductances(self, read_v: float) -> NDArray[np.float64]:
        return np.array(self._query_values("MEAS:ALL?", float(read_v)))

    def _apply(self, voltages: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.array(self._query_values("VMM?", list(voltages)))

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        # The base class caps a batch at max_batch, so one batch is one line.
        self._query("PULS:LIST", list(pulses))

    def _reset(self, row: int, col: int) -> None:
        self._query("RST:DEV", row, col)

    def _abort(self) -> None:
        if self._fault is None:
            self._query("ABOR")
            return
        if self._link_lost:
            raise ConnectionLost(f"{self._link.description}: link lost; cannot send ABOR")
        error = self._abort_after_fault()
        if error is not None:
            raise error

    def _close(self) -> None:
        self._release()

    def _release(self) -> None:
        try:
            self._link.close()
        finally:
            self._traffic.close()

    # ------------------------------------------------------------ one exchange
    def _query(self, name: str, *args: Any) -> Any:
        """Send command ``name`` and decode its one reply; fault the backend on link errors.

        Once the shape is known, replies of shape-dependent length are checked by the codec.
        """
        with self._lock:
            if self._fault is not None:
                raise LinkFaulted(
                    f"{self._link.description}: refused {name}, nothing sent: the link faulted "
                    f"earlier ({type(self._fault).__name__}: {self._fault}); "
                    "call resync() or open a new backend"
                )
            timeout_s = self.reply_timeout_s(name, *args)
            self.in_flight = f"{name} (reply due within {timeout_s:.3g} s)"
            sent = False
            try:
                self._send(encode_command(name, *args))
                sent = True
                line = self._receive(timeout_s, self.max_reply_chars(name))
                reply = decode_reply(name, line, shape=self._shape)
            except DeviceFault:
                raise  # The instrument answered, in sync: the link is fine.
            except CommunicationError as e:
                self._enter_fault(e)
                raise
            except OSError as e:  # A transport that did not map its own error.
                lost = ConnectionLost(f"{self._link.description}: {e}")
                self._enter_fault(lost)
                raise lost from e
            except BaseException:  # Interrupted (a second Ctrl-C) mid-exchange: state unknown.
                if sent:
                    self._fault = CommunicationError(
                        f"{self._link.description}: interrupted while waiting for the reply to {name}"
                    )
                    log.error("%s", self._fault)
                raise
            finally:
                self.in_flight = None
            return reply

    def _query_values(self, name: str, *args: Any) -> list[float]:
        reply = self._query(name, *args)
        if not isinstance(reply, list):  # Only if COMMANDS gave ``name`` another reply kind.
            raise ProtocolError(f"{name}: expected values, got {reply!r}")
        return reply

    def _query_record(self, name: str) -> dict[str, int | float]:
        """A record reply as {declared field name: value}."""
        return as_record(name, self._query_values(name))

    def _query_text(self, name: str) -> str:
        reply = self._query(name)
        if not isinstance(reply, str):
            raise ProtocolError(f"{name}: expected text, got {reply!r}")
        return reply

    def _send(self, line: str) -> None:
        self._traffic.record(">", line)
        self._link.write_line(line)
        self._owed += 1

    def _receive(self, timeout_s: float | None = None, max_chars: int | None = None) -> str:
        """One reply line within ``timeout_s`` (s; default: the link's base timeout),
        at most ``max_chars`` characters (default: any reply of the protocol)."""
        start = perf_counter()
        try:
            line = self._link.read_line(timeout_s, max_chars)
        except CommunicationError as e:
            self._traffic.record("!", f"{type(e).__name__}: {e}", perf_counter() - start)
            raise
        self._owed -= 1
        self._traffic.record("<", line, perf_counter() - start)
        return line

    # ------------------------------------------------------------ faults
    def _enter_fault(self, error: CommunicationError) -> None:
        self._fault = error
        self._link_lost = isinstance(error, ConnectionLost)
        log.error("%s: %s: %s", self._link.description, type(error).__name__, error)
        if not self._link_lost:
            abort_error = self._abort_after_fault()
            if abort_error is not None:
                log.error("%s: ABOR after the fault not confirmed: %s", self._link.description, abort_error)

    def _abort_after_fault(self) -> HilError | None:
        """Send ABOR on a faulted link and read replies until its own; the error if unconfirmed."""
        try:
            self._send(encode_command("ABOR"))
            line = ""
            while self._owed > 0:
                line = self._receive()
            decode_reply("ABOR", line)
        except HilError as e:
            if isinstance(e, ConnectionLost):
                self._link_lost = True
            return e
        except OSError as e:
            self._link_lost = True
            return ConnectionLost(f"{self._link.description}: {e}")
        log.warning("%s: outputs at 0 V after the fault (ABOR confirmed)", self._link.description)
        return None


def _check_limits(identity: str, lim: Mapping[str, float]) -> None:
    """Refuse a ``CONF:LIM?`` with a value that is not finite, or a pulse longer than
    :data:`~crossbar_hil.drivers.link.MAX_COMMAND_S` (reply timeouts are derived from it)."""
    spec = COMMANDS["CONF:LIM?"].reply
    for field in spec.fields:
        value = lim[field.name]
        unit = f" {field.unit}" if field.unit else ""
        if not math.isfinite(value):
            raise ProtocolError(
                f"{identity!r} reported {field.name}={value!r}{unit} in CONF:LIM?: "
                "not a finite number; refusing the instrument"
            )
    if lim["width_max_s"] > MAX_COMMAND_S:
        raise ProtocolError(
            f"{identity!r} reported width_max_s={lim['width_max_s']!r} s in CONF:LIM?, "
            f"beyond the {MAX_COMMAND_S:g} s this driver waits for one command; refusing the instrument"
        )


def _count(value: float, command: str) -> int:
    """A reply value that must be a whole number >= 1 (a shape or a batch size)."""
    if not (math.isfinite(value) and value == int(value) and value >= 1):
        raise ProtocolError(f"{command}: expected a whole number >= 1, got {value!r}")
    return int(value)
