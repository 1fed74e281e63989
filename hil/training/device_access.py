"""What an update rule may do to the crossbar during one epoch, counted and stoppable.

A rule never holds the backend itself: it acts through :class:`DeviceAccess`,
which checks the run's :class:`~hil.training.stop.StopSignal` before every
operation that changes a device (so a stop takes effect before the next pulse)
and counts what was sent, for the epoch record. Only backend operations are
used, so a rule runs the same on the emulator and on hardware.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hil.seam import CrossbarBackend, Pulse
from hil.training.stop import StopSignal


class DeviceAccess:
    """The crossbar as one epoch's update sees it."""

    def __init__(self, backend: CrossbarBackend, stop: StopSignal) -> None:
        self.backend = backend
        self.stop = stop
        self.pulses = 0
        """Programming pulses sent in this epoch."""

    def potentiate(self, pulses: Sequence[Pulse]) -> None:
        """Send ``pulses`` as one batch (nothing when empty); the stop is checked first."""
        if not pulses:
            return
        self.stop.check()
        self.pulses += self.backend.pulse_many(pulses)


def column_currents(backend: CrossbarBackend, row_voltages: NDArray[np.float64]) -> NDArray[np.float64]:
    """Column currents (A), one row per row-voltage vector (V): one VMM each, on the crossbar."""
    return np.array([backend.apply(v) for v in row_voltages]).reshape(len(row_voltages), -1)
