"""A run's live stream: Server-Sent Events, each with its id; what was missed comes first.

Every status change is an event with the data run_id, at, status, outcome, error (and a
``change``, plus what the change adds: a ``queue_position``, a pause's ``when`` as asked and
``paused_at`` where it paused, a suspension's ``reason``, a reconnection's ``attempts``). Its SSE
name is the change for the changes that are events of their own
(:data:`~crossbar_hil.runs.store.CHANGES`): ``queued`` (the run waits in its queue), ``paused``,
``resumed``, ``suspended``, ``reconnected`` (API 2.0; they were ``status`` events before); every
other status change is a ``status`` event. ``epoch`` events carry data run_id, at, record = the
epoch record. ``at`` is when it was committed (UTC): a run commits its epochs a few at a time (at
most every 20 ms), always before a status change of its own, so epochs come in small bursts, never
after the status that followed them. Ids count the run's events from 1. A client that connects mid-run gets
every event from the first (or, with ``Last-Event-ID`` or ``?after=``, every
event after that id), then the live ones; the stream ends after the event of a
finished status.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from crossbar_hil.api.service.deps import get_run, store
from crossbar_hil.api.service.gates import Gates
from crossbar_hil.api.service.problems import Problem, ProblemDetails
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import CHANGES, Event, RunNotFound, RunStore

router = APIRouter(prefix="/runs", tags=["events"])

POLL_S = 0.5
"""Longest wait of a stream between looks (a commit wakes it at once, see :class:`Bell`): how soon
it notices a client gone."""
REFRESH_S = 1.0
"""How often a stream re-reads the file (events written by another process, e.g. ``hil runs stop``)."""
KEEPALIVE_S = 15.0
"""Longest silence before a comment line keeps proxies from closing the stream."""


def format_event(event: Event) -> str:
    """One event in the ``text/event-stream`` format."""
    data = json.dumps({**event.data, "at": event.at}, allow_nan=False)
    return f"id: {event.seq}\nevent: {event.name}\ndata: {data}\n\n"


@router.get(
    "/{run_id}/events",
    summary="Live stream of the run's events (SSE)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Events with ids: a status change is named by its change when it has one of "
            f"its own ({', '.join(CHANGES)}), else 'status' (data: run_id, at, status, outcome, error, "
            "change); 'epoch' (data: run_id, at, record). The stream ends after a finished status. "
            "Since API 2.0 the five changes are events of their own names, no longer 'status'.",
        },
        404: {"model": ProblemDetails, "content": {"application/problem+json": {}}},
        422: {"model": ProblemDetails, "content": {"application/problem+json": {}}},
    },
)
async def stream_events(
    run_id: str,
    request: Request,
    runs: Annotated[RunStore, Depends(store)],
    last_event_id: Annotated[str | None, Header(description="Resume after this event id.")] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="Resume after this event id.")] = None,
) -> StreamingResponse:
    run = get_run(runs, run_id)
    start = after or 0
    if last_event_id is not None:
        text = last_event_id.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise Problem(
                422,
                f"Last-Event-ID must be an event id (an integer >= 0), got {last_event_id!r}",
                kind="invalid-request",
                errors={"Last-Event-ID": "expected an integer >= 0"},
            )
        start = max(start, int(text))
    gates: Gates = request.app.state.gates
    if gates.streams.busy:
        raise gates.streams.refusal()
    if run.status.finished and start >= run.last_event:  # Nothing more will ever come.
        return StreamingResponse(
            iter(["retry: 1000\n\n"]), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    return StreamingResponse(
        _events(request, runs, run_id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, runs: RunStore, run_id: str, last: int) -> AsyncIterator[str]:
    gates: Gates = request.app.state.gates
    try:
        async with gates.streams.slot():
            async for chunk in _stream(request, runs, run_id, last):
                yield chunk
    except RunNotFound:  # Deleted while followed: nothing more will come.
        return
    except Problem:  # The streams gate filled up since the request was accepted.
        return


class EventCache:
    """The latest events as formatted text, shared by every stream: followers of one run
    read and format each event once between them. Holds at most ``size`` events."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._texts: OrderedDict[tuple[str, int], tuple[str, bool]] = OrderedDict()

    def after(self, run_id: str, last: int, newest: int) -> list[tuple[int, str, bool]] | None:
        """Events ``last + 1 .. newest`` as (id, text, finished); None unless all are held."""
        out = []
        for seq in range(last + 1, newest + 1):
            hit = self._texts.get((run_id, seq))
            if hit is None:
                return None
            out.append((seq, *hit))
        return out

    def add(self, run_id: str, events: list[Event]) -> list[tuple[int, str, bool]]:
        """Format and keep ``events``; returns them as :meth:`after` does."""
        out = []
        for event in events:
            # Every status change (named "status" or by its change) is of kind "status".
            finished = event.kind == "status" and RunStatus(event.data["status"]).finished
            text = format_event(event)
            self._texts[(run_id, event.seq)] = (text, finished)
            out.append((event.seq, text, finished))
        while len(self._texts) > self.size:
            self._texts.popitem(last=False)
        return out


class Bell:
    """Wakes the streams of a run when one of its events is committed (from any thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._events: dict[str, asyncio.Event] = {}

    def waiter(self, run_id: str) -> asyncio.Event:
        """An event set at the run's next commit (get it before looking, so none is missed)."""
        return self._events.setdefault(run_id, asyncio.Event())

    def ring(self, run_id: str, seq: int = 0) -> None:
        """A commit of ``run_id``: wake its streams (safe to call from any thread)."""
        self.loop.call_soon_threadsafe(self._wake, run_id)

    def _wake(self, run_id: str) -> None:
        event = self._events.pop(run_id, None)
        if event is not None:
            event.set()


async def _stream(request: Request, runs: RunStore, run_id: str, last: int) -> AsyncIterator[str]:
    cache: EventCache = request.app.state.event_cache
    bell: Bell = request.app.state.bell
    gates: Gates = request.app.state.gates
    yield "retry: 1000\n\n"
    quiet_since = refreshed = time.monotonic()
    while True:
        waiter = bell.waiter(run_id)
        newest = runs.last_event(run_id)
        if newest > last:
            events = cache.after(run_id, last, newest)
            if events is None:
                async with gates.backlogs.slot():  # A few pages read at a time: bounded CPU for reads.
                    events = cache.add(run_id, await run_in_threadpool(runs.events, run_id, last))
            for seq, text, finished in events:
                yield text
                last = seq
                if finished:
                    return
            quiet_since = time.monotonic()
            continue
        if await request.is_disconnected():
            return
        now = time.monotonic()
        if now - refreshed > REFRESH_S:
            refreshed = now
            await run_in_threadpool(runs.refresh_last_event, run_id)
        if now - quiet_since > KEEPALIVE_S:
            quiet_since = now
            yield ": keep-alive\n\n"
        with suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), POLL_S)
