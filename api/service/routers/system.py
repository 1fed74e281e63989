"""The service itself: emergency stop, registered backends, visible instruments, health, version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from crossbar_hil.api.service.auth import Authorized, Credentials, check_token
from crossbar_hil.api.service.backend_policy import request_param_errors
from crossbar_hil.api.service.control import ControlPath, control
from crossbar_hil.api.service.deps import manager
from crossbar_hil.api.service.models import (
    BackendsView,
    EmergencyStopRequest,
    EmergencyStopState,
    Health,
    VersionView,
)
from crossbar_hil.api.service.problems import Problem, ProblemDetails, documented
from crossbar_hil.drivers.discovery import Discovery
from crossbar_hil.procedures.training import RESULT_SCHEMA_VERSION
from crossbar_hil.runs.manager import RunManager
from crossbar_hil.runs.store import SCHEMA_VERSION
from crossbar_hil.seam.registry import available_backends

router = APIRouter(tags=["system"])
Manager = Annotated[RunManager, Depends(manager)]
Control = Annotated[ControlPath, Depends(control)]
_401: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemDetails, "content": {"application/problem+json": {}}}
}


def package_version() -> str:
    """The installed crossbar-hil version."""
    try:
        return version("crossbar-hil")
    except PackageNotFoundError:
        return "unknown"


def _estop(runs: RunManager, stopped: list[str] | None = None) -> EmergencyStopState:
    state = runs.emergency_stop_state()
    if state is None:
        return EmergencyStopState(latched=False, stopped_runs=stopped or [])
    return EmergencyStopState(
        latched=True, since=state.get("at"), reason=state.get("reason"), stopped_runs=stopped or []
    )


@router.post(
    "/emergency-stop", dependencies=[Authorized], responses=_401, summary="Stop everything and latch"
)
async def emergency_stop(
    runs: Manager, path: Control, body: EmergencyStopRequest | None = None
) -> EmergencyStopState:
    """Every run stops before its next pulse and every instrument in use gets an abort (0 V) now;
    no run starts until the latch is cleared (DELETE). Every queue with runs waiting is stopped,
    the reason kept: clearing the latch starts none of them; start each again (POST /queue/start).
    Served on the control path: no read delays it."""
    stopped = await path.call(runs.emergency_stop, (body or EmergencyStopRequest()).reason)
    return await path.call(_estop, runs, stopped)


@router.get("/emergency-stop", summary="Is the emergency stop latched?")
def emergency_stop_state(runs: Manager) -> EmergencyStopState:
    return _estop(runs)


@router.delete("/emergency-stop", dependencies=[Authorized], responses=_401, summary="Clear the latch")
async def clear_emergency_stop(runs: Manager, path: Control) -> EmergencyStopState:
    """Release the latch: runs may start again. The queues the emergency stop stopped stay stopped
    until a person starts each (POST /queue/start); their waiting runs do not start by themselves."""
    await path.call(runs.clear_emergency_stop)
    return await path.call(_estop, runs)


@router.get("/backends", summary="Registered backends")
def backends() -> BackendsView:
    return BackendsView(backends=available_backends())


@router.get("/instruments", summary="Instruments this machine can see", responses=documented(401, 422))
def instruments(
    request: Request,
    credentials: Credentials,
    runs: Manager,
    probe: Annotated[bool, Query(description="Ask each for *IDN? (needs the token).")] = False,
    probe_timeout_s: Annotated[float, Query(gt=0, le=10)] = 1.0,
    address: Annotated[
        list[str],
        Query(
            max_length=16,
            description="Only these: a serial port or a VISA resource, as a run names it (raw TCP sockets, "
            "TCPIP::HOST::PORT::SOCKET, cannot be discovered; HOST an instrument host of the service).",
        ),
    ] = [],  # noqa: B006 - FastAPI copies a query's default
) -> Discovery:
    """VISA resources and serial ports (``crossbar_hil.drivers.discovery``); listing sends nothing.
    A probe runs in a process of its own, within a bounded time (``crossbar_hil.api.service.probe``:
    the service process never opens a device) and never opens an instrument a run holds."""
    from crossbar_hil.drivers.discovery import discover, named, one_per_device

    hosts = request.app.state.settings.instrument_hosts
    errors = {
        f"address.{i}": why
        for i, a in enumerate(address)
        for why in request_param_errors(*_as_params(a), hosts).values()
    }
    if errors:
        raise Problem(
            422, "; ".join(f"{k}: {v}" for k, v in errors.items()), kind="invalid-run", errors=errors
        )
    if probe:
        check_token(request, credentials)
        from crossbar_hil.api.service.probe import probe_in_worker

        return probe_in_worker(probe_timeout_s, address, runs.held())
    if address:
        return Discovery(one_per_device([named(a) for a in address]))
    return discover()


def _as_params(address: str) -> tuple[str, dict[str, str]]:
    """The backend and parameters a run would name ``address`` with (the policy checks those)."""
    from crossbar_hil.drivers.discovery import named

    found = named(address)
    return found.backend, found.params


@router.get("/health", summary="Is the service up?")
def health(runs: Manager) -> Health:
    return Health(
        status="ok",
        active_runs=len(runs.active_runs()),
        emergency_stop_latched=runs.emergency_stop_state() is not None,
        database=str(runs.store.path),
        store_schema_version=runs.store.schema_version,
    )


@router.get("/version", summary="Versions of the package, the result form and the store")
def get_version() -> VersionView:
    return VersionView(
        version=package_version(),
        result_schema_version=RESULT_SCHEMA_VERSION,
        store_schema_version=SCHEMA_VERSION,
    )
