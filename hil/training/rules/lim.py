"""Methods a, b and c of Lim et al. (2018): sign-only steps that handle saturated devices.

Every update moves a logic weight ``W = G+ - G-`` one conductance step, by one
potentiating pulse on G+ (dW > 0) or on G- (dW < 0), as the Manhattan rule
does. The methods differ only when that device is saturated (its last pulse
did not raise its read-back conductance, see :class:`DeviceWatch`):

* **method_a**: reset both devices of the pair and re-programme from the
  bottom, reading back after each pulse, until the weight is one step past its
  old value;
* **method_b**: reset the *other* device of the pair, then pulse it up, reading
  back after each pulse, until the weight is one step past its old value.
  When both devices are saturated, do as method a (reset both, re-programme);
* **method_c**: one depressing pulse on the other device (needs a backend that
  reports ``supports_depression``).

"One step past the old value", for dW > 0 with G+ saturated (mirror for dW < 0):
pulse G- while ``G+ - (G- + dG) > W_old``, where dG is the rise the last pulse
of G- gave (the first time after a reset: what the first pulse after a reset
gave before); the weight lands in ``(W_old, W_old + dG]``. A loop also ends
when the pulsed device stops moving (judged as the saturation watch judges it:
``saturation_pulses`` pulses in a row without a rise, so one dip of a noisy
device does not end it), or after ``max_verify_pulses``.

When the saturated device's partner is known to be at the bottom (reset and not
moved since), the weight is already at its extreme: nothing is sent.
All operations are backend operations through :class:`DeviceAccess` (reset,
pulse, read), so the methods run the same through the VISA and serial drivers.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.seam import CrossbarBackend, Pulse
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.device_access import DeviceAccess
from crossbar_hil.training.network import minus_col, plus_col
from crossbar_hil.training.rules.base import EpochContext
from crossbar_hil.training.rules.device_watch import DeviceWatch
from crossbar_hil.training.rules.sign_update import SignRule


@dataclass(frozen=True)
class Pair:
    """The two devices of one logic weight, oriented by the wanted change.

    Potentiating ``up`` moves the weight the wanted way, potentiating ``down``
    the other way; ``u = G_up - G_down`` is the weight, signed so that the wanted
    change is an increase.
    """

    row: int
    up: int
    down: int

    @classmethod
    def oriented(cls, neuron: int, row: int, sign: int) -> Pair:
        """The pair of (neuron, input row) for an update of ``sign`` (+1 or -1)."""
        plus, minus = plus_col(neuron), minus_col(neuron)
        return cls(row, plus, minus) if sign > 0 else cls(row, minus, plus)

    def u(self, g_siemens: NDArray[np.float64]) -> float:
        """The signed weight ``G_up - G_down`` (S)."""
        return float(g_siemens[self.row, self.up] - g_siemens[self.row, self.down])


class LimRule(SignRule):
    """The shared part of methods a, b, c: plain steps, and a hook for saturated devices."""

    def __init__(self, config: TrainingConfig) -> None:
        super().__init__(config)
        self.watch = DeviceWatch(config.saturation_tol_siemens, config.saturation_pulses)

    def saturated(self) -> NDArray[np.bool_] | None:
        return self.watch.judged()

    def check_backend(self, backend: CrossbarBackend) -> None:
        info = backend.info
        if not info.supports_reset:
            raise ValueError(
                f"rule {self.name} resets devices, but backend {info.identity!r} reports no reset"
            )

    def begin_epoch(self, ctx: EpochContext, device: DeviceAccess) -> None:
        self.watch.observe(ctx.record.conductances_siemens)

    def step(self, signs: NDArray[np.int8], device: DeviceAccess) -> None:
        watch, cfg = self.watch, self.config
        watch.current(device)  # Online: judge the previous pattern's pulses first.
        batch: list[Pulse] = []
        for neuron, row in zip(*np.nonzero(signs), strict=True):
            pair = Pair.oriented(int(neuron), int(row), int(signs[neuron, row]))
            if not watch.saturated[pair.row, pair.up]:
                batch.append(Pulse(pair.row, pair.up, cfg.pulse_v, cfg.pulse_width_s))
            elif not watch.at_bottom[pair.row, pair.down]:
                batch.extend(self.when_saturated(pair, device))
        device.send(batch)
        for p in batch:
            if p.amplitude_v > 0:
                watch.note_pulses([p])
            else:
                watch.note_depressed(p.row, p.col)

    @abstractmethod
    def when_saturated(self, pair: Pair, device: DeviceAccess) -> list[Pulse]:
        """Handle a saturated ``pair.up``; return pulses to send with the epoch's batch."""

    # ------------------------------------------------------------ re-programming
    def reprogram(self, pair: Pair, device: DeviceAccess, reset: tuple[int, ...]) -> None:
        """Reset the devices (columns) ``reset`` of the pair, then read-verify to one step past W_old."""
        watch = self.watch
        u_old = pair.u(watch.current(device))
        for col in reset:
            device.reset(pair.row, col)
            watch.note_reset(pair.row, col)
        budget = self.config.max_verify_pulses
        # Below the old weight (both reset): raise it with the device that adds.
        g = watch.current(device)
        while pair.u(g) <= u_old and budget > 0:
            g, _ = self._verify_pulse(pair.row, pair.up, device)
            budget -= 1
            if watch.saturated[pair.row, pair.up]:  # saturation_pulses flat pulses in a row
                break
        # Above it by more than a step: lower it with the other device.
        step = watch.bottom_step_estimate(pair.row, pair.down)  # ``down`` was just reset.
        while pair.u(g) - step > u_old and budget > 0:
            g, step = self._verify_pulse(pair.row, pair.down, device)
            budget -= 1
            if watch.saturated[pair.row, pair.down]:
                break

    def _verify_pulse(self, row: int, col: int, device: DeviceAccess) -> tuple[NDArray[np.float64], float]:
        """One potentiating pulse on (row, col) and a read: the new conductances (S) and its rise (S)."""
        cfg = self.config
        before = self.watch.current(device)[row, col]
        pulse = Pulse(row, col, cfg.pulse_v, cfg.pulse_width_s)
        device.send([pulse], verify=True)
        self.watch.note_pulses([pulse])
        g = self.watch.current(device)
        return g, float(g[row, col] - before)


class MethodA(LimRule):
    """Method a: a saturated device makes the pair reset both and re-programme from the bottom."""

    name = "method_a"

    def when_saturated(self, pair: Pair, device: DeviceAccess) -> list[Pulse]:
        self.reprogram(pair, device, reset=(pair.up, pair.down))
        return []


class MethodB(LimRule):
    """Method b: reset only the other device and pulse it up to one step past the old weight."""

    name = "method_b"

    def when_saturated(self, pair: Pair, device: DeviceAccess) -> list[Pulse]:
        both = bool(self.watch.saturated[pair.row, pair.down])
        self.reprogram(pair, device, reset=(pair.up, pair.down) if both else (pair.down,))
        return []


class MethodC(LimRule):
    """Method c: a saturated device makes the other device of the pair depress one step."""

    name = "method_c"

    def check_backend(self, backend: CrossbarBackend) -> None:
        info = backend.info
        if not info.supports_depression:
            raise ValueError(
                f"rule method_c depresses devices, but backend {info.identity!r} reports "
                "supports_depression = False; use method_a or method_b on this device"
            )
        cfg = self.config
        backend.check_pulse(Pulse(0, 0, cfg.depress_v, cfg.depress_width_s), "training.depress pulse")

    def when_saturated(self, pair: Pair, device: DeviceAccess) -> list[Pulse]:
        cfg = self.config
        return [Pulse(pair.row, pair.down, cfg.depress_v, cfg.depress_width_s)]
