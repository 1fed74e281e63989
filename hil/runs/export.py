"""A stored run in the forms a user takes away: the result JSON, the history CSV, the plots.

The JSON is the form of ``hil train --json`` (:meth:`~crossbar_hil.procedures.training.TrainingRun.to_dict`):
the summary stored when the run ended, with the history read back from the
store. A run whose process died (interrupted) gets the same form with outcome
``fault`` and its error, from the epochs it committed, its start state null and
``end_recorded`` false (neither its start nor its outputs at 0 V were recorded). A run still going has no
result yet (:class:`RunNotEnded`); its CSV holds the epochs so far. The REST service and
``hil runs export`` both use these.
"""

from __future__ import annotations

import math
from typing import Any

from crossbar_hil.procedures.training import JSON_HISTORY_LIMIT, TrainingRun
from crossbar_hil.runs.store import Run, RunStore
from crossbar_hil.seam.errors import HilError
from crossbar_hil.training.history import Outcome, TrainingResult, history_csv, thinned


class RunNotEnded(HilError, ValueError):
    """The run is still going: it has no result yet (its epochs so far are in the store)."""

    def __init__(self, run: Run) -> None:
        self.run_id = run.id
        super().__init__(f"run {run.id} has not ended (it is {run.status}); its epochs so far are stored")


def training_result(store: RunStore, run: Run) -> TrainingResult:
    """The ended run's :class:`TrainingResult` (history from the store); usable for the plots.

    Raises :class:`RunNotEnded` for an active run.
    """
    if not run.status.finished:
        raise RunNotEnded(run)
    history = store.epochs(run.id)
    summary = store.result(run.id)
    if summary is not None:
        return TrainingResult.from_dict(summary, run.run_config.training, history)
    # Interrupted (its process died, its recording lost): no summary was written; the epochs are
    # what there is. Its start and its end (outputs at 0 V or not) were not recorded: not claimed.
    return TrainingResult(
        Outcome.FAULT,
        history,
        error_message=run.error or f"the run is {run.status}",
        start_state=None,
        end_recorded=False,
    )


def result_dict(store: RunStore, run: Run) -> dict[str, Any]:
    """The run in the JSON form of ``hil train --json``, non-finite numbers as None (valid JSON)."""
    if not run.status.finished:
        raise RunNotEnded(run)
    summary = store.result(run.id)
    history = store.epochs(run.id)
    if summary is None:
        out = TrainingRun(run.run_config, run.identity or run.backend, training_result(store, run)).to_dict()
    else:  # As `hil train --json` writes it: a long history thinned, the CSV has every epoch.
        kept = thinned(len(history), JSON_HISTORY_LIMIT)
        out = {**summary, "history_epochs": len(history), "history": [history[i].to_dict() for i in kept]}
    return _finite(out)


def result_csv(store: RunStore, run: Run) -> str:
    """The run's per-epoch history as CSV (:func:`crossbar_hil.training.history.history_csv`), every epoch."""
    return history_csv(store.epochs(run.id))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
