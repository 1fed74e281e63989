"""The control path: stop, pause, resume, emergency stop and its latch run on threads of their own.

Anonymous reads (figures, event backlogs, pages of epochs) run on the shared thread pool of
the framework (40 threads) and can fill it; a stop queued behind them reached the instrument
tens of seconds late. Control requests are ``async`` handlers (their token check too) that
hand the run manager's call to :class:`ControlPath`'s own few threads, which no read uses.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")

CONTROL_THREADS = 4
"""Threads kept for control requests (a stop, the e-stop and its latch at once, with room)."""


class ControlPath:
    """A thread pool that only control requests use (stop, pause, resume, emergency stop and its latch)."""

    def __init__(
        self, threads: int = CONTROL_THREADS, on_thread_start: Callable[[], None] | None = None
    ) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="hil-control", initializer=on_thread_start
        )

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on a control thread, awaited without holding the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def close(self) -> None:
        """Let the threads end once idle (a call in flight finishes)."""
        self._executor.shutdown(wait=False)


async def control(request: Request) -> ControlPath:
    """The application's control path (a dependency)."""
    control_path: ControlPath = request.app.state.control
    return control_path
