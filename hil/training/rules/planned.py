"""The planned rule: pulse each device towards the positions of the largest reachable margin.

Each epoch, from the conductances read back, each device's own curve and the
pulse positions (counted from reset: the devices are assumed to start there),
:func:`~crossbar_hil.training.feasibility.check_patterns` solves for the device
positions, reachable by potentiation alone, that give every neuron its largest
smallest slack. Every device below its planned position gets the pulses that
take it there, in the epoch's one batched command. The next epoch re-reads and
re-plans, so a curve that differs from the real device (an assumed model,
cycle-to-cycle variation) is corrected from what the crossbar shows.

The curves (:mod:`crossbar_hil.training.curves`) are those given
(``TrainingConfig.device_curve_siemens``: one for all devices or one per device)
or learned in situ: each read after pulses refines each device's curve, and a
device never seen moving gets at most one pulse in an epoch (its first step
then fixes its scale before it is taken further).

When the plan asks for no pulse but the bands are not met, a Manhattan step
follows (in-band patterns left out when ``ignore_in_band``). When the first plan
already found the bands out of reach and is reached, no pulse can help: the
rule sets :attr:`gave_up` and the trainer ends the run (outcome ``infeasible``).
A plan that turns infeasible on the way (the devices moved differently from
their curve) is *recovered* on a backend that can reset: re-planned with resets
allowed, the devices above their new planned position are reset and every device
is pulsed towards its new position, verified by the next epoch's read
(:attr:`recoveries` counts them, at most ``max_recoveries``); otherwise Manhattan
steps follow until the epoch limit. Devices judged saturated from read-back
(:class:`DeviceWatch`) are not pulsed. Without a curve it is that Manhattan step
alone. Batch updates only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.seam import CrossbarBackend, Pulse
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.curves import CurveModel, FixedCurves, device_curves
from crossbar_hil.training.device_access import DeviceAccess
from crossbar_hil.training.feasibility import FeasibilityReport, NeedSpec, check_patterns
from crossbar_hil.training.history import Diagnosis
from crossbar_hil.training.network import minus_col, plus_col, target_values
from crossbar_hil.training.rules.base import EpochContext, UpdateRule
from crossbar_hil.training.rules.device_watch import DeviceWatch
from crossbar_hil.training.rules.manhattan import potentiation_pulses
from crossbar_hil.training.rules.sign_update import manhattan_signs


def planned_pulses(
    plan: FeasibilityReport, positions: NDArray[np.int64], amplitude_v: float, width_s: float
) -> list[Pulse]:
    """The potentiating pulses that move every device from ``positions`` to its planned one."""
    pulses = []
    for n in plan.neurons:
        for j, (p_plus, p_minus) in enumerate(n.positions):
            for col, target in ((plus_col(n.neuron), p_plus), (minus_col(n.neuron), p_minus)):
                pulses += [Pulse(j, col, amplitude_v, width_s)] * max(int(target - positions[j, col]), 0)
    return pulses


class Planned(UpdateRule):
    """Plan the best reachable positions from read-back and each device's curve; pulse towards them."""

    name = "planned"
    uses_device_curve = True

    def __init__(self, config: TrainingConfig) -> None:
        super().__init__(config)
        self.model: CurveModel | None = None
        """The device curves planned with (set by :meth:`start`, or from the config)."""
        self.watch = DeviceWatch(config.saturation_tol_siemens, config.saturation_pulses)
        self.plan: FeasibilityReport | None = None
        """The last plan made (None before the first, or without a curve)."""
        self.recoveries = 0
        """Re-programmings after a plan turned infeasible (each resets one device or more)."""
        self._pulsed: NDArray[np.int64] | None = None
        self._learn_pending = False
        self._first_feasible: bool | None = None
        self._can_reset = False

    def notes_without_curve(self) -> list[str]:
        return ["no device curve: the planned rule makes Manhattan steps only"]

    def saturated(self) -> NDArray[np.bool_] | None:
        return self.watch.judged()

    def diagnose(self) -> tuple[Diagnosis, str] | None:
        """``overshot`` when the last plan found the bands out of reach (feasible at the start)."""
        if self.plan is None or self.plan.feasible:
            return None
        return "overshot", (
            "feasible at the start, but from the state reached no reachable weights meet the bands "
            "(the devices moved differently from their curve):\n" + self.plan.explain()
        )

    def check_backend(self, backend: CrossbarBackend) -> None:
        if self.config.update != "batch":
            raise ValueError("rule 'planned' plans once per epoch: it takes update='batch' only")
        self._can_reset = backend.info.supports_reset

    def start(self, model: CurveModel, positions: NDArray[np.int64]) -> None:
        """Plan with ``model``'s curves, the devices at pulse ``positions`` (from reset) now."""
        self.model = model
        self._pulsed = np.array(positions, dtype=np.int64)

    @property
    def curve(self) -> NDArray[np.float64] | None:
        """The per-device curves (rows, cols, n) planned with now (S); None without."""
        return None if self.model is None else self.model.curves()

    def positions(self) -> NDArray[np.int64]:
        """Pulse positions per device counted from reset, capped at the curve's end; a device judged
        saturated from read-back is at the end, whatever its count (it moved further than its curve
        said: the plan then sees that it cannot go up, and re-programmes if it must)."""
        assert self.model is not None and self._pulsed is not None
        last = self.model.curves().shape[-1] - 1
        pos = np.minimum(self._pulsed, last)
        if self.watch.g_siemens is not None:
            pos = np.where(self.watch.saturated, last, pos)
        return pos

    def _counted(self) -> NDArray[np.int64]:
        """Pulses counted from reset, capped at the curve's end (what the learned curves are fed)."""
        assert self.model is not None and self._pulsed is not None
        return np.minimum(self._pulsed, self.model.curves().shape[-1] - 1)

    def update(self, ctx: EpochContext, device: DeviceAccess) -> None:
        cfg = self.config
        g = ctx.record.conductances_siemens
        self.watch.observe(g)
        if self._pulsed is None:
            self._pulsed = np.zeros(g.shape, dtype=np.int64)
        if self.model is None and cfg.device_curve_siemens is not None:
            curves = device_curves(cfg.device_curve_siemens, g.shape)
            self.model = FixedCurves(curves, cfg.device_curve_label or "given")
        pulses: list[Pulse] = []
        if self.model is not None:
            if self._learn_pending:
                self.model.observe(self._counted(), g)
                self._learn_pending = False
            self.plan = self._plan(ctx, g, can_reset=False)
            pulses = self._unsaturated(self._first_steps_only(self._to_plan(self.plan)))
            if self._first_feasible is None:
                self._first_feasible = self.plan.feasible
            if not self.plan.feasible and self._recover(ctx, g, device):
                return
            if not pulses and not self.plan.feasible and not self._first_feasible:
                self.gave_up = True
                return
        if not pulses:
            active = ~ctx.record.in_band if cfg.ignore_in_band else None
            v = ctx.row_voltages[:, : ctx.n_inputs]
            signs = manhattan_signs(
                v, ctx.record.currents_a, target_values(ctx.targets, cfg), cfg.beta, active
            )
            pulses = self._unsaturated(potentiation_pulses(signs, cfg.pulse_v, cfg.pulse_width_s))
        self._send(pulses, device)

    def _plan(self, ctx: EpochContext, g: NDArray[np.float64], can_reset: bool) -> FeasibilityReport:
        cfg = self.config
        assert self.model is not None
        return check_patterns(
            ctx.row_voltages[:, : ctx.n_inputs],
            ctx.targets,
            NeedSpec(cfg.beta, cfg.f_plus, cfg.f_minus),
            g,
            self.model.curves(),
            self.positions(),
            can_reset=can_reset,
        )

    def _to_plan(self, plan: FeasibilityReport) -> list[Pulse]:
        return planned_pulses(plan, self.positions(), self.config.pulse_v, self.config.pulse_width_s)

    def _send(self, pulses: list[Pulse], device: DeviceAccess) -> None:
        assert self._pulsed is not None
        device.send(pulses)
        self.watch.note_pulses(pulses)
        for p in pulses:
            self._pulsed[p.row, p.col] += 1
        self._learn_pending = bool(pulses)

    def _first_steps_only(self, pulses: list[Pulse]) -> list[Pulse]:
        """Learned curves: a device never seen moving gets one pulse (its first step teaches its scale)."""
        observed = getattr(self.model, "observed", None)
        if observed is None:
            return pulses
        out, first = [], set()
        for p in pulses:
            if observed[p.row, p.col] or (p.row, p.col) not in first:
                out.append(p)
                first.add((p.row, p.col))
        return out

    def _recover(self, ctx: EpochContext, g: NDArray[np.float64], device: DeviceAccess) -> bool:
        """Re-programme after a plan turned infeasible: reset the devices above their new planned
        position, pulse every device towards it. False (nothing sent) when the backend cannot
        reset, the recoveries are used up, or no plan even with resets meets the bands."""
        if not self._can_reset or self.recoveries >= self.config.max_recoveries:
            return False
        plan = self._plan(ctx, g, can_reset=True)
        if not plan.feasible:
            return False
        assert self._pulsed is not None
        pos = self.positions()
        resets = []
        for n in plan.neurons:
            for j, pair in enumerate(n.positions):
                for col, target in zip((plus_col(n.neuron), minus_col(n.neuron)), pair, strict=True):
                    if target < pos[j, col]:
                        resets.append((j, col))
        if not resets:
            return False
        self.recoveries += 1
        for row, col in resets:
            device.reset(row, col)
            self.watch.note_reset(row, col)
            self._pulsed[row, col] = 0
        self.plan = plan
        self._send(self._unsaturated(self._to_plan(plan)), device)
        return True

    def _unsaturated(self, pulses: list[Pulse]) -> list[Pulse]:
        """``pulses`` without those on devices judged saturated from read-back."""
        return [p for p in pulses if not self.watch.saturated[p.row, p.col]]
