"""Running a sweep: grid points x seeds, cut into chunks, on any ``concurrent.futures`` executor.

A chunk is one grid point and a run of seeds. It trains every seed's crossbar
with the batched path (:func:`crossbar_hil.training.batched.train_batch` on a
:class:`~crossbar_hil.emulator.batched.CrossbarBatch`) or, for a rule without a batched form,
one crossbar at a time with :class:`~crossbar_hil.training.trainer.Trainer` (the same
trajectories, slower). Chunks go to an executor: a local
``ProcessPoolExecutor`` or a Dask cluster's ``Client.get_executor()``; results
are put back in (point, seed) order, so the table does not depend on where or
in which order the chunks ran.

Work items are plain data (JSON-ready dicts), so any worker with crossbar-hil
installed can run them. A trace file named by a point must exist at the same
path on the workers.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.emulator.batched import CrossbarBatch
from crossbar_hil.emulator.config import EmulatorConfig
from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.emulator.sweep.grid import Grid, Value, configs, points
from crossbar_hil.training.batched import train_batch
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train

R = TypeVar("R")

Progress = Callable[[int, int, int], None]
"""Called after each chunk with (chunks done, chunks in all, trainings done)."""


@dataclass(frozen=True)
class ChunkResult:
    """Outcomes of one chunk: per seed, in seed order."""

    point: int
    seeds: list[int]
    converged: list[bool]
    epochs: list[int]
    path: str
    """"batched" or "single" (the rule has no batched form)."""
    feasible: list[bool] | None = None
    """Per seed: can reachable weights meet the bands? None when no feasibility check ran."""


def run_chunk(
    point: int,
    emulator: Mapping[str, Any],
    training: Mapping[str, Any],
    task: Mapping[str, Any],
    seeds: Sequence[int],
    feasibility: bool = False,
) -> ChunkResult:
    """Train one crossbar per seed at one grid point (configs as JSON-ready dicts)."""
    emu = EmulatorConfig.model_validate(emulator)
    cfg = TrainingConfig.model_validate(training)
    t = Task.model_validate(task)
    batch = CrossbarBatch(emu, list(seeds))
    feasible = feasible_draws(batch, t, cfg) if feasibility else None
    try:
        result = train_batch(batch, t, cfg)
        converged, epochs, path = result.converged.tolist(), result.epochs.tolist(), "batched"
    except NotImplementedError:
        runs = [train(EmulatedCrossbar(emu.model_copy(update={"seed": s})), t, cfg) for s in seeds]
        converged, epochs, path = [r.converged for r in runs], [r.epochs for r in runs], "single"
    return ChunkResult(point, list(seeds), converged, epochs, path, feasible)


def feasible_draws(batch: CrossbarBatch, task: Task, cfg: TrainingConfig) -> list[bool]:
    """Per crossbar, before training: can reachable weights meet the bands at ``cfg``'s gain?

    Decided exactly by :func:`crossbar_hil.training.feasibility.check_feasibility` from the
    crossbar's conductances and its own device curve (every position reachable).
    """
    from crossbar_hil.training.feasibility import NeedSpec, check_feasibility

    need = NeedSpec(beta=cfg.beta, f_plus=cfg.f_plus, f_minus=cfg.f_minus)
    curve = batch.config.scale_k * (batch.state.table - batch.state.table[0])
    g0 = batch.conductances()
    return [bool(check_feasibility(task, need, g, curve).feasible) for g in g0]


@dataclass
class SweepResult:
    """Every grid point's per-seed outcomes, in (point, seed) order."""

    grid: Grid
    points: list[dict[str, Value]]
    seeds: list[int]
    converged: NDArray[np.bool_]
    """(points, seeds)."""
    epochs: NDArray[np.int64]
    """(points, seeds) update epochs of each run."""
    feasible: NDArray[np.bool_] | None
    """(points, seeds), or None when no feasibility check ran."""
    paths: list[str] = field(default_factory=list)
    """Per point: "batched" or "single"."""
    emulator: EmulatorConfig | None = None
    """The base emulator settings the grid points vary (None: EmulatorConfig())."""
    training: TrainingConfig | None = None
    """The base training settings the grid points vary (None: TrainingConfig())."""


def run_sweep(
    grid: Grid,
    seeds: Sequence[int],
    executor: cf.Executor,
    emulator: EmulatorConfig | None = None,
    training: TrainingConfig | None = None,
    task: Task | None = None,
    chunk_size: int = 2000,
    feasibility: bool = False,
    progress: Progress | None = None,
) -> SweepResult:
    """Train every seed at every grid point on ``executor``; see the module docstring.

    Every point is validated before anything runs (:class:`~crossbar_hil.emulator.sweep.grid.GridError`
    names the parameter).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError("a sweep needs at least one seed, each >= 0 and given once")
    base_emu, base_cfg = emulator or EmulatorConfig(), training or TrainingConfig()
    task_data = (task or Task.reference()).model_dump(mode="json")
    pts = points(grid)
    work = []
    for k, point in enumerate(pts):
        emu, cfg = configs(point, base_emu, base_cfg)
        emu_data, cfg_data = emu.model_dump(mode="json"), cfg.model_dump(mode="json")
        for start in range(0, len(seeds), chunk_size):
            work.append((k, emu_data, cfg_data, task_data, seeds[start : start + chunk_size], feasibility))
    chunks = map_ordered(executor, run_chunk, work, progress, weight=lambda c: len(c.seeds))
    return replace(_assemble(grid, pts, seeds, chunks), emulator=base_emu, training=base_cfg)


def map_ordered(
    executor: cf.Executor,
    fn: Callable[..., R],
    work: Sequence[tuple[Any, ...]],
    progress: Progress | None = None,
    weight: Callable[[R], int] = lambda _: 1,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``fn(*item)`` for every item of ``work`` on ``executor``; the results in ``work``'s order.

    The one way sweeps and experiments use an executor (a local ``ProcessPoolExecutor``
    or a Dask client's): every item is submitted at once, ``progress`` is called as
    results come back with (items done, items in all, sum of ``weight`` over the results
    so far), ``on_result`` with (index in ``work``, result) as each comes back (e.g. to keep it
    on disk), and on an error or a stop the items not yet started are cancelled.
    """
    futures = [executor.submit(fn, *item) for item in work]
    index = {fut: k for k, fut in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    done = units = 0
    try:
        for fut in cf.as_completed(futures):
            result = fut.result()
            results[index[fut]] = result
            if on_result:
                on_result(index[fut], result)
            done += 1
            units += weight(result)
            if progress:
                progress(done, len(futures), units)
    finally:
        for fut in futures:
            fut.cancel()
    return results


def _assemble(
    grid: Grid, pts: list[dict[str, Value]], seeds: list[int], chunks: list[ChunkResult]
) -> SweepResult:
    column = {s: i for i, s in enumerate(seeds)}
    shape = (len(pts), len(seeds))
    converged = np.zeros(shape, dtype=bool)
    epochs = np.zeros(shape, dtype=np.int64)
    feasible = np.zeros(shape, dtype=bool)
    has_feasible = bool(chunks) and all(c.feasible is not None for c in chunks)
    paths = [""] * len(pts)
    for c in chunks:
        cols = [column[s] for s in c.seeds]
        converged[c.point, cols] = c.converged
        epochs[c.point, cols] = c.epochs
        if has_feasible and c.feasible is not None:
            feasible[c.point, cols] = c.feasible
        paths[c.point] = c.path
    return SweepResult(
        grid,
        pts,
        seeds,
        converged,
        epochs,
        feasible if has_feasible else None,
        paths,
    )
