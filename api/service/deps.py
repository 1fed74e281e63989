"""Request dependencies: the run manager and store of the application, a run looked up by id.

The two lookups are ``async`` so that FastAPI calls them on the event loop, not in a worker thread."""

from __future__ import annotations

from fastapi import Request

from crossbar_hil.api.service.problems import Problem
from crossbar_hil.runs.manager import RunManager
from crossbar_hil.runs.store import Run, RunNotFound, RunStore


async def manager(request: Request) -> RunManager:
    """The application's run manager."""
    found: RunManager = request.app.state.manager
    return found


async def store(request: Request) -> RunStore:
    """The application's run store."""
    found: RunStore = request.app.state.manager.store
    return found


def get_run(store: RunStore, run_id: str) -> Run:
    """The run, or a 404 problem."""
    try:
        return store.get_run(run_id)
    except RunNotFound:
        raise Problem(404, f"no run {run_id!r}", kind="run-not-found") from None
