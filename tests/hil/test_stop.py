"""Stopping a run: the stop request (safe in a signal handler), and patience: a run whose devices
stopped moving is noticed from read-back conductances."""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import Any

import numpy as np

from crossbar_hil.training.stop import StallWatch, StopSignal, unmoved

G = np.full((2, 2), 1e-6)


def test_a_stop_set_while_another_set_runs_in_the_same_thread_does_not_wait_for_it() -> None:
    """A signal handler can run between any two lines of the code it interrupts, also inside
    another ``set`` of the same thread: a killed service sends its run's worker several SIGTERMs
    at once. Here a tracer plays that handler, at every line run inside the outer ``set`` (and
    what it calls). ``threading.Event.set`` wedged here for good, holding its lock."""
    stop = StopSignal()
    nested: list[str] = []
    in_handler = False

    def handler() -> None:
        nonlocal in_handler
        in_handler = True
        nested.append("SIGTERM")
        stop.set("the service ended (SIGTERM)")
        in_handler = False

    def on_line(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" and not in_handler:
            handler()
        return on_line

    def outer() -> None:
        sys.settrace(lambda frame, event, arg: on_line)
        try:
            stop.set("the service ended")
        finally:
            sys.settrace(None)

    thread = threading.Thread(target=outer, daemon=True)
    thread.start()
    thread.join(60)  # A wedged set never returns; a sound one returns in microseconds.
    assert not thread.is_alive(), "a stop set inside another set waited for it forever"
    assert nested and stop.is_set


def test_stalled_after_patience_epochs_without_a_move() -> None:
    watch = StallWatch(patience=3, rel_tol=1e-3)
    assert [watch.stalled(G) for _ in range(5)] == [False, False, False, True, True]


def test_a_move_beyond_the_tolerance_restarts_the_count() -> None:
    watch = StallWatch(patience=3, rel_tol=1e-3)
    moved = G.copy()
    moved[1, 1] *= 1.01
    reads = [G, G, G, moved, moved, moved, moved]
    assert [watch.stalled(g) for g in reads] == [False, False, False, False, False, False, True]


def test_read_noise_below_the_tolerance_does_not_count_as_moving() -> None:
    rng = np.random.default_rng(0)
    watch = StallWatch(patience=4, rel_tol=1e-3)
    noisy = [G * (1 + 1e-4 * rng.standard_normal(G.shape)) for _ in range(5)]
    assert [watch.stalled(g) for g in noisy][-1] is True


def test_a_device_that_went_up_and_came_back_moved() -> None:
    watch = StallWatch(patience=2, rel_tol=1e-3)
    assert not any(watch.stalled(g) for g in (G, G * 1.1, G))


def test_patience_zero_is_off_and_memory_is_bounded() -> None:
    off = StallWatch(patience=0, rel_tol=1e-3)
    assert not any(off.stalled(G) for _ in range(100))
    on = StallWatch(patience=5, rel_tol=1e-3)
    for _ in range(1000):
        on.stalled(G)
    assert len(on._window) == 6


def test_unmoved_judges_each_device_against_its_first_read() -> None:
    reads = np.stack([G, G * (1 + 5e-4), G])
    reads[1, 0, 1] *= 1.01  # One device moved and came back: it moved.
    assert unmoved(reads, 1e-3).tolist() == [[True, False], [True, True]]
    assert not unmoved(reads, 1e-4).any()
