"""The service itself: emergency stop, registered backends, visible instruments, health, version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from crossbar_hil.api.service.auth import Authorized, Credentials, check_token
from crossbar_hil.api.service.control import ControlPath, control
from crossbar_hil.api.service.deps import manager
from crossbar_hil.api.service.models import (
    BackendsView,
    EmergencyStopRequest,
    EmergencyStopState,
    Health,
    VersionView,
)
from crossbar_hil.api.service.problems import ProblemDetails
from crossbar_hil.drivers.discovery import Discovery
from crossbar_hil.procedures.training import RESULT_SCHEMA_VERSION
from crossbar_hil.runs.manager import RunManager
from crossbar_hil.runs.store import SCHEMA_VERSION
from crossbar_hil.seam.registry import available_backends
from fastapi import APIRouter, Depends, Query, Request

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


@router.get("/instruments", summary="Instruments this machine can see", responses=_401)
def instruments(
    request: Request,
    credentials: Credentials,
    probe: Annotated[bool, Query(description="Ask each for *IDN? (needs the token).")] = False,
    probe_timeout_s: Annotated[float, Query(gt=0, le=10)] = 1.0,
) -> Discovery:
    """VISA resources and serial ports (``crossbar_hil.drivers.discovery``); listing sends nothing."""
    from crossbar_hil.drivers.discovery import discover

    if probe:
        check_token(request, credentials)
    return discover(probe_timeout_s=probe_timeout_s if probe else None)


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
