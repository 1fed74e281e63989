"""The application factory: settings in, FastAPI app out (store, run manager, routes, errors)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import IO

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from crossbar_hil.api.service import problems
from crossbar_hil.api.service.control import ControlPath
from crossbar_hil.api.service.gates import Gates, ResultCache
from crossbar_hil.api.service.limits import BodyLimit
from crossbar_hil.api.service.routers import calibrations, events, page, presets, queue, runs, system, traces
from crossbar_hil.api.service.settings import ServiceSettings, host_names
from crossbar_hil.runs.manager import RunManager
from crossbar_hil.runs.owner import Owner, owner_alive
from crossbar_hil.runs.store import RunStore, StoreError
from crossbar_hil.runs.trace_library import TraceLibrary
from crossbar_hil.seam.errors import HilError

log = logging.getLogger(__name__)

API_TITLE = "crossbar-hil run control"
API_VERSION = "2.0"
"""Version of the REST API (the committed openapi.json); bump on an incompatible change. 2.0: the
status changes queued, paused, resumed, suspended and reconnected are SSE events of their own names
(no longer ``event: status``)."""


class DatabaseInUse(HilError, RuntimeError):
    """Another service process uses the run database."""


def _lock(database: Path) -> IO[bytes]:
    """Hold ``<database>.lock`` exclusively while the service runs: one service per database,
    so at start-up every run still marked active belongs to a process that is gone."""
    import fcntl

    database.parent.mkdir(parents=True, exist_ok=True)
    handle = open(database.with_name(database.name + ".lock"), "wb")  # noqa: SIM115 - held for the app's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DatabaseInUse(f"another service is using the run database {database}") from None
    return handle


WORKER_GRACE_S = 15.0
"""How long (s) a starting service waits for an earlier service's run workers still finishing
(their command in flight, the ABOR, the record of the end) before it interrupts their runs."""


def _warn_interrupted(store: RunStore, run_ids: list[str]) -> None:
    """Warn loudly, per run, that an instrument left by a run of an earlier service may be live."""
    for run_id in run_ids:
        instrument = store.get_run(run_id).instrument
        where = f"instrument {instrument}" if instrument else "its emulated crossbar"
        log.warning(
            "RUN %s WAS INTERRUPTED (an earlier service ended during it): the outputs of %s were "
            "NOT confirmed at 0 V; check the instrument before touching the device",
            run_id,
            where,
        )


def _alive_beside(service: str) -> Callable[[str], bool]:
    """Whether a run's process still runs, for a service (owner ``service``) that starts: we hold
    the lock, so a run of an earlier service is gone with it (also one whose pid was ours, or whose
    host name was another, in a container); a run of ``hil train`` on this host is judged by its
    process (it records in the same store and may be training now)."""
    host = socket.gethostname()
    return lambda owner: owner != service and Owner.parse(owner).host == host and owner_alive(owner)


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service for ``settings``. The store opens (and stale runs become ``interrupted``)
    when the app starts; runs are stopped (0 V) and waited for when it shuts down."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lock = _lock(settings.database)
        store = RunStore(settings.database)
        try:
            store.check_integrity()  # Refuse to serve from (and take runs into) a damaged file.
        except StoreError:
            store.close()
            lock.close()
            raise
        manager = RunManager(
            store,
            max_emulator_runs=settings.max_emulator_runs,
            isolation=settings.run_isolation,
            allow_path_params=False,  # A client may not name the server's files (see RunManager).
            trace_library=None if settings.trace_dir is None else TraceLibrary(settings.trace_dir),
            times=settings.times,
        )
        control = ControlPath(on_thread_start=store.skip_checkpoints)
        try:
            # An earlier service's runs still active are interrupted now; one whose worker is still
            # finishing (it records its end as soon as its pipe ends) is waited for, up to
            # WORKER_GRACE_S: a worker that never records must not hold its instrument for good.
            # The instrument is then free, and the log says to check it (hil runs, hil train wait).
            lost = manager.recover(alive=_alive_beside(manager.owner), workers=False, grace_s=WORKER_GRACE_S)
            _warn_interrupted(store, lost)
            manager.watch_queues()
            app.state.manager = manager
            app.state.control = control
            app.state.gates = Gates()
            app.state.plot_cache = ResultCache()
            bell = events.Bell(asyncio.get_running_loop())
            store.add_listener(bell.ring)
            app.state.bell = bell
            yield
        finally:
            if manager.shutdown():
                store.close()  # Not under a run thread that is still writing.
            control.close()
            with suppress(OSError):
                lock.close()

    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        summary="Start, watch and stop in-situ training runs of memristor crossbars.",
        lifespan=lifespan,
        docs_url=None,  # Served by routers.page from an installed package, not from a CDN.
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.event_cache = events.EventCache()
    problems.install(app)
    for router in (
        runs.router,
        queue.router,
        events.router,
        system.router,
        presets.router,
        calibrations.router,
        traces.router,
    ):
        app.include_router(router)
    page.install(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=host_names(settings))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
        )
    return app
