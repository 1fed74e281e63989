"""What an update rule may do to the crossbar during one epoch, counted and stoppable.

A rule never holds the backend itself: it acts through :class:`DeviceAccess`,
which checks the run's :class:`~crossbar_hil.training.stop.StopSignal` before every
operation that changes a device (so a stop takes effect before the next pulse
command, at most ``limits.max_batch`` pulses, or reset) and counts what was
sent, for the epoch record. Only backend operations are used (pulse, reset,
read, VMM), so a rule runs the same on the emulator and on hardware, through
any driver.

Instrument time (s) is what the device operations occupy the instrument: the
width of every pulse sent plus ``reset_time_s`` per reset (on hardware a reset
is a long pulse, 1 s in the reference trace header). Reads, VMMs and link
latency are not counted: they are the same for every rule and much shorter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.seam import CrossbarBackend, Pulse
from crossbar_hil.training.stop import StopSignal


class DeviceAccess:
    """The crossbar as one epoch's update sees it.

    ``read_v`` (V) is the read voltage of the rule's read-verify reads;
    ``reset_time_s`` (s) the instrument time counted per reset.
    """

    def __init__(
        self,
        backend: CrossbarBackend,
        stop: StopSignal,
        read_v: float = 0.05,
        reset_time_s: float = 1.0,
    ) -> None:
        self.backend = backend
        self.stop = stop
        self.read_v = read_v
        self.reset_time_s = reset_time_s
        self.pulses = 0
        """Programming pulses sent in this epoch (update steps and read-verify pulses)."""
        self.verify_pulses = 0
        """Of :attr:`pulses`, those sent inside a read-verify loop (each followed by a read)."""
        self.reset_devices: list[tuple[int, int]] = []
        """(row, col) of every device reset in this epoch, in order."""
        self.reads = 0
        """Conductance reads made by the rule (read-verify), beyond the trainer's one per epoch."""
        self.instrument_time_s = 0.0
        """Pulse widths plus ``reset_time_s`` per reset, in s."""

    def send(self, pulses: Sequence[Pulse], verify: bool = False) -> None:
        """Send ``pulses`` (potentiating or depressing) in order, nothing when empty.

        The backend checks the whole list against its limits first (one bad pulse
        and none is sent); then it goes out in chunks of at most ``limits.max_batch``
        pulses (one command each on an instrument), the stop checked before every
        chunk (:meth:`CrossbarBackend.pulse_many`). Pulses and instrument time are
        counted per chunk sent, so a stop or a fault part way leaves counts of what
        actually went out. ``verify`` counts them
        as read-verify pulses.
        """
        if not pulses:
            return

        def count(chunk: Sequence[Pulse]) -> None:
            self.pulses += len(chunk)
            if verify:
                self.verify_pulses += len(chunk)
            self.instrument_time_s += float(sum(p.width_s for p in chunk))

        self.backend.pulse_many(pulses, before_chunk=self.stop.check, after_chunk=count)

    def reset(self, row: int, col: int) -> None:
        """Reset device (row, col) to its low state; the stop is checked first."""
        self.stop.check()
        self.backend.reset(row, col)
        self.reset_devices.append((int(row), int(col)))
        self.instrument_time_s += self.reset_time_s

    @property
    def resets(self) -> int:
        """Device resets in this epoch."""
        return len(self.reset_devices)

    def read_conductances(self) -> NDArray[np.float64]:
        """Every device's conductance (S), read at ``read_v``; counted as a rule read."""
        g = self.backend.read_conductances(self.read_v)
        self.reads += 1
        return g

    def forward(self, row_voltages: NDArray[np.float64]) -> NDArray[np.float64]:
        """Column currents (A) for one row-voltage vector (V): one VMM on the crossbar."""
        return self.backend.apply(row_voltages)


def column_currents(backend: CrossbarBackend, row_voltages: NDArray[np.float64]) -> NDArray[np.float64]:
    """Column currents (A), one row per row-voltage vector (V): one VMM each, on the crossbar."""
    return np.array([backend.apply(v) for v in row_voltages]).reshape(len(row_voltages), -1)
