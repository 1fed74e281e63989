"""``hil estop``: the emergency stop of a running ``hil serve``, from the command line.

Sends ``POST /emergency-stop`` (every run stops before its next pulse, every instrument in use
gets ABOR now, and the latch holds until cleared) with the service's bearer token, read as
``hil serve`` reads it: ``--token-file``, else ``$HIL_TOKEN``, else the token file ``hil serve``
wrote next to the run store (``<database>.token``). ``--clear`` releases the latch, ``--status``
only shows it. Talks HTTP with the standard library: nothing to install on a bench PC.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from crossbar_hil.api.service.settings import TOKEN_ENV, read_token
from crossbar_hil.runs.store import STORE_ENV, default_path

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 10.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil estop``."""
    p = sub.add_parser(
        "estop",
        help="Emergency stop of a running hil serve: every run stops, outputs to 0 V, latched.",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--url", default=DEFAULT_URL, help=f"The service (default {DEFAULT_URL}).")
    p.add_argument(
        "--token-file",
        type=Path,
        help=f"The service's token file (else ${TOKEN_ENV}, else "
        f"<database>.token of ${STORE_ENV} or {default_path()}).",
    )
    p.add_argument("--database", type=Path, default=None, help="Run store whose token file to read.")
    p.add_argument("--reason", default="hil estop", help="Why (kept with the latch).")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--clear", action="store_true", help="Release the latch instead (runs may start again)."
    )
    what.add_argument("--status", action="store_true", help="Only show whether the latch is set.")
    p.set_defaults(func=run)


def token(args: argparse.Namespace) -> str | None:
    """The bearer token: --token-file, $HIL_TOKEN, or the token file next to the run store."""
    found = read_token(args.token_file)
    if found is None:
        database = args.database or default_path()
        beside = database.with_name(database.name + ".token")
        if beside.is_file():
            found = read_token(beside)
    return None if found is None else found.get_secret_value()


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the service confirmed, 2 without a token, 3 when the service cannot be reached
    or refused (the message says why)."""
    prog = "hil estop"
    method = "GET" if args.status else "DELETE" if args.clear else "POST"
    headers = {"Content-Type": "application/json"}
    if method != "GET":
        try:
            secret = token(args)
        except (OSError, ValueError) as e:
            print(f"{prog}: cannot read the token: {e}", file=sys.stderr)
            return 2
        if secret is None:
            print(f"{prog}: no token: give --token-file or set {TOKEN_ENV}", file=sys.stderr)
            return 2
        headers["Authorization"] = f"Bearer {secret}"
    body = json.dumps({"reason": args.reason}).encode() if method == "POST" else None
    request = urllib.request.Request(
        args.url.rstrip("/") + "/emergency-stop", data=body, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            state = json.loads(response.read())
    except urllib.error.HTTPError as e:
        detail = _detail(e)
        print(f"{prog}: the service refused ({e.code}): {detail}", file=sys.stderr)
        return 3
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        print(f"{prog}: cannot reach the service at {args.url}: {reason}", file=sys.stderr)
        return 3
    if state.get("latched"):
        stopped = state.get("stopped_runs") or []
        runs = f"; runs stopped: {', '.join(stopped)}" if stopped else ""
        print(f"emergency stop LATCHED since {state.get('since')} ({state.get('reason')}){runs}")
    else:
        print("emergency stop not latched: runs may start")
    return 0


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read()).get("detail"))
    except (ValueError, OSError, AttributeError):
        return error.reason or ""
