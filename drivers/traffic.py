"""The traffic log of a protocol backend: every command, reply and link error, timestamped."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TextIO

TRAFFIC_LOGGER = "crossbar_hil.traffic"
"""Logger that carries every command and reply at DEBUG level."""


class TrafficLog:
    """Records commands (``>``), replies (``<``) and link errors (``!``) of one backend."""

    def __init__(self, path: Path | None = None, name: str = "") -> None:
        self.name = name
        self.path = path
        self._logger = logging.getLogger(TRAFFIC_LOGGER)
        self._file: TextIO | None = (
            path.open("a", encoding="utf-8", buffering=1) if path is not None else None
        )

    @property
    def active(self) -> bool:
        """True when anything would be recorded."""
        return self._file is not None or self._logger.isEnabledFor(logging.DEBUG)

    def record(self, direction: str, text: str, elapsed_s: float | None = None) -> None:
        """Record one line; ``elapsed_s`` is the round trip of a reply (s)."""
        if not self.active:
            return
        rt = f"  [{elapsed_s * 1e3:.3f} ms]" if elapsed_s is not None else ""
        self._logger.debug("%s %s %s%s", self.name, direction, text, rt)
        if self._file is not None:
            stamp = datetime.now().astimezone().isoformat(timespec="microseconds")
            self._file.write(f"{stamp} {self.name} {direction} {text}{rt}\n")

    def close(self) -> None:
        """Close the file, if any. Idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None
