"""The instrument server's record of the commands it received, bounded in memory.

A bench instrument may run for weeks: it keeps counters for everything (the
number of commands, and of each declared command name) and only the most recent
lines, each cut to its start. Memory stays flat whatever the traffic.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, deque

from crossbar_hil.protocol.codec import COMMANDS, strip_terminator

RECENT_LINES = 10_000
"""How many received lines the record keeps (the most recent)."""

LINE_CHARS = 200
"""How much of each received line the record keeps (characters); a longer line is kept as
its start, ``...`` and its length."""

OTHER = "<other>"
"""The name counted for a line whose header is no declared command."""


def command_name(line: str) -> str:
    """The command name (header, upper case) of a received line, e.g. ``PULS:LIST``."""
    return line.strip().partition(" ")[0].upper()


def shortened(line: str, limit: int = LINE_CHARS) -> str:
    """``line`` as kept in the record: at most ``limit`` characters, then its length."""
    return line if len(line) <= limit else f"{line[:limit]}...({len(line)} characters)"


class CommandRecord:
    """Counts every command line received and keeps the most recent ones. Thread-safe.

    Line numbers are absolute: the first line ever received is 0, and they go on
    counting after older lines are forgotten.
    """

    def __init__(self, recent: int = RECENT_LINES) -> None:
        self._lines: deque[str] = deque(maxlen=recent)
        self._total = 0
        self._by_name: Counter[str] = Counter()
        self._changed = threading.Condition()

    def add(self, line: str) -> int:
        """Record one received line (terminator optional); its number, counting from 1."""
        text = strip_terminator(line)
        name = command_name(text)
        with self._changed:
            self._lines.append(shortened(text))
            self._total += 1
            self._by_name[name if name in COMMANDS else OTHER] += 1
            self._changed.notify_all()
            return self._total

    @property
    def total(self) -> int:
        """How many lines were received in all."""
        return self._total

    @property
    def first_kept(self) -> int:
        """The number (from 0) of the oldest line still kept."""
        with self._changed:
            return self._total - len(self._lines)

    def lines(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The kept lines numbered ``start`` to ``stop`` (absolute, from 0); older ones are gone."""
        with self._changed:
            first = self._total - len(self._lines)
            stop = self._total if stop is None else min(stop, self._total)
            lo, hi = max(start, first) - first, max(stop, first) - first
            return list(itertools.islice(self._lines, lo, hi))

    def counts(self) -> Counter[str]:
        """How many lines of each declared command name were received in all (others as
        :data:`OTHER`)."""
        with self._changed:
            return Counter(self._by_name)

    def wait_for(self, count: int, timeout_s: float) -> bool:
        """Block until at least ``count`` lines were received; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._total >= count, timeout_s)
