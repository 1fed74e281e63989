"""The service's named traces (``hil serve --trace-dir``): what an emulator run may replay by name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from crossbar_hil.api.service.deps import manager
from crossbar_hil.runs.manager import RunManager

router = APIRouter(tags=["runs"])


class TraceView(BaseModel):
    name: str = Field(description="What POST /runs names it by: backend.params.trace_name.")
    n_pulses: int
    g_min_siemens: float
    g_max_siemens: float


@router.get("/traces", summary="Traces an emulator run may replay by name (none without --trace-dir)")
def list_traces(runs: Annotated[RunManager, Depends(manager)]) -> list[TraceView]:
    library = runs.trace_library
    return [] if library is None else [TraceView(**t) for t in library.list()]
