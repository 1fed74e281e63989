"""`RecordingBackend`: any backend, with every pulse and reset it sends reported to a listener.

It wraps the backend the run uses, so the log holds what actually went to the
device, whichever code sent it (an update rule, a start-state reset). A batch is
reported after the wrapped backend accepted it, one chunk (one instrument
command) at a time; a chunk that raised is not reported as sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from crossbar_hil.seam.backend import CrossbarBackend
from crossbar_hil.seam.limits import BackendInfo, Pulse
from numpy.typing import ArrayLike, NDArray


class PulseListener(Protocol):
    """Told of every programming operation sent through a :class:`RecordingBackend`."""

    def on_pulses(self, pulses: Sequence[Pulse]) -> None:
        """``pulses`` (V, s) were sent, in this order."""

    def on_reset(self, row: int, col: int) -> None:
        """The device's reset pulse was sent to (row, col)."""


class RecordingBackend(CrossbarBackend):
    """``inner`` as a :class:`CrossbarBackend` that reports pulses and resets to ``listener``.

    Closing it closes ``inner`` (0 V, released); aborting it aborts ``inner``.
    """

    def __init__(self, inner: CrossbarBackend, listener: PulseListener) -> None:
        super().__init__()
        self.inner = inner
        self.listener = listener

    @property
    def info(self) -> BackendInfo:
        return self.inner.info

    @property
    def close_warning(self) -> str | None:
        return self.inner.close_warning

    def device_curve_siemens(self) -> NDArray[np.float64] | None:
        """The wrapped backend's device curve (S), if it knows one."""
        return self.inner.device_curve_siemens()

    def close(self) -> None:
        """Close the wrapped backend (it aborts first). Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.inner.close()

    def _read_conductances(self, v_read: float) -> NDArray[np.float64]:
        return self.inner.read_conductances(v_read)

    def _apply(self, voltages: NDArray[np.float64]) -> ArrayLike:
        return self.inner.apply(voltages)

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        self.inner.pulse_many(pulses)
        self.listener.on_pulses(pulses)

    def _reset(self, row: int, col: int) -> None:
        self.inner.reset(row, col)
        self.listener.on_reset(row, col)

    def _abort(self) -> None:
        self.inner.abort()
