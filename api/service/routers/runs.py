"""Runs: create (or queue), list, inspect (epochs, pulse log, result, CSV, plots), stop, pause,
resume, delete. The core's errors become problems by one table
(:data:`~crossbar_hil.api.service.problems.PROBLEMS`)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from crossbar_hil.api.service.auth import Authorized
from crossbar_hil.api.service.backend_policy import request_param_errors
from crossbar_hil.api.service.control import ControlPath, control
from crossbar_hil.api.service.deps import get_run, manager, store
from crossbar_hil.api.service.gates import Gates, ResultCache
from crossbar_hil.api.service.models import (
    EpochPage,
    PauseRequest,
    PlotList,
    PulsePage,
    RunPage,
    RunRequest,
    RunView,
)
from crossbar_hil.api.service.problems import Problem, documented
from crossbar_hil.reports.plots import PLOTS
from crossbar_hil.runs import export
from crossbar_hil.runs.manager import RunManager
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore

router = APIRouter(prefix="/runs", tags=["runs"])

Manager = Annotated[RunManager, Depends(manager)]
Store = Annotated[RunStore, Depends(store)]
Control = Annotated[ControlPath, Depends(control)]
Offset = Annotated[int, Query(ge=0, le=10**9, description="Items to skip.")]


def _limit(most: int) -> Any:
    return Query(ge=1, le=most, description=f"Items per page (1 to {most}).")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Authorized],
    responses=documented(401, 409, 422, 429, 502),
    summary="Start a training run, or queue it",
)
def create_run(
    request: RunRequest,
    http: Request,
    response: Response,
    runs: Manager,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="A retried POST with the same key returns the same run."),
    ] = None,
) -> RunView:
    """Start a run in the background; 202 with its ``Location``. The run's worker opens the
    backend and checks the config against it first, so a bad config is a 422 naming the field
    and an instrument that does not answer a 502. With ``"if_busy": "queue"`` a run for a busy
    instrument waits in its queue (status ``queued``, ``queue_position``) instead of a 409."""
    config = request.config()
    digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()
    hosts = http.app.state.settings.instrument_hosts
    if refused := request_param_errors(config.backend.name, config.backend.params, hosts):
        detail = "; ".join(f"{k}: {v}" for k, v in refused.items())
        raise Problem(422, detail, kind="invalid-run", errors=refused)
    run, _ = runs.start(
        config,
        idempotency_key=idempotency_key,
        request_hash=digest,
        if_busy=request.if_busy,
        on_failure=request.on_failure,
    )
    response.headers["Location"] = f"/runs/{run.id}"
    return RunView.of(run)


@router.get("", summary="List runs", responses=documented(422))
def list_runs(
    runs: Store,
    status_: Annotated[
        list[RunStatus] | None, Query(alias="status", description="Only these statuses.")
    ] = None,
    limit: Annotated[int, _limit(500)] = 50,
    offset: Offset = 0,
) -> RunPage:
    """Runs, newest first."""
    items, total = runs.list_runs(status_ or (), limit, offset)
    return RunPage(items=[RunView.of(r) for r in items], total=total, offset=offset, limit=limit)


@router.get("/{run_id}", summary="One run", responses=documented(404))
async def read_run(run_id: str, runs: Store) -> RunView:
    """The run's record (a short indexed read: answered on the event loop, the most polled request)."""
    return RunView.of(get_run(runs, run_id))


@router.get("/{run_id}/epochs", summary="The run's epoch records", responses=documented(404, 422))
def read_epochs(
    run_id: str, runs: Store, limit: Annotated[int, _limit(1000)] = 100, offset: Offset = 0
) -> EpochPage:
    """Epoch records in epoch order (the ``history`` entries of ``hil train --json``)."""
    get_run(runs, run_id)
    items = runs.epochs(run_id, offset, limit)
    return EpochPage(items=items, total=runs.epoch_records(run_id), offset=offset, limit=limit)


@router.get("/{run_id}/pulses", summary="Every pulse and reset sent", responses=documented(404, 422))
def read_pulses(
    run_id: str, runs: Store, limit: Annotated[int, _limit(10000)] = 1000, offset: Offset = 0
) -> PulsePage:
    get_run(runs, run_id)
    items = runs.pulse_log(run_id, offset, limit)
    return PulsePage(items=items, total=runs.pulse_log_count(run_id), offset=offset, limit=limit)


@router.get("/{run_id}/result", summary="The result, as hil train --json", responses=documented(404, 409))
def read_result(run_id: str, runs: Store) -> dict[str, Any]:
    """The ended run in the JSON form of ``hil train --json``; 409 while it is going."""
    return export.result_dict(runs, get_run(runs, run_id))


@router.get(
    "/{run_id}/history.csv",
    summary="Per-epoch history as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **documented(404)},
)
def read_history_csv(run_id: str, runs: Store) -> Response:
    run = get_run(runs, run_id)
    return Response(
        export.result_csv(runs, run),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}.csv"'},
    )


@router.get("/{run_id}/plots", summary="The run's figures", responses=documented(404))
def list_plots(run_id: str, runs: Store) -> PlotList:
    get_run(runs, run_id)
    return PlotList(plots={name: f"/runs/{run_id}/plots/{name}.png" for name in PLOTS})


@router.get(
    "/{run_id}/plots/{name}.png",
    summary="One figure as PNG (the same as hil train --plots)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **documented(404, 409)},
)
async def read_plot(run_id: str, name: str, runs: Store, http: Request) -> Response:
    """Rendered once per run, figure and last event (then served from a cache); a few renderings
    at a time, a 503 with ``Retry-After`` when they are all busy."""
    if name not in PLOTS:
        raise Problem(404, f"no figure {name!r}; figures: {', '.join(PLOTS)}", kind="plot-not-found")
    run = get_run(runs, run_id)
    gates: Gates = http.app.state.gates
    cache: ResultCache = http.app.state.plot_cache

    async def render() -> bytes:
        async with gates.renders.slot():
            return await run_in_threadpool(_render, runs, run, name)

    png = await cache.get((run_id, name, run.last_event), render)
    return Response(png, media_type="image/png")


def _render(runs: RunStore, run: Any, name: str) -> bytes:
    from crossbar_hil.reports.plots import minute_utc, plot_png, run_caption

    config = run.run_config
    result = export.training_result(runs, run)
    caption = run_caption(config, run=run.id, date=minute_utc(run.created_at), beta=result.beta)
    return plot_png(name, result, config.task, config.training, caption=caption)


@router.post(
    "/{run_id}/stop",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Authorized],
    summary="Stop a run (idempotent)",
    responses=documented(401, 404, 409),
)
async def stop_run(run_id: str, runs: Manager, path: Control, force: bool = False) -> RunView:
    """The run stops before its next pulse, the instrument at 0 V. A finished run is returned unchanged.
    Served on the control path: no read delays it.

    ``force=true`` releases a run that no process is seen holding (its process gone, on another
    host, or recorded without its start time, so a stop would never end it): it is marked
    ``interrupted`` and its instrument is free; check the instrument is at 0 V. 409 while its
    process is seen running, or while it waits in its queue."""
    await path.call(get_run, runs.store, run_id)
    if force:
        return RunView.of(await path.call(runs.release, run_id, "POST /runs/{id}/stop?force=true"))
    return RunView.of(await path.call(runs.stop, run_id))


@router.post(
    "/{run_id}/pause",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Authorized],
    summary="Pause a running run",
    responses=documented(401, 404, 409),
)
async def pause_run(run_id: str, runs: Manager, path: Control, body: PauseRequest | None = None) -> RunView:
    """The run pauses after the epoch in flight (``after_epoch``) or before its next operation
    (``now``): its instrument held at 0 V (ABOR), status ``paused``, its process and history kept.
    A paused run not resumed within the service's ``pause_timeout_s`` ends as stopped. 409 unless
    the run is running (or already paused)."""
    await path.call(get_run, runs.store, run_id)
    return RunView.of(await path.call(runs.pause, run_id, (body or PauseRequest()).when))


@router.post(
    "/{run_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Authorized],
    summary="Resume a paused run",
    responses=documented(401, 404, 409),
)
async def resume_run(run_id: str, runs: Manager, path: Control) -> RunView:
    """The run re-reads every conductance and goes on: the same run, its history without gaps.
    Withdraws a pause not yet taken effect. 409 for a run neither paused nor asked to pause."""
    await path.call(get_run, runs.store, run_id)
    return RunView.of(await path.call(runs.resume, run_id))


@router.delete(
    "/{run_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Authorized],
    summary="Delete a finished run, or take a waiting run out of its queue",
    responses=documented(401, 404, 409),
)
def delete_run(run_id: str, runs: Manager) -> Response:
    """A finished run and all its records, or a run waiting in its queue; 409 for any other active run."""
    get_run(runs.store, run_id)
    runs.remove(run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
