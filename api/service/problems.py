"""Errors as RFC 9457 problem details (``application/problem+json``), for every error the service gives.

A :class:`Problem` raised anywhere becomes its response; the run manager's and the
store's errors become the problem :data:`PROBLEMS` gives them (one table, no try-ladder
in the routes); request validation errors become 422 problems listing each field
(dotted path) and what is wrong with it; any other exception is logged and answered with
a 500 problem that reveals nothing of the server.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from crossbar_hil.runs.errors import (
    BackendUnavailable,
    EmergencyStopLatched,
    InstrumentBusy,
    InvalidRun,
    NotControllable,
    RunRefused,
    TooManyRuns,
)
from crossbar_hil.runs.export import RunNotEnded
from crossbar_hil.runs.store import RunNotFound
from crossbar_hil.seam.errors import HilError

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:crossbar-hil:problem:"
"""Problem types are URNs: ``urn:crossbar-hil:problem:instrument-busy`` and so on."""


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="Dotted path of the field, e.g. 'training.max_epochs'.")
    message: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="URI of the problem type.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(None, description="Invalid fields (422).")
    run_id: str | None = Field(None, description="The run concerned (e.g. the one holding an instrument).")


class Problem(HilError):
    """Raise to answer with a problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: Mapping[str, str] | None = None,
        run_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.kind = status, detail, kind
        self.errors = dict(errors or {})
        self.run_id = run_id
        self.headers = dict(headers or {})


PROBLEMS: tuple[tuple[type[Exception], int, str], ...] = (
    (InvalidRun, 422, "invalid-run"),
    (InstrumentBusy, 409, "instrument-busy"),
    (EmergencyStopLatched, 409, "emergency-stop-latched"),
    (TooManyRuns, 429, "too-many-runs"),
    (BackendUnavailable, 502, "backend-unavailable"),
    (RunRefused, 503, "refused"),
    (NotControllable, 409, "run-not-controllable"),
    (RunNotEnded, 409, "run-not-ended"),
    (RunNotFound, 404, "run-not-found"),
)
"""Each error of the core a route may let through: its HTTP status and problem type (first match wins)."""


def as_problem(exc: Exception) -> Problem | None:
    """The problem :data:`PROBLEMS` gives ``exc``, or None when it has none."""
    for kind, status, name in PROBLEMS:
        if isinstance(exc, kind):
            detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return Problem(
                status,
                str(detail),
                kind=name,
                errors=getattr(exc, "errors", None) if isinstance(exc, InvalidRun) else None,
                run_id=getattr(exc, "run_id", None),
            )
    return None


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: each of ``codes`` as a problem, for the OpenAPI schema."""
    return {c: {"model": ProblemDetails, "content": {MEDIA_TYPE: {}}} for c in codes}


def problem_response(
    request: Request,
    status: int,
    detail: str | None,
    *,
    kind: str | None = None,
    errors: list[FieldError] | None = None,
    run_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The ``application/problem+json`` response."""
    body = ProblemDetails(
        type=TYPE_BASE + kind if kind else "about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
        run_id=run_id,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=MEDIA_TYPE, headers=headers
    )


def _field(error: Mapping[str, Any]) -> str:
    """The dotted path of the field a validation error is about (``body`` for unparsable JSON)."""
    if error.get("type") == "json_invalid":
        return "body"
    parts = [str(p) for p in error.get("loc", ())]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Make every error of ``app`` a problem response."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        errors = [FieldError(field=k, message=v) for k, v in exc.errors.items()] or None
        return problem_response(
            request,
            exc.status,
            exc.detail,
            kind=exc.kind,
            errors=errors,
            run_id=exc.run_id,
            headers=exc.headers,
        )

    async def _core(request: Request, exc: Exception) -> JSONResponse:
        problem = as_problem(exc)
        if problem is None:  # Not in the table: an internal error.
            return await _unexpected(request, exc)
        return await _problem(request, problem)

    for kind, _, _ in PROBLEMS:
        app.add_exception_handler(kind, _core)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(field=_field(e), message=str(e.get("msg"))) for e in exc.errors()]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(request, 422, detail, kind="invalid-request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(request, exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "internal error; see the service log", kind="internal")
