"""Backend listeners: what reaches the device is what is reported, chunk by chunk, checked once."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.seam import Limits, Pulse
from crossbar_hil.seam.errors import BackendClosed, LimitError, RunStopped


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_pulses(self, pulses: Sequence[Pulse]) -> None:
        self.calls.append(("pulses", list(pulses)))

    def on_reset(self, row: int, col: int) -> None:
        self.calls.append(("reset", (row, col)))


def test_pulses_and_resets_are_reported_per_chunk_after_they_were_sent() -> None:
    backend = EmulatedCrossbar.from_params({"limits": Limits(max_batch=2).model_dump()})
    listener = Listener()
    backend.add_listener(listener)
    pulses = [Pulse(0, 0, 2.0, 1e-3), Pulse(0, 1, 2.0, 1e-3), Pulse(1, 1, 2.0, 1e-3)]
    assert backend.pulse_many(pulses) == 3
    backend.reset(1, 1)
    assert listener.calls == [("pulses", pulses[:2]), ("pulses", pulses[2:]), ("reset", (1, 1))]
    assert backend.position[0, 0] == 1 and backend.position[1, 1] == 0
    backend.remove_listener(listener)
    backend.pulse(0, 0, 2.0, 1e-3)
    assert len(listener.calls) == 3  # Removed: hears nothing more.


def test_a_refused_batch_is_not_reported_and_nothing_is_sent_after_close() -> None:
    backend = EmulatedCrossbar()
    listener = Listener()
    backend.add_listener(listener)
    with pytest.raises(LimitError):
        backend.pulse_many([Pulse(0, 0, 2.0, 1e-3), Pulse(0, 0, 9.0, 1e-3)])
    assert listener.calls == [] and backend.position[0, 0] == 0
    backend.close()
    with pytest.raises(BackendClosed):
        backend.pulse(0, 0, 2.0, 1e-3)
    assert listener.calls == []


def test_a_stop_before_a_chunk_ends_the_batch_there_and_the_sent_chunks_are_counted() -> None:
    backend = EmulatedCrossbar.from_params({"limits": Limits(max_batch=2).model_dump()})
    listener = Listener()
    backend.add_listener(listener)
    checks: list[int] = []
    sent: list[int] = []

    def stop_at_third_chunk() -> None:
        checks.append(len(checks))
        if len(checks) == 3:
            raise RunStopped("stop requested")

    with pytest.raises(RunStopped):
        backend.pulse_many([Pulse(0, 0, 2.0, 1e-3)] * 5, stop_at_third_chunk, lambda c: sent.append(len(c)))
    assert sent == [2, 2] and [len(p) for _, p in listener.calls] == [2, 2]  # type: ignore[arg-type]
    assert backend.position[0, 0] == 4
