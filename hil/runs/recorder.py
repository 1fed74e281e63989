"""`StoreRecorder`: the observer that writes a run into the store as it goes.

It hears the trainer (one record per epoch) and, as a
:class:`~crossbar_hil.seam.backend.PulseListener` of the run's backend, every pulse and
reset, and commits the epochs with the operations sent in them **in batches**: at most one
commit per :data:`BATCH_S` (an epoch that comes sooner is held until the next epoch or the end)
and at most :data:`BATCH_EPOCHS` epochs in one transaction (one commit per epoch doubled a run's
time on the emulator). It always commits what it holds at the end of the run (a convergence, a
stop, a fault) and, through :attr:`~crossbar_hil.runs.control.RunControl.flush`, before the run's
own status changes (paused, resumed, suspended, reconnected): an SSE follower sees epochs in small
bursts, never a status ahead of the epochs before it, and a crash loses at most the epochs held.

A commit that fails (a store busy beyond its timeout) keeps the batch: it is tried again, with
what came since, :data:`RETRY_S` later. It records; what the run obeys in the store (a stop, a
pause) is read by :class:`~crossbar_hil.runs.control.RunControl`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from crossbar_hil.runs.store import PulseLogEntry, RunStore, now
from crossbar_hil.seam.limits import Pulse
from crossbar_hil.training.history import EpochRecord, TrainingResult
from crossbar_hil.training.observers import TrainingObserver

log = logging.getLogger(__name__)

BATCH_S = 0.02
"""Least time (s) between two commits of epochs: an epoch that comes sooner after the last commit
is held until one comes later (or the run's end, a pause, a status change). A run slower than
this commits every epoch at once; a fast one (an emulated epoch takes about 0.3 ms) commits every
few dozen epochs, which made recording cost a fraction of what one commit per epoch did."""

BATCH_EPOCHS = 500
"""Most epochs committed in one transaction."""

RETRY_S = 1.0
"""After a commit failed, how long (s) before the epochs are tried again (not every epoch: each
try may wait for the store's lock)."""


class StoreRecorder(TrainingObserver):
    """Writes run ``run_id`` into ``store``: epochs and pulse log, committed in batches."""

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        *,
        batch_s: float | None = None,
        batch_epochs: int | None = None,
        retry_s: float | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.batch_s = BATCH_S if batch_s is None else batch_s
        """Least time (s) between two commits (default :data:`BATCH_S`)."""
        self.batch_epochs = BATCH_EPOCHS if batch_epochs is None else batch_epochs
        """Most epochs in one commit (default :data:`BATCH_EPOCHS`)."""
        self.retry_s = RETRY_S if retry_s is None else retry_s
        """Wait (s) before a failed commit is tried again (default :data:`RETRY_S`)."""
        self._pending: list[PulseLogEntry] = []
        self._unsaved: list[tuple[EpochRecord, list[PulseLogEntry]]] = []
        self._due_s = 0.0
        """Monotonic time (s) from which the epochs held are committed (the last commit plus
        ``batch_s``; after a failure, plus ``retry_s``)."""
        self._failing = False
        self._last_epoch = 0
        self._heard = False

    @property
    def unsaved(self) -> list[int]:
        """The epochs heard but not committed yet, in order."""
        return [r.epoch for r, _ in self._unsaved]

    @property
    def first_unsaved(self) -> int:
        """The first epoch not committed: the oldest one held, else the next one to come."""
        if self._unsaved:
            return self._unsaved[0][0].epoch
        return self._last_epoch + 1 if self._heard else 0

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
        """Hold the epoch and what was sent in it; commit the epochs held when the last commit is
        ``batch_s`` old (or the batch is full, or the run converged: its last epoch). A failed
        commit raises, the epochs still held."""
        pending, self._pending = self._pending, []
        self._unsaved.append((record, pending))
        self._last_epoch, self._heard = record.epoch, True
        full = len(self._unsaved) >= self.batch_epochs and not self._failing
        if time.monotonic() >= self._due_s or full or record.converged:
            self.flush()

    def flush(self) -> None:
        """Commit the epochs held, in one transaction. On failure they stay held (tried again
        :attr:`retry_s` later, or at the next flush) and the error is raised."""
        if not self._unsaved:
            return
        try:
            self.store.record_epochs(self.run_id, self._unsaved)
        except BaseException:
            self._failing = True
            self._due_s = time.monotonic() + self.retry_s
            raise
        self._unsaved, self._failing, self._due_s = [], False, time.monotonic() + self.batch_s

    def on_end(self, result: TrainingResult | None) -> None:
        """Commit the epochs held and what was sent after the last epoch record, if anything."""
        self.flush()
        pending, self._pending = self._pending, []
        self.store.record_log(self.run_id, self._last_epoch, pending)
