"""Calibrations kept in the run store: one table, added by the store's schema migration 3.

Each row is one :class:`~crossbar_hil.procedures.calibrate.Calibration` (its JSON), keyed by
an id, with the instrument identity and the time as columns, so "the newest
calibration of this instrument" is one indexed query. ``hil calibrations`` and the
service's ``/calibrations`` routes list, show, export and delete them; a run on an
instrument takes its newest one by default (``training.curve_source='auto'``).
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

from crossbar_hil.procedures.calibrate import Calibration
from crossbar_hil.seam.errors import HilError

if TYPE_CHECKING:
    from crossbar_hil.runs.store import RunStore


def create_v3(db: sqlite3.Connection) -> None:
    """Schema migration 2 -> 3: the calibrations table."""
    db.execute(
        "CREATE TABLE calibrations (id TEXT PRIMARY KEY, identity TEXT NOT NULL, created_at TEXT NOT NULL, "
        "devices INTEGER NOT NULL, n_pulses INTEGER NOT NULL, body TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX calibrations_by_instrument ON calibrations (identity, created_at)")


class CalibrationNotFound(HilError, KeyError):
    """No calibration has this id."""

    def __init__(self, calibration_id: str) -> None:
        self.calibration_id = calibration_id
        super().__init__(f"no calibration {calibration_id!r}")


class Calibrations:
    """The calibrations of a :class:`RunStore`."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def add(self, calibration: Calibration) -> str:
        """Keep ``calibration``; returns its new id."""
        cal_id = uuid.uuid4().hex[:12]
        with self.store._write() as db:
            db.execute(
                "INSERT INTO calibrations VALUES (?, ?, ?, ?, ?, ?)",
                (
                    cal_id,
                    calibration.identity,
                    calibration.created_at,
                    len(calibration.devices),
                    calibration.n_pulses,
                    calibration.model_dump_json(),
                ),
            )
        return cal_id

    def list(self, identity: str | None = None) -> list[dict[str, Any]]:
        """Summaries (id, identity, created_at, devices, n_pulses), newest first."""
        sql = "SELECT id, identity, created_at, devices, n_pulses FROM calibrations"
        args: tuple[str, ...] = ()
        if identity is not None:
            sql, args = sql + " WHERE identity = ?", (identity,)
        rows = self.store._db().execute(sql + " ORDER BY created_at DESC, rowid DESC", args).fetchall()
        return [dict(r) for r in rows]

    def get(self, calibration_id: str) -> Calibration:
        """The calibration ``calibration_id``; :class:`CalibrationNotFound` otherwise."""
        row = (
            self.store._db()
            .execute("SELECT body FROM calibrations WHERE id = ?", (calibration_id,))
            .fetchone()
        )
        if row is None:
            raise CalibrationNotFound(calibration_id)
        return Calibration.model_validate_json(row["body"])

    def newest(self, identity: str) -> tuple[str, Calibration] | None:
        """The newest calibration of the instrument ``identity`` (its id and itself), if any."""
        found = self.list(identity)
        return None if not found else (found[0]["id"], self.get(found[0]["id"]))

    def delete(self, calibration_id: str) -> None:
        """Forget ``calibration_id``; :class:`CalibrationNotFound` when there is none."""
        with self.store._write() as db:
            if db.execute("DELETE FROM calibrations WHERE id = ?", (calibration_id,)).rowcount == 0:
                raise CalibrationNotFound(calibration_id)
