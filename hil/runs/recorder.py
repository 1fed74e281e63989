"""`StoreRecorder`: the observer that writes a run into the store as it goes.

It hears the trainer (one record per epoch) and, as a
:class:`~crossbar_hil.seam.backend.PulseListener` of the run's backend, every pulse and
reset, and commits each epoch with the operations sent in it in one transaction. It
records; what the run obeys in the store (a stop, a pause) is read by
:class:`~crossbar_hil.runs.control.RunControl`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from crossbar_hil.runs.store import PulseLogEntry, RunStore, now
from crossbar_hil.seam.limits import Pulse
from crossbar_hil.training.history import EpochRecord, TrainingResult
from crossbar_hil.training.observers import TrainingObserver

log = logging.getLogger(__name__)


class StoreRecorder(TrainingObserver):
    """Writes run ``run_id`` into ``store``: epochs and pulse log."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._pending: list[PulseLogEntry] = []
        self._last_epoch = 0

    # ------------------------------------------------------------------ pulse listener
    def on_pulses(self, pulses: Sequence[Pulse]) -> None:
        """Keep the pulses for the record of the epoch in flight."""
        at = now()
        self._pending += [
            PulseLogEntry(
                sent_at=at, kind="pulse", row=p.row, col=p.col, amplitude_v=p.amplitude_v, width_s=p.width_s
            )
            for p in pulses
        ]

    def on_reset(self, row: int, col: int) -> None:
        """Keep the reset for the record of the epoch in flight."""
        self._pending.append(PulseLogEntry(sent_at=now(), kind="reset", row=row, col=col))

    # ------------------------------------------------------------------ training observer
    def on_epoch(self, record: EpochRecord) -> None:
        """Commit the epoch and what was sent in it."""
        pending, self._pending = self._pending, []
        self.store.record_epoch(self.run_id, record, pending)
        self._last_epoch = record.epoch

    def on_end(self, result: TrainingResult) -> None:
        """Commit what was sent after the last epoch record, if anything."""
        pending, self._pending = self._pending, []
        self.store.record_log(self.run_id, self._last_epoch, pending)
