"""Stopping a run: a thread-safe signal checked before every pulse is sent."""

from __future__ import annotations

import threading

from hil.seam.errors import RunStopped


class StopSignal:
    """Set from any thread (an API call, Ctrl-C); the run ends before its next pulse."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str = "stop requested") -> None:
        """Request the stop."""
        self.reason = reason
        self._event.set()

    @property
    def is_set(self) -> bool:
        """True once a stop was requested."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`RunStopped` if a stop was requested."""
        if self._event.is_set():
            raise RunStopped(self.reason)
