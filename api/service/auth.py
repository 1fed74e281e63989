"""Bearer-token check for every request that starts, stops or deletes a run, or moves a device."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crossbar_hil.api.service.problems import Problem

_bearer = HTTPBearer(auto_error=False, description="The service token (hil serve --token-file / HIL_TOKEN).")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def require_token(request: Request, credentials: Credentials) -> None:
    """401 unless the request carries the service's bearer token (a dependency).

    ``async`` so that it runs on the event loop: a stop's token check never waits for a
    thread of the pool that reads may fill (see :mod:`crossbar_hil.api.service.control`)."""
    check_token(request, credentials)


def check_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    """401 unless ``credentials`` carry the service's bearer token (compared in constant time)."""
    expected = request.app.state.settings.token
    challenge = {"WWW-Authenticate": 'Bearer realm="crossbar-hil"'}
    if expected is None:
        raise Problem(
            401,
            "this service has no token configured, so it cannot start, stop or delete runs; "
            "restart it with a token",
            kind="unauthorized",
            headers=challenge,
        )
    if credentials is None:
        raise Problem(
            401,
            "a bearer token is required (Authorization: Bearer <token>)",
            kind="unauthorized",
            headers=challenge,
        )
    given = credentials.credentials.encode()
    if not hmac.compare_digest(given, expected.get_secret_value().encode()):
        raise Problem(401, "the bearer token is wrong", kind="unauthorized", headers=challenge)


Authorized = Depends(require_token)
