"""``hil serve``: the run-control REST service under uvicorn.

Binds 127.0.0.1 by default. Without a token (``--token-file`` or ``$HIL_TOKEN``)
on a loopback address, the token kept next to the database (``<database>.token``,
owner-readable only) is used, written the first time; its path is printed, and it stays
the same from one start to the next (delete the file for a new one). On any other
address the service refuses to start without a token.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from crossbar_hil.api.cli.backend_options import bad_input
from crossbar_hil.api.cli.model_options import add_setting_options, setting_values
from crossbar_hil.api.service.settings import (
    LOOPBACK_NAMES,
    TOKEN_ENV,
    ServiceSettings,
    is_loopback,
    new_token_file,
    read_token,
)
from crossbar_hil.runs.control import ControlTimes
from crossbar_hil.runs.store import RunStore, StoreError
from crossbar_hil.settings import settings as model_settings

GRACE_S = 3
SWITCH_INTERVAL_S = 0.0005
"""How long a thread of the service may hold the interpreter while another waits (s; Python's
default is 0.005). A stop's thread (see crossbar_hil.api.service.control) takes and leaves the
interpreter many times (store writes, the pipe to the run); behind busy readers (event streams,
figure renderings) each turn cost up to the default 5 ms, the stop about a second in all."""


TIMES = model_settings(ControlTimes)
"""The options of the runs' pause and suspend times (``--pause-timeout-s``...), from the model."""
SERVICE = model_settings(ServiceSettings, skip=("token",), paths_and_lists=True)
"""The options of the service's own settings (``--host``, ``--port``, ``--database``...), from the
model; the token comes from a file (``--token-file``), never from the command line."""
OPTION_ALIASES = {
    "cors_origins": ["--cors-origin"],
    "instrument_hosts": ["--instrument-host"],
    "allowed_hosts": ["--allowed-host"],
}
"""The names these options had before they were built from the model."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil serve``."""
    p = sub.add_parser(
        "serve",
        help="Serve the run-control REST API (start, watch, stop runs).",
        description=(
            "REST service for training runs, kept in an SQLite run store. Requests that "
            "start, stop or delete runs need the bearer token."
        ),
    )
    add_setting_options(p.add_argument_group("the service (ServiceSettings)"), SERVICE, OPTION_ALIASES)
    p.add_argument(
        "--token-file",
        type=Path,
        help=f"File holding the bearer token (else ${TOKEN_ENV}, else <database>.token, made if missing).",
    )
    p.add_argument(
        "--no-access-log", action="store_true", help="Do not log every request (busy pollers flood the log)."
    )
    add_setting_options(p.add_argument_group("paused and suspended runs"), TIMES)
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> tuple[ServiceSettings, Path | None]:
    """The settings the options describe, and the path of a token file written for them (if any)."""
    token = read_token(args.token_file)
    given = setting_values(args, SERVICE)
    # Names given are added to the loopback names (a page on this machine keeps working).
    given["allowed_hosts"] = [*LOOPBACK_NAMES, *given.get("allowed_hosts", [])]
    # Validate every setting before anything is written: a refused start leaves no token file.
    settings = ServiceSettings(
        **given, token=token, times=ControlTimes.model_validate(setting_values(args, TIMES))
    )
    database = settings.database
    kept = None
    if token is None and is_loopback(settings.host):
        kept = database.with_name(database.name + ".token")
        token = read_token(kept) if kept.is_file() else new_token_file(kept)
        settings = settings.model_copy(update={"token": token})
    return settings, kept


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (runs are stopped at 0 V first); exit 2 for bad settings."""
    import uvicorn

    from crossbar_hil.api.service.app import DatabaseInUse, create_app
    from crossbar_hil.api.service.server import Server

    try:
        settings, written = settings_from(args)
    except (ValidationError, ValueError, OSError) as e:
        return bad_input("hil serve", e)
    if written is not None:
        print(f"token kept in {written} (send it as: Authorization: Bearer <token>)", file=sys.stderr)
    print(f"run store: {settings.database}", file=sys.stderr)
    try:  # A damaged run store is refused in one line, before anything is served from it.
        preflight = RunStore(settings.database)
        try:
            preflight.check_integrity()
        finally:
            preflight.close()
    except StoreError as e:
        print(f"hil serve: {e}", file=sys.stderr)
        return 3
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=not args.no_access_log,
        # The runs are stopped at the signal (Server), so their live streams end with them;
        # a stream that still does not close is closed after this long.
        timeout_graceful_shutdown=GRACE_S,
    )
    server = Server(config, app)
    try:
        server.run()
    except KeyboardInterrupt:  # A third Ctrl-C: uvicorn gives up waiting; the runs were stopped.
        pass
    except DatabaseInUse as e:
        print(f"hil serve: {e}", file=sys.stderr)
        return 3
    return 0 if server.started else 3  # Not started: the app refused (its log says why).
