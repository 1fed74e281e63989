"""Test helpers for backend authors and lab tests: the emulated instrument, running.

* :func:`running_server`: a context manager that serves an emulated crossbar (or a
  given :class:`~crossbar_hil.seam.CrossbarBackend`) over TCP or a pty for the ``with`` block,
  and always stops it. In pytest, wrap it in a fixture::

      @pytest.fixture
      def instrument():
          with running_server(EmulatorConfig(seed=3)) as server:
              yield server

  then connect the backend under test to ``instrument.resource_string`` (VISA) or
  ``instrument.serial_url`` (pyserial), and check what the instrument received with
  ``instrument.command_counts()``.
* :class:`CommandsPerEpoch`: a training observer that counts, per epoch, the commands
  the instrument received.

For tests without any instrument, see :mod:`crossbar_hil.drivers.testing` (transcript and table fakes).
"""

from __future__ import annotations

from collections import Counter

from crossbar_hil.emulator.instrument.server import InstrumentServer, ServerOptions, running_server
from crossbar_hil.training.history import EpochRecord
from crossbar_hil.training.observers import TrainingObserver

__all__ = ["CommandsPerEpoch", "InstrumentServer", "ServerOptions", "running_server"]


class CommandsPerEpoch(TrainingObserver):
    """Counts, per epoch of a training run, the commands a server received (by name).

    Pass it to :func:`crossbar_hil.training.trainer.train` as an observer of a run through a driver to
    ``server``; :meth:`per_epoch` then has one :class:`~collections.Counter` per
    :class:`~crossbar_hil.training.history.EpochRecord`: the commands of that epoch, its update included.
    A new run starts a new count. Uses the server's counters, so it works however long the run.
    """

    def __init__(self, server: InstrumentServer) -> None:
        self.server = server
        self.marks: list[Counter[str]] = []
        """The server's command counts at the start of the run and after each epoch."""

    def on_start(self, *args: object) -> None:
        """Mark the start of a run."""
        self.marks = [self.server.command_counts()]

    def on_epoch(self, record: EpochRecord) -> None:
        """Mark the end of an epoch (its update sent)."""
        self.marks.append(self.server.command_counts())

    def per_epoch(self) -> list[Counter[str]]:
        """Commands by name, one counter per epoch of the last run."""
        return [b - a for a, b in zip(self.marks, self.marks[1:], strict=False)]
