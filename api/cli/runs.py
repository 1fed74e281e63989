"""``hil runs list | show | stop | export``: the run store, from the command line.

Works on the same database as ``hil serve`` (``--database``, ``$HIL_DB``), with
or without a service running. ``stop`` marks a run ``stopping`` in the store; the
process running it stops it before its next pulse (after the epoch in flight).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crossbar_hil.runs import export
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import STORE_ENV, Run, RunNotFound, RunStore, StoreError, default_path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil runs`` and its subcommands."""
    p = sub.add_parser("runs", help="List, show, stop and export stored runs.")
    p.add_argument(
        "--database",
        type=Path,
        default=None,
        help=f"Run store file (default ${STORE_ENV} or {default_path()}).",
    )
    rsub = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    ls = rsub.add_parser("list", help="Runs, newest first.")
    ls.add_argument("--status", action="append", choices=[s.value for s in RunStatus], help="Only these.")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="JSON instead of a table.")
    show = rsub.add_parser("show", help="One run's record.")
    show.add_argument("run_id")
    stop = rsub.add_parser("stop", help="Stop a run before its next pulse (idempotent).")
    stop.add_argument("run_id")
    exp = rsub.add_parser("export", help="A run's result (hil train --json form) or its history as CSV.")
    exp.add_argument("run_id")
    exp.add_argument("--format", choices=["json", "csv"], default="json")
    exp.add_argument("-o", "--output", type=Path, help="Write here instead of stdout.")
    p.set_defaults(func=run)


def run_summary(run: Run) -> dict[str, object]:
    """What ``list --json`` and ``show`` print of a run."""
    return {
        "id": run.id,
        "status": run.status.value,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "backend": run.backend,
        "instrument": run.instrument,
        "identity": run.identity,
        "outcome": run.outcome,
        "error": run.error,
        "epochs": run.epochs,
        "pulses": run.pulses,
        "config": run.config,
    }


def run(args: argparse.Namespace) -> int:
    """Run ``hil runs ...``; exit 1 for an unknown run, 2 for an unusable database."""
    path = args.database or default_path()
    if not path.is_file():
        print(f"hil runs: no run store at {path}", file=sys.stderr)
        return 2
    try:
        store = RunStore(path)
        store.check_integrity()
    except StoreError as e:
        print(f"hil runs: {e}", file=sys.stderr)
        return 2
    try:
        return _action(args, store)
    except RunNotFound as e:
        print(f"hil runs: {e.args[0]}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _action(args: argparse.Namespace, store: RunStore) -> int:
    if args.runs_command == "list":
        runs, total = store.list_runs([RunStatus(s) for s in args.status or ()], args.limit)
        if args.json:
            print(json.dumps({"total": total, "items": [run_summary(r) for r in runs]}, indent=2))
        else:
            print(f"{'id':32}  {'status':13}  {'created (UTC)':23}  {'backend':8}  epochs  pulses")
            for r in runs:
                created = r.created_at[:23]
                print(f"{r.id:32}  {r.status:13}  {created:23}  {r.backend:8}  {r.epochs:6}  {r.pulses:6}")
            print(f"{len(runs)} of {total} runs")
        return 0
    if args.runs_command == "show":
        print(json.dumps(run_summary(store.get_run(args.run_id)), indent=2))
        return 0
    if args.runs_command == "stop":
        run = store.request_stop(args.run_id)
        print(f"run {run.id}: {run.status}")
        return 0
    run = store.get_run(args.run_id)
    if args.format == "csv":
        text = export.result_csv(store, run)
    else:
        try:
            text = json.dumps(export.result_dict(store, run), indent=2) + "\n"
        except export.RunNotEnded as e:
            print(f"hil runs: {e} (export --format csv gives them)", file=sys.stderr)
            return 1
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0
