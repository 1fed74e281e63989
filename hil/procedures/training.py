"""Running one training as a lab procedure: train, keep the result, write it where asked.

``hil train`` and the run-control service both call :func:`run_training`; an
edge only parses its input, adds its observers (a progress line, a database
writer) and presents the :class:`TrainingRun` it gets back. What every edge
needs is here, once:

- every output path is checked before anything is sent (:meth:`RunOutputs.check`);
- the start state (which devices were reset) and the stop conditions are the
  trainer's (:class:`~crossbar_hil.training.config.TrainingConfig`);
- the JSON result is written atomically as soon as the run ends, then the CSV of
  the per-epoch history, both before any plot, so neither a plot error nor a stop
  while plotting can lose them;
- the result carries its timestamps, the package version and the instrument's
  identity, shape and limits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crossbar_hil import __version__
from crossbar_hil.procedures.calibrate import Calibration
from crossbar_hil.procedures.outputs import check_output_dir, check_output_file, write_text_atomic
from crossbar_hil.seam import BackendInfo, CrossbarBackend
from crossbar_hil.seam.backend import abort_warning
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import Outcome, TrainingResult, history_csv_lines
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.stop import StopSignal
from crossbar_hil.training.trainer import Trainer

RESULT_SCHEMA_VERSION = 3
"""Version of the JSON result form. 3: adds ``package_version``, ``started_at``/``ended_at``
(ISO 8601, UTC), ``instrument`` (identity, shape, limits, capabilities), ``start_state`` and
``start_reset_devices``, the outcome ``stalled``, and ``history_epochs`` (the history is thinned to
at most :data:`JSON_HISTORY_LIMIT` records; the CSV keeps every epoch). 2: conductances and
weights are named ``*_siemens`` (version 1, unversioned, wrote ``*_s``)."""

JSON_HISTORY_LIMIT = 1000
"""Most per-epoch records in the JSON result; a longer history is thinned evenly (first and
last epoch kept). At ~2.5 kB a record (reference task) this bounds the JSON near 2.5 MB
whatever the run's length; the CSV export next to it has every epoch."""


@dataclass(frozen=True)
class RunOutputs:
    """Where a run's results go (each optional): the JSON result, the CSV history, the plots."""

    json: Path | None = None
    csv: Path | None = None
    plots: Path | None = None

    @classmethod
    def beside_json(cls, json_path: Path | None, plots: Path | None = None) -> RunOutputs:
        """The JSON at ``json_path`` and the CSV history next to it (same name, ``.csv``)."""
        csv = None
        if json_path is not None and json_path.name and not json_path.is_dir():
            csv = json_path.with_suffix(".csv")
            if csv == json_path:
                csv = json_path.with_name(json_path.name + ".history.csv")
        return cls(json=json_path, csv=csv, plots=plots)

    def check(self) -> None:
        """Raise :class:`~crossbar_hil.procedures.outputs.OutputPathError` (a ValueError) for a path that
        could not be written; call before the first pulse."""
        if self.json is not None:
            check_output_file(self.json, "--json")
        if self.csv is not None:
            check_output_file(self.csv, "CSV history")
        if self.plots is not None:
            check_output_dir(self.plots, "--plots")


@dataclass
class TrainingRun:
    """A finished (or stopped, or faulted) training: its config, the instrument and the result."""

    config: RunConfig
    identity: str
    result: TrainingResult
    info: BackendInfo | None = None
    """The instrument as the run saw it: shape, limits (after the user's), capabilities."""
    started_at: str = ""
    """When the run started (ISO 8601, UTC)."""
    ended_at: str = ""
    """When the run ended (ISO 8601, UTC)."""
    package_version: str = field(default=__version__)
    written: list[Path] = field(default_factory=list)
    """The result files :meth:`write` wrote (a fallback's path where the asked one failed)."""
    write_notes: list[str] = field(default_factory=list)
    """One line per result file written elsewhere than asked, saying where and why."""

    def to_dict(
        self, with_history: bool = True, history_limit: int | None = JSON_HISTORY_LIMIT
    ) -> dict[str, Any]:
        """The JSON form of the run (``hil train --json``, the service's result)."""
        instrument: dict[str, Any] = {"identity": self.identity}
        if self.info is not None:
            instrument.update(self.info.model_dump(mode="json"))
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "package_version": self.package_version,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "config": self.config.model_dump(mode="json"),
            "backend": self.identity,
            "instrument": instrument,
            **self.result.to_dict(with_history, history_limit),
        }

    def to_json(self, history_limit: int | None = JSON_HISTORY_LIMIT) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(history_limit=history_limit), indent=2)

    def write(self, outputs: RunOutputs) -> list[Path]:
        """Write the JSON result, then the CSV history (each atomically); returns what was written.

        A path that passed the check before the run but cannot be written at its end (a full
        disk, a directory gone, a file system that refuses) does not cost the run: the file
        goes to :func:`fallback_path` instead and :attr:`write_notes` says so."""
        pieces: list[tuple[Path | None, Callable[[], str | list[str]]]] = [
            (outputs.json, self.to_json),
            (outputs.csv, lambda: list(history_csv_lines(self.result.history))),
        ]
        for target, text in pieces:
            if target is None:
                continue
            try:
                self.written.append(write_text_atomic(target, text()))
            except OSError as e:
                kept = write_fallback(target, text())
                self.written.append(kept)
                why = e.strerror or type(e).__name__
                self.write_notes.append(
                    f"could not write {target} ({why}); the results are in {kept} instead"
                )
        return self.written


def fallback_path(target: Path, directory: Path) -> Path:
    """Where a result meant for ``target`` goes in ``directory``: its name with the time (UTC)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return directory / f"{target.stem}-{stamp}{target.suffix}"


def write_fallback(target: Path, text: str | list[str]) -> Path:
    """Write ``text`` next to the working directory, else in ``~/.crossbar-hil``, else the temporary
    directory (the first that takes it); returns the path. OSError only when none does."""
    import tempfile

    error: OSError | None = None
    for directory in (Path.cwd(), Path.home() / ".crossbar-hil", Path(tempfile.gettempdir())):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            return write_text_atomic(fallback_path(target, directory), text)
        except OSError as e:
            error = e
    assert error is not None
    raise error


def run_training(
    config: RunConfig,
    *,
    backend: CrossbarBackend,
    observers: Sequence[TrainingObserver] = (),
    stop: StopSignal | None = None,
    on_prepared: Callable[[TrainingResult], None] | None = None,
    outputs: RunOutputs | None = None,
    calibrations: CalibrationLookup | None = None,
) -> TrainingRun:
    """Train ``config.task`` on ``backend`` (already open; closed here, at 0 V, whatever happens).

    ``on_prepared`` is shown the check before training (the start-state resets done,
    feasibility, calibrated gain, notes: :meth:`Trainer.prepare`) before any training
    pulse is sent. Raises ValueError (a :class:`~crossbar_hil.seam.errors.LimitError` or an
    :class:`~crossbar_hil.procedures.outputs.OutputPathError` among them) when the run does
    not fit the backend or an output cannot be written, before anything is sent.
    ``outputs.json`` and ``outputs.csv`` are written when the run ends, whatever
    the outcome; plots are the caller's (:func:`save_plots`), after. When the abort at
    close fails (:attr:`CrossbarBackend.close_warning`), the warning is added to the
    result's ``error_message``: the instrument may not be at 0 V. A KeyboardInterrupt
    is let through once the instrument is at 0 V and the outputs are written; the
    partial :class:`TrainingRun` rides on it as ``training_run``.

    Device curves: those in the config; else, with ``training.curve_source='oracle'``, the
    backend's own (:meth:`CrossbarBackend.device_curve_siemens`: only the emulator's), which the
    run's config then records; else the trainer learns them in situ. The same config gives
    the same run on the emulator and through a driver: the oracle is never used unasked.
    With ``curve_source='auto'`` and ``calibrations`` (the run store's), the instrument's newest
    calibration gives the curves (:func:`with_calibration`), named with its id and age.
    """
    interrupted: KeyboardInterrupt | None = None
    trainer: Trainer | None = None
    try:
        with backend:
            if outputs is not None:
                outputs.check()
            config = with_calibration(with_backend_curve(config, backend), backend, calibrations)
            info = backend.info
            trainer = Trainer(backend, config.task, config.training, observers, stop)
            started = _now()
            try:
                if on_prepared is not None:
                    try:
                        prepared: TrainingResult | None = trainer.prepare()
                    except Exception:  # A stop or a fault while preparing: run() ends with it.
                        prepared = None
                    if prepared is not None:
                        on_prepared(prepared)
                trainer.run()
            except KeyboardInterrupt as e:  # Let through (a script must stay interruptible), results kept.
                interrupted = e
    except KeyboardInterrupt as e:  # While the abort at close awaited its reply (0 V unconfirmed).
        if trainer is None:
            raise
        trainer.result.error_message = "; ".join(
            m for m in (trainer.result.error_message, abort_warning(e)) if m
        )
        interrupted = e
    result = trainer.result
    if interrupted is not None and result.outcome is not Outcome.FAULT:
        # Interrupted in any phase (also after the last epoch, or while ABOR was awaited): stopped.
        if result.outcome is not Outcome.STOPPED:
            why = f"interrupted ({type(interrupted).__name__}: {interrupted}) after the training loop"
            result.error_message = "; ".join(m for m in (why, result.error_message) if m)
            result.diagnosis = result.diagnosis_detail = None  # No advice to train on: it was stopped.
        result.outcome = Outcome.STOPPED
    if backend.close_warning is not None and backend.close_warning not in (result.error_message or ""):
        # The abort at close failed: the instrument may not be at 0 V; the run must say so.
        result.error_message = "; ".join(m for m in (result.error_message, backend.close_warning) if m)
    # The settings the run used: a calibrated gain replaces the requested beta (the result's beta).
    used = config.model_copy(update={"training": trainer.config})
    run = TrainingRun(used, info.identity, result, info, started, _now())
    if outputs is not None:
        run.write(outputs)
    if interrupted is not None:
        interrupted.training_run = run  # type: ignore[attr-defined]
        raise interrupted
    return run


ORACLE_LABEL = "oracle: the emulator's own exact curve (no real instrument has one)"
"""How a run that used the backend's own curve names its curve source."""


def with_backend_curve(config: RunConfig, backend: CrossbarBackend) -> RunConfig:
    """``config`` with the backend's own device curve when it asks for the oracle
    (``training.curve_source='oracle'``) and gives no curve; otherwise unchanged.

    Only an emulator knows its curve; asked of a backend that does not, this raises
    ValueError naming the field, before anything is sent.
    """
    training = config.training
    if training.device_curve_siemens is not None or training.curve_source != "oracle":
        return config
    curve = backend.device_curve_siemens()
    if curve is None:
        raise ValueError(
            f"training.curve_source='oracle': backend {backend.info.identity} knows no device curve of its "
            "own (only an emulator does); use 'auto' (a calibration, else learned in situ) or 'learned'"
        )
    update = {"device_curve_siemens": tuple(float(g) for g in curve), "device_curve_label": ORACLE_LABEL}
    return config.model_copy(update={"training": training.model_copy(update=update)})


CalibrationLookup = Callable[[str], tuple[str, Calibration] | None]
"""The newest calibration (its id and itself) of the instrument with this identity, if any."""


def with_calibration(
    config: RunConfig, backend: CrossbarBackend, calibrations: CalibrationLookup | None
) -> RunConfig:
    """``config`` with the curves of the instrument's newest calibration, when it gives no curve and
    ``training.curve_source`` is 'auto'; unchanged otherwise (then the curves are learned in situ)."""
    training = config.training
    if calibrations is None or training.device_curve_siemens is not None or training.curve_source != "auto":
        return config
    found = calibrations(backend.info.identity)
    if found is None:
        return config
    cal_id, calibration = found
    if (calibration.rows, calibration.cols) != backend.info.shape:
        return config
    update = calibration.training_update(label=f"{calibration.label()}, id {cal_id}")
    return config.model_copy(update={"training": training.model_copy(update=update)})


def save_plots(run: TrainingRun, directory: Path, name: str | None = None) -> dict[str, Path]:
    """The run's figures as PNG files in ``directory``; returns them by name. Each names the run
    (``name``: its id or result file), its device, seed, rule, preset, beta and start."""
    from crossbar_hil.reports.plots import minute_utc, run_caption, save_all

    caption = run_caption(run.config, run=name, date=minute_utc(run.started_at), beta=run.result.beta)
    return save_all(run.result, run.config.task, run.config.training, directory, caption=caption)


def what_to_try(run: TrainingRun) -> list[str]:
    """Suggestions for a run that ended without converging (empty otherwise), one per line.

    They follow the run's diagnosis when it has one, so the advice never contradicts
    the reason the summary gives.
    """
    result, cfg = run.result, run.config.training
    if not result.outcome.unconverged:
        return []
    if cfg.gain == "calibrated":
        larger_gain = (
            f"a smaller --gain-fraction, e.g. {cfg.gain_fraction / 2:g} (now {cfg.gain_fraction:g}): the "
            f"calibrated gain (beta {cfg.beta:.3g} 1/A) then asks less of the margin the devices can reach"
        )
        if result.curve_source is None:
            larger_gain = (
                "device curves, so the gain can be calibrated and the planned rule plan: --device-curve "
                "learned (the default), or a calibration from hil characterize"
            )
    else:
        larger_gain = (
            f"a larger gain, e.g. --beta {3 * cfg.beta:.3g} (now {cfg.beta:.3g} 1/A), or --gain calibrated: "
            "the bands are then met with smaller weights, before the pulsed devices saturate"
        )
    other_draw = (
        "another device-variation seed (--seed) or device; the README's 'What to expect' has the odds"
    )
    diagnosis = result.diagnosis
    if diagnosis is None:
        diagnosis = (
            "saturated_pair" if result.outcome is Outcome.STALLED or result.looks_saturated(cfg) else None
        )
    tips = {
        "infeasible_draw": [f"{other_draw}: no gain lets these devices meet the bands"],
        "gain_too_low": [larger_gain, other_draw],
        "saturated_pair": [
            larger_gain,
            f"wider bands, e.g. --f-plus {cfg.f_plus / 2:.2g} --f-minus {cfg.f_minus / 2:.2g}",
            "--rule method_b: it re-programmes a pair whose device has saturated",
            other_draw,
        ],
    }.get(diagnosis or "")
    if tips is None:  # overshot, epoch_limit or unknown: the devices were still moving
        tips = [f"more epochs, e.g. --max-epochs {2 * max(cfg.max_epochs, 1)}: the devices were still moving"]
        tips.append(other_draw)
    return tips


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
