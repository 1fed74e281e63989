"""`StoreRecorder`: the observer that writes a run into the store as it goes.

It hears the trainer (one record per epoch) and the :class:`~hil.seam.recording.RecordingBackend`
(every pulse and reset), and commits each epoch with the operations sent in it in
one transaction. After each epoch it looks at the run's stored status: a run
marked ``stopping`` (by the service, or by ``hil runs stop`` from another
process) gets its :class:`~hil.training.stop.StopSignal` set, so it ends before
its next pulse.
"""

from __future__ import annotations

from collections.abc import Sequence

from hil.runs.status import RunStatus
from hil.runs.store import PulseLogEntry, RunStore, now
from hil.seam.limits import Pulse
from hil.training.history import EpochRecord, TrainingResult
from hil.training.observers import TrainingObserver
from hil.training.stop import StopSignal


class StoreRecorder(TrainingObserver):
    """Writes run ``run_id`` into ``store``: epochs, pulse log, and the stop request it finds there."""

    def __init__(self, store: RunStore, run_id: str, stop: StopSignal) -> None:
        self.store = store
        self.run_id = run_id
        self.stop = stop
        self._pending: list[PulseLogEntry] = []
        self._last_epoch = 0

    # ------------------------------------------------------------------ pulse listener
    def on_pulses(self, pulses: Sequence[Pulse]) -> None:
        """Keep the pulses for the record of the epoch in flight."""
        at = now()
        self._pending += [PulseLogEntry(at, "pulse", p.row, p.col, p.amplitude_v, p.width_s) for p in pulses]

    def on_reset(self, row: int, col: int) -> None:
        """Keep the reset for the record of the epoch in flight."""
        self._pending.append(PulseLogEntry(now(), "reset", row, col))

    # ------------------------------------------------------------------ training observer
    def on_epoch(self, record: EpochRecord) -> None:
        """Commit the epoch and what was sent in it; honour a stop found in the store."""
        pending, self._pending = self._pending, []
        status = self.store.record_epoch(self.run_id, record, pending)
        self._last_epoch = record.epoch
        if status is RunStatus.STOPPING and not self.stop.is_set:
            self.stop.set("stop requested")

    def on_end(self, result: TrainingResult) -> None:
        """Commit what was sent after the last epoch record, if anything."""
        pending, self._pending = self._pending, []
        self.store.record_log(self.run_id, self._last_epoch, pending)
