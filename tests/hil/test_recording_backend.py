"""RecordingBackend: what reaches the device is what is reported, chunk by chunk."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.seam import Limits, Pulse
from crossbar_hil.seam.errors import BackendClosed, LimitError
from crossbar_hil.seam.recording import RecordingBackend


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_pulses(self, pulses: Sequence[Pulse]) -> None:
        self.calls.append(("pulses", list(pulses)))

    def on_reset(self, row: int, col: int) -> None:
        self.calls.append(("reset", (row, col)))


def test_pulses_and_resets_are_reported_per_chunk_after_they_were_sent() -> None:
    inner = EmulatedCrossbar.from_params({"limits": Limits(max_batch=2).model_dump()})
    listener = Listener()
    backend = RecordingBackend(inner, listener)
    pulses = [Pulse(0, 0, 2.0, 1e-3), Pulse(0, 1, 2.0, 1e-3), Pulse(1, 1, 2.0, 1e-3)]
    assert backend.pulse_many(pulses) == 3
    backend.reset(1, 1)
    assert listener.calls == [("pulses", pulses[:2]), ("pulses", pulses[2:]), ("reset", (1, 1))]
    assert inner.position[0, 0] == 1 and inner.position[1, 1] == 0
    assert np.array_equal(backend.read_conductances(), inner.conductances())
    assert backend.info == inner.info


def test_a_refused_batch_is_not_reported_and_closing_closes_the_instrument() -> None:
    inner = EmulatedCrossbar()
    listener = Listener()
    backend = RecordingBackend(inner, listener)
    with pytest.raises(LimitError):
        backend.pulse_many([Pulse(0, 0, 2.0, 1e-3), Pulse(0, 0, 9.0, 1e-3)])
    assert listener.calls == []
    backend.abort()
    backend.close()
    backend.close()
    assert inner.closed and inner.aborts == 2  # The explicit abort, then the close's.
    with pytest.raises(BackendClosed):
        backend.pulse(0, 0, 2.0, 1e-3)
