"""``hil runs list | show | stop | pause | resume | delete | export | queue ...``: the run store,
from the command line.

Works on the same database as ``hil serve`` (``--database``, ``$HIL_DB``), with or without a
service running. Requests are written in the store, where the process running a run reads
them within 0.2 s: ``stop`` marks a run ``stopping`` (it stops before its next pulse),
``pause`` and ``resume`` set or withdraw its pause request; ``queue start`` and ``queue stop``
set its queue's state (a running service starts the next waiting run within a second).
``delete`` removes a finished run, or a run waiting in its queue. Exit status: 0 done, 2 for
an unknown run, a run not in a state for the action, or an unusable database.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

from crossbar_hil.runs import export
from crossbar_hil.runs.manager import queue_named
from crossbar_hil.runs.owner import Liveness, Owner, judge
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import STORE_ENV, Run, RunNotFound, RunStore, StoreError, default_path

EXIT_BAD_INPUT = 2
"""An unknown run, a run not in a state for the action, an unusable database: nothing was changed."""


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
    show = rsub.add_parser("show", help="One run: the summary hil train prints (--json: its record).")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true", help="The run's record as JSON instead.")
    stop = rsub.add_parser("stop", help="Stop a run before its next pulse (idempotent).")
    stop.add_argument("run_id")
    stop.add_argument(
        "--force",
        action="store_true",
        help="Release a run whose process is gone but cannot be judged so from here (another host, or "
        "recorded without its start time): marked interrupted, its instrument free. Refused while its "
        "process is seen running. Check the instrument is at 0 V.",
    )
    pause = rsub.add_parser("pause", help="Pause a running run: instrument held at 0 V, history kept.")
    pause.add_argument("run_id")
    pause.add_argument(
        "--when",
        choices=["after_epoch", "now"],
        default="after_epoch",
        help="after_epoch (default): once the epoch in flight is recorded; now: before the next operation.",
    )
    resume = rsub.add_parser("resume", help="Resume a paused run (it re-reads the crossbar, then goes on).")
    resume.add_argument("run_id")
    delete = rsub.add_parser("delete", help="Delete a finished run, or take a waiting run out of its queue.")
    delete.add_argument("run_id")
    queue = rsub.add_parser("queue", help="The queue of each instrument: list, start, stop, move.")
    qsub = queue.add_subparsers(dest="queue_command", required=True, metavar="QUEUE_ACTION")
    qls = qsub.add_parser("list", help="Queues and the runs waiting in them, in order.")
    qls.add_argument("--instrument", help="Only this queue (a resource or port, or 'emulator').")
    qls.add_argument("--json", action="store_true", help="JSON instead of a table.")
    for name, text in (
        ("start", "Start a queue: its next run starts when the instrument is free."),
        ("stop", "Stop a queue: the run going on finishes, no other starts."),
    ):
        q = qsub.add_parser(name, help=text)
        q.add_argument("instrument", help="The queue: an instrument's resource or port, or 'emulator'.")
    move = qsub.add_parser("move", help="Put a waiting run at a position of its queue (1 = next).")
    move.add_argument("run_id")
    move.add_argument("position", type=int)
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
    """Run ``hil runs ...``; exit 2 for an unknown run, a run not in a state for the action, or an
    unusable database."""
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
    with suppress(sqlite3.Error):  # A busy store: shown as it is.
        store.recover()  # A run whose process is gone (hil train killed by SIGKILL) shows as interrupted.
    try:
        return _action(args, store)
    except RunNotFound as e:
        print(f"hil runs: {e.args[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as e:  # Not in a state for the action (pause a finished run, delete a running one).
        print(f"hil runs: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        store.close()


def _action(args: argparse.Namespace, store: RunStore) -> int:
    if args.runs_command == "list":
        runs, total = store.list_runs([RunStatus(s) for s in args.status or ()], args.limit)
        if args.json:
            print(json.dumps({"total": total, "items": [run_summary(r) for r in runs]}, indent=2))
        else:
            print(f"{'id':32}  {'status':13}  {'created (UTC)':23}  {'backend':8}  epochs  pulses")  # trained
            for r in runs:
                created = r.created_at[:23]
                print(f"{r.id:32}  {r.status:13}  {created:23}  {r.backend:8}  {r.epochs:6}  {r.pulses:6}")
            print(f"{len(runs)} of {total} runs")
        return 0
    if args.runs_command == "show":
        shown = store.get_run(args.run_id)
        print(json.dumps(run_summary(shown), indent=2) if args.json else _summary(store, shown))
        return 0
    if args.runs_command == "stop":
        if args.force:
            run = store.release(args.run_id, "hil runs stop --force")
            print(f"run {run.id}: {run.status}" + (f" ({run.error})" if run.error else ""))
            return 0
        run = store.request_stop(args.run_id, "stop requested (hil runs stop)")
        print(f"run {run.id}: {run.status}")
        if not run.status.finished and judge(run.owner) is Liveness.UNKNOWN:
            print(
                f"hil runs: {Owner.parse(run.owner).describe()} holds it and cannot be seen from here "
                "(another host, or recorded without its start time): if it still runs, it stops the run "
                "within a second; if it is gone, nothing will: release the instrument "
                f"(hil runs stop --force {run.id})",
                file=sys.stderr,
            )
        return 0
    if args.runs_command == "pause":
        run = store.request_pause(args.run_id, args.when)
        print(f"run {run.id}: {run.status}, pause requested ({args.when})")
        return 0
    if args.runs_command == "resume":
        run = store.request_resume(args.run_id)
        print(f"run {run.id}: {run.status}, resume requested")
        return 0
    if args.runs_command == "delete":
        store.delete_run(args.run_id)
        print(f"run {args.run_id}: deleted")
        return 0
    if args.runs_command == "queue":
        return _queue(args, store)
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
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as e:
            print(f"hil runs: cannot write {args.output}: {e.strerror or e}", file=sys.stderr)
            return 2
    return 0


def _queue(args: argparse.Namespace, store: RunStore) -> int:
    if getattr(args, "instrument", None):
        args.instrument = queue_named(args.instrument)
    if args.queue_command in ("start", "stop"):
        if args.queue_command == "start":
            store.set_queue_state(args.instrument, "started")
        else:
            store.set_queue_state(args.instrument, "stopped", "stopped (hil runs queue stop)")
        state = store.queue_state(args.instrument)
        print(f"queue {args.instrument}: {state}, {len(store.queued(args.instrument))} run(s) waiting")
        return 0
    if args.queue_command == "move":
        run = store.move(args.run_id, args.position)
        print(f"run {run.id}: position {run.queue_position} of queue {run.queue}")
        return 0
    waiting = store.queued(args.instrument)
    states = store.queue_states()
    names = [args.instrument] if args.instrument else sorted({r.queue or "" for r in waiting} | set(states))
    queues: list[dict[str, Any]] = [
        {
            "name": name,
            "state": states.get(name, ("started", None))[0],
            "reason": states.get(name, ("started", None))[1],
            "items": [
                run_summary(r) | {"queue_position": r.queue_position} for r in waiting if r.queue == name
            ],
        }
        for name in names
    ]
    if args.json:
        print(json.dumps({"queues": queues}, indent=2))
        return 0
    for q in queues:
        why = f" ({q['reason']})" if q["reason"] else ""
        print(f"queue {q['name']}: {q['state']}{why}, {len(q['items'])} waiting")
        for item in q["items"]:
            print(f"  {item['queue_position']:3}  {item['id']}  {item['backend']}")
    return 0


def _summary(store: RunStore, run: Run) -> str:
    """What ``hil train`` prints at the end of a run, for a stored run; its status so far while it goes."""
    from crossbar_hil.api.cli.train import counted, summary
    from crossbar_hil.procedures.training import TrainingRun

    head = [f"run {run.id}: {run.status} (created {run.created_at}, backend {run.backend})"]
    if run.queue_position is not None:
        head.append(f"waiting in queue {run.queue} at position {run.queue_position}")
    if not run.status.finished:
        head.append(f"{counted(run.epochs, 'epoch')} trained so far ({counted(run.pulses, 'pulse')})")
        return "\n".join(head)
    result = export.training_result(store, run)
    return "\n".join([*head, summary(TrainingRun(run.run_config, run.identity or run.backend, result))])
