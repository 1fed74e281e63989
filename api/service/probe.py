"""``GET /instruments?probe=true`` in a short-lived process: the service process never opens a device.

As a run's worker owns its instrument (:mod:`crossbar_hil.runs.worker`), a probe's worker owns
the ports it opens: a process of its own (spawned, so it shares nothing with the service's
threads) runs :func:`crossbar_hil.drivers.discovery.serve_probe` and says what it finds as it
goes. The wait is bounded: :data:`LIST_S` for the worker to start and list, then, per instrument,
twice the reply timeout and :data:`SLACK_S` (an open and one ``*IDN?``); what has not answered
by then is reported as not probed, and the worker is ended. Instruments that runs hold are not
opened at all (their device keys are passed in).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection

from crossbar_hil.drivers.discovery import Discovery, Found, serve_probe

LIST_S = 30.0
"""How long (s) the worker may take to start (imports) and list the instruments."""
SLACK_S = 2.0
"""Time (s) allowed per instrument beside twice its reply timeout (opening the port or socket)."""


def probe_in_worker(
    timeout_s: float, addresses: Sequence[str] = (), held: Mapping[str, str] | None = None
) -> Discovery:
    """The instruments this machine sees (only ``addresses`` when given), each asked ``*IDN?``
    with a reply timeout of ``timeout_s`` (s), by a process of its own; within a bounded time."""
    ctx = multiprocessing.get_context("spawn")
    conn, worker_conn = ctx.Pipe(duplex=False)
    worker = ctx.Process(
        target=serve_probe,
        args=(worker_conn, timeout_s, tuple(addresses), dict(held or {})),
        name="probe-worker",
        daemon=True,
    )
    worker.start()
    worker_conn.close()
    try:
        message = _receive(conn, time.monotonic() + LIST_S)
        if message is None or not isinstance(listed := message[1], Discovery):
            return Discovery(notes=[f"the probe's worker did not list the instruments within {LIST_S:g} s"])
        found = list(listed.found)
        bound_s = len(found) * (2 * timeout_s + SLACK_S)
        deadline = time.monotonic() + bound_s
        answered: set[int] = set()
        while len(answered) < len(found) and (message := _receive(conn, deadline)) is not None:
            _, index, item = message
            if isinstance(index, int) and isinstance(item, Found):
                found[index] = item
                answered.add(index)
        for index in set(range(len(found))) - answered:
            found[index] = replace(
                found[index], probe_error=f"not probed: the probe's time ({bound_s:g} s) ran out before it"
            )
        return Discovery(found, list(listed.notes))
    finally:
        conn.close()
        worker.join(1.0)
        if worker.is_alive():  # Stuck on a port: end it (its port closes with it).
            worker.kill()
            worker.join()


def _receive(conn: Connection, deadline: float) -> tuple[object, ...] | None:
    """The worker's next message, or None once ``deadline`` (monotonic, s) passed or it ended."""
    try:
        if conn.poll(max(0.0, deadline - time.monotonic())):
            message: tuple[object, ...] = conn.recv()
            return message
    except (EOFError, OSError):
        pass
    return None
