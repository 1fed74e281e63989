"""Bounds on the expensive anonymous reads: a figure rendering, an event backlog, an open stream.

Reads need no token, so anyone on the machine can send many at once; each takes a thread and
CPU (rendering a figure holds the interpreter for tens of milliseconds). A :class:`Gate` lets
``limit`` through at a time; a request that finds no slot within ``wait_s`` gets a 503 problem
with ``Retry-After``, and the service stays free for a stop. Gates are made per event loop
(in the app's lifespan).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from crossbar_hil.api.service.problems import Problem

RENDERS = 2
"""Figures rendered at once, at most."""
BACKLOGS = 2
"""Event backlog pages read from the store at once, at most (a stream waits its turn)."""
STREAMS = 256
"""Event streams open at once, at most."""
RETRY_AFTER_S = 1


class Gate:
    """At most ``limit`` holders at a time; see the module docstring."""

    def __init__(self, what: str, limit: int, wait_s: float | None) -> None:
        self.what, self.limit, self.wait_s = what, limit, wait_s
        self._slots = asyncio.Semaphore(limit)

    @property
    def busy(self) -> bool:
        """Every slot is taken."""
        return self._slots.locked()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; 503 (``busy``) when none frees within ``wait_s`` (None: wait)."""
        if self.wait_s is None or not self._slots.locked():
            await self._slots.acquire()  # At once when a slot is free.
        elif self.wait_s == 0:
            raise self.refusal()
        else:
            try:
                await asyncio.wait_for(self._slots.acquire(), self.wait_s)
            except TimeoutError:
                raise self.refusal() from None
        try:
            yield
        finally:
            self._slots.release()

    def refusal(self) -> Problem:
        """The 503 a request gets when the gate is full."""
        return Problem(
            503,
            f"the service is busy: {self.limit} {self.what} at a time; retry after {RETRY_AFTER_S} s",
            kind="busy",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


@dataclass
class Gates:
    """The service's gates (one set per event loop)."""

    renders: Gate = field(default_factory=lambda: Gate("figure renderings", RENDERS, 0.5))
    backlogs: Gate = field(default_factory=lambda: Gate("event backlog reads", BACKLOGS, None))
    streams: Gate = field(default_factory=lambda: Gate("event streams", STREAMS, 0))


class ResultCache:
    """The latest results of an expensive computation by key (e.g. a PNG per run, figure and
    last event), at most ``size``; one computation per key at a time, others await it."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._done: OrderedDict[Hashable, bytes] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[bytes]] = {}
        self.computed = 0
        """How many times a value was computed (not served from the cache)."""

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        """The value for ``key``: from the cache, from a computation in flight, or computed now."""
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # Retrieved: no "never retrieved" warning when nobody waited.
            raise
        finally:
            self._pending.pop(key, None)
        self.computed += 1
        future.set_result(value)
        self._done[key] = value
        while len(self._done) > self.size:
            self._done.popitem(last=False)
        return value
