"""``hil calibrations list | show | export | delete``: the instrument calibrations in the run store.

A calibration is made by ``hil characterize --all`` (every device's own curve, in one
pass); ``hil train`` on the same instrument then uses its newest one by default
(``--device-curve learned`` opts out). ``export`` writes one ``.dat`` trace per device
(``r<row>c<col>.dat``, replayable by the emulator: ``hil train --trace DIR/r0c0.dat``)
and the whole calibration as ``calibration.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crossbar_hil.procedures.calibrate import Calibration
from crossbar_hil.runs.calibrations import CalibrationNotFound, Calibrations
from crossbar_hil.runs.store import STORE_ENV, RunStore, StoreError, default_path
from crossbar_hil.trace_file import write_dat


def add_store_option(p: argparse.ArgumentParser) -> None:
    """``--database``, as ``hil runs`` takes it."""
    p.add_argument(
        "--database",
        type=Path,
        default=None,
        help=f"Run store file (default ${STORE_ENV} or {default_path()}).",
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil calibrations`` and its subcommands."""
    p = sub.add_parser("calibrations", help="List, show, export and delete instrument calibrations.")
    add_store_option(p)
    csub = p.add_subparsers(dest="calibrations_command", required=True, metavar="ACTION")
    ls = csub.add_parser("list", help="Calibrations, newest first.")
    ls.add_argument("--identity", help="Only this instrument's (its *IDN? reply).")
    ls.add_argument("--json", action="store_true", help="JSON instead of a table.")
    show = csub.add_parser("show", help="One calibration, as JSON.")
    show.add_argument("calibration_id")
    exp = csub.add_parser("export", help="One .dat trace per device and calibration.json, into a folder.")
    exp.add_argument("calibration_id")
    exp.add_argument("-o", "--output", type=Path, required=True, help="Folder to write into (created).")
    rm = csub.add_parser("delete", help="Forget one calibration.")
    rm.add_argument("calibration_id")
    p.set_defaults(func=run)


def export_files(calibration: Calibration, folder: Path) -> list[Path]:
    """``calibration.json`` and ``r<row>c<col>.dat`` per device in ``folder``; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "calibration.json"
    out.write_text(calibration.model_dump_json(indent=1) + "\n", encoding="utf-8")
    written = [out]
    for (r, c), trace in calibration.traces().items():
        written.append(write_dat(folder / f"r{r}c{c}.dat", trace))
    return written


def run(args: argparse.Namespace) -> int:
    """Run ``hil calibrations``; exit status 0, 2 for an unknown id or an unusable store."""
    prog = f"hil calibrations {args.calibrations_command}"
    try:
        store = RunStore(args.database or default_path())
    except (StoreError, OSError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    cals = Calibrations(store)
    try:
        if args.calibrations_command == "list":
            rows = cals.list(args.identity)
            if args.json:
                print(json.dumps(rows, indent=1))
            else:
                print(f"{'id':12s}  {'created_at':25s}  {'devices':>7s}  {'pulses':>6s}  identity")
                for r in rows:
                    print(
                        f"{r['id']:12s}  {r['created_at']:25s}  {r['devices']:>7d}  {r['n_pulses']:>6d}  "
                        f"{r['identity']}"
                    )
        elif args.calibrations_command == "show":
            print(cals.get(args.calibration_id).model_dump_json(indent=1))
        elif args.calibrations_command == "export":
            files = export_files(cals.get(args.calibration_id), args.output)
            print(f"wrote {len(files)} files to {args.output}")
        else:
            cals.delete(args.calibration_id)
            print(f"deleted calibration {args.calibration_id}")
    except CalibrationNotFound as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0
