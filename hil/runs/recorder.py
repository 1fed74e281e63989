"""`StoreRecorder`: the observer that writes a run into the store as it goes.

It hears the trainer (one record per epoch) and, as a
:class:`~crossbar_hil.seam.backend.PulseListener` of the run's backend, every pulse and
reset, and commits each epoch with the operations sent in it in one transaction. It
watches the run's stored status: at the start, after each epoch, and every
:data:`POLL_S` in between (a small thread, from :meth:`on_start` until :meth:`close`).
A run marked ``stopping`` (by the service, or by
``hil runs stop`` from another process) gets its
:class:`~crossbar_hil.training.stop.StopSignal` set, so it ends before its next pulse (at
most :data:`POLL_S` plus the operation in flight after the mark).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import PulseLogEntry, RunStore, now
from crossbar_hil.seam.limits import Pulse
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.history import EpochRecord, TrainingResult
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.stop import StopSignal
from crossbar_hil.training.task import Task

log = logging.getLogger(__name__)

POLL_S = 0.2
"""How often (s) the stored status is read during an epoch."""

STORE_STOP = "stop requested"


class StoreRecorder(TrainingObserver):
    """Writes run ``run_id`` into ``store``: epochs, pulse log, and the stop request it finds there."""

    def __init__(self, store: RunStore, run_id: str, stop: StopSignal) -> None:
        self.store = store
        self.run_id = run_id
        self.stop = stop
        self._pending: list[PulseLogEntry] = []
        self._last_epoch = 0
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None

    # ------------------------------------------------------------------ the stored stop
    def check_store(self) -> None:
        """Set the stop if the stored status asks for it (``stopping``, or already finished)."""
        self._honour(self.store.get_run(self.run_id).status)

    def _honour(self, status: RunStatus) -> None:
        if (status is RunStatus.STOPPING or status.finished) and not self.stop.is_set:
            self.stop.set(STORE_STOP)

    def _poll(self) -> None:
        try:
            while not self._closed.wait(POLL_S) and not self.stop.is_set:
                try:
                    self.check_store()
                except Exception as e:  # A busy or closed store: the next epoch's commit checks too.
                    log.debug("run %s: status poll failed: %s", self.run_id, e)
        finally:
            self.store.release_thread()

    def close(self) -> None:
        """End the status poll (idempotent); the run's end calls it."""
        self._closed.set()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(5 * POLL_S + 1)

    # ------------------------------------------------------------------ pulse listener
    def on_pulses(self, pulses: Sequence[Pulse]) -> None:
        """Keep the pulses for the record of the epoch in flight."""
        at = now()
        self._pending += [PulseLogEntry(at, "pulse", p.row, p.col, p.amplitude_v, p.width_s) for p in pulses]

    def on_reset(self, row: int, col: int) -> None:
        """Keep the reset for the record of the epoch in flight."""
        self._pending.append(PulseLogEntry(now(), "reset", row, col))

    # ------------------------------------------------------------------ training observer
    def on_start(self, task: Task, config: TrainingConfig, identity: str) -> None:
        """Honour a stop already stored, then watch for one during the run."""
        self.check_store()
        if self._poller is None and not self._closed.is_set():
            self._poller = threading.Thread(target=self._poll, name=f"poll-{self.run_id[:8]}", daemon=True)
            self._poller.start()

    def on_epoch(self, record: EpochRecord) -> None:
        """Commit the epoch and what was sent in it; honour a stop found in the store."""
        pending, self._pending = self._pending, []
        status = self.store.record_epoch(self.run_id, record, pending)
        self._last_epoch = record.epoch
        self._honour(status)

    def on_end(self, result: TrainingResult) -> None:
        """Commit what was sent after the last epoch record, if anything."""
        pending, self._pending = self._pending, []
        self.store.record_log(self.run_id, self._last_epoch, pending)
        self.close()
