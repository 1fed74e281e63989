"""Recording a device's pulse response as a trace, through any backend (a lab procedure).

Reset device (row, col), then N times: one pulse, one read of every
conductance, keeping that device's. The result is a :class:`~hil.trace_file.Trace`
that :func:`~hil.trace_file.write_dat` saves in the instrument ``.dat`` format,
so the emulator can replay it. Used by ``hil characterize`` and the service alike.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic

import numpy as np

from hil.seam import CrossbarBackend, Pulse
from hil.seam.errors import LimitError
from hil.trace_file import PulseProtocol, Trace

Progress = Callable[[int, int, float], None]
"""Called after each read with (pulses done, pulses in all, conductance in S)."""


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
) -> Trace:
    """Reset device (row, col), pulse it ``n_pulses`` times, read after each; the trace in S.

    Everything is checked against the backend's limits before the reset is sent.
    ``reset_v`` (V) and ``reset_width_s`` (s) only document, in the trace header,
    the reset pulse the backend's device uses.
    """
    if n_pulses < 1:
        raise LimitError("pulses", n_pulses, "integers >= 1")
    backend.check_pulse(Pulse(row, col, amplitude_v, width_s), "characterization pulse")
    backend.info.limits.check_read_v("read_v", read_v)
    if not read_v > 0:  # A conductance is read at a positive voltage.
        raise LimitError("read_v", read_v, f"(0, {backend.info.limits.read_v_max}]", "V")
    backend.reset(row, col)
    start = monotonic()
    times = [0.0]
    g = [float(backend.read_conductances(read_v)[row, col])]
    for k in range(1, n_pulses + 1):
        backend.pulse(row, col, amplitude_v, width_s)
        g.append(float(backend.read_conductances(read_v)[row, col]))
        times.append(monotonic() - start)
        if progress is not None:
            progress(k, n_pulses, g[-1])
    protocol = PulseProtocol(
        n_pulses=n_pulses,
        reset_v=reset_v,
        reset_width_s=reset_width_s,
        read_v=read_v,
        on_v=amplitude_v,
        on_width_s=width_s,
    )
    return Trace(np.array(g), protocol, f"{backend.info.identity} ({row},{col})", np.array(times))
