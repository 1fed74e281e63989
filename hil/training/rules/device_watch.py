"""What a rule knows of each device, learnt from read-back conductances only.

Saturation is judged the way it can be judged on hardware: a device counts as
saturated when its last ``pulses`` potentiating pulses in a row each raised its
read-back conductance by no more than a tolerance (S). More than one pulse
makes the judgement robust to a noisy device (the reference trace steps down
after 18 of its 49 pulses). Nothing here looks inside an emulator, so a rule
using it runs unchanged through the VISA and serial drivers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.seam import Pulse
from crossbar_hil.training.device_access import DeviceAccess


class DeviceWatch:
    """Per device: last read (S), saturated or not, known to be at the bottom, first step after reset.

    Feed it every read (:meth:`observe`) and tell it what was sent
    (:meth:`note_pulses`, :meth:`note_reset`, :meth:`note_depressed`); it judges a
    pulsed device at the next read. ``tol_siemens`` (S): a pulse that raised the
    conductance by no more than this did not move the device; ``pulses`` such
    pulses in a row make it saturated.
    """

    def __init__(self, tol_siemens: float = 0.0, pulses: int = 1) -> None:
        self.tol_siemens = tol_siemens
        self.pulses = pulses
        self.g_siemens: NDArray[np.float64] | None = None
        """The last read (S), rows x cols; None before the first."""

    def observe(self, g_siemens: NDArray[np.float64]) -> None:
        """Take a fresh read (S): judge every device pulsed since the previous read."""
        g = np.array(g_siemens, dtype=float)
        if self.g_siemens is None:
            shape = g.shape
            self.saturated = np.zeros(shape, dtype=bool)
            """The last potentiating pulse did not raise the device's conductance."""
            self.at_bottom = np.zeros(shape, dtype=bool)
            """Reset, and not moved up since."""
            self.bottom_step_siemens = np.full(shape, np.nan)
            """Rise (S) the first pulse after the device's last known reset gave."""
            self._pulsed = np.zeros(shape, dtype=bool)
            self._unjudged = np.zeros(shape, dtype=bool)
            self._after_reset = np.zeros(shape, dtype=bool)
            self._flat = np.zeros(shape, dtype=np.int64)
        else:
            judged = self._pulsed & ~self._unjudged
            rise = g - self.g_siemens
            moved = judged & (rise > self.tol_siemens)
            self._flat[judged & ~moved] += 1
            self._flat[moved] = 0
            self.saturated[judged] = self._flat[judged] >= self.pulses
            first = moved & self._after_reset
            self.bottom_step_siemens[first] = rise[first]
            self.at_bottom[moved] = False
            self._after_reset[moved] = False
        self.g_siemens = g
        self._pulsed[:] = False
        self._unjudged[:] = False

    def judged(self) -> NDArray[np.bool_] | None:
        """:attr:`saturated` once a read was taken; None before (nothing judged yet)."""
        return None if self.g_siemens is None else self.saturated

    @property
    def dirty(self) -> bool:
        """Something was sent since the last read."""
        return self.g_siemens is None or bool(np.any(self._pulsed | self._unjudged))

    def current(self, device: DeviceAccess) -> NDArray[np.float64]:
        """The conductances (S) now: the last read, or a new one (counted) if anything was sent since."""
        if self.dirty:
            self.observe(device.read_conductances())
        assert self.g_siemens is not None
        return self.g_siemens

    def note_pulses(self, pulses: list[Pulse]) -> None:
        """Potentiating ``pulses`` were sent: judge those devices at the next read."""
        for p in pulses:
            self._pulsed[p.row, p.col] = True

    def note_reset(self, row: int, col: int) -> None:
        """Device (row, col) was reset: at the bottom, not saturated; the next read is its new baseline."""
        self.saturated[row, col] = False
        self._flat[row, col] = 0
        self.at_bottom[row, col] = True
        self._after_reset[row, col] = True
        self._unjudged[row, col] = True

    def note_depressed(self, row: int, col: int) -> None:
        """Device (row, col) got a depressing pulse: no longer saturated; not judged at the next read."""
        self.saturated[row, col] = False
        self._flat[row, col] = 0
        self._unjudged[row, col] = True

    def bottom_step_estimate(self, row: int, col: int) -> float:
        """Expected rise (S) of the first pulse after a reset of (row, col).

        Its own last measured one, else the median over the devices measured, else 0.
        """
        own = self.bottom_step_siemens[row, col]
        if np.isfinite(own):
            return float(own)
        known = self.bottom_step_siemens[np.isfinite(self.bottom_step_siemens)]
        return float(np.median(known)) if known.size else 0.0
