"""Recording a device's pulse response as a trace, through any backend (a lab procedure).

Reset device (row, col), then N times: one pulse, one read of every
conductance, keeping that device's. The result is a :class:`~crossbar_hil.trace_file.Trace`
that :func:`~crossbar_hil.trace_file.write_dat` saves in the instrument ``.dat`` format,
so the emulator can replay it. Used by ``hil characterize`` and the service alike.

A stop request (checked before every pulse) or a fault part way does not lose
what was measured: :class:`RecordingInterrupted` carries the partial trace,
marked partial (``pulses_requested``), for the caller to write.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from crossbar_hil.seam import CrossbarBackend, Pulse
from crossbar_hil.seam.errors import HilError, LimitError, RunStopped
from crossbar_hil.trace_file import PulseProtocol, Trace
from crossbar_hil.training.stop import StopSignal


class CharacterizeSettings(BaseModel):
    """What a characterization sends: the device (one trace) and the pulse and read settings.

    Declared once: ``hil characterize`` builds its options from these fields. Values that
    reach the instrument are checked again against its limits before anything is sent.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    row: int = Field(0, ge=0, description="Row of the device to record (one device; not with --all)")
    col: int = Field(0, ge=0, description="Column of the device to record (one device; not with --all)")
    n_pulses: int = Field(50, ge=1, le=100_000, description="Pulses after the reset, each followed by a read")
    amplitude_v: float = Field(2.0, description="Pulse amplitude")
    width_s: float = Field(1e-3, gt=0, description="Pulse width")
    read_v: float = Field(0.05, description="Read voltage")
    reset_v: float = Field(
        -2.0, description="Reset amplitude noted in the trace header (the device's own reset is used)"
    )
    reset_width_s: float = Field(
        1.0, gt=0, description="Reset width noted in the header; a calibration counts it as each reset's time"
    )


Progress = Callable[[int, int, float], None]
"""Called after each read with (pulses done, pulses in all, conductance in S)."""


class RecordingInterrupted(HilError):
    """A recording ended early (a stop or a fault); ``trace`` holds what was measured.

    ``trace`` is None when not even one pulse was read back; ``stopped`` is True for a
    stop request and False for a fault (the cause is ``__cause__``).
    """

    def __init__(self, message: str, trace: Trace | None, stopped: bool) -> None:
        super().__init__(message)
        self.trace = trace
        self.stopped = stopped


def record_trace(
    backend: CrossbarBackend,
    row: int,
    col: int,
    n_pulses: int,
    amplitude_v: float,
    width_s: float,
    read_v: float = 0.05,
    *,
    reset_v: float = -2.0,
    reset_width_s: float = 1.0,
    progress: Progress | None = None,
    stop: StopSignal | None = None,
) -> Trace:
    """Reset device (row, col), pulse it ``n_pulses`` times, read after each; the trace in S.

    Everything is checked against the backend's limits before the reset is sent.
    ``reset_v`` (V) and ``reset_width_s`` (s) only document, in the trace header,
    the reset pulse the backend's device uses. ``stop`` is checked before the reset and
    before every pulse; a stop or a fault after the reset raises
    :class:`RecordingInterrupted` with the partial trace; a KeyboardInterrupt is let
    through with the partial trace as its ``partial_trace``.
    """
    stop = stop or StopSignal()
    if n_pulses < 1:
        raise LimitError("pulses", n_pulses, "integers >= 1")
    backend.check_pulse(Pulse(row, col, amplitude_v, width_s), "characterization pulse")
    backend.info.limits.check_read_v("read_v", read_v)
    if not read_v > 0:  # A conductance is read at a positive voltage.
        raise LimitError("read_v", read_v, f"(0, {backend.info.limits.read_v_max}]", "V")
    stop.check()
    backend.reset(row, col)
    start = monotonic()
    times = [0.0]
    g: list[float] = []
    protocol = PulseProtocol(
        n_pulses=n_pulses,
        reset_v=reset_v,
        reset_width_s=reset_width_s,
        read_v=read_v,
        on_v=amplitude_v,
        on_width_s=width_s,
    )
    source = f"{backend.info.identity} ({row},{col})"
    try:
        g.append(float(backend.read_conductances(read_v)[row, col]))
        for k in range(1, n_pulses + 1):
            stop.check()
            backend.pulse(row, col, amplitude_v, width_s)
            g.append(float(backend.read_conductances(read_v)[row, col]))
            times.append(monotonic() - start)
            if progress is not None:
                progress(k, n_pulses, g[-1])
    except (HilError, KeyboardInterrupt) as e:
        done = len(g) - 1
        partial = None
        if done >= 1:
            header = protocol.model_copy(update={"n_pulses": done, "pulses_requested": n_pulses})
            partial = Trace(np.array(g), header, source, np.array(times[: len(g)]))
        if isinstance(e, KeyboardInterrupt):  # Let through (a script stays interruptible), trace kept.
            e.partial_trace = partial  # type: ignore[attr-defined]
            raise
        what = "stopped" if isinstance(e, RunStopped) else f"{type(e).__name__}"
        raise RecordingInterrupted(
            f"{what} after {max(done, 0)} of {n_pulses} pulses: {e}", partial, isinstance(e, RunStopped)
        ) from e
    return Trace(np.array(g), protocol, source, np.array(times))
