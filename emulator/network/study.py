"""What every ``hil experiment`` study shares: its grid on an executor, its summary, CSV and text table.

A study (:class:`Study`) is a settings model, a list of work items (plain JSON-ready dicts,
one per setting and seed) and a function that trains one item into a raw row (``accuracy``
in %, ``pulses``, ``resets``, ``depressions``, ``samples_per_s``). The items run on the executor that
``hil sweep`` uses (:func:`crossbar_hil.emulator.sweep.run.map_ordered`: a local process pool
or a Dask cluster), results back in item order; the raw rows are grouped by the study's key
fields into one summary row per setting (the setting's columns, then mean, sample standard
deviation, min and max of the accuracy over seeds, and the mean costs), written as CSV and
printed as text. Studies: :mod:`.experiment` (Lim et al.) and :mod:`.huang_experiment`.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from crossbar_hil.emulator.network.data import Dataset, check_dataset, load_dataset
from crossbar_hil.emulator.sweep.run import map_ordered

Row = dict[str, Any]

ACCURACY_COLUMNS: dict[str, str] = {
    "seeds": "Trainings (one per seed).",
    "accuracy_mean": "Mean test accuracy (%).",
    "accuracy_sd": "Sample standard deviation of the test accuracy over seeds (%).",
    "accuracy_min": "Lowest test accuracy over seeds (%).",
    "accuracy_max": "Highest test accuracy over seeds (%).",
}
RESULT_FIELDS: tuple[str, ...] = ("accuracy", "pulses", "resets", "depressions", "samples_per_s")
"""What a raw row adds to its work item."""

COST_COLUMNS: dict[str, str] = {
    "pulses_mean": "Programming pulses per training (update, read-verify and depressing pulses).",
    "resets_mean": "Device resets per training.",
    "depressions_mean": "Depressing pulses per training (part of pulses_mean; method c, Huang's LTD).",
    "samples_per_s": "Training samples per second of one worker (forward, backward, update).",
}


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread inside: a batch-1 network gains nothing from BLAS threads, and the
    workers of a pool, one per core, would fight over the cores with a BLAS pool each."""
    try:
        from threadpoolctl import threadpool_limits  # with scikit-learn (the experiments extra)
    except ImportError:  # an install without it (IDX data only): BLAS as it is, results the same
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_on_one_blas_thread(run_item: Callable[[Row, Row], Row], item: Row, settings: Row) -> Row:
    """``run_item(item, settings)`` inside :func:`one_blas_thread` (what a worker runs)."""
    with one_blas_thread():
        return run_item(item, settings)


Hidden = Annotated[int, Field(ge=1, le=10_000)]
"""Hidden neurons of an MLP: the bounds of every study's ``hidden`` (a study sets its default)."""
Epochs = Annotated[int, Field(ge=1, le=100)]
"""Passes over the training set."""
BatchSize = Annotated[int, Field(ge=1, le=10_000)]
"""Samples per update."""
Positive = Annotated[float, Field(gt=0)]
"""A hard-sigmoid half-width or an output gain (weight units)."""
DeadZone = Annotated[float, Field(ge=0, lt=1)]
"""An output-error dead zone: output errors below it are dropped."""


class StudySettings(BaseModel):
    """The settings every study has: data, seeds and the network's training (a study adds its own
    and may change these defaults)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    dataset: str = Field("digits", description="digits | mnist5k | idx:TRAIN_IMG,TRAIN_LBL,TEST_IMG,TEST_LBL")
    hidden: Hidden = Field(100, description="Hidden neurons of the MLP.")
    epochs: Epochs = Field(1, description="Passes over the training set (Lim: 1).")
    batch_size: BatchSize = Field(1, description="Samples per update (Lim: 1, online).")
    seeds: int = Field(3, ge=1, le=1000, description="Trainings per setting.")
    seed_start: int = Field(0, ge=0, le=1_000_000_000, description="First seed.")
    hidden_c: Positive = Field(1.0, description="Hard-sigmoid half-width c (weight units).")
    output_gain: Positive = Field(8.0, description="Softmax input per weight unit.")
    output_dead_zone: DeadZone = Field(0.1, description="Output-error dead zone (0: the literal rule).")
    train_samples: int | None = Field(None, ge=1, description="Use only the first N training samples.")

    @field_validator("dataset")
    @classmethod
    def _loadable(cls, spec: str) -> str:
        """A known dataset whose library is installed, or IDX files that exist: checked here, before
        any worker starts, not in the first worker that loads it."""
        return check_dataset(spec)

    def training_data(self) -> tuple[Dataset, NDArray[np.float64], NDArray[np.int64]]:
        """The dataset, and its training inputs and labels (the first ``train_samples`` when set)."""
        data = load_dataset(self.dataset)
        n = self.train_samples
        return data, data.x_train[:n], data.y_train[:n]


@dataclass(frozen=True)
class Study:
    """One ``hil experiment`` study; see the module docstring."""

    name: str
    settings: type[BaseModel]
    items: Callable[[Any], list[Row]]
    """The work items of a settings instance, setting by setting, seed by seed."""
    run_item: Callable[[Row, Row], Row]
    """``(item, settings as JSON-ready dict) -> raw row``; must be importable by a worker."""
    key: tuple[str, ...]
    """Fields of a raw row that name its setting."""
    describe: Callable[[Row], Row]
    """The setting's columns of the summary, from the first raw row of the setting."""
    columns: Mapping[str, str]
    """The summary's columns in CSV order, with their meanings."""
    setting_text: Callable[[Row], str]
    """The setting part of a printed line of the table."""
    note_text: Callable[[Row], str] = lambda row: ""
    """A remark after a printed line (e.g. the published figure)."""

    def run(
        self,
        settings: BaseModel,
        executor: cf.Executor,
        progress: Callable[[int, int, int], None] | None = None,
        on_row: Callable[[Row], None] | None = None,
    ) -> list[Row]:
        """Every item of ``settings`` on ``executor``; raw rows in item order. ``on_row`` gets each
        raw row as it comes back (in the order they finish)."""
        data = settings.model_dump(mode="json")
        work = [(self.run_item, w, data) for w in self.items(settings)]
        keep = None if on_row is None else (lambda _k, row: on_row(row))
        return map_ordered(executor, run_on_one_blas_thread, work, progress, on_result=keep)

    def raw_fields(self, settings: BaseModel) -> list[str]:
        """The columns of the raw rows (``STUDY_runs.csv``) of ``settings``: its items' fields and
        :data:`RESULT_FIELDS`, sorted."""
        return sorted({k for w in self.items(settings) for k in w} | set(RESULT_FIELDS))

    def summarize(self, raw: Sequence[Row]) -> list[Row]:
        """One row per setting (its columns, then the statistics over seeds), in first-seen order."""
        groups: dict[tuple, list[Row]] = {}
        for r in raw:
            groups.setdefault(tuple(r.get(k, "") for k in self.key), []).append(r)
        table = []
        for rows in groups.values():
            acc = np.array([r["accuracy"] for r in rows])
            table.append(
                {
                    **self.describe(rows[0]),
                    "seeds": len(rows),
                    "accuracy_mean": float(acc.mean()),
                    "accuracy_sd": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                    "accuracy_min": float(acc.min()),
                    "accuracy_max": float(acc.max()),
                    "pulses_mean": float(np.mean([r["pulses"] for r in rows])),
                    "resets_mean": float(np.mean([r["resets"] for r in rows])),
                    "depressions_mean": float(np.mean([r.get("depressions", 0) for r in rows])),
                    "samples_per_s": float(np.mean([r["samples_per_s"] for r in rows])),
                }
            )
        return table

    def write_csv(self, table: Sequence[Row], path: Path) -> Path:
        """The summary as CSV with :attr:`columns` (a temporary file, then renamed)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.columns))
            writer.writeheader()
            for row in table:
                writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})
        tmp.replace(path)
        return path

    def format_table(self, table: Sequence[Row]) -> str:
        """One line per setting, accuracies as ``mean +- sd [min, max] %``."""
        return "\n".join(
            f"{self.setting_text(r)} {r['accuracy_mean']:6.2f} +- {r['accuracy_sd']:5.2f} "
            f"[{r['accuracy_min']:6.2f}, {r['accuracy_max']:6.2f}] % n={r['seeds']}{self.note_text(r)}"
            for r in table
        )
