"""Instrument calibrations in the run store: list, one in full, delete (made by hil characterize --all).

A run on an instrument uses its newest calibration unless its config gives curves or asks
for another source (``training.curve_source``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel

from crossbar_hil.api.service.auth import Authorized
from crossbar_hil.api.service.deps import store
from crossbar_hil.api.service.problems import Problem, ProblemDetails
from crossbar_hil.procedures.calibrate import Calibration
from crossbar_hil.runs.calibrations import CalibrationNotFound, Calibrations
from crossbar_hil.runs.store import RunStore

router = APIRouter(prefix="/calibrations", tags=["calibrations"])
Store = Annotated[RunStore, Depends(store)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ProblemDetails}}


class CalibrationSummary(BaseModel):
    id: str
    identity: str
    created_at: str
    devices: int
    n_pulses: int


@router.get("", summary="Calibrations, newest first (optionally of one instrument)")
def list_calibrations(
    runs: Store, identity: Annotated[str | None, Query(max_length=300)] = None
) -> list[CalibrationSummary]:
    return [CalibrationSummary(**row) for row in Calibrations(runs).list(identity)]


@router.get("/{calibration_id}", summary="One calibration: every device's curve", responses=_NOT_FOUND)
def read_calibration(calibration_id: str, runs: Store) -> Calibration:
    try:
        return Calibrations(runs).get(calibration_id)
    except CalibrationNotFound:
        raise Problem(404, f"no calibration {calibration_id!r}", kind="calibration-not-found") from None


@router.delete(
    "/{calibration_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Authorized],
    summary="Forget a calibration",
    responses={401: {"model": ProblemDetails}, **_NOT_FOUND},
)
def delete_calibration(calibration_id: str, runs: Store) -> Response:
    try:
        Calibrations(runs).delete(calibration_id)
    except CalibrationNotFound:
        raise Problem(404, f"no calibration {calibration_id!r}", kind="calibration-not-found") from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
