"""``hil sweep``: convergence over a grid of parameters and many device-variation seeds.

Example::

    hil sweep --grid beta=6e6,3e7,3e8 --grid targets=0.8,1.0 --seeds 10000 --out sweep_out

Runs on a local process pool, or on a Dask cluster with ``--scheduler tcp://host:port``
(``pip install crossbar-hil[sweep]``). Writes ``sweep.csv`` (columns in
``crossbar_hil.emulator.sweep.table``), ``epochs.csv`` and PNG plots to ``--out``; prints the table.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from crossbar_hil.api.cli.backend_options import bad_input
from crossbar_hil.api.cli.stopping import EXIT_STOPPED, interrupting_signals
from crossbar_hil.emulator.config import EmulatorConfig
from crossbar_hil.emulator.sweep import PARAMETERS, GridError, parse_grid, rows, run_sweep, write_tables
from crossbar_hil.emulator.sweep.grid import describe
from crossbar_hil.emulator.sweep.table import epoch_counts
from crossbar_hil.resources import TRACE_ENV, trace_from_env
from crossbar_hil.training.task import Task


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil sweep``."""
    p = sub.add_parser(
        "sweep",
        help="Convergence share over a parameter grid and many seeds (emulated, batched).",
        description=__doc__,
        epilog="grid parameters:\n" + describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2|START:STOP:COUNT",
        help="A swept parameter and its values (repeatable; see the list below).",
    )
    p.add_argument("--seeds", type=int, default=1000, help="Seeds per grid point (default 1000).")
    p.add_argument("--seed-start", type=int, default=0, help="First seed (default 0).")
    p.add_argument("--trace", type=Path, help=f"Base device: a trace file (default ${TRACE_ENV}).")
    p.add_argument("--builtin", action="store_true", help="Base device: the built-in model.")
    p.add_argument("--task", type=Path, help="Task JSON (default: the reference 4-bit task).")
    p.add_argument("--out", type=Path, default=Path("sweep_out"), help="Output folder (default sweep_out).")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Local worker processes.")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="Run on this Dask distributed scheduler.")
    p.add_argument("--chunk-size", type=int, default=2000, help="Seeds per work item (default 2000).")
    p.add_argument(
        "--feasibility",
        action="store_true",
        help="Also check each draw's feasibility (fills the feasible* columns when available).",
    )
    p.add_argument("--no-plots", action="store_true", help="Write the CSV files only.")
    p.set_defaults(func=run)


@contextmanager
def executor(args: argparse.Namespace) -> Iterator[cf.Executor]:
    """A local process pool, or the executor of a Dask client connected to ``--scheduler``."""
    if not args.scheduler:
        with interrupting_signals():
            pool = cf.ProcessPoolExecutor(max_workers=max(1, args.workers), initializer=quiet_worker)
            try:
                yield pool
            except BaseException:  # A stop (or an error): drop what has not started, end the rest.
                stop_pool(pool)
                raise
            pool.shutdown(wait=True)
        return
    try:
        from distributed import Client
    except ImportError:
        raise RuntimeError("--scheduler needs Dask: pip install 'crossbar-hil[sweep]'") from None
    with interrupting_signals(), Client(args.scheduler) as client:
        yield client.get_executor()


def quiet_worker() -> None:
    """A pool worker leaves stops to the command: it ignores Ctrl-C (the terminal sends it to the
    whole process group) and dies quietly on the SIGTERM of :func:`stop_pool`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel the pool's waiting work and end its workers now, not after their trainings: they
    hold no instrument, only emulations whose finished results the caller has kept."""
    processes = getattr(pool, "_processes", None) or {}  # private: 3.11 has no public way to end them
    workers = list(processes.values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()
    for process in workers:
        process.join(timeout=10)


def after_progress(text: str) -> None:
    """Print ``text`` on stderr below a :class:`ProgressLine` (on a terminal its line has no end)."""
    print(("\n" if sys.stderr.isatty() else "") + text, file=sys.stderr)


class ProgressLine:
    """Chunks and trainings done, rewritten in place on a terminal (one line per chunk otherwise)."""

    def __init__(self, total_runs: int, stream: TextIO | None = None, label: str = "sweep") -> None:
        self.stream, self.label = stream or sys.stderr, label
        self.total_runs, self.t0 = total_runs, time.perf_counter()
        self.tty = self.stream.isatty()

    def __call__(self, done: int, total: int, runs: int) -> None:
        dt = time.perf_counter() - self.t0
        text = (
            f"{self.label}: {done}/{total} chunks, {runs}/{self.total_runs} trainings, "
            f"{dt:.1f} s, {runs / max(dt, 1e-9):,.0f} trainings/s"
        )
        end = "\n" if not self.tty or done == total else ""
        print(("\r" if self.tty else "") + text, end=end, file=self.stream, flush=True)


def run(args: argparse.Namespace) -> int:
    """Parse, sweep, write, print."""
    prog = "hil sweep"
    try:
        if args.seeds < 1 or args.seed_start < 0:
            raise GridError(
                f"--seeds must be >= 1 and --seed-start >= 0, got {args.seeds}, {args.seed_start}"
            )
        grid = parse_grid(args.grid)
        trace = None if args.builtin else (args.trace or trace_from_env())
        base = EmulatorConfig(trace=trace)
        task = Task.load(args.task) if args.task else Task.reference()
    except (GridError, ValueError, OSError) as e:
        return bad_input(prog, e)
    seeds = range(args.seed_start, args.seed_start + args.seeds)
    n_points = 1
    for values in grid.values():
        n_points *= len(values)
    try:
        with executor(args) as ex:
            result = run_sweep(
                grid,
                seeds,
                ex,
                emulator=base,
                task=task,
                chunk_size=args.chunk_size,
                feasibility=args.feasibility,
                progress=ProgressLine(n_points * args.seeds),
            )
    except (GridError, ValueError) as e:
        return bad_input(prog, e)
    except KeyboardInterrupt as e:
        after_progress(f"{prog}: {e or 'stopped'}: no table written")
        return EXIT_STOPPED
    from crossbar_hil.reports.sweep_plots import SweptAxis, save_sweep_plots  # matplotlib: when it runs

    table = rows(result)
    axes = {p: SweptAxis(PARAMETERS[p].unit, PARAMETERS[p].symmetric) for p in grid}
    csv_path, epochs_path = write_tables(result, args.out)
    device = trace or "built-in device"
    print(f"device (base): {device}; task {task.name}; seeds {seeds.start}..{seeds.stop - 1}")
    for r in table:
        params = ", ".join(f"{k}={r[k]:g}" if isinstance(r[k], float) else f"{k}={r[k]}" for k in grid)
        params = params or "(base settings)"
        median = "-" if r["converged"] == 0 else f"{r['epochs_median']:g}"
        feas = "" if r["feasible"] is None else f", feasible {r['feasible_share']:.2%}"
        print(
            f"[{r['point']}] {params}: converged {r['converged']}/{r['seeds']} = {r['share']:.2%} "
            f"[{r['share_low']:.2%}, {r['share_high']:.2%}], median epochs {median}{feas} ({r['path']})"
        )
    print(f"wrote {csv_path} and {epochs_path}")
    if not args.no_plots:
        paths = save_sweep_plots(table, epoch_counts(result), list(grid), args.out, axes=axes)
        print("plots: " + ", ".join(str(p) for p in paths.values()))
    return 0
