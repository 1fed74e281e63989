"""What a run records: one :class:`EpochRecord` per epoch, and the final :class:`TrainingResult`.

Arrays are numpy in memory; :meth:`to_dict` gives plain JSON-ready lists for the
CLI's JSON output, a database or a web stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    computed_field,
    field_serializer,
)

from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.network import in_band
from crossbar_hil.training.stop import unmoved

if TYPE_CHECKING:
    from crossbar_hil.training.feasibility import FeasibilityReport


class Outcome(StrEnum):
    """How a run ended, with the run status it gives and whether the run ended by itself.

    The values are the strings of the JSON output, the run store and the API; each member's
    meaning is its row in :data:`OUTCOME_MEANINGS`.
    """

    CONVERGED = "converged"
    """Every training pattern in its band."""
    MAX_EPOCHS = "max_epochs"
    """The epoch limit."""
    INFEASIBLE = "infeasible"
    """Ended early: from the devices' state no reachable weights meet the bands (decided with the
    device curve), so more pulses could not help."""
    STALLED = "stalled"
    """No device moved for ``patience`` epochs."""
    STOPPED = "stopped"
    """A stop request (Ctrl-C, SIGTERM, an API call)."""
    FAULT = "fault"
    """A fault (the error message says which)."""

    @property
    def status(self) -> str:
        """The final :class:`~crossbar_hil.runs.status.RunStatus` value of a run ending so."""
        return OUTCOME_MEANINGS[self][0]

    @property
    def finished(self) -> bool:
        """True when the run ended by itself (not stopped, no fault): its result is complete."""
        return OUTCOME_MEANINGS[self][1]

    @property
    def unconverged(self) -> bool:
        """True for a run that ended by itself without converging: it gets a diagnosis and advice."""
        return self.finished and self is not Outcome.CONVERGED


OUTCOME_MEANINGS: dict[Outcome, tuple[str, bool]] = {
    Outcome.CONVERGED: ("converged", True),
    Outcome.MAX_EPOCHS: ("not_converged", True),
    Outcome.INFEASIBLE: ("not_converged", True),
    Outcome.STALLED: ("not_converged", True),
    Outcome.STOPPED: ("stopped", False),
    Outcome.FAULT: ("failed", False),
}
"""Per outcome: (the run status it gives, whether the run ended by itself)."""


Diagnosis = Literal["infeasible_draw", "gain_too_low", "saturated_pair", "overshot", "epoch_limit"]
"""Why a run ended unconverged (see :meth:`crossbar_hil.training.trainer.Trainer.diagnose`)."""


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def _matrix_schema(item: dict[str, Any]) -> WithJsonSchema:
    return WithJsonSchema({"type": "array", "items": {"type": "array", "items": item}})


_AS_LISTS = PlainSerializer(lambda a: a.tolist(), return_type=list[Any])
"""A numpy array written out as nested lists."""

FloatMatrix = Annotated[
    NDArray[np.float64],
    PlainValidator(lambda v: np.asarray(v, dtype=float)),
    _AS_LISTS,
    _matrix_schema({"type": "number"}),
]
"""A 2-D float array in memory (a conductance map, currents, activations), nested lists in JSON."""
BoolMatrix = Annotated[
    NDArray[np.bool_],
    PlainValidator(lambda v: np.asarray(v, dtype=bool)),
    _AS_LISTS,
    _matrix_schema({"type": "boolean"}),
]
"""A 2-D boolean array in memory (which outputs are in their band), nested lists in JSON."""


class EpochRecord(BaseModel):
    """State at the start of an epoch, and the update sent in it: one record, declared once, for
    the trainer, the run store, ``hil train --json`` and the service (``GET /runs/{id}/epochs``,
    the ``epoch`` events).

    Epoch 0 is the initial state. ``conductances_siemens`` and the activations are
    measured before the epoch's update; the counts say what the update then
    sent (all 0 in the final epoch of a converged run): ``pulses`` every
    programming pulse, ``verify_pulses`` those of them sent in read-verify loops
    (re-programming a pair), ``reset_devices`` the (row, col) of each device reset,
    in order (:attr:`resets` counts them), ``reads`` the update's own
    conductance reads, and ``instrument_time_s`` (s) the pulse widths plus the
    reset time of each reset. Arrays are numpy in memory and nested lists in JSON
    (:meth:`to_dict`); ``misses``, ``converged`` and ``resets`` are derived, and written
    out with the record.
    """

    # Derived fields read back are recomputed; a NaN error would not pass the JSON of the service.
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    epoch: int = Field(description="Epoch number; 0 is the state before any update.")
    conductances_siemens: FloatMatrix = Field(
        description="Every device's conductance (S), read before the epoch's update: rows x columns."
    )
    weights_siemens: FloatMatrix = Field(
        description="The logic weights (S), outputs x inputs: each output's G+ minus G- column per input row."
    )
    currents_a: FloatMatrix = Field(description="Each training pattern's output currents (A).")
    activations: FloatMatrix = Field(description="Each training pattern's outputs, tanh(beta * I) (no unit).")
    in_band: BoolMatrix = Field(description="Per (pattern, output): inside its target band.")
    error: float = Field(description="Half the mean squared error of the outputs against their targets.")
    pulses: int = Field(0, description="Programming pulses the epoch's update sent.")
    reset_devices: tuple[tuple[int, int], ...] = Field(
        (), description="(row, col) of each device reset in the update, in order."
    )
    verify_pulses: int = Field(0, description="Of the pulses, those sent in read-verify loops.")
    reads: int = Field(0, description="The update's own conductance reads.")
    instrument_time_s: float = Field(
        0.0, description="Instrument time of the update (s): pulse widths plus the reset time of each reset."
    )

    @field_serializer("reset_devices")
    def _pairs(self, pairs: tuple[tuple[int, int], ...]) -> list[list[int]]:
        return [list(d) for d in pairs]

    @computed_field(description="Device resets sent in this epoch's update.")  # type: ignore[prop-decorator]
    @property
    def resets(self) -> int:
        """Device resets sent in this epoch's update."""
        return len(self.reset_devices)

    @computed_field(description="(pattern, output) pairs outside their target band.")  # type: ignore[prop-decorator]
    @property
    def misses(self) -> int:
        """(pattern, neuron) pairs outside their target band."""
        return int(np.size(self.in_band) - np.count_nonzero(self.in_band))

    @computed_field(description="Every training pattern inside its target band.")  # type: ignore[prop-decorator]
    @property
    def converged(self) -> bool:
        """Every training pattern inside its target band."""
        return bool(np.all(self.in_band))

    @property
    def patterns_in_band(self) -> int:
        """Training patterns with every neuron inside its target band."""
        return int(np.count_nonzero(np.all(np.atleast_2d(self.in_band), axis=-1)))

    @property
    def n_patterns(self) -> int:
        """Training patterns measured in this epoch."""
        return int(np.atleast_2d(self.in_band).shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (plain lists and numbers; the derived fields included)."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochRecord:
        """The record :meth:`to_dict` described (derived fields, ``misses``, ``converged`` and
        ``resets``, are recomputed; counts missing from an older form are 0)."""
        return cls.model_validate(data)


@dataclass(frozen=True)
class Evaluation:
    """Outputs of the network on a set of patterns, measured on the backend."""

    patterns: list[str]
    targets: NDArray[np.int8]
    activations: NDArray[np.float64]
    in_band: NDArray[np.bool_]

    @property
    def correct(self) -> NDArray[np.bool_]:
        """Per pattern: every neuron on the right side of 0."""
        if self.targets.size == 0:
            return np.zeros(0, dtype=bool)
        return np.all((self.activations > 0) == (self.targets == 1), axis=1)

    @property
    def accuracy(self) -> float:
        """Share of patterns classified correctly by sign (nan for an empty set)."""
        return float(np.mean(self.correct)) if self.correct.size else float("nan")

    @property
    def output_accuracy(self) -> float:
        """Share of (pattern, neuron) outputs on the right side of 0 (nan for an empty set)."""
        if self.targets.size == 0:
            return float("nan")
        return float(np.mean((self.activations > 0) == (self.targets == 1)))

    @property
    def in_band_accuracy(self) -> float:
        """Share of patterns with every neuron inside its target band (nan for an empty set)."""
        if self.targets.size == 0:
            return float("nan")
        return float(np.mean(np.all(self.in_band, axis=1)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "patterns": self.patterns,
            "targets": _plain(self.targets),
            "activations": _plain(self.activations),
            "correct": _plain(self.correct),
            "accuracy": self.accuracy,
            "output_accuracy": self.output_accuracy,
            "in_band_accuracy": self.in_band_accuracy,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], config: TrainingConfig) -> Evaluation:
        """The evaluation :meth:`to_dict` described; the bands come from the run's ``config``."""
        targets = np.asarray(data["targets"], dtype=np.int8)
        f = np.asarray(data["activations"], dtype=float)
        if targets.size == 0:
            targets, f = targets.reshape(0, 0), f.reshape(0, 0)
        return cls(list(data["patterns"]), targets, f, in_band(f, targets, config))


@dataclass
class TrainingResult:
    """How a run ended and everything it recorded."""

    outcome: Outcome
    history: list[EpochRecord] = field(default_factory=list)
    train: Evaluation | None = None
    test: Evaluation | None = None
    error_message: str | None = None
    beta: float = float("nan")
    """The gain used (1/A): the configured one, or the calibrated one."""
    feasibility: FeasibilityReport | None = None
    """Before training: could reachable weights meet the bands at ``beta``? (None without a curve.)"""
    margin_any_gain_a: float | None = None
    """Largest smallest margin ``s_n I_n`` the devices could reach (A); <= 0: no gain helps."""
    diagnosis: Diagnosis | None = None
    """Why the run ended unconverged: the likely reason."""
    diagnosis_detail: str | None = None
    notes: list[str] = field(default_factory=list)
    """What the check before training did (calibration, fallbacks)."""
    start_state: str | None = "as_is"
    """How the devices started: "reset" (the devices in ``start_reset_devices`` were reset first) or
    "as_is" (from where an earlier run or experiment left them); None when not recorded (a stored
    run whose process ended without recording its end)."""
    end_recorded: bool = True
    """False for a stored run whose process ended without recording its end (killed, its recording
    lost): its start, its evaluations and whether its outputs were left at 0 V are not known."""
    start_reset_devices: list[tuple[int, int]] = field(default_factory=list)
    """(row, col) of every device reset before epoch 0, in order."""
    stall_rel_tol: float = TrainingConfig.model_fields["stall_rel_tol"].default
    """Relative change of a conductance that counts as moving (the run's
    :attr:`TrainingConfig.stall_rel_tol`), for :meth:`stalled_epochs`."""

    curve_source: str | None = None
    """Where the device curves of the run came from ("learned in situ", "calibration ... of DATE",
    "file ...", "oracle: ..."); None when the run used none."""
    probe_pulses: int = 0
    """Pulses sent before epoch 0 to learn the device curves (curves learned in situ)."""
    probe_resets: int = 0
    """Probed devices reset again before epoch 0 (the learned plan wanted them at reset)."""
    probe_time_s: float = 0.0
    """Instrument time of :attr:`probe_pulses` and :attr:`probe_resets` (s)."""

    def __post_init__(self) -> None:
        self.outcome = Outcome(self.outcome)  # Also from its JSON string; a ValueError names it.

    @property
    def converged(self) -> bool:
        """True when every training pattern reached its band."""
        return self.outcome is Outcome.CONVERGED

    @property
    def epochs(self) -> int:
        """Update epochs performed (the epoch index of the last record)."""
        return self.history[-1].epoch if self.history else 0

    @property
    def total_pulses(self) -> int:
        """Pulses sent over the run."""
        return sum(r.pulses for r in self.history)

    @property
    def total_resets(self) -> int:
        """Device resets over the run."""
        return sum(r.resets for r in self.history)

    @property
    def total_verify_pulses(self) -> int:
        """Read-verify pulses over the run (included in :attr:`total_pulses`)."""
        return sum(r.verify_pulses for r in self.history)

    @property
    def instrument_time_s(self) -> float:
        """Instrument time of the run's pulses and resets (s)."""
        return float(sum(r.instrument_time_s for r in self.history))

    def stalled_epochs(self) -> int:
        """Trailing epochs in which pulses were sent yet no conductance moved by ``stall_rel_tol``.

        Sign that the pulsed devices are saturated: with potentiation only, more
        epochs of the same rule cannot help (:meth:`looks_saturated`).
        """
        n = 0
        for before, after in zip(self.history[-2::-1], self.history[:0:-1], strict=False):
            reads = np.stack([before.conductances_siemens, after.conductances_siemens])
            if before.pulses == 0 or not np.all(unmoved(reads, self.stall_rel_tol)):
                break
            n += 1
        return n

    def looks_saturated(self, config: TrainingConfig) -> bool:
        """True when the last ``config.saturation_epochs`` epochs (or more) sent pulses that moved
        no conductance: the pulsed devices look saturated."""
        return self.stalled_epochs() >= config.saturation_epochs

    def to_dict(self, with_history: bool = True, history_limit: int | None = None) -> dict[str, Any]:
        """JSON-ready view (the history can be left out for a short summary).

        A history longer than ``history_limit`` records is thinned to at most that
        many (evenly spaced, always with the first and the last epoch), so a long run
        stays small on disk; ``history_epochs`` says how many there were (the CSV
        export, :func:`history_csv`, keeps every epoch).
        """
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "converged": self.converged,
            "beta": self.beta,
            "feasible": None if self.feasibility is None else self.feasibility.feasible,
            "feasibility": None if self.feasibility is None else self.feasibility.explain(),
            "margin_any_gain_a": self.margin_any_gain_a,
            "diagnosis": self.diagnosis,
            "diagnosis_detail": self.diagnosis_detail,
            "notes": list(self.notes),
            "epochs": self.epochs,
            "total_pulses": self.total_pulses,
            "total_resets": self.total_resets,
            "total_verify_pulses": self.total_verify_pulses,
            "instrument_time_s": self.instrument_time_s,
            "stalled_epochs": self.stalled_epochs(),
            "error_message": self.error_message,
            "start_state": self.start_state,
            "end_recorded": self.end_recorded,
            "start_reset_devices": [list(d) for d in self.start_reset_devices],
            "curve_source": self.curve_source,
            "probe_pulses": self.probe_pulses,
            "probe_resets": self.probe_resets,
            "probe_time_s": self.probe_time_s,
            "train": _plain(self.train),
            "test": _plain(self.test),
        }
        if with_history:
            kept = thinned(len(self.history), history_limit)
            out["history_epochs"] = len(self.history)
            out["history"] = [self.history[i].to_dict() for i in kept]
        return out

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], config: TrainingConfig, history: Sequence[EpochRecord] | None = None
    ) -> TrainingResult:
        """The result :meth:`to_dict` described, with ``history`` given or read from ``data``.

        ``config`` is the run's training config (it defines the target bands of the evaluations).
        The feasibility report is not rebuilt (the dict holds only its explanation).
        """
        if history is None:
            history = [EpochRecord.from_dict(r) for r in data.get("history", ())]
        evaluations = {
            split: None if data.get(split) is None else Evaluation.from_dict(data[split], config)
            for split in ("train", "test")
        }
        return cls(
            Outcome(data["outcome"]),
            list(history),
            error_message=data.get("error_message"),
            beta=float(data["beta"]) if data.get("beta") is not None else float("nan"),
            margin_any_gain_a=data.get("margin_any_gain_a"),
            diagnosis=data.get("diagnosis"),
            diagnosis_detail=data.get("diagnosis_detail"),
            notes=list(data.get("notes", [])),
            start_state=data.get("start_state", "as_is"),
            end_recorded=bool(data.get("end_recorded", True)),
            start_reset_devices=[(int(r), int(c)) for r, c in data.get("start_reset_devices", ())],
            curve_source=data.get("curve_source"),
            probe_pulses=int(data.get("probe_pulses", 0)),
            probe_resets=int(data.get("probe_resets", 0)),
            probe_time_s=float(data.get("probe_time_s", 0.0)),
            train=evaluations["train"],
            test=evaluations["test"],
            stall_rel_tol=config.stall_rel_tol,
        )


def thinned(n: int, limit: int | None) -> list[int]:
    """Indices of at most ``limit`` of ``n`` records, evenly spaced, first and last included."""
    if limit is None or n <= limit:
        return list(range(n))
    if limit < 2:
        return [n - 1][:limit]
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


def history_csv(history: list[EpochRecord]) -> str:
    """Every epoch of ``history`` as CSV text (see :func:`history_csv_lines`)."""
    return "".join(history_csv_lines(history))


def history_csv_lines(history: list[EpochRecord]) -> Iterator[str]:
    """Every epoch of ``history`` as CSV lines (with their newline): one row per epoch.

    Columns: epoch, error, pulses, patterns_in_band, n_patterns, pairs_in_band, n_pairs,
    then ``g_<row>_<col>_siemens`` for every device and ``f_<pattern>_<neuron>`` for every
    activation. Numbers are written with 17 significant digits (exact round trip).
    A generator, so a long history is written without building the whole text.
    """
    if not history:
        yield "epoch\n"
        return
    first = history[0]
    g_cols = [f"g_{r}_{c}_siemens" for r, c in np.ndindex(first.conductances_siemens.shape)]
    f_cols = [f"f_{p}_{i}" for p, i in np.ndindex(np.atleast_2d(first.activations).shape)]
    header = ["epoch", "error", "pulses", "patterns_in_band", "n_patterns", "pairs_in_band", "n_pairs"]
    yield ",".join([*header, *g_cols, *f_cols]) + "\n"
    for r in history:
        n_pairs = int(np.size(r.in_band))
        head = [r.epoch, repr(float(r.error)), r.pulses, r.patterns_in_band, r.n_patterns]
        head += [n_pairs - r.misses, n_pairs]
        values = np.concatenate([np.ravel(r.conductances_siemens), np.ravel(r.activations)])
        yield ",".join([*map(str, head), *(f"{v:.17g}" for v in values)]) + "\n"


def first_difference(a: TrainingResult, b: TrainingResult) -> str | None:
    """Where run ``a`` first differs from run ``b``, bit for bit; None when they are identical.

    Compares every field of every :class:`EpochRecord` in epoch order (conductances
    in S, currents in A, activations, bands, error, pulses), then the number of
    epochs, the outcome and the train/test evaluations. NaN equals NaN. The error
    message is not compared: it names the transport. Used to check that a run
    through a driver reproduces the same run on the emulator.
    """
    for x, y in zip(a.history, b.history, strict=False):
        if (diff := _record_difference(x, y)) is not None:
            return f"epoch {x.epoch}: {diff}"
    if len(a.history) != len(b.history):
        return f"history: {len(a.history)} epochs != {len(b.history)} epochs"
    if a.outcome != b.outcome:
        return f"outcome: {a.outcome!r} != {b.outcome!r}"
    for split in ("train", "test"):
        ea, eb = getattr(a, split), getattr(b, split)
        if (ea is None) != (eb is None):
            return f"{split}: {_presence(ea)} != {_presence(eb)}"
        if ea is not None and (diff := _record_difference(ea, eb)) is not None:
            return f"{split}: {diff}"
    return None


def _record_difference(x: EpochRecord | Evaluation, y: EpochRecord | Evaluation) -> str | None:
    """The first field of two records of the same type that differs, described; or None."""
    names = list(EpochRecord.model_fields) if isinstance(x, EpochRecord) else [f.name for f in fields(x)]
    for name in names:
        u, v = np.asarray(getattr(x, name)), np.asarray(getattr(y, name))
        if u.shape != v.shape:
            return f"{name}: shape {u.shape} != {v.shape}"
        same = u == v
        if np.issubdtype(u.dtype, np.inexact) and np.issubdtype(v.dtype, np.inexact):
            same = same | (np.isnan(u) & np.isnan(v))
        if not np.all(same):
            where = tuple(int(i) for i in np.argwhere(~np.asarray(same))[0])
            at = f"[{', '.join(map(str, where))}]" if where else ""
            return f"{name}{at}: {u[where]!r} != {v[where]!r}"
    return None


def _presence(evaluation: Evaluation | None) -> str:
    return "missing" if evaluation is None else "present"
