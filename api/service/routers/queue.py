"""The queue of each instrument: list it, start it, stop it, move a waiting run.

A run joins its instrument's queue when it is posted with ``"if_busy": "queue"`` while the
instrument is busy (or runs already wait for it); it leaves it when it starts, or with
``DELETE /runs/{id}``. A started queue starts its next run when the instrument is free; a
stopped one lets its current run finish and starts no more. A run that fails stops its
queue unless it was posted with ``"on_failure": "continue"``. **After a restart of the
service, queued runs stay queued and every queue with runs waiting is stopped: nothing starts
by itself; a person starts the queue again (``POST /queue/start``).**
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from crossbar_hil.api.service.auth import Authorized
from crossbar_hil.api.service.deps import get_run, manager
from crossbar_hil.api.service.models import QueueAction, QueueMove, QueuesView, QueueView, RunView
from crossbar_hil.api.service.problems import documented
from crossbar_hil.runs.manager import RunManager, queue_named

router = APIRouter(prefix="/queue", tags=["queue"])
Manager = Annotated[RunManager, Depends(manager)]
_PROBLEMS = documented(401, 404, 409)


def queues_view(runs: RunManager, instrument: str | None = None) -> QueuesView:
    """Every queue with runs waiting or a state set (only ``instrument``'s, in any spelling, if given)."""
    if instrument is not None:
        instrument = queue_named(instrument)
    waiting = runs.store.queued(instrument)
    states = runs.store.queue_states()
    names = sorted({r.queue for r in waiting if r.queue} | set(states))
    if instrument is not None:
        names = [instrument]
    out = []
    for name in names:
        state, reason = states.get(name, ("started", None))
        items = [RunView.of(r) for r in waiting if r.queue == name]
        out.append(QueueView(name=name, state=state, reason=reason, items=items))
    return QueuesView(queues=out)


@router.get("", summary="The queues and the runs waiting in them")
def read_queues(
    runs: Manager,
    instrument: Annotated[
        str | None, Query(max_length=500, description="Only this instrument's queue.")
    ] = None,
) -> QueuesView:
    """Each instrument's queue (or ``emulator``): started or stopped (and why), its runs in order.
    After a restart every queue with runs waiting is stopped: start it to go on."""
    return queues_view(runs, instrument)


@router.post("/start", dependencies=[Authorized], summary="Start a queue", responses=_PROBLEMS)
def start_queue(body: QueueAction, runs: Manager) -> QueuesView:
    """Its next run starts now if the instrument is free, and the next whenever one ends."""
    runs.start_queue(body.instrument)
    return queues_view(runs, body.instrument)


@router.post("/stop", dependencies=[Authorized], summary="Stop a queue", responses=_PROBLEMS)
def stop_queue(body: QueueAction, runs: Manager) -> QueuesView:
    """The run going on finishes; no other starts until the queue is started again."""
    runs.stop_queue(body.instrument)
    return queues_view(runs, body.instrument)


@router.post("/move", dependencies=[Authorized], summary="Move a waiting run", responses=_PROBLEMS)
def move_in_queue(body: QueueMove, runs: Manager) -> RunView:
    """Put a waiting run at ``position`` (1 = next) of its queue; 409 for a run not waiting."""
    get_run(runs.store, body.run_id)
    return RunView.of(runs.move(body.run_id, body.position))
