"""In-situ training of the differential perceptron on any :class:`CrossbarBackend`.

The trainer uses only backend operations: forward passes are VMMs on the
crossbar (:meth:`~CrossbarBackend.apply`), updates are pulses, and one
conductance read per epoch feeds the history. With the Manhattan rule (batch)
one epoch costs one VMM per training pattern, one batched pulse command and
one read-all; online updates add a VMM per pattern, and methods a, b, c add
resets and read-verify reads when a device saturates.

Start: by default (``start_state="reset"``) every device the task uses is reset
first, where the backend supports reset, so a run never starts from an earlier
run's devices (and the device curve's position 0 is where they are); the result
lists the devices reset. A stop or fault during these resets ends the run with
it (aborted, nothing more sent), also when :meth:`Trainer.prepare` was called
first. The device curve counts pulses from reset: without a reset start
(``start_state="as_is"`` or a backend without reset) the planned rule and the
calibrated gain are refused and the feasibility verdict is left unknown.

Before the first epoch (:meth:`Trainer.prepare`), given a device curve
(``TrainingConfig.device_curve_siemens``), the trainer reads the crossbar and
decides what the devices can reach (:mod:`crossbar_hil.training.feasibility`): with
``gain="calibrated"`` it sets the gain from the largest reachable margin, and it
records whether the bands can be met at all and, if not, which neuron and
pattern fall short.

Ending: every training pattern inside its band (converged), the epoch limit,
the rule giving up (``infeasible``: no reachable weights meet the bands), devices
that stopped moving for ``patience`` epochs (``stalled``, judged from read-back),
a stop request (checked before any pulse or reset is sent), or a fault. On a stop
or a fault the backend is aborted (0 V) and the history recorded so far is kept.
A run that ends unconverged carries its likely reason (:meth:`Trainer.diagnose`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.seam import CrossbarBackend, Pulse
from crossbar_hil.seam.backend import abort_warning
from crossbar_hil.seam.errors import RunStopped
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.curves import (
    LEARNED_LABEL,
    CurveModel,
    FixedCurves,
    LearnedCurves,
    device_curves,
    measure_devices,
)
from crossbar_hil.training.device_access import DeviceAccess, column_currents
from crossbar_hil.training.feasibility import NeedSpec, check_feasibility
from crossbar_hil.training.history import Diagnosis, EpochRecord, Evaluation, Outcome, TrainingResult
from crossbar_hil.training.network import (
    activation,
    in_band,
    logic_currents,
    logic_weights,
    minus_col,
    plus_col,
    target_values,
)
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.rules import EpochContext, make_rule
from crossbar_hil.training.rules.sign_update import manhattan_signs
from crossbar_hil.training.start import reset_devices, task_devices
from crossbar_hil.training.stop import StallWatch, StopSignal
from crossbar_hil.training.task import Task

log = logging.getLogger(__name__)

PROBE_ROUNDS = 2
"""Rounds of probe pulses that learn the curves before training (curves learned in situ)."""
UNDO_PROBES_BELOW = 0.8
"""Probed devices are reset again when the margin without that is under this share of the margin with."""


class Trainer:
    """Runs one training of ``task`` on ``backend`` with ``config``."""

    def __init__(
        self,
        backend: CrossbarBackend,
        task: Task,
        config: TrainingConfig | None = None,
        observers: Iterable[TrainingObserver] = (),
        stop: StopSignal | None = None,
    ) -> None:
        self.backend = backend
        self.task = task
        self.config = config or TrainingConfig()
        self.observers = list(observers)
        self.stop = stop or StopSignal()
        info = backend.info
        if task.n_inputs > info.rows:
            raise ValueError(f"task has {task.n_inputs} inputs but the crossbar has {info.rows} rows")
        if 2 * task.n_outputs > info.cols:
            raise ValueError(
                f"task has {task.n_outputs} neurons, needing {2 * task.n_outputs} columns; "
                f"the crossbar has {info.cols}"
            )
        # Everything the run will send is checked once here, before the first operation.
        info.limits.check_amplitude("training.pulse_v", self.config.pulse_v)
        info.limits.check_width("training.pulse_width_s", self.config.pulse_width_s)
        info.limits.check_read_v("training.read_v", self.config.read_v)
        info.limits.check_read_v("task.v_low", task.v_low)
        info.limits.check_read_v("task.v_high", task.v_high)
        self._row_v = self._pad(task.voltages("train"))
        self._targets = task.targets("train")
        self._from_reset = self.config.start_state == "reset" and info.supports_reset
        self.rule = make_rule(self.config)
        self._check_start(info.identity)
        self.rule.check_backend(backend)
        self._prepared: TrainingResult | None = None
        self._prepare_error: BaseException | None = None
        self.result = TrainingResult(
            outcome=Outcome.MAX_EPOCHS, beta=self.config.beta, stall_rel_tol=self.config.stall_rel_tol
        )
        """The run's result as it is recorded (also after a KeyboardInterrupt got through)."""

    # ------------------------------------------------------------------ before training
    def prepare(self) -> TrainingResult:
        """Read the crossbar; with a device curve, calibrate the gain and check feasibility.

        First the start state: with ``start_state="reset"`` (where the backend has a
        reset) every device of the task is reset, the stop checked before each; then
        nothing but one conductance read. Returns the (empty) result that :meth:`run`
        fills, carrying ``beta``, ``feasibility``, ``margin_any_gain_a``, ``notes`` and
        the devices reset; call it before :meth:`run` to show the verdict before any
        training pulse is sent (:meth:`run` calls it otherwise). The device curve's
        position 0 is the reset state.
        """
        if self._prepare_error is not None:  # Failed once: a second call ends with the same error.
            raise self._prepare_error
        if self._prepared is not None:
            return self._prepared
        try:
            self._prepared = self._prepare()
        except BaseException as e:
            self._prepare_error = e
            raise
        return self._prepared

    def _check_start(self, identity: str) -> None:
        """Refuse what assumes devices at position 0 when the run does not start from reset.

        The device curve counts pulses from reset: the planned rule and the calibrated
        gain place the devices on it at position 0, which holds only after the start
        reset. Raises ValueError naming the fields, before anything is sent.
        """
        cfg = self.config
        if self._from_reset or cfg.device_curve_siemens is None:
            return  # learned curves without a reset start fall back to no curve, with a note
        why = (
            "training.start_state='as_is'"
            if cfg.start_state != "reset"
            else f"backend {identity} has no device reset"
        )
        uses = [
            f
            for f, on in (
                (f"training.rule={cfg.rule!r}", self.rule.uses_device_curve),
                ("training.gain='calibrated'", cfg.gain == "calibrated"),
            )
            if on
        ]
        if uses:
            raise ValueError(
                f"{' and '.join(uses)} with training.device_curve_siemens assume every device starts at "
                f"the curve's position 0 (reset), but {why}: use start_state='reset' on a backend with "
                "reset, or rule='manhattan' (or another rule) with gain='fixed'"
            )

    def _curves_wanted(self) -> bool:
        """The run uses device curves: the planned rule or the calibrated gain, or a curve given."""
        cfg = self.config
        return cfg.device_curve_siemens is not None or self.rule.uses_device_curve or cfg.gain == "calibrated"

    def _prepare(self) -> TrainingResult:
        result = self.result
        if self._from_reset:
            result.start_state = "reset"
            reset_devices(self.backend, self.task, self.stop, done=result.start_reset_devices)
        cfg = self.config
        given = cfg.device_curve_siemens is not None
        if not given and cfg.curve_source == "oracle":
            raise ValueError(
                "training.curve_source='oracle' needs the backend's own device curve, which only an "
                "emulator knows: give training.device_curve_siemens, or curve_source 'auto' or 'learned'"
            )
        learn = not given and cfg.curve_source != "none" and self._curves_wanted()
        if not given and (not learn or not self._from_reset):
            why = (
                "curve_source='none'"
                if cfg.curve_source == "none"
                else "learning curves in situ needs the start reset"
            )
            fallbacks = self.rule.notes_without_curve()
            result.notes += [n.replace("no device curve", f"no device curve ({why})", 1) for n in fallbacks]
            if cfg.gain == "calibrated":
                result.notes.append(
                    f"no device curve ({why}): gain not calibrated, beta = {cfg.beta:g} 1/A as given"
                )
            return result
        if not self._from_reset:
            result.notes.append(
                "feasibility unknown: the devices did not start from reset, so their positions on the "
                "device curve are not known"
            )
            return result
        g = self.backend.read_conductances(cfg.read_v)
        positions = np.zeros(g.shape, dtype=np.int64)
        model: CurveModel
        if given:
            assert cfg.device_curve_siemens is not None
            label = cfg.device_curve_label or "given"
            model = FixedCurves(device_curves(cfg.device_curve_siemens, g.shape), label)
        else:
            learned = LearnedCurves(g)
            g = self._probe(learned, positions, g)
            model = learned
            need = NeedSpec(np.inf, cfg.f_plus, cfg.f_minus)
            if (
                self.backend.info.supports_reset
                and not check_feasibility(
                    self.task, need, g, learned.curves(), positions, can_reset=False
                ).feasible
            ):
                model, g = self._measure_curves(learned, positions)
        result.curve_source = model.label
        result.notes.append(f"device curves: {model.label}")
        curves = model.curves()
        at_any_gain = check_feasibility(
            self.task, NeedSpec(np.inf, cfg.f_plus, cfg.f_minus), g, curves, positions, can_reset=False
        )
        result.margin_any_gain_a = at_any_gain.margin_a
        if cfg.gain == "calibrated":
            if at_any_gain.margin_a > 0:
                beta = float(_band_edge(cfg) / (cfg.gain_fraction * at_any_gain.margin_a))
                self.config = cfg = cfg.model_copy(update={"beta": beta})
                self.rule = make_rule(cfg)
                self.rule.check_backend(self.backend)
                result.notes.append(
                    f"gain calibrated: the devices can reach a margin of {at_any_gain.margin_a * 1e9:.1f} "
                    f"nA; beta = {beta:.4g} 1/A makes the bands need {cfg.gain_fraction:.0%} of it"
                )
            else:
                result.notes.append(
                    f"gain not calibrated (no positive margin is reachable): beta = {cfg.beta:g} 1/A"
                )
        start = getattr(self.rule, "start", None)
        if start is not None:
            start(model, positions)
        result.beta = cfg.beta
        result.feasibility = check_feasibility(
            self.task, NeedSpec(cfg.beta, cfg.f_plus, cfg.f_minus), g, curves, positions, can_reset=False
        )
        return result

    def _probe(self, model: LearnedCurves, positions: NDArray[np.int64], g: NDArray[np.float64]) -> NDArray:
        """Learn the curves of the devices the first plan moves: one pulse each, then one read.

        The plan from the prior (the built-in model scaled to each device's reset level)
        names the devices to move; each gets one pulse (the first pulse from reset is the
        largest step of these devices) and the read after it fits its scale, and corrects
        the prior of the others. Up to :data:`PROBE_ROUNDS` rounds, while the re-made plan
        moves devices not yet probed. ``positions`` is updated in place; returns the last
        read (S). The pulses are counted in the result (:attr:`TrainingResult.probe_pulses`).
        """
        cfg, result = self.config, self.result
        need = NeedSpec(np.inf, cfg.f_plus, cfg.f_minus)
        for _ in range(PROBE_ROUNDS):
            plan = check_feasibility(self.task, need, g, model.curves(), positions, can_reset=False)
            wanted = np.zeros(g.shape, dtype=bool)
            for n in plan.neurons:
                for j, (p_plus, p_minus) in enumerate(n.positions):
                    wanted[j, plus_col(n.neuron)] |= p_plus > positions[j, plus_col(n.neuron)]
                    wanted[j, minus_col(n.neuron)] |= p_minus > positions[j, minus_col(n.neuron)]
            todo = wanted & ~model.observed
            if not todo.any():
                break
            device = DeviceAccess(self.backend, self.stop, cfg.read_v, cfg.reset_time_s)
            probes = [Pulse(int(r), int(c), cfg.pulse_v, cfg.pulse_width_s) for r, c in np.argwhere(todo)]
            device.send(probes)
            result.probe_pulses += device.pulses
            result.probe_time_s += device.instrument_time_s
            positions[todo] += 1
            g = self.backend.read_conductances(cfg.read_v)
            model.observe(positions, g)
        return self._undo_probes(model, positions, g)

    def _measure_curves(
        self, learned: LearnedCurves, positions: NDArray[np.int64]
    ) -> tuple[FixedCurves, NDArray[np.float64]]:
        """Measure the task's devices when the learned curves leave no margin, then reset them again.

        The learned curve is the built-in model's shape; a device whose steps differ from it
        (a noisy, non-monotone trace) can make a feasible draw look infeasible. Rather than
        give up, every device of the task is measured as a calibration would (reset, one pulse
        at a time with a read after each, :func:`measure_devices`), then reset to the start.
        Counted as probe pulses and resets. Returns the measured curves and the read after.
        """
        cfg, result = self.config, self.result
        devices = task_devices(self.task)
        n = learned.n_positions - 1
        measured = measure_devices(
            self.backend, devices, n, cfg.pulse_v, cfg.pulse_width_s, cfg.read_v, self.stop
        )
        curves = learned.curves().copy()
        for (r, c), g_dev in zip(devices, measured, strict=True):
            curves[r, c] = g_dev - g_dev[0]
        reset_devices(self.backend, self.task, self.stop)
        positions[:] = 0
        result.probe_pulses += n * len(devices)
        result.probe_resets += 2 * len(devices)
        result.probe_time_s += len(devices) * (n * cfg.pulse_width_s + 2 * cfg.reset_time_s)
        label = f"{LEARNED_LABEL} (measured: the model's curves left no margin)"
        return FixedCurves(curves, label), self.backend.read_conductances(cfg.read_v)

    def _undo_probes(
        self, model: LearnedCurves, positions: NDArray[np.int64], g: NDArray[np.float64]
    ) -> NDArray:
        """Reset probed devices the learned plan wants lower, when that buys much margin.

        The prior can send a probe to a device that, its curve learned, is better left at
        reset; on a backend with reset the device is reset (the scale learned stays) when
        the margin reachable without it is under :data:`UNDO_PROBES_BELOW` of the margin
        with it. Counted in :attr:`TrainingResult.probe_resets`. Returns the read (S) after.
        """
        cfg, result = self.config, self.result
        if not self.backend.info.supports_reset or not positions.any():
            return g
        need = NeedSpec(np.inf, cfg.f_plus, cfg.f_minus)
        kept = check_feasibility(self.task, need, g, model.curves(), positions, can_reset=False)
        fresh = check_feasibility(self.task, need, g, model.curves(), positions, can_reset=True)
        if fresh.margin_a <= 0 or kept.margin_a >= UNDO_PROBES_BELOW * fresh.margin_a:
            return g
        device = DeviceAccess(self.backend, self.stop, cfg.read_v, cfg.reset_time_s)
        for n in fresh.neurons:
            for j, pair in enumerate(n.positions):
                for col, target in zip((plus_col(n.neuron), minus_col(n.neuron)), pair, strict=True):
                    if target < positions[j, col]:
                        device.reset(j, col)
                        positions[j, col] = 0
        result.probe_resets += device.resets
        result.probe_time_s += device.instrument_time_s
        return self.backend.read_conductances(cfg.read_v)

    # ------------------------------------------------------------------ run
    def run(self) -> TrainingResult:
        """Train until convergence, the epoch limit, the rule giving up, stalled devices, a stop
        or a fault.

        A KeyboardInterrupt (a second Ctrl-C) is let through after the abort; :attr:`result`
        then holds what was recorded, with outcome "stopped".
        """
        for obs in self.observers:
            obs.on_start(self.task, self.config, self.backend.info.identity)
        result = self.result
        try:
            self.prepare()
            result.outcome = self._loop(result.history)
            if result.outcome.unconverged:
                result.diagnosis, result.diagnosis_detail = self.diagnose(result)
            result.train = self.evaluate("train")
            if self.task.test:
                result.test = self.evaluate("test")
        # The outcome is recorded before the abort is awaited: a second Ctrl-C during ABOR's
        # reply must not leave the run recorded as anything but stopped (or fault).
        except RunStopped as e:
            result.outcome, result.error_message = Outcome.STOPPED, str(e)
            self._safe_abort()
        except Exception as e:
            log.error("training fault: %s", e)
            result.outcome = Outcome.FAULT
            result.error_message = f"{type(e).__name__}: {e}"
            self._safe_abort()
        except BaseException as e:  # Ctrl-C or interpreter exit: 0 V first, then let it through.
            result.outcome = Outcome.STOPPED
            result.error_message = f"interrupted ({type(e).__name__}: {e})"
            self._safe_abort()
            raise
        for obs in self.observers:
            obs.on_end(result)
        return result

    def _loop(self, history: list[EpochRecord]) -> Outcome:
        cfg = self.config
        stall = StallWatch(cfg.patience, cfg.stall_rel_tol)
        for epoch in range(cfg.max_epochs + 1):
            self.stop.check()
            record = self._measure(epoch)
            stalled = stall.stalled(record.conductances_siemens)  # judged before pulsing again
            device = DeviceAccess(self.backend, self.stop, cfg.read_v, cfg.reset_time_s)
            try:
                if not record.converged and not stalled and epoch < cfg.max_epochs:
                    ctx = EpochContext(record, self._row_v, self._targets, self.task.n_inputs, cfg)
                    self.rule.update(ctx, device)
            finally:
                # The record of the epoch is kept even when its update failed or was stopped.
                self._emit(history, record, device)
            if record.converged:
                return Outcome.CONVERGED
            if self.rule.gave_up:
                return Outcome.INFEASIBLE
            if stalled:
                return Outcome.STALLED
        return Outcome.MAX_EPOCHS

    # ------------------------------------------------------------------ after training
    def diagnose(self, result: TrainingResult) -> tuple[Diagnosis, str]:
        """Why an unconverged run ended: the likely reason and the evidence.

        From the check before training (needs a curve): ``infeasible_draw`` when no
        gain would do, ``gain_too_low`` when a larger one would. Otherwise from
        read-back: ``saturated_pair`` when the update still asks for pulses on
        devices that no longer move; then the rule's own reason (:meth:`UpdateRule.diagnose`:
        the planned rule's ``overshot`` when it found the bands out of reach on the way);
        else ``epoch_limit``.
        """
        cfg = self.config
        f = result.feasibility
        if f is not None and not f.feasible:
            if (result.margin_any_gain_a or 0.0) <= 0:
                return "infeasible_draw", (
                    "no reachable weights separate the training patterns at any gain:\n" + f.explain()
                )
            beta_min = _band_edge(cfg) / (result.margin_any_gain_a or np.inf)
            return "gain_too_low", (
                f"at beta = {cfg.beta:g} 1/A no reachable weights meet the bands; they can at beta > "
                f"{beta_min:.3g} 1/A:\n" + f.explain()
            )
        stuck = self._stuck_pairs(result)
        if stuck:
            return "saturated_pair", (
                "pulses no longer move these devices, which the update still needs to move: "
                + ", ".join(f"neuron {i} input {j} ({side})" for i, j, side in stuck)
            )
        if (own := self.rule.diagnose()) is not None:
            return own
        known = "feasible" if f is not None else "feasibility unknown (no device curve)"
        return "epoch_limit", f"{known}, but the rule did not bring every pattern into its band in time"

    def _stuck_pairs(self, result: TrainingResult) -> list[tuple[int, int, str]]:
        """(neuron, input, 'G+' or 'G-') of saturated devices that the last update wanted to pulse.

        Saturated: judged so by the rule's read-back watch, or, for rules without
        one, every pulsed device when the run looks saturated
        (:meth:`TrainingResult.looks_saturated`).
        """
        if not result.history:
            return []
        record = result.history[-1]
        signs = manhattan_signs(
            self._row_v[:, : self.task.n_inputs],
            record.currents_a,
            target_values(self._targets, self.config),
            self.config.beta,
            ~record.in_band,
        )
        sat = self.rule.saturated()
        if sat is None:
            sat = np.full(record.conductances_siemens.shape, result.looks_saturated(self.config))
        out = []
        for i, j in zip(*np.nonzero(signs), strict=True):
            col = plus_col(int(i)) if signs[i, j] > 0 else minus_col(int(i))
            if sat[j, col]:
                out.append((int(i), int(j), "G+" if signs[i, j] > 0 else "G-"))
        return out

    def _emit(self, history: list[EpochRecord], record: EpochRecord, device: DeviceAccess) -> None:
        sent = {
            "pulses": device.pulses,
            "reset_devices": tuple(device.reset_devices),
            "verify_pulses": device.verify_pulses,
            "reads": device.reads,
            "instrument_time_s": device.instrument_time_s,
        }
        done = record.model_copy(update=sent)
        history.append(done)
        for obs in self.observers:
            obs.on_epoch(done)

    # ------------------------------------------------------------------ pieces
    def _measure(self, epoch: int) -> EpochRecord:
        """Forward pass of every training pattern on the crossbar and one conductance read."""
        cfg, task = self.config, self.task
        currents = self._logic_currents(self._row_v)
        f = activation(currents, cfg.beta)
        g = self.backend.read_conductances(cfg.read_v)
        err = 0.5 * float(np.mean((target_values(self._targets, cfg) - f) ** 2))
        return EpochRecord(
            epoch=epoch,
            conductances_siemens=g,
            weights_siemens=logic_weights(g, task.n_inputs, task.n_outputs),
            currents_a=currents,
            activations=f,
            in_band=in_band(f, self._targets, cfg),
            error=err,
        )

    def evaluate(self, split: str = "test") -> Evaluation:
        """Outputs of the network on ``split``, measured with VMMs on the backend."""
        v = self._pad(self.task.voltages(split))
        f = activation(self._logic_currents(v), self.config.beta)
        targets = self.task.targets(split)
        return Evaluation(self.task.patterns(split), targets, f, in_band(f, targets, self.config))

    def _logic_currents(self, row_v: NDArray[np.float64]) -> NDArray[np.float64]:
        return logic_currents(column_currents(self.backend, row_v), self.task.n_outputs)

    def _pad(self, v: NDArray[np.float64]) -> NDArray[np.float64]:
        """Row voltages for the whole crossbar: unused rows at 0 V."""
        out = np.zeros((v.shape[0], self.backend.info.rows))
        out[:, : v.shape[1]] = v
        return out

    def _safe_abort(self) -> None:
        """Outputs to 0 V; when that could not be confirmed (it failed, or a KeyboardInterrupt
        came while its reply was awaited: then let through), the result's message says so."""
        try:
            self.backend.abort()
        except Exception as e:  # The link may be the thing that failed.
            log.error("abort after stop/fault failed: %s", e)
            self._warn(abort_warning(e))
        except BaseException as e:
            self._warn(abort_warning(e))
            raise

    def _warn(self, warning: str) -> None:
        result = self.result
        result.error_message = "; ".join(m for m in (result.error_message, warning) if m)


def _band_edge(cfg: TrainingConfig) -> float:
    """The larger of atanh(f+) and -atanh(f-): needed margin times beta."""
    return float(max(np.arctanh(cfg.f_plus), -np.arctanh(cfg.f_minus)))


def train(
    backend: CrossbarBackend,
    task: Task,
    config: TrainingConfig | None = None,
    observers: Sequence[TrainingObserver] = (),
    stop: StopSignal | None = None,
) -> TrainingResult:
    """One-call form of :class:`Trainer` for scripts."""
    return Trainer(backend, task, config, observers, stop).run()
