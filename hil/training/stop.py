"""Ending a run early: a thread-safe stop request checked before every pulse is sent
(:class:`StopSignal`), and the patience that ends a run whose devices stopped moving
(:class:`StallWatch`), judged by the one test of "not moving", :func:`unmoved`."""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.seam.errors import RunStopped


class StopSignal:
    """Set from any thread or a signal handler (an API call, Ctrl-C, SIGTERM); the run ends
    before its next pulse.

    It takes no lock, on purpose. A signal handler can run again inside itself: a service
    killed with SIGKILL sends its run's worker one SIGTERM per thread that dies (Linux's
    parent-death signal, re-sent at each re-parenting), microseconds apart. A handler that
    waits for a lock its own interrupted frame holds waits forever; ``threading.Event.set``
    takes one, and a worker wedged there kept its instrument, its listener thread blocked
    behind the same lock (seen in CI). A flag written under the GIL needs none.
    """

    def __init__(self) -> None:
        self._requested = False
        self.reason = ""

    def set(self, reason: str = "stop requested") -> None:
        """Request the stop (safe in a signal handler, also one that interrupts another ``set``)."""
        self.reason = reason
        self._requested = True

    @property
    def is_set(self) -> bool:
        """True once a stop was requested."""
        return self._requested

    def check(self) -> None:
        """Raise :class:`RunStopped` if a stop was requested."""
        if self._requested:
            raise RunStopped(self.reason)


class StallWatch:
    """Patience: notices a run whose devices have stopped moving (judged from read-back conductances).

    Fed the conductance map (S) read at the start of every epoch, before its update.
    The run has stalled when, over the last ``patience`` epochs, no device's
    conductance changed by more than ``rel_tol`` of its value: with the same
    measurements the rule sends the same pulses into the same saturated devices, so
    more epochs cannot help. Reads only, so it works on hardware; set ``rel_tol``
    above the instrument's relative read noise, or the run is never judged stalled.
    ``patience=0`` turns it off. Keeps ``patience + 1`` maps, whatever the length of
    the run. A map may have leading batch axes (many crossbars at once: :meth:`still`).
    """

    def __init__(self, patience: int, rel_tol: float) -> None:
        self.patience = patience
        self.rel_tol = rel_tol
        self._window: deque[NDArray[np.float64]] = deque(maxlen=patience + 1)

    def still(self, conductances_siemens: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Record this epoch's read; per device, True once it has not moved for ``patience`` epochs."""
        g = np.array(conductances_siemens, dtype=float, copy=True)
        if self.patience <= 0:
            return np.zeros(g.shape, dtype=bool)
        self._window.append(g)
        if len(self._window) <= self.patience:
            return np.zeros(g.shape, dtype=bool)
        return unmoved(np.stack(self._window), self.rel_tol)

    def stalled(self, conductances_siemens: NDArray[np.float64]) -> bool:
        """Record this epoch's read (one crossbar); True once nothing moved for ``patience`` epochs."""
        return bool(np.all(self.still(conductances_siemens))) and self.patience > 0


def unmoved(reads_siemens: NDArray[np.float64], rel_tol: float) -> NDArray[np.bool_]:
    """Per device, True when no read differs from the first by more than ``rel_tol`` of it.

    ``reads_siemens`` (S) stacks successive conductance maps along its first axis. Every read
    counts: a device that went up and came back has moved. ``rel_tol`` is
    :attr:`~crossbar_hil.training.config.TrainingConfig.stall_rel_tol`: above the instrument's
    relative read noise, or nothing ever counts as still.
    """
    first = reads_siemens[0]
    moved = np.max(np.abs(reads_siemens - first), axis=0)
    return np.asarray(moved <= rel_tol * np.abs(first))
