"""The life of a run: its statuses and the one table of allowed transitions.

::

    queued ──► running ◄──► paused        (running ──► converged | not_converged | failed | interrupted)
      │        │  ▲  ▲
      │        │  │  └────► suspended     (the link dropped; reconnected ──► running, else failed)
      │        ▼  │
      └──────► stopping ─► stopped | converged | not_converged | failed | interrupted

``paused`` and ``suspended`` hold the instrument at 0 V with the run's process and
history kept; either may be stopped (``-> stopping``) or end in a fault. A stop that
arrives as the run ends on its own still ends it with that outcome
(``stopping -> converged``). Finished statuses have no way out. Everything that
changes a status (the run manager, the run's worker, the store's crash recovery,
the CLI's stop) goes through :func:`check_transition`.
"""

from __future__ import annotations

from enum import StrEnum

from crossbar_hil.seam.errors import HilError
from crossbar_hil.training.history import Outcome


class RunStatus(StrEnum):
    """Where a run is in its life."""

    QUEUED = "queued"
    """Accepted; waiting for its instrument (in its queue, see ``queue_position``) or for its worker
    to begin."""
    RUNNING = "running"
    PAUSED = "paused"
    """Paused on request: the instrument held at 0 V (ABOR sent), process and history kept."""
    SUSPENDED = "suspended"
    """The instrument's link dropped: the worker retries the connection with back-off."""
    STOPPING = "stopping"
    """A stop was requested; the run ends before its next pulse."""
    STOPPED = "stopped"
    CONVERGED = "converged"
    NOT_CONVERGED = "not_converged"
    """The epoch limit was reached without every pattern in its band."""
    FAILED = "failed"
    """A fault ended the run; the run's ``error`` says which."""
    INTERRUPTED = "interrupted"
    """The process running it died; the epochs committed before are kept."""

    @property
    def finished(self) -> bool:
        """True for a status with no way out."""
        return not TRANSITIONS[self]


_ENDINGS = frozenset({RunStatus.CONVERGED, RunStatus.NOT_CONVERGED, RunStatus.FAILED, RunStatus.INTERRUPTED})

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset(
        {RunStatus.RUNNING, RunStatus.STOPPING, RunStatus.FAILED, RunStatus.INTERRUPTED}
    ),
    RunStatus.RUNNING: _ENDINGS | {RunStatus.STOPPING, RunStatus.PAUSED, RunStatus.SUSPENDED},
    RunStatus.PAUSED: frozenset(
        {RunStatus.RUNNING, RunStatus.STOPPING, RunStatus.FAILED, RunStatus.INTERRUPTED}
    ),
    RunStatus.SUSPENDED: frozenset(
        {RunStatus.RUNNING, RunStatus.STOPPING, RunStatus.FAILED, RunStatus.INTERRUPTED}
    ),
    RunStatus.STOPPING: _ENDINGS | {RunStatus.STOPPED},
    RunStatus.STOPPED: frozenset(),
    RunStatus.CONVERGED: frozenset(),
    RunStatus.NOT_CONVERGED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.INTERRUPTED: frozenset(),
}
"""Every allowed transition: ``TRANSITIONS[a]`` holds each status ``a`` may move to."""

ACTIVE = frozenset(s for s in RunStatus if not s.finished)
"""Statuses of a run that is not over (queued, running, paused, suspended, stopping)."""

STOPPABLE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.SUSPENDED})
"""Statuses a stop request moves to ``stopping``."""


class TransitionError(HilError, ValueError):
    """A status change the table does not allow."""

    def __init__(self, current: RunStatus, target: RunStatus) -> None:
        self.current, self.target = current, target
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (the run is finished)"
        super().__init__(f"a {current} run cannot become {target}; allowed: {allowed}")


def check_transition(current: RunStatus | str, target: RunStatus | str) -> RunStatus:
    """``target`` as a :class:`RunStatus`, or :class:`TransitionError` when ``current`` may not move to it."""
    a, b = RunStatus(current), RunStatus(target)
    if b not in TRANSITIONS[a]:
        raise TransitionError(a, b)
    return b


def status_of_outcome(outcome: Outcome | str) -> RunStatus:
    """The final status of a run whose training ended with ``outcome`` (:attr:`Outcome.status`)."""
    try:
        return RunStatus(Outcome(outcome).status)
    except ValueError:
        raise ValueError(f"unknown outcome {outcome!r}; known: {', '.join(Outcome)}") from None
