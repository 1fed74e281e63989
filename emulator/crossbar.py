"""`EmulatedCrossbar`: a crossbar of replayed devices that implements `CrossbarBackend`.

Each device (j, k) sits at a position ``m_jk`` along its device table
``G_exp`` (a measured trace or a parametric model, :mod:`crossbar_hil.emulator.devices`) and
has a fixed device-to-device shift ``shift_jk``::

    G_jk = K * (s_jk * (G_exp(m_jk) - G_exp(0)) + shift_jk)

A potentiating pulse moves ``m`` one step up (saturating at the end of the
table), the reset pulse returns it to 0. With ``depression`` on, a short
negative pulse moves the device one pulse down the model's depression curve
(:mod:`crossbar_hil.emulator.depression`). Device-to-device variation comes in two kinds,
both configurable: additive shifts ``shift_jk``, lognormal, min-max rescaled
into ``[shift_low_siemens, shift_high_siemens]`` (ARCHITECTURE.md section 1), and
the kind Lim et al. use, a Gaussian scale ``s_jk ~ N(1, range_sigma)`` (clipped
at 0) on each device's dynamic range and so on each of its steps (1 when
``range_sigma`` is 0). Optional cycle-to-cycle step noise, read noise and stuck
devices, for every device model, make it less kind than the reference. Every
random draw comes from generators seeded by ``seed``, with one independent
stream per purpose so that turning noise on does not change the
device-to-device shifts of a seed.

The crossbar is a batch of one (:class:`crossbar_hil.emulator.batched.CrossbarBatch`): the
physics and the random streams are those of the batched emulation, so a batch
of seeds reproduces single crossbars bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from crossbar_hil.emulator.batched import CrossbarBatch
from crossbar_hil.emulator.config import EmulatorConfig, Purpose, ShiftDistribution
from crossbar_hil.seam import BackendInfo, CrossbarBackend, Pulse

__all__ = ["EmulatedCrossbar", "EmulatorConfig", "ShiftDistribution"]


class EmulatedCrossbar(CrossbarBackend):
    """A rows x cols crossbar of emulated devices (no hardware, no sleeping)."""

    params_model: ClassVar[type[BaseModel]] = EmulatorConfig
    """What :meth:`from_params` accepts (listed by ``hil train --help``)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or EmulatorConfig()
        self._batch = CrossbarBatch(cfg, [cfg.seed])
        self.device = self._batch.device
        self.table = self._batch.state.table
        self.aborts = 0
        """How many times outputs were brought to 0 V (for tests of the fault paths)."""
        self._info = BackendInfo(
            identity=f"crossbar-hil,EmulatedCrossbar,{self.device.kind},seed={cfg.seed}",
            rows=cfg.rows,
            cols=cfg.cols,
            limits=cfg.limits,
            supports_reset=True,
            supports_depression=cfg.depression,
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None) -> EmulatedCrossbar:
        """Build from a plain mapping (a run config's backend params), validated."""
        return cls(EmulatorConfig.model_validate(dict(params or {})))

    @property
    def info(self) -> BackendInfo:
        return self._info

    @property
    def n_max(self) -> int:
        """Last position of the device table (saturation)."""
        return self._batch.state.n_max

    @property
    def position(self) -> NDArray[np.int64]:
        """Position of every device along the table, rows x cols."""
        return self._batch.state.position[0]

    @property
    def shifts_siemens(self) -> NDArray[np.float64]:
        """Device-to-device shifts (S), rows x cols."""
        return self._batch.state.shifts_siemens[0]

    @property
    def range_scale(self) -> NDArray[np.float64] | None:
        """Per-device scale of range and steps (-), rows x cols; None when ``range_sigma`` is 0."""
        scale = self._batch.state.range_scale
        return None if scale is None else scale[0]

    @property
    def depression_table(self) -> NDArray[np.float64] | None:
        """Conductance (S) after k depressing pulses from the top; None without depression."""
        return self._batch.depression_table

    @property
    def stuck(self) -> NDArray[np.bool_]:
        """Devices that never move, rows x cols."""
        return self._batch.state.stuck[0]

    @property
    def _step_rng(self) -> np.random.Generator:
        """The step-noise stream (untouched, and made on demand, when there is no step noise)."""
        return self._batch.rng(Purpose.STEP_NOISE, 0)

    @property
    def _read_rng(self) -> np.random.Generator:
        """The read-noise stream (untouched, and made on demand, when there is no read noise)."""
        return self._batch.rng(Purpose.READ_NOISE, 0)

    def conductances(self) -> NDArray[np.float64]:
        """True (noise-free) conductances in S; for tests and plots, not a hardware read."""
        return self._batch.conductances()[0]

    # --------------------------------------------------------- CrossbarBackend
    def device_curve_siemens(self) -> NDArray[np.float64]:
        """The curve the devices replay, gained from position 0, times ``scale_k`` (S): what
        characterising this emulator's device would give (on the crossbar's scale)."""
        return self.config.scale_k * (self.table - self.table[0])

    def _read_conductances(self, read_v: float) -> NDArray[np.float64]:
        return self._batch.read_conductances()[0]

    def _apply(self, voltages: NDArray[np.float64]) -> NDArray[np.float64]:
        return self._batch.apply(voltages[None, :])[0, 0]

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        cfg = self.config
        amps = np.fromiter((p.amplitude_v for p in pulses), float, len(pulses))
        if cfg.step_noise == 0 and np.all(amps >= cfg.set_threshold_v):
            # Potentiation only, noise-free: k pulses on a device move it min(m + k, n_max),
            # exactly as k pulses one after the other, so the batch is applied at once.
            counts = np.zeros((1, cfg.rows, cfg.cols), dtype=np.int64)
            np.add.at(counts[0], ([p.row for p in pulses], [p.col for p in pulses]), 1)
            self._batch.potentiate_counts(counts, float(amps.min(initial=np.inf)))
            return
        for p in pulses:
            self._batch.pulse_one(0, p.row, p.col, p.amplitude_v, p.width_s)

    def _reset(self, row: int, col: int) -> None:
        self._batch.pulse_one(0, row, col, self.config.reset_v, self.config.reset_width_s)

    def _abort(self) -> None:
        # Emulated outputs are momentary: only the request is counted.
        self.aborts += 1
