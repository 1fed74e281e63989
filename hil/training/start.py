"""The start state of a training: reset the devices a task uses, through backend operations only.

An instrument keeps its devices' state between runs; a second run would start
from the first run's (perhaps saturated) devices. Resetting them first gives every
run the same start, on the emulator and on hardware alike.
"""

from __future__ import annotations

from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.training.network import minus_col, plus_col
from crossbar_hil.training.stop import StopSignal
from crossbar_hil.training.task import Task


def task_devices(task: Task) -> list[tuple[int, int]]:
    """(row, col) of every device ``task`` trains: its input rows x both columns of each neuron."""
    cols = sorted(c for i in range(task.n_outputs) for c in (plus_col(i), minus_col(i)))
    return [(r, c) for r in range(task.n_inputs) for c in cols]


def reset_devices(
    backend: CrossbarBackend, task: Task, stop: StopSignal, done: list[tuple[int, int]] | None = None
) -> list[tuple[int, int]]:
    """Reset every device of ``task`` on ``backend``; the stop is checked before each reset.

    Appends each device to ``done`` (and returns it) as soon as it is reset, so a
    stop or a fault part way still tells which devices were reset.
    """
    done = [] if done is None else done
    for row, col in task_devices(task):
        stop.check()
        backend.reset(row, col)
        done.append((row, col))
    return done
