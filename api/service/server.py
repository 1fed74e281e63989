"""The service under uvicorn, stopping its runs the moment it is asked to end.

uvicorn, asked to exit (Ctrl-C, SIGTERM), first waits for open connections to close, up to
its graceful-shutdown timeout, and only then runs the app's shutdown, which stops the runs. A
live event stream of a running run never closes by itself, so the runs went on pulsing for
those seconds (49-60 pulse batches over 3.8-4.8 s). :class:`Server` asks every run to stop
(before its next pulse, then ABOR) at the signal itself; a followed run's stream then ends with
its ``stopped`` event and closes, and the service ends without waiting out the timeout.
"""

from __future__ import annotations

import logging
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

SHUTDOWN_REASON = "the service is shutting down"


def stop_runs(app: FastAPI) -> None:
    """Close ``app``'s manager to new runs (waiting runs stay queued), then ask every run going to
    stop (0 V); returns at once."""
    manager = getattr(app.state, "manager", None)
    if manager is None:  # Not started yet (or already shut down): nothing runs.
        return
    for run_id in manager.close_admission():  # First: a stopped run would start the next.
        try:
            manager.stop(run_id, SHUTDOWN_REASON)
        except Exception as e:  # One run's failure must not keep the others pulsing.
            log.error("could not stop run %s at shutdown: %s", run_id, e)


class Server(uvicorn.Server):
    """uvicorn's server for the crossbar-hil app: runs stop first, then connections close."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.hil_app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """The signal: stop the runs (in a thread: a store write must not hold the signal
        handler), then let uvicorn close the connections and shut the app down."""
        if not self.should_exit:
            threading.Thread(target=stop_runs, args=(self.hil_app,), name="stop-runs", daemon=True).start()
        super().handle_exit(sig, frame)
