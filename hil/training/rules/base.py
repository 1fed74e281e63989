"""The interface every update rule implements, and what it is given each epoch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.device_access import DeviceAccess
from crossbar_hil.training.history import Diagnosis, EpochRecord


@dataclass(frozen=True)
class EpochContext:
    """One epoch as a rule sees it.

    ``record`` holds the forward pass and the conductance read made at the start
    of the epoch, on the crossbar. ``row_voltages`` (N, rows) V are the training
    patterns on every crossbar row (unused rows at 0 V); ``targets`` (N, n_outputs)
    the expected output bits.
    """

    record: EpochRecord
    row_voltages: NDArray[np.float64]
    targets: NDArray[np.int8]
    n_inputs: int
    config: TrainingConfig


@dataclass(frozen=True)
class BatchEpochContext:
    """One epoch of B independent crossbars, as a rule's batched form sees it.

    ``currents`` (A), ``activations`` and ``in_band`` (B, N, n_outputs) come from the
    forward pass at the start of the epoch; ``cols`` is the crossbar's column count;
    the other fields are those of :class:`EpochContext`.
    """

    currents: NDArray[np.float64]
    activations: NDArray[np.float64]
    in_band: NDArray[np.bool_]
    row_voltages: NDArray[np.float64]
    targets: NDArray[np.int8]
    n_inputs: int
    cols: int
    config: TrainingConfig


@dataclass(frozen=True)
class BatchPulses:
    """One epoch's potentiating pulses on B crossbars: at most one per device."""

    mask: NDArray[np.bool_]
    """(B, rows, cols) devices pulsed once."""
    order: NDArray[np.intp]
    """Flat device indices (row * cols + col): the order the single path sends the pulses in."""


class UpdateRule(ABC):
    """A learning rule: decides and sends one epoch's update through :class:`DeviceAccess`.

    One instance serves one run, so a rule may keep what it learnt about the
    devices (from reads) from one epoch to the next.
    """

    name: ClassVar[str]
    """The name a :class:`TrainingConfig` selects the rule by."""

    def __init__(self, config: TrainingConfig) -> None:
        self.config = config
        self.gave_up = False
        """Set by a rule that knows no update can bring the run into its bands any more
        (e.g. the planned rule, from the device curve): the trainer then ends the run."""

    uses_device_curve: ClassVar[bool] = False
    """True for a rule that places the devices on ``TrainingConfig.device_curve_siemens`` by
    counting pulses from reset: the trainer refuses it when the run does not start from reset."""

    def notes_without_curve(self) -> list[str]:
        """What the run should say when it has no device curve (the rule falls back): none by default."""
        return []

    def saturated(self) -> NDArray[np.bool_] | None:
        """Per device (rows x cols), True where the rule judged it saturated from read-back;
        None when the rule keeps no such watch (the trainer then judges from the history)."""
        return None

    def diagnose(self) -> tuple[Diagnosis, str] | None:
        """The rule's own reason why the run ended unconverged, with its evidence; None: no opinion.

        Asked by :meth:`~crossbar_hil.training.trainer.Trainer.diagnose` after the check before
        training and the saturated devices had theirs.
        """
        return None

    def check_backend(self, backend: CrossbarBackend) -> None:  # noqa: B027 - optional hook
        """Raise ValueError (or :class:`~crossbar_hil.seam.errors.LimitError`) when the rule cannot run
        on ``backend``. Called before anything is sent; the default accepts every backend."""

    @abstractmethod
    def update(self, ctx: EpochContext, device: DeviceAccess) -> None:
        """Send this epoch's update (pulses, resets) through ``device``."""

    def batched_pulses(self, ctx: BatchEpochContext) -> BatchPulses:
        """The batched form of :meth:`update` for emulated batches (:mod:`crossbar_hil.training.batched`).

        Returns the devices to potentiate once each, and the order :meth:`update`
        would send them in. Rules without a batched form raise
        :class:`NotImplementedError`: run them one crossbar at a time with
        :class:`~crossbar_hil.training.trainer.Trainer`.
        """
        raise NotImplementedError(
            f"rule {self.name!r} has no batched form; train it one crossbar at a time with Trainer"
        )
