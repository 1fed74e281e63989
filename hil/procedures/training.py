"""Running one training as a lab procedure: build the backend, train, keep the result.

``hil train`` and the run-control service both call :func:`run_training`; an
edge only parses its input, adds its observers (a progress line, a database
writer) and presents the :class:`TrainingRun` it gets back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.seam import CrossbarBackend
from hil.training.config import RunConfig
from hil.training.history import TrainingResult
from hil.training.observers import TrainingObserver
from hil.training.stop import StopSignal
from hil.training.trainer import Trainer

RESULT_SCHEMA_VERSION = 2
"""Version of the JSON result form. 2: conductances and weights are named ``*_siemens``
(version 1, unversioned, wrote ``*_s``, which also means seconds elsewhere)."""


@dataclass
class TrainingRun:
    """A finished (or stopped, or faulted) training: its config, the instrument and the result."""

    config: RunConfig
    identity: str
    result: TrainingResult

    def to_dict(self, with_history: bool = True) -> dict[str, Any]:
        """The JSON form of the run (``hil train --json``, the service's result)."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "config": self.config.model_dump(mode="json"),
            "backend": self.identity,
            **self.result.to_dict(with_history),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)


def run_training(
    config: RunConfig,
    *,
    backend: CrossbarBackend,
    observers: Sequence[TrainingObserver] = (),
    stop: StopSignal | None = None,
    on_prepared: Callable[[TrainingResult], None] | None = None,
) -> TrainingRun:
    """Train ``config.task`` on ``backend`` (already open; closed here, at 0 V, whatever happens).

    ``on_prepared`` is shown the check before training (feasibility, calibrated
    gain, notes: :meth:`Trainer.prepare`) before any pulse is sent. Raises
    ValueError (a :class:`~hil.seam.errors.LimitError` among them) when the run
    does not fit the backend, before anything is sent.
    """
    with backend:
        identity = backend.info.identity
        trainer = Trainer(backend, config.task, config.training, observers, stop)
        if on_prepared is not None:
            on_prepared(trainer.prepare())
        return TrainingRun(config, identity, trainer.run())


def save_plots(run: TrainingRun, directory: Path) -> dict[str, Path]:
    """The run's figures as PNG files in ``directory``; returns them by name."""
    from hil.reports.plots import save_all

    return save_all(run.result, run.config.task, run.config.training, directory)
