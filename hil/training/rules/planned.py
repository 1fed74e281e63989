"""The planned rule: pulse each device towards the positions of the largest reachable margin.

Each epoch, from the conductances read back, the device curve
(``TrainingConfig.device_curve_siemens``) and the pulse positions (counted from
reset: the devices are assumed to start there), :func:`~crossbar_hil.training.feasibility.check_patterns`
solves for the device positions, reachable by potentiation alone, that give
every neuron its largest smallest slack. Every device below its planned position
gets the pulses that take it there, in the epoch's one batched command. The
next epoch re-reads and re-plans, so a curve that differs from the real device
(an assumed model, cycle-to-cycle variation) is corrected from what the
crossbar shows, not from the model.

When the plan asks for no pulse but the bands are not met, a Manhattan step
follows (in-band patterns left out when ``ignore_in_band``). When the first plan
already found the bands out of reach and is reached, no pulse can help: the
rule sets :attr:`gave_up` and the trainer ends the run (outcome ``infeasible``).
(A plan that turns infeasible on the way, because the devices moved differently
from their curve, gets Manhattan steps until the epoch limit instead.)
Devices judged saturated from read-back (:class:`DeviceWatch`) are not pulsed.
Without a curve it is that Manhattan step alone. Batch updates only.
"""

from __future__ import annotations

import numpy as np
from crossbar_hil.seam import CrossbarBackend, Pulse
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.device_access import DeviceAccess
from crossbar_hil.training.feasibility import FeasibilityReport, NeedSpec, check_patterns
from crossbar_hil.training.history import Diagnosis
from crossbar_hil.training.network import minus_col, plus_col, target_values
from crossbar_hil.training.rules.base import EpochContext, UpdateRule
from crossbar_hil.training.rules.device_watch import DeviceWatch
from crossbar_hil.training.rules.manhattan import potentiation_pulses
from crossbar_hil.training.rules.sign_update import manhattan_signs
from numpy.typing import NDArray


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
    """Plan the best reachable positions from read-back and the curve; pulse towards them."""

    name = "planned"
    uses_device_curve = True

    def __init__(self, config: TrainingConfig) -> None:
        super().__init__(config)
        curve = config.device_curve_siemens
        self.curve = None if curve is None else np.asarray(curve, dtype=float) - curve[0]
        self.watch = DeviceWatch(config.saturation_tol_siemens, config.saturation_pulses)
        self.plan: FeasibilityReport | None = None
        """The last plan made (None before the first, or without a curve)."""
        self._pulsed: NDArray[np.int64] | None = None
        self._first_feasible: bool | None = None

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

    def positions(self) -> NDArray[np.int64]:
        """Pulse positions per device counted from reset, capped at the curve's end."""
        assert self.curve is not None and self._pulsed is not None
        return np.minimum(self._pulsed, self.curve.size - 1)

    def update(self, ctx: EpochContext, device: DeviceAccess) -> None:
        cfg = self.config
        g = ctx.record.conductances_siemens
        self.watch.observe(g)
        if self._pulsed is None:
            self._pulsed = np.zeros(g.shape, dtype=np.int64)
        pulses: list[Pulse] = []
        if self.curve is not None:
            self.plan = check_patterns(
                ctx.row_voltages[:, : ctx.n_inputs],
                ctx.targets,
                NeedSpec(cfg.beta, cfg.f_plus, cfg.f_minus),
                g,
                self.curve,
                self.positions(),
                can_reset=False,  # this rule only potentiates
            )
            pulses = self._unsaturated(
                planned_pulses(self.plan, self.positions(), cfg.pulse_v, cfg.pulse_width_s)
            )
            if self._first_feasible is None:
                self._first_feasible = self.plan.feasible
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
        device.send(pulses)
        self.watch.note_pulses(pulses)
        for p in pulses:
            self._pulsed[p.row, p.col] += 1

    def _unsaturated(self, pulses: list[Pulse]) -> list[Pulse]:
        """``pulses`` without those on devices judged saturated from read-back."""
        return [p for p in pulses if not self.watch.saturated[p.row, p.col]]
