"""Who owns a run: the process recorded on it, and whether that process still runs.

A run's owner is ``host:pid@start/boot``: the host name, the process id, the process's start time
(``/proc/<pid>/stat`` field 22, clock ticks after boot) and the kernel's boot id
(``/proc/sys/kernel/random/boot_id``). A pid alone is not a process: after a reboot, a SIGKILL
or a power cut the old pid may belong to another process, and a run judged by its pid alone
would hold its instrument forever. With its start time and boot id the process is judged
exactly: gone when the machine rebooted since, when no process has the pid, or when the process
that has it started at another time.

Owners written before (``host:pid``, or on a system without ``/proc``) are judged by pid alone;
a run of another host (a shared store, or a container whose host name changed) cannot be judged
from here. Both are :attr:`Liveness.UNKNOWN`: taken as alive (the safe side: they keep their
instrument) until a person who knows releases them (``hil runs stop --force``).
"""

from __future__ import annotations

import enum
import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
"""Where the process table is read (Linux)."""


class Liveness(enum.Enum):
    """What can be told about a run's process from here."""

    ALIVE = "alive"
    """This host, same boot, the same process (pid and start time) still runs."""
    GONE = "gone"
    """It ended: no such pid, another process under its pid, or the machine rebooted since."""
    UNKNOWN = "unknown"
    """Cannot be told: another host's process, or one recorded by pid alone whose pid is in use."""


@dataclass(frozen=True)
class Owner:
    """A process as recorded on a run: host, pid, and (when known) start time and boot id."""

    host: str
    pid: int | None
    start_ticks: int | None = None
    boot_id: str | None = None

    @classmethod
    def parse(cls, owner: str) -> Owner:
        """``host:pid@start/boot`` or the older ``host:pid``; a pid that is not a number is None."""
        host, _, rest = owner.rpartition(":")
        pid, _, stamp = rest.partition("@")
        start, _, boot = stamp.partition("/")
        return cls(
            host,
            int(pid) if pid.isdigit() else None,
            int(start) if start.isdigit() else None,
            boot or None,
        )

    def __str__(self) -> str:
        text = f"{self.host}:{self.pid}"
        if self.start_ticks is not None and self.boot_id is not None:
            text += f"@{self.start_ticks}/{self.boot_id}"
        return text

    def describe(self) -> str:
        """In words, for a message: ``process 1234 on host bench``."""
        return f"process {self.pid} on host {self.host}"


def boot_id() -> str | None:
    """This kernel's boot id, or None without ``/proc``."""
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot: ``/proc/<pid>/stat`` field 22), or
    None when there is no such process (or no ``/proc``)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # After the command name, which may hold spaces.
    return int(fields[22 - 3])  # Field 3 (the state) is the first after it.


def process_owner() -> str:
    """``host:pid@start/boot`` of this process: the owner written on the runs it starts."""
    pid = os.getpid()
    return str(Owner(socket.gethostname(), pid, start_ticks(pid), boot_id()))


def judge(owner: str) -> Liveness:
    """Whether the process ``owner`` still runs, as far as can be told from here."""
    who = Owner.parse(owner)
    if who.host != socket.gethostname() or who.pid is None:
        return Liveness.UNKNOWN  # Another machine's (or another container's) process.
    if who.boot_id is not None and (now := boot_id()) is not None and who.boot_id != now:
        return Liveness.GONE  # Rebooted since: every process of that boot is gone.
    started = start_ticks(who.pid)
    if started is not None:
        if who.start_ticks is None:
            return Liveness.UNKNOWN  # Recorded by pid alone: the pid is in use, by it or another.
        return Liveness.ALIVE if started == who.start_ticks else Liveness.GONE
    try:  # No /proc entry: ask the kernel.
        os.kill(who.pid, 0)
    except ProcessLookupError:
        return Liveness.GONE
    except PermissionError:
        return Liveness.UNKNOWN
    return Liveness.UNKNOWN if who.start_ticks is None else Liveness.ALIVE


def owner_alive(owner: str) -> bool:
    """Whether a run of ``owner`` may still run: not known to be gone (an owner that cannot be
    judged keeps its instrument until a person releases it)."""
    return judge(owner) is not Liveness.GONE
