"""Test helpers for backend authors: fake links that stand in for an instrument.

A lab that writes its own :class:`~crossbar_hil.drivers.protocol_backend.ProtocolBackend` (or a
new :class:`~crossbar_hil.drivers.link.Link`) tests it without hardware:

* :func:`expected_protocol` / :class:`TranscriptLink`: the exact conversation, in
  order (in the spirit of PyMeasure's ``expected_protocol``). Every line the code
  under test writes must be the next expected command; the paired reply is what
  it reads; leaving the ``with`` block with commands still expected fails::

      with expected_protocol([("MEAS:ALL? 0.05", "1e-07,...")]) as backend:
          backend.read_conductances(0.05)

* :class:`FakeLink`: an instrument answering from a table (command name -> reply),
  for tests about what a backend does rather than in which order.

Both answer the connection handshake (``*IDN?``, ``SYST:VERS?``, ``CONF:SHAPE?``,
``CONF:LIM?``, ``CONF:CAP?``) from a :class:`~crossbar_hil.seam.BackendInfo`, written with the
protocol's own declaration (:func:`handshake_replies`). A reply of ``None`` means
the instrument stays silent: the read raises :class:`InstrumentTimeout` at once.
To run the emulated instrument itself over a real transport, see :mod:`crossbar_hil.emulator.testing`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from crossbar_hil.drivers.protocol_backend import ProtocolBackend
from crossbar_hil.protocol.codec import PROTOCOL_VERSION, encode_record, encode_text
from crossbar_hil.seam import BackendInfo, Limits
from crossbar_hil.seam.errors import ConnectionLost, HilError, InstrumentTimeout

EXAMPLE_INFO = BackendInfo(
    identity="ACME,XB44,0001,fw1",
    rows=4,
    cols=4,
    limits=Limits(),
    supports_reset=True,
    supports_depression=False,
)
"""A 4 x 4 instrument with the default limits and a reset pulse."""

HANDSHAKE_COMMANDS: tuple[str, ...] = ("*IDN?", "SYST:VERS?", "CONF:SHAPE?", "CONF:LIM?", "CONF:CAP?")
"""What :class:`ProtocolBackend` asks at connect, in this order."""

Reply = str | None | Callable[[str], "str | None"]
"""A scripted reply: a line, None (silence), or a function of the command line."""


def handshake_replies(info: BackendInfo = EXAMPLE_INFO) -> dict[str, str]:
    """The replies of an instrument described by ``info`` to the handshake commands."""
    return {
        "*IDN?": encode_text(info.identity),
        "SYST:VERS?": PROTOCOL_VERSION,
        "CONF:SHAPE?": encode_record("CONF:SHAPE?", info),
        "CONF:LIM?": encode_record("CONF:LIM?", info.limits),
        "CONF:CAP?": encode_record("CONF:CAP?", info),
    }


def handshake(info: BackendInfo = EXAMPLE_INFO) -> list[tuple[str, str]]:
    """The handshake as a transcript: (command, reply) pairs in the order they are sent."""
    replies = handshake_replies(info)
    return [(name, replies[name]) for name in HANDSHAKE_COMMANDS]


class ScriptedLink:
    """A :class:`~crossbar_hil.drivers.link.Link` whose replies are scripted; the base of the fakes.

    ``sent`` lists every line written, ``waits`` the timeout (s) and ``limits`` the
    ``max_chars`` of every read. Replies are queued, so a late reply (appended to
    ``queue`` by a test) is read by the next read. :meth:`drop` makes the link behave
    as a closed connection.
    """

    description = "fake"

    def __init__(self, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self.sent: list[str] = []
        self.waits: list[float] = []
        self.limits: list[int | None] = []
        self.queue: deque[str] = deque()
        self.closed = False
        self.dropped = False

    @property
    def owed(self) -> int:
        """Replies queued and not read yet."""
        return len(self.queue)

    def reply_to(self, line: str) -> Reply:
        """The scripted reply to the command ``line``."""
        raise NotImplementedError

    def write_line(self, line: str) -> None:
        if self.dropped:
            raise ConnectionLost(f"{self.description}: connection dropped")
        self.sent.append(line)
        reply = self.reply_to(line)
        if callable(reply):
            reply = reply(line)
        if reply is not None:
            self.queue.append(reply)

    def read_line(self, timeout_s: float | None = None, max_chars: int | None = None) -> str:
        self.waits.append(self.timeout_s if timeout_s is None else timeout_s)
        self.limits.append(max_chars)
        if self.dropped:
            raise ConnectionLost(f"{self.description}: connection dropped")
        if not self.queue:
            raise InstrumentTimeout(f"{self.description}: no reply")
        return self.queue.popleft()

    def close(self) -> None:
        self.closed = True

    def drop(self) -> None:
        """From now on, behave as a connection closed by the instrument."""
        self.dropped = True


class FakeLink(ScriptedLink):
    """An instrument answering from a table: command name (the header) -> reply.

    The handshake commands answer as the instrument ``info``; any command not in
    the table answers ``OK``. ``replies`` may be changed by the test at any time.
    """

    def __init__(
        self,
        replies: Mapping[str, Reply] | None = None,
        timeout_s: float = 2.0,
        *,
        info: BackendInfo = EXAMPLE_INFO,
    ) -> None:
        super().__init__(timeout_s)
        self.replies: dict[str, Reply] = {**handshake_replies(info), **(replies or {})}

    def reply_to(self, line: str) -> Reply:
        return self.replies.get(line.split(" ", 1)[0], "OK")


class TranscriptMismatch(HilError, AssertionError):
    """The code under test wrote something other than the next expected command."""


class TranscriptLink(ScriptedLink):
    """An instrument that expects an exact conversation: (command, reply) pairs in order.

    Writing a line other than the next expected command raises
    :class:`TranscriptMismatch` (and so does writing past the end); :meth:`assert_done`
    fails if expected commands were never sent.
    """

    def __init__(self, transcript: Sequence[tuple[str, Reply]], timeout_s: float = 2.0) -> None:
        super().__init__(timeout_s)
        self.transcript = list(transcript)
        self.position = 0
        self.mismatches: list[TranscriptMismatch] = []
        """Every mismatch raised, kept in case the code under test swallowed it."""

    def reply_to(self, line: str) -> Reply:
        k = self.position
        if k >= len(self.transcript):
            self._mismatch(f"command {k}: {line!r} sent after the end of the transcript")
        expected, reply = self.transcript[k]
        if line != expected:
            self._mismatch(f"command {k}: expected {expected!r}, got {line!r}")
        self.position += 1
        return reply

    def _mismatch(self, message: str) -> None:
        error = TranscriptMismatch(message)
        self.mismatches.append(error)
        raise error

    def assert_done(self) -> None:
        """Fail on the first mismatch (even one the code under test caught), or unless every
        expected command was sent."""
        if self.mismatches:
            raise self.mismatches[0]
        rest = [c for c, _ in self.transcript[self.position :]]
        if rest:
            raise TranscriptMismatch(f"{len(rest)} expected commands never sent, from {rest[0]!r}")


@contextmanager
def expected_protocol(
    transcript: Sequence[tuple[str, Reply]],
    *,
    backend: Callable[..., ProtocolBackend] = ProtocolBackend,
    info: BackendInfo | None = EXAMPLE_INFO,
    closing: bool = True,
    **backend_options: Any,
) -> Iterator[ProtocolBackend]:
    """A backend connected to a :class:`TranscriptLink`; checks the whole conversation.

    The transcript starts with the handshake of the instrument ``info`` (give
    ``info=None`` to script the handshake yourself) and ends with the ``ABOR`` that
    closing the backend sends (``closing=False`` to script the end yourself).
    ``backend`` is the class under test (called as ``backend(link, **backend_options)``).
    On leaving the block the backend is closed, and every expected command must have
    been sent, in order.
    """
    pairs = [
        *(handshake(info) if info is not None else []),
        *transcript,
        *([("ABOR", "OK")] if closing else []),
    ]
    link = TranscriptLink(pairs)
    with backend(link, **backend_options) as instance:
        yield instance
    link.assert_done()
