"""The run store: every run's config, status, history and pulse log in one SQLite file.

Written as a run goes: one transaction per epoch (the epoch, the pulses and
resets sent in it, and its event), so a crash loses at most the epoch in
flight. An epoch is kept as the JSON text of :meth:`EpochRecord.to_dict`
(conductances, weights, currents, activations as nested lists; error; counts),
with its number, error and pulse count as columns. WAL journal: readers (the
REST service, ``hil runs``) never wait for the writer. Each status change
appends a status event and each epoch an epoch event, numbered per run from 1;
a live stream replays them by number (``Last-Event-ID``).

The file carries a schema version; :data:`MIGRATIONS` brings an older file up to
:data:`SCHEMA_VERSION` when it is opened, and a newer file is refused.

Connections are per thread (SQLite objects must stay in their thread); call
:meth:`RunStore.close` to close them all. Times are UTC ISO 8601 text.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from crossbar_hil.runs.calibrations import create_v3
from crossbar_hil.runs.errors import InstrumentBusy
from crossbar_hil.runs.owner import Liveness, Owner, judge, owner_alive, process_owner
from crossbar_hil.runs.status import ACTIVE, STOPPABLE, RunStatus, check_transition
from crossbar_hil.seam.errors import HilError
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import EpochRecord, Outcome

SCHEMA_VERSION = 5
"""Version of the database layout this code writes."""

STORE_ENV = "HIL_DB"
"""Environment variable naming the run database (default :func:`default_path`)."""


def _create_v1(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            status TEXT NOT NULL,
            config TEXT NOT NULL,
            backend TEXT NOT NULL,
            instrument TEXT,
            identity TEXT,
            outcome TEXT,
            error TEXT,
            result TEXT,
            owner TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            request_hash TEXT,
            epochs INTEGER NOT NULL DEFAULT 0,
            pulses INTEGER NOT NULL DEFAULT 0,
            last_event INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX runs_status ON runs (status);
        CREATE TABLE epochs (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            epoch INTEGER NOT NULL,
            recorded_at TEXT NOT NULL,
            error REAL NOT NULL,
            pulses INTEGER NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (run_id, epoch)
        );
        CREATE TABLE pulse_log (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            epoch INTEGER NOT NULL,
            sent_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            row INTEGER NOT NULL,
            col INTEGER NOT NULL,
            amplitude_v REAL,
            width_s REAL
        );
        CREATE INDEX pulse_log_run ON pulse_log (run_id, id);
        CREATE TABLE events (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            epoch INTEGER,
            data TEXT,
            at TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        );
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    )


def _script(db: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction (``executescript`` would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v2_run_control(db: sqlite3.Connection) -> None:
    """Version 2: pause requests, the queue of each instrument."""
    _script(
        db,
        """
        ALTER TABLE runs ADD COLUMN pause_request TEXT;
        ALTER TABLE runs ADD COLUMN queue TEXT;
        ALTER TABLE runs ADD COLUMN queue_position INTEGER;
        ALTER TABLE runs ADD COLUMN on_failure TEXT NOT NULL DEFAULT 'stop';
        CREATE INDEX runs_queue ON runs (queue, queue_position);
        CREATE TABLE queues (name TEXT PRIMARY KEY, state TEXT NOT NULL, changed_at TEXT NOT NULL,
                             reason TEXT)
        """,
    )


def _v4_epochs_trained(db: sqlite3.Connection) -> None:
    """Version 4: a run's ``epochs`` counts the epochs trained (the number of its last epoch record;
    epoch 0 is the read before training), as ``hil train`` says; it counted records (one more)."""
    db.execute(
        "UPDATE runs SET epochs = coalesce((SELECT max(epoch) FROM epochs WHERE epochs.run_id = runs.id), 0)"
    )


def _v5_run_worker(db: sqlite3.Connection) -> None:
    """Version 5: the process a run's worker runs in, beside its owner (the service's process): a
    run whose service was killed is still held while its worker runs (it records the end)."""
    db.execute("ALTER TABLE runs ADD COLUMN worker TEXT")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _create_v1,
    2: _v2_run_control,
    3: create_v3,
    4: _v4_epochs_trained,
    5: _v5_run_worker,
}
"""``MIGRATIONS[n]`` brings a version ``n - 1`` file to version ``n`` (1 creates the tables; 3 adds the
calibrations, :mod:`crossbar_hil.runs.calibrations`; 4 counts epochs trained, not records; 5 the
worker's process)."""


PauseWhen = Literal["after_epoch", "now"]
"""When a pause takes effect: after the epoch in flight is recorded, or before the next operation."""
OnFailure = Literal["stop", "continue"]
"""What a queue does when one of its runs fails."""
QueueState = Literal["started", "stopped"]
"""A started queue starts its next run when its instrument is free; a stopped one starts none."""
Change = Literal["queued", "paused", "resumed", "suspended", "reconnected"]
"""A status change that is an event of its own (its name on the live stream, :attr:`Event.name`):
a run put in its queue to wait, paused, resumed, suspended on a lost link, reconnected. Every other
status change is a ``status`` event."""
CHANGES: tuple[Change, ...] = get_args(Change)


class StoreError(HilError, RuntimeError):
    """The database cannot be used (a newer schema, a file that is not a run store)."""


class RunNotFound(HilError, KeyError):
    """No run has this id."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no run {run_id!r}")


class PulseLogEntry(BaseModel):
    """One programming operation sent to the device: a pulse (V, s) or the device's reset."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    sent_at: str = Field(description="When it was sent: UTC, ISO 8601.")
    kind: Literal["pulse", "reset"] = Field(description="'pulse' or 'reset' (the device's own reset pulse).")
    row: int = Field(description="The device's row (0-based).")
    col: int = Field(description="The device's column (0-based).")
    amplitude_v: float | None = Field(None, description="Pulse amplitude (V); None for a reset.")
    width_s: float | None = Field(None, description="Pulse width (s); None for a reset.")


class LoggedPulse(PulseLogEntry):
    """A pulse-log entry as stored: the operation, and the epoch whose update sent it."""

    epoch: int = Field(description="The epoch whose record it belongs to.")


class Run(BaseModel):
    """A run as stored: what it was asked to do, where it is, how it ended. Also the service's answer
    for a run (the service adds its links); what only the store needs (the request's idempotency key
    and hash, the owning process) is not written out, and ``last_event`` is written ``last_event_id``."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    id: str = Field(description="The run's id.")
    created_at: str = Field(description="When it was accepted: UTC, ISO 8601.")
    started_at: str | None = Field(None, description="When it started running: UTC, ISO 8601.")
    ended_at: str | None = Field(None, description="When it ended: UTC, ISO 8601.")
    status: RunStatus = Field(description="Where it is (the status table of ARCHITECTURE.md).")
    config: dict[str, Any] = Field(description="The run's RunConfig: the settings it used, once it ran.")
    backend: str = Field(description="Registered backend name.")
    instrument: str | None = Field(
        None, description="The physical instrument it holds (resource or port); None for an emulator."
    )
    identity: str | None = Field(None, description="The instrument's identity (e.g. its *IDN? reply).")
    outcome: Outcome | None = Field(
        None, description="How it ended, once ended (the one outcome vocabulary)."
    )
    error: str | None = Field(None, description="Why it failed, was stopped or was interrupted.")
    epochs: int = Field(
        description="Epochs trained so far: the number of the last epoch record (epoch 0, the read before "
        "training, trains nothing), as hil train counts them; /runs/{id}/epochs has one record more."
    )
    pulses: int = Field(description="Programming pulses sent, over the stored epochs.")
    last_event: int = Field(
        serialization_alias="last_event_id",
        description="Id of its latest event (see /runs/{id}/events).",
    )
    idempotency_key: str | None = Field(None, exclude=True)
    request_hash: str | None = Field(None, exclude=True)
    owner: str = Field("", exclude=True)
    worker: str | None = Field(None, exclude=True)
    """The process of its worker, when not its owner's (the service's run in a process of its own)."""
    pause_request: PauseWhen | None = Field(
        None, description="A pause asked for and not yet resumed: 'after_epoch' or 'now'."
    )
    queue: str | None = Field(None, description="Its queue: its instrument's device key, or 'emulator'.")
    queue_position: int | None = Field(
        None, description="1 = next to start, while it waits in its queue; None otherwise."
    )
    on_failure: OnFailure = Field(
        "stop", description="What its queue does when it fails: 'stop' (the default) or 'continue'."
    )

    @property
    def run_config(self) -> RunConfig:
        """The validated config."""
        return RunConfig.model_validate(self.config)


@dataclass(frozen=True)
class Event:
    """One event of a run's stream: ``status`` (data: status, outcome, error, and a ``change`` when the
    status alone does not tell) or ``epoch``."""

    seq: int
    kind: Literal["status", "epoch"]
    at: str
    data: dict[str, Any]

    @property
    def name(self) -> str:
        """Its name on the live stream: the change for a status event that has one of :data:`CHANGES`
        (``queued``, ``paused``, ``resumed``, ``suspended``, ``reconnected``), else its kind."""
        change = self.data.get("change") if self.kind == "status" else None
        return str(change) if change in CHANGES else self.kind


def now() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def default_path() -> Path:
    """``$HIL_DB``, else ``~/.crossbar-hil/runs.sqlite3``."""
    value = os.environ.get(STORE_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".crossbar-hil" / "runs.sqlite3"


class RunStore:
    """The run database at ``path`` (created, or migrated, on open); ``on_event(run_id, seq)`` is
    called after each commit of an event."""

    def __init__(
        self,
        path: str | Path,
        on_event: Callable[[str, int], None] | None = None,
        *,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self.path = Path(path).expanduser()
        self.busy_timeout_s = busy_timeout_s
        """How long (s) a write waits for another writer's lock before it fails ("database is locked")."""
        if str(path) == ":memory:":
            raise ValueError("the run store needs a file: every thread opens its own connection")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: dict[sqlite3.Connection, threading.Thread] = {}
        """Every connection this store opened, and the thread that uses it."""
        self._all_lock = threading.Lock()
        self._changed = threading.Condition()
        self._last_event: dict[str, int] = {}
        self._on_event = on_event
        self._listeners: list[Callable[[str, int], None]] = []
        try:
            self._migrate()
        except sqlite3.OperationalError as e:
            self.close()
            if "locked" not in str(e) and "busy" not in str(e):
                raise StoreError(f"the run store {self.path} cannot be opened ({e})") from e
            raise StoreError(
                f"the run store {self.path} is busy ({e}): another process held its write lock "
                f"for more than {busy_timeout_s:g} s"
            ) from e
        except sqlite3.DatabaseError as e:  # Not a database at all, or damaged beyond opening.
            self.close()
            raise StoreError(
                f"the run store {self.path} cannot be read ({e}); restore it from a backup"
            ) from e

    # ------------------------------------------------------------------ connections
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # In WAL mode: durable against a process crash.
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
            with self._all_lock:
                self._all[db] = threading.current_thread()
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taken at once, so two writers never deadlock)."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def set_busy_timeout(self, seconds: float) -> None:
        """How long (s) this thread's writes wait for another writer's lock from now on (a writer
        that retries later waits briefly; its last try waits the store's full time)."""
        self._db().execute(f"PRAGMA busy_timeout = {max(0, round(seconds * 1000))}")

    def skip_checkpoints(self) -> None:
        """This thread's commits never copy the log into the database (SQLite's automatic WAL
        checkpoint, which can take seconds behind many readers): for a thread whose write must
        not wait, such as the service's stop path. Other connections still checkpoint."""
        self._db().execute("PRAGMA wal_autocheckpoint=0")

    def release_thread(self) -> None:
        """Close the calling thread's connection (a thread that ends should; a run thread does)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            with self._all_lock:
                self._all.pop(db, None)  # Gone already when close() closed it.
            db.close()

    def close(self) -> None:
        """Close this store's connections: the calling thread's and those of threads that ended.

        A connection of a thread still alive is let go, not closed: that thread may be inside a
        query on it (a run's listener answering a wake-up), and closing an SQLite connection
        under a running statement crashes the interpreter (a segfault seen in the test suite).
        It closes when that thread is done with it (its last reference goes).
        """
        me = threading.current_thread()
        with self._all_lock:
            for db, owner in self._all.items():
                if owner is me or not owner.is_alive():
                    db.close()
            self._all.clear()
        self._local = threading.local()

    def _migrate(self) -> None:
        with self._write() as db:
            has_table = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if not has_table:
                if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise StoreError(f"{self.path} is an SQLite file but not a crossbar-hil run store")
                db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                db.execute("INSERT INTO schema_version VALUES (0)")
            version = db.execute("SELECT version FROM schema_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has run-store schema {version}; this crossbar-hil reads up to "
                    f"{SCHEMA_VERSION}: upgrade crossbar-hil"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](db)
            db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def check_integrity(self) -> None:
        """StoreError, in one line, unless SQLite's ``PRAGMA quick_check`` finds the file sound.

        For a service or command that opens the store to serve from it: a corrupted file used to
        answer reads with 500s and still take runs into it. Reads every page (seconds for a
        large store), so it is not run on every open."""
        try:
            rows = [str(r[0]) for r in self._db().execute("PRAGMA quick_check(5)").fetchall()]
        except sqlite3.DatabaseError as e:
            raise StoreError(f"the run store {self.path} is damaged ({e}); restore it from a backup") from e
        if rows != ["ok"]:
            raise StoreError(
                f"the run store {self.path} is damaged ({' '.join('; '.join(rows).split())[:300]}); "
                "restore it from a "
                "backup, or move it aside to start a new one"
            )

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return int(self._db().execute("SELECT version FROM schema_version").fetchone()[0])

    # ------------------------------------------------------------------ runs
    def create_run(
        self,
        config: RunConfig,
        *,
        instrument: str | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        owner: str | None = None,
        queue: str | None = None,
        wait: bool = False,
        on_failure: OnFailure = "stop",
        exclusive: bool = False,
    ) -> Run:
        """A new ``queued`` run (and its first status event); with ``wait`` it joins the end of
        ``queue`` (``queue_position`` set) instead of starting at once. With ``exclusive`` it is
        created only while no other live process holds ``queue``'s instrument (:meth:`holder`,
        besides ``owner``'s runs), in the same transaction: else
        :class:`~crossbar_hil.runs.errors.InstrumentBusy`."""
        run_id = uuid.uuid4().hex
        with self._write() as db:
            owner = owner or process_owner()
            if exclusive and queue is not None and (held := self._holder(db, queue, owner)) is not None:
                raise InstrumentBusy(held.instrument or queue, held.id)
            position = None
            if wait:
                row = db.execute(
                    "SELECT max(queue_position) FROM runs WHERE queue = ? AND queue_position IS NOT NULL",
                    (queue,),
                ).fetchone()
                position = int(row[0] or 0) + 1
            db.execute(
                "INSERT INTO runs (id, created_at, status, config, backend, instrument, owner, "
                "idempotency_key, request_hash, queue, queue_position, on_failure) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    now(),
                    RunStatus.QUEUED.value,
                    config.model_dump_json(),
                    config.backend.name,
                    instrument,
                    owner,
                    idempotency_key,
                    request_hash,
                    queue,
                    position,
                    on_failure,
                ),
            )
            data = _status_data(RunStatus.QUEUED, None, None)
            if position is not None:  # It waits in its queue: an event of its own.
                data.update(change="queued", queue_position=position)
            self._append_event(db, run_id, "status", None, data)
        self._notify(run_id, db)
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        """The run, or :class:`RunNotFound`."""
        row = self._db().execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return _run(row)

    def holder(self, queue: str, besides_owner: str | None = None) -> Run | None:
        """The run holding ``queue``'s instrument, if any: active and not waiting in the queue, its
        owning process alive (:meth:`recover` marks the others); a run of ``besides_owner`` does not
        count. How a run of ``hil train`` and the service's runs keep one run per instrument."""
        return self._holder(self._db(), queue, besides_owner)

    def _holder(self, db: sqlite3.Connection, queue: str, besides_owner: str | None = None) -> Run | None:
        held = [r for r in self._active(db, queue) if r.owner != besides_owner and _alive(r, owner_alive)]
        return held[0] if held else None

    def set_worker(self, run_id: str, worker: str) -> None:
        """Record the process that runs the run (its worker's, ``host:pid@start/boot``)."""
        with self._write() as db:
            db.execute("UPDATE runs SET worker = ? WHERE id = ?", (worker, run_id))

    def active_runs(self, queue: str | None = None) -> list[Run]:
        """Every run (of ``queue``, if given) that holds or is about to hold its instrument: active
        and not waiting in a queue; oldest first."""
        return self._active(self._db(), queue)

    def _active(self, db: sqlite3.Connection, queue: str | None) -> list[Run]:
        active = [r.value for r in ACTIVE]
        sql = (
            f"SELECT * FROM runs WHERE queue_position IS NULL AND status IN ({', '.join('?' * len(active))})"
        )
        if queue is not None:
            sql, active = sql + " AND queue = ?", [*active, queue]
        return [_run(r) for r in db.execute(sql + " ORDER BY created_at", active).fetchall()]

    def find_by_idempotency_key(self, key: str) -> Run | None:
        """The run created with this ``Idempotency-Key``, if any."""
        row = self._db().execute("SELECT * FROM runs WHERE idempotency_key = ?", (key,)).fetchone()
        return None if row is None else _run(row)

    def list_runs(
        self, statuses: Sequence[RunStatus] = (), limit: int = 50, offset: int = 0
    ) -> tuple[list[Run], int]:
        """Runs, newest first, optionally only those with one of ``statuses``; and how many match."""
        where, args = "", []
        if statuses:
            where = f"WHERE status IN ({', '.join('?' * len(statuses))})"
            args = [RunStatus(s).value for s in statuses]
        db = self._db()
        total = db.execute(f"SELECT count(*) FROM runs {where}", args).fetchone()[0]
        rows = db.execute(
            f"SELECT * FROM runs {where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [_run(r) for r in rows], int(total)

    def transition(
        self,
        run_id: str,
        target: RunStatus,
        *,
        error: str | None = None,
        outcome: Outcome | None = None,
        identity: str | None = None,
        result: dict[str, Any] | None = None,
        change: Change | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Run:
        """Move the run to ``target`` (checked against the transition table) and record the event.

        ``change`` names the change in the event (and the event, :attr:`Event.name`) when it is one
        of its own (``paused``, ``resumed``, ``suspended``, ``reconnected``); ``detail`` adds data to
        it. Leaving ``queued`` takes the run out of its queue; an end clears its pause request (a
        resume clears it too: :meth:`request_resume`; nothing else does, so a pause asked again
        while the worker resumes is kept).
        Raises :class:`RunNotFound` or :class:`~crossbar_hil.runs.status.TransitionError`.
        """
        with self._write() as db:
            self._transition(db, run_id, target, error, outcome, identity, result, change, detail)
        self._notify(run_id, db)
        return self.get_run(run_id)

    def _transition(
        self,
        db: sqlite3.Connection,
        run_id: str,
        target: RunStatus,
        error: str | None = None,
        outcome: Outcome | None = None,
        identity: str | None = None,
        result: dict[str, Any] | None = None,
        change: Change | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """:meth:`transition` inside the write transaction ``db``."""
        current = RunStatus(self._status(db, run_id))
        check_transition(current, target)
        sets: dict[str, Any] = {"status": target.value}
        if current is RunStatus.QUEUED:
            self._renumber(db, run_id)
            sets["queue_position"] = None
        if target is RunStatus.RUNNING and current is RunStatus.QUEUED:
            sets["started_at"] = now()
        if target.finished:
            sets["pause_request"] = None
        if target.finished:
            sets["ended_at"] = now()
        for key, value in (("error", error), ("outcome", outcome), ("identity", identity)):
            if value is not None:
                sets[key] = value
        if result is not None:
            sets["result"] = json.dumps(result)
        db.execute(
            f"UPDATE runs SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
            [*sets.values(), run_id],
        )
        data = _status_data(target, outcome, error)
        if change is not None:
            data["change"] = change
        data.update(detail or {})
        self._append_event(db, run_id, "status", None, data)

    def record_settings(self, run_id: str, config: RunConfig) -> None:
        """Keep the settings the run used as its config (a calibrated gain instead of the requested one)."""
        with self._write() as db:
            db.execute("UPDATE runs SET config = ? WHERE id = ?", (config.model_dump_json(), run_id))

    def request_stop(self, run_id: str, reason: str | None = None) -> Run:
        """Mark an active run ``stopping``, with ``reason`` as its error until it ends (idempotent: a
        stopping or finished run is returned as is).

        A run waiting in its queue (no worker holds it) ends ``stopped`` here, in the same
        transaction. Any other run's worker sees the mark within :attr:`ControlTimes.poll_s`
        (0.2 s; it polls, and the service rings it at once) and stops before its next pulse; a
        run taken from its queue but not yet running never starts (its worker reads the mark).
        """
        with self._write() as db:
            row = db.execute("SELECT status, queue_position FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if RunStatus(row["status"]) not in STOPPABLE:
                return self.get_run(run_id)
            waiting = row["status"] == RunStatus.QUEUED.value and row["queue_position"] is not None
            self._transition(db, run_id, RunStatus.STOPPING, error=reason)
            if waiting:
                self._transition(db, run_id, RunStatus.STOPPED, error=reason, outcome=Outcome.STOPPED)
            run = self.get_run(run_id)  # As written: its worker may end it before a later read.
        self._notify(run_id, db)
        return run

    def release(self, run_id: str, reason: str) -> Run:
        """Mark ``interrupted`` an active run whose process is not known to run (gone, on another
        host, or recorded by pid alone): its instrument is free again. For a run no process will
        act on (``hil runs stop --force``); a finished run is returned as is. ValueError for a run
        whose process is seen alive here (stop it, or end that process) or that waits in its queue
        (stop or delete it)."""
        with self._write() as db:
            row = db.execute(
                "SELECT status, queue_position, owner FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if RunStatus(row["status"]).finished:
                return self.get_run(run_id)
            if row["queue_position"] is not None:
                raise ValueError(f"run {run_id} waits in its queue, nothing holds it: stop or delete it")
            who = Owner.parse(row["owner"])
            if judge(row["owner"]) is Liveness.ALIVE:
                raise ValueError(
                    f"run {run_id} is held by {who.describe()}, which is running: stop the run "
                    "(without --force), or end that process"
                )
            self._transition(
                db,
                run_id,
                RunStatus.INTERRUPTED,
                error=f"released by hand ({reason}): its {who.describe()} was not seen running; the "
                "instrument's outputs were NOT confirmed at 0 V: check it before touching the device",
            )
        self._notify(run_id, db)
        return self.get_run(run_id)

    def result(self, run_id: str) -> dict[str, Any] | None:
        """The stored result summary (the run's JSON form without history), once the run ended."""
        row = self._db().execute("SELECT result FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return None if row["result"] is None else json.loads(row["result"])

    def delete_run(self, run_id: str) -> None:
        """Delete a finished run, or a run waiting in its queue, and everything recorded of it;
        ValueError for any other active run."""
        with self._write() as db:
            row = db.execute("SELECT status, queue_position FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            waiting = row["status"] == RunStatus.QUEUED.value and row["queue_position"] is not None
            if RunStatus(row["status"]) in ACTIVE and not waiting:
                raise ValueError(f"run {run_id} is still active ({row['status']}): stop it first")
            self._renumber(db, run_id)
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        self._last_event.pop(run_id, None)

    # ------------------------------------------------------------------ pause
    def request_pause(self, run_id: str, when: PauseWhen) -> Run:
        """Ask a running run to pause (``when``: 'after_epoch' or 'now'); ValueError when it is not
        running, paused or suspended. The run's worker pauses it and records ``paused``."""
        with self._write() as db:
            status = RunStatus(self._status(db, run_id))
            if status not in (RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.SUSPENDED):
                raise ValueError(f"run {run_id} is {status}: only a running run can be paused")
            db.execute("UPDATE runs SET pause_request = ? WHERE id = ?", (when, run_id))
        return self.get_run(run_id)

    def request_resume(self, run_id: str) -> Run:
        """Withdraw the run's pause request (its worker re-reads the crossbar and goes on);
        ValueError when it is neither paused nor asked to pause."""
        with self._write() as db:
            row = db.execute("SELECT status, pause_request FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if row["status"] != RunStatus.PAUSED.value and row["pause_request"] is None:
                raise ValueError(f"run {run_id} is {row['status']}, not paused: nothing to resume")
            db.execute("UPDATE runs SET pause_request = NULL WHERE id = ?", (run_id,))
        return self.get_run(run_id)

    def control(self, run_id: str) -> tuple[RunStatus, PauseWhen | None, str | None]:
        """The run's status, pause request and error (a stop's reason): what its worker obeys."""
        row = (
            self._db()
            .execute("SELECT status, pause_request, error FROM runs WHERE id = ?", (run_id,))
            .fetchone()
        )
        if row is None:
            raise RunNotFound(run_id)
        return RunStatus(row[0]), row[1], row[2]

    # ------------------------------------------------------------------ queues
    def queued(self, queue: str | None = None) -> list[Run]:
        """Runs waiting in a queue (``queue``'s only, if given), in the order they will start."""
        where, args = "queue_position IS NOT NULL AND status = ?", [RunStatus.QUEUED.value]
        if queue is not None:
            where, args = where + " AND queue = ?", [*args, queue]
        rows = (
            self._db()
            .execute(f"SELECT * FROM runs WHERE {where} ORDER BY queue, queue_position", args)
            .fetchall()
        )
        return [_run(r) for r in rows]

    def move(self, run_id: str, position: int) -> Run:
        """Put a waiting run at ``position`` (1 = next) of its queue; ValueError when it is not waiting."""
        with self._write() as db:
            row = db.execute("SELECT queue, queue_position FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if row["queue_position"] is None:
                raise ValueError(f"run {run_id} is not waiting in a queue")
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM runs WHERE queue = ? AND queue_position IS NOT NULL AND id != ? "
                    "ORDER BY queue_position",
                    (row["queue"], run_id),
                )
            ]
            ids.insert(max(0, min(position - 1, len(ids))), run_id)
            db.executemany("UPDATE runs SET queue_position = ? WHERE id = ?", list(enumerate(ids, 1)))
        return self.get_run(run_id)

    def transition_out_of_queue(self, run_id: str, *, exclusive: bool = False) -> Run:
        """Take a waiting run out of its queue to start it (still ``queued`` until its worker runs it):
        from then on it holds its instrument. With ``exclusive`` only while no other live process
        holds it (as :meth:`create_run`), in the same transaction: else
        :class:`~crossbar_hil.runs.errors.InstrumentBusy` and the run keeps its place."""
        with self._write() as db:
            row = db.execute("SELECT queue, owner FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if exclusive and (held := self._holder(db, row["queue"], row["owner"])) is not None:
                raise InstrumentBusy(held.instrument or row["queue"], held.id)
            self._renumber(db, run_id)
            db.execute("UPDATE runs SET queue_position = NULL WHERE id = ?", (run_id,))
        return self.get_run(run_id)

    def withdraw(self, run_id: str, reason: str) -> None:
        """Give up a run created to reserve its instrument before it was opened, when it does not go
        (the instrument does not answer, the config does not fit it): deleted while still ``queued``
        (it never ran; nothing of it was sent); one stopped meanwhile ends ``stopped`` with ``reason``.
        Nothing for a run that ran or ended."""
        stopped = False
        with self._write() as db:
            row = db.execute("SELECT status, queue_position FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or row["queue_position"] is not None:
                return
            if row["status"] == RunStatus.QUEUED.value:
                db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            elif row["status"] == RunStatus.STOPPING.value:
                self._transition(db, run_id, RunStatus.STOPPED, error=reason, outcome=Outcome.STOPPED)
                stopped = True
        if stopped:
            self._notify(run_id, db)
        else:
            self._last_event.pop(run_id, None)

    def requeue(self, run_id: str) -> bool:
        """Put a run taken out of its queue but not yet started back first in it; False when it is
        no longer ``queued`` (e.g. stopped meanwhile)."""
        with self._write() as db:
            row = db.execute(
                "SELECT status, queue, queue_position FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if row["status"] != RunStatus.QUEUED.value or row["queue_position"] is not None:
                return False
            db.execute(
                "UPDATE runs SET queue_position = queue_position + 1 "
                "WHERE queue = ? AND queue_position IS NOT NULL",
                (row["queue"],),
            )
            db.execute("UPDATE runs SET queue_position = 1 WHERE id = ?", (run_id,))
        return True

    def queue_state(self, queue: str) -> QueueState:
        """'started' (the default for a queue never stopped) or 'stopped'."""
        row = self._db().execute("SELECT state FROM queues WHERE name = ?", (queue,)).fetchone()
        return "started" if row is None else row[0]

    def queue_states(self) -> dict[str, tuple[QueueState, str | None]]:
        """Every queue that was ever stopped or started by name: (state, reason)."""
        rows = self._db().execute("SELECT name, state, reason FROM queues").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def set_queue_state(self, queue: str, state: QueueState, reason: str | None = None) -> None:
        """Start or stop a queue (``reason`` says why it stopped)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO queues VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "state = excluded.state, changed_at = excluded.changed_at, reason = excluded.reason",
                (queue, state, now(), reason),
            )

    def stop_waiting_queues(self, reason: str) -> list[str]:
        """Stop every queue with runs waiting (at start-up: a queue never starts by itself); returns them."""
        names = sorted({r.queue for r in self.queued() if r.queue is not None})
        for name in names:
            self.set_queue_state(name, "stopped", reason)
        return names

    def recover(self, alive: Callable[[str], bool] | None = None, *, workers: bool = True) -> list[str]:
        """Mark ``interrupted`` every active run whose owning process is gone; returns their ids.

        ``alive(owner)`` tells whether a process (``host:pid@start/boot``) still runs; by default
        :func:`~crossbar_hil.runs.owner.owner_alive` (a process of another host is left as it is).
        With ``workers`` a run whose worker's process still runs is left too, its owner gone or not
        (a service killed while its worker finishes the run: it records it ``stopped`` once its
        command pipe ends). Their epochs stay. Runs waiting in a
        queue stay queued: they never started.
        """
        alive = alive or owner_alive
        lost = []
        for row in self._started_rows():
            if alive(row["owner"]) or (workers and row["worker"] is not None and alive(row["worker"])):
                continue
            try:
                self.transition(
                    row["id"],
                    RunStatus.INTERRUPTED,
                    error=f"interrupted: the process running it ({_host_pid(row['owner'])}) ended during "
                    "the run",
                )
            except ValueError:
                continue
            lost.append(row["id"])
        return lost

    def finishing(self, alive: Callable[[str], bool] | None = None) -> list[str]:
        """Active runs whose owner is gone but whose worker's process still runs: a service killed
        while its run's worker stops the run (0 V) and records its end (``alive``: as for
        :meth:`recover`)."""
        alive = alive or owner_alive
        return [
            str(row["id"])
            for row in self._started_rows()
            if not alive(row["owner"]) and row["worker"] is not None and alive(row["worker"])
        ]

    def _started_rows(self) -> list[sqlite3.Row]:
        """Id, owner and worker of the active runs not waiting in a queue."""
        active = [r.value for r in ACTIVE]
        return (
            self._db()
            .execute(
                f"SELECT id, owner, worker FROM runs WHERE status IN ({', '.join('?' * len(active))}) "
                "AND queue_position IS NULL",
                active,
            )
            .fetchall()
        )

    # ------------------------------------------------------------------ history
    def record_epoch(self, run_id: str, record: EpochRecord, log: Sequence[PulseLogEntry] = ()) -> RunStatus:
        """Store one epoch, the pulses and resets sent in it, and its event: one transaction.

        Returns the run's status at that moment (``stopping`` tells the runner to stop).
        """
        return self.record_epochs(run_id, [(record, log)])

    def record_epochs(
        self, run_id: str, batch: Sequence[tuple[EpochRecord, Sequence[PulseLogEntry]]]
    ) -> RunStatus:
        """Store epochs in order, each with the pulses and resets sent in it and its event: one
        transaction for the batch (a run's recorder commits a few epochs at a time: one commit per
        epoch doubled the time of a run on the emulator). All or nothing: a store that fails keeps
        none of the batch, so the caller can try the same batch again.

        Returns the run's status at that moment (``stopping`` tells the runner to stop); a run
        ended already (marked interrupted while its process still finished an epoch) gets nothing.
        """
        texts = [(record, json.dumps(record.to_dict()), log) for record, log in batch]
        at = now()
        with self._write() as db:
            status = self._status(db, run_id)
            if RunStatus(status).finished or not texts:
                return RunStatus(status)
            db.executemany(
                "INSERT INTO epochs (run_id, epoch, recorded_at, error, pulses, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, r.epoch, at, r.error, r.pulses, text) for r, text, _ in texts],
            )
            self._insert_log(db, run_id, [(r.epoch, e) for r, _, log in texts for e in log])
            db.execute(
                "UPDATE runs SET epochs = max(epochs, ?), pulses = pulses + ? WHERE id = ?",
                (max(r.epoch for r, _, _ in texts), sum(r.pulses for r, _, _ in texts), run_id),
            )
            for r, _, _ in texts:
                self._append_event(db, run_id, "epoch", r.epoch, None)
        self._notify(run_id, db)
        return RunStatus(status)

    def record_log(self, run_id: str, epoch: int, log: Sequence[PulseLogEntry]) -> None:
        """Store pulses and resets sent outside an epoch's record (e.g. after the last one)."""
        if log:
            with self._write() as db:
                self._insert_log(db, run_id, [(epoch, e) for e in log])

    def epochs(self, run_id: str, offset: int = 0, limit: int | None = None) -> list[EpochRecord]:
        """Stored epoch records, in epoch order (``limit`` None = all)."""
        rows = (
            self._db()
            .execute(
                "SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch LIMIT ? OFFSET ?",
                (run_id, -1 if limit is None else limit, offset),
            )
            .fetchall()
        )
        return [_epoch(r) for r in rows]

    def epoch_records(self, run_id: str) -> int:
        """How many epoch records the run has (its epochs trained plus the read before training)."""
        row = self._db().execute("SELECT count(*) FROM epochs WHERE run_id = ?", (run_id,)).fetchone()
        return int(row[0])

    def pulse_log(self, run_id: str, offset: int = 0, limit: int | None = None) -> list[LoggedPulse]:
        """Every pulse and reset sent in the run, in order, with the epoch it belongs to."""
        rows = (
            self._db()
            .execute(
                "SELECT epoch, sent_at, kind, row, col, amplitude_v, width_s FROM pulse_log "
                "WHERE run_id = ? ORDER BY id LIMIT ? OFFSET ?",
                (run_id, -1 if limit is None else limit, offset),
            )
            .fetchall()
        )
        return [LoggedPulse.model_validate(dict(r)) for r in rows]

    def pulse_log_count(self, run_id: str, kind: str | None = None) -> int:
        """How many entries the run's pulse log has (only ``kind``, 'pulse' or 'reset', if given)."""
        sql, args = "SELECT count(*) FROM pulse_log WHERE run_id = ?", [run_id]
        if kind is not None:
            sql, args = sql + " AND kind = ?", [run_id, kind]
        return int(self._db().execute(sql, args).fetchone()[0])

    # ------------------------------------------------------------------ events
    def events(self, run_id: str, after: int = 0, limit: int = 500) -> list[Event]:
        """The run's events numbered above ``after``, in order (epoch events carry the record)."""
        rows = (
            self._db()
            .execute(
                "SELECT e.seq, e.kind, e.at, e.data, p.record FROM events e LEFT JOIN epochs p "
                "ON e.kind = 'epoch' AND p.run_id = e.run_id AND p.epoch = e.epoch "
                "WHERE e.run_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?",
                (run_id, after, limit),
            )
            .fetchall()
        )
        out = []
        for r in rows:
            data = json.loads(r["data"]) if r["kind"] == "status" else {"record": json.loads(r["record"])}
            out.append(Event(r["seq"], r["kind"], r["at"], {"run_id": run_id, **data}))
        return out

    def last_event(self, run_id: str) -> int:
        """Number of the run's latest event, as this process last wrote or read it (cheap)."""
        seq = self._last_event.get(run_id)
        if seq is None:
            seq = self.get_run(run_id).last_event
            self._last_event[run_id] = seq
        return seq

    def refresh_last_event(self, run_id: str) -> int:
        """Number of the run's latest event, read from the file (sees other processes' writes)."""
        seq = self.get_run(run_id).last_event
        self._last_event[run_id] = seq
        return seq

    # ------------------------------------------------------------------ settings
    def get_setting(self, key: str) -> Any:
        """A stored setting (JSON value), or None."""
        row = self._db().execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row["value"])

    def set_setting(self, key: str, value: Any) -> None:
        """Store a setting (JSON value); None deletes it."""
        with self._write() as db:
            if value is None:
                db.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                db.execute(
                    "INSERT INTO settings VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, json.dumps(value)),
                )

    # ------------------------------------------------------------------ internals
    def _renumber(self, db: sqlite3.Connection, leaving: str) -> None:
        """Close the gap ``leaving`` leaves in its queue (call before it leaves)."""
        row = db.execute("SELECT queue, queue_position FROM runs WHERE id = ?", (leaving,)).fetchone()
        if row is not None and row["queue_position"] is not None:
            db.execute(
                "UPDATE runs SET queue_position = queue_position - 1 WHERE queue = ? AND queue_position > ?",
                (row["queue"], row["queue_position"]),
            )

    def _status(self, db: sqlite3.Connection, run_id: str) -> str:
        row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return str(row[0])

    def _append_event(
        self, db: sqlite3.Connection, run_id: str, kind: str, epoch: int | None, data: dict[str, Any] | None
    ) -> None:
        db.execute("UPDATE runs SET last_event = last_event + 1 WHERE id = ?", (run_id,))
        db.execute(
            "INSERT INTO events (run_id, seq, kind, epoch, data, at) "
            "SELECT id, last_event, ?, ?, ?, ? FROM runs WHERE id = ?",
            (kind, epoch, None if data is None else json.dumps(data), now(), run_id),
        )

    def _insert_log(
        self, db: sqlite3.Connection, run_id: str, entries: Sequence[tuple[int, PulseLogEntry]]
    ) -> None:
        """Add pulse-log ``entries``, each (the epoch it belongs to, the entry), in order."""
        db.executemany(
            "INSERT INTO pulse_log (run_id, epoch, sent_at, kind, row, col, amplitude_v, width_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, n, e.sent_at, e.kind, e.row, e.col, e.amplitude_v, e.width_s) for n, e in entries],
        )

    def _notify(self, run_id: str, db: sqlite3.Connection) -> None:
        seq = db.execute("SELECT last_event FROM runs WHERE id = ?", (run_id,)).fetchone()
        if seq is not None:
            self.note_event(run_id, int(seq[0]))
            if self._on_event is not None:
                self._on_event(run_id, int(seq[0]))

    def note_event(self, run_id: str, seq: int) -> None:
        """Event ``seq`` of the run was committed (by this process or, as told, by a run's worker);
        the listeners hear of it."""
        if seq > self._last_event.get(run_id, 0):
            self._last_event[run_id] = seq
        for listener in list(self._listeners):
            listener(run_id, seq)

    def add_listener(self, listener: Callable[[str, int], None]) -> None:
        """Call ``listener(run_id, seq)`` (in the committing thread) after each event is noted."""
        self._listeners.append(listener)


def _status_data(status: RunStatus, outcome: Outcome | None, error: str | None) -> dict[str, Any]:
    return {
        "status": status.value,
        "outcome": None if outcome is None else Outcome(outcome).value,
        "error": error,
    }


def _run(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        status=RunStatus(row["status"]),
        config=json.loads(row["config"]),
        backend=row["backend"],
        instrument=row["instrument"],
        identity=row["identity"],
        outcome=row["outcome"],
        error=row["error"],
        epochs=row["epochs"],
        pulses=row["pulses"],
        last_event=row["last_event"],
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        owner=row["owner"],
        worker=row["worker"] if "worker" in row.keys() else None,  # noqa: SIM118 - sqlite3.Row has no "in"
        pause_request=row["pause_request"],
        queue=row["queue"],
        queue_position=row["queue_position"],
        on_failure=row["on_failure"],
    )


def _epoch(row: sqlite3.Row) -> EpochRecord:
    return EpochRecord.from_dict(json.loads(row["record"]))


def _host_pid(owner: str) -> str:
    """``host:pid`` of an owner, for a message."""
    who = Owner.parse(owner)
    return f"{who.host}:{who.pid}"


def _alive(run: Run, alive: Callable[[str], bool]) -> bool:
    """Whether the run's owner or its worker may still run."""
    return alive(run.owner) or (run.worker is not None and alive(run.worker))
