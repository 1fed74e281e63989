"""Listeners of a run: the trainer reports to them and knows nothing else of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crossbar_hil.training.config import TrainingConfig
    from crossbar_hil.training.history import EpochRecord, TrainingResult
    from crossbar_hil.training.task import Task


class TrainingObserver:
    """Override what you need. Exceptions raised here end the run as a fault."""

    def on_start(self, task: Task, config: TrainingConfig, identity: str) -> None:
        """Before the first forward pass."""

    def on_epoch(self, record: EpochRecord) -> None:
        """After each epoch (its update sent)."""

    def on_end(self, result: TrainingResult) -> None:
        """Once, when the run ends for any reason."""
