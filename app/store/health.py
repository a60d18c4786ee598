"""How each connection is doing: the one Health read model over the database.

``report`` is what ``pairsync health`` prints; the paged, searchable lists behind the desktop
app's Health and Activity tabs use the same filters and counts. Lists page with a keyset
("after" = the sort key of the last row shown), never OFFSET, so the 500th page of 100k
contacts costs what the first does; every list is ordered by an index (see migration 0004).
Rows come back as small frozen dataclasses (``app.model``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from app.engine.state import NOT_FITTING
from app.errors import ConfigError
from app.model import (
    ConflictRow,
    ContactRow,
    FailureRow,
    JournalRowView,
    NotFittingRow,
    RunRow,
)
from app.store.models import (
    Binding,
    ConflictEntry,
    Failure,
    IndexedRecord,
    JournalEntry,
    RecordKey,
    Run,
)
from app.store.rows import ConnectionRow

CONFLICT_DAYS = 30
"""Health's Conflicts tab shows this many days (SPEC §10)."""


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with LIKE's wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search(text: str, *columns: Any) -> Any:
    """Any of ``columns`` contains ``text`` (case-insensitive for ASCII, as SQLite's LIKE)."""
    pattern = _like(text.strip())
    return or_(*(c.like(pattern, escape="\\") for c in columns))


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class HealthQueries:
    """The Health read model: the CLI's report and the tabs' paged, searchable lists."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # --- contacts by index status (In sync, Excluded, Duplicates) ------------------------------

    @staticmethod
    def _contact_filter(
        cid: int, status: str, side: str | None, search: str, reason: str | None
    ) -> list[Any]:
        where: list[Any] = [IndexedRecord.connection_id == cid, IndexedRecord.status == status]
        if side is not None:
            where.append(IndexedRecord.side == side)
        if reason is not None:
            where.append(IndexedRecord.reason == reason)
        if search.strip():
            pattern = _like(search.strip())
            # The emails that match, found in one pass over the keys (a subquery per
            # contact would cost 100k lookups), then the contacts holding them.
            with_email = select(RecordKey.side, RecordKey.record_id).where(
                RecordKey.connection_id == cid, RecordKey.key.like(pattern, escape="\\")
            )
            where.append(
                or_(
                    IndexedRecord.name.like(pattern, escape="\\"),
                    tuple_(IndexedRecord.side, IndexedRecord.record_id).in_(with_email),
                )
            )
        return where

    def contacts_page(
        self,
        cid: int,
        status: str,
        *,
        side: str | None = None,
        search: str = "",
        reason: str | None = None,
        after: tuple[str, str, str] | None = None,
        limit: int = 200,
    ) -> list[ContactRow]:
        primary = (
            select(RecordKey.key)
            .where(
                RecordKey.connection_id == cid,
                RecordKey.side == IndexedRecord.side,
                RecordKey.record_id == IndexedRecord.record_id,
            )
            .order_by(RecordKey.position)
            .limit(1)
            .scalar_subquery()
        )
        where = self._contact_filter(cid, status, side, search, reason)
        if after is not None:
            where.append(
                tuple_(IndexedRecord.name, IndexedRecord.side, IndexedRecord.record_id)
                > tuple_(*after)
            )
        with self.sessions() as s:
            rows = s.execute(
                select(
                    IndexedRecord.side,
                    IndexedRecord.record_id,
                    IndexedRecord.name,
                    primary,
                    IndexedRecord.status,
                    IndexedRecord.reason,
                )
                .where(*where)
                .order_by(IndexedRecord.name, IndexedRecord.side, IndexedRecord.record_id)
                .limit(limit)
            ).all()
        return [ContactRow(sd, rid, nm, em or "", st, rs) for sd, rid, nm, em, st, rs in rows]

    def contacts_count(
        self,
        cid: int,
        status: str,
        *,
        side: str | None = None,
        search: str = "",
        reason: str | None = None,
    ) -> int:
        with self.sessions() as s:
            return int(
                s.scalar(
                    select(func.count()).where(
                        *self._contact_filter(cid, status, side, search, reason)
                    )
                )
                or 0
            )

    def reasons(self, cid: int, status: str) -> list[tuple[str, int]]:
        """The distinct reasons of one status with their counts (Excluded's reason filter)."""
        with self.sessions() as s:
            rows = s.execute(
                select(IndexedRecord.reason, func.count())
                .where(IndexedRecord.connection_id == cid, IndexedRecord.status == status)
                .group_by(IndexedRecord.reason)
                .order_by(func.count().desc())
            ).all()
        return [(r, int(n)) for r, n in rows]

    # --- failures -------------------------------------------------------------------------

    @staticmethod
    def _failure_filter(cid: int, search: str, ignored: bool | None) -> list[Any]:
        where: list[Any] = [Failure.connection_id == cid]
        if ignored is not None:
            where.append(Failure.ignored.is_(ignored))
        if search.strip():
            where.append(_search(search, Failure.name, Failure.message, Failure.field))
        return where

    def failure_groups(
        self, cid: int, *, search: str = "", ignored: bool | None = False
    ) -> list[tuple[str, int]]:
        with self.sessions() as s:
            rows = s.execute(
                select(Failure.code, func.count())
                .where(*self._failure_filter(cid, search, ignored))
                .group_by(Failure.code)
                .order_by(func.count().desc(), Failure.code)
            ).all()
        return [(code, int(n)) for code, n in rows]

    def failures_page(
        self,
        cid: int,
        code: str,
        *,
        search: str = "",
        ignored: bool | None = False,
        after: tuple[str, int] | None = None,
        limit: int = 200,
    ) -> list[FailureRow]:
        where = [*self._failure_filter(cid, search, ignored), Failure.code == code]
        if after is not None:
            where.append(tuple_(Failure.name, Failure.id) > tuple_(*after))
        with self.sessions() as s:
            rows = s.scalars(
                select(Failure).where(*where).order_by(Failure.name, Failure.id).limit(limit)
            ).all()
        return [
            FailureRow(
                f.id,
                f.side,
                f.record_id,
                f.target_side,
                f.name,
                f.code,
                f.message,
                f.field,
                f.attempts,
                f.last_at,
                bool(f.ignored),
            )
            for f in rows
        ]

    # --- not fitting ----------------------------------------------------------------------

    def not_fitting(self, cid: int, *, search: str = "") -> list[NotFittingRow]:
        """Values an app had no room for (SPEC §10 "Not fitting"), one row per contact and
        field, by name: read from the bindings' bases, where the engine keeps them while the
        two apps hold different values on purpose. Few (not paged in the database)."""
        with self.sessions() as s:
            rows = s.execute(
                select(Binding.id_a, Binding.id_b, Binding.base).where(
                    Binding.connection_id == cid,
                    Binding.state == "active",
                    Binding.base.like(f'%"{NOT_FITTING}"%'),
                )
            ).all()
            found: list[tuple[str, str, str, tuple[str, ...], str]] = []
            for id_a, id_b, base_text in rows:
                for entry in (_json(base_text) or {}).values():
                    note = entry.get(NOT_FITTING) if isinstance(entry, dict) else None
                    if not isinstance(note, dict):
                        continue
                    side = str(note.get("side", ""))
                    values = tuple(str(v) for v in note.get("values", []))
                    found.append(
                        (
                            side,
                            id_a if side == "a" else id_b,
                            str(note.get("field", "")),
                            values,
                            str(note.get("message", "")),
                        )
                    )
            names: dict[tuple[str, str], str] = {}
            for side in ("a", "b"):
                ids = [rid for sd, rid, *_ in found if sd == side]
                for start in range(0, len(ids), 500):
                    names.update(
                        ((side, rid), nm)
                        for rid, nm in s.execute(
                            select(IndexedRecord.record_id, IndexedRecord.name).where(
                                IndexedRecord.connection_id == cid,
                                IndexedRecord.side == side,
                                IndexedRecord.record_id.in_(ids[start : start + 500]),
                            )
                        ).all()
                    )
        out = [
            NotFittingRow(side, rid, names.get((side, rid)) or rid, fld, values, reason)
            for side, rid, fld, values, reason in found
        ]
        words = search.casefold().split()
        if words:
            out = [
                r
                for r in out
                if all(w in f"{r.name} {r.field} {' '.join(r.values)}".casefold() for w in words)
            ]
        return sorted(out, key=lambda r: r.key)

    def failure_raw(self, cid: int, failure_id: int) -> str:
        """The app's own words for one failure (shown on demand only)."""
        with self.sessions() as s:
            f = s.get(Failure, failure_id)
        if f is None or f.connection_id != cid:
            raise ConfigError("That failure is no longer listed.")
        return f.raw

    def failures_count(self, cid: int, *, ignored: bool | None = False) -> int:
        with self.sessions() as s:
            return int(
                s.scalar(select(func.count()).where(*self._failure_filter(cid, "", ignored))) or 0
            )

    def retry_failures(self, cid: int, ids: Sequence[int] = (), code: str | None = None) -> int:
        """Make failures due on the next run (and no longer ignored): by id, by group, or all."""
        where: list[Any] = [Failure.connection_id == cid]
        if ids:
            where.append(Failure.id.in_(list(ids)))
        if code is not None:
            where.append(Failure.code == code)
        with self.sessions() as s, s.begin():
            result = s.execute(
                update(Failure).where(*where).values(next_run_no=0, next_at=None, ignored=False)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    def ignore_failures(self, cid: int, ids: Sequence[int], ignored: bool = True) -> int:
        with self.sessions() as s, s.begin():
            result = s.execute(
                update(Failure)
                .where(Failure.connection_id == cid, Failure.id.in_(list(ids)))
                .values(ignored=ignored)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    # --- conflicts ------------------------------------------------------------------------

    def conflicts_page(
        self,
        cid: int,
        *,
        search: str = "",
        since: datetime,
        after: int | None = None,
        limit: int = 200,
    ) -> list[ConflictRow]:
        name = (
            select(IndexedRecord.name)
            .where(
                IndexedRecord.connection_id == cid,
                IndexedRecord.side == "a",
                IndexedRecord.record_id == Binding.id_a,
            )
            .scalar_subquery()
        )
        where: list[Any] = [ConflictEntry.connection_id == cid, ConflictEntry.at >= since]
        if after is not None:
            where.append(ConflictEntry.id < after)
        if search.strip():
            where.append(
                _search(
                    search, name, ConflictEntry.field, ConflictEntry.value_a, ConflictEntry.value_b
                )
            )
        with self.sessions() as s:
            rows = s.execute(
                select(ConflictEntry, name)
                .outerjoin(Binding, Binding.id == ConflictEntry.binding_id)
                .where(*where)
                .order_by(ConflictEntry.id.desc())
                .limit(limit)
            ).all()
        return [
            ConflictRow(
                c.id,
                c.run_id,
                c.binding_id,
                nm or "",
                c.field,
                _json(c.value_a),
                _json(c.value_b),
                c.winner,
                c.at,
                c.resolved_run_id,
            )
            for c, nm in rows
        ]

    def conflicts_count(self, cid: int, *, since: datetime) -> int:
        with self.sessions() as s:
            return int(
                s.scalar(
                    select(func.count()).where(
                        ConflictEntry.connection_id == cid, ConflictEntry.at >= since
                    )
                )
                or 0
            )

    # --- activity -------------------------------------------------------------------------

    @staticmethod
    def _run_row(r: Run) -> RunRow:
        return RunRow(
            r.id,
            r.run_no,
            r.kind,
            r.undo_of,
            r.status,
            r.started_at,
            r.finished_at,
            _json(r.counts) or {},
            r.message,
        )

    def runs_page(self, cid: int, *, before: int | None = None, limit: int = 100) -> list[RunRow]:
        """Runs that could have written (no dry runs), newest first."""
        where: list[Any] = [Run.connection_id == cid, Run.dry_run.is_(False)]
        if before is not None:
            where.append(Run.id < before)
        with self.sessions() as s:
            rows = s.scalars(select(Run).where(*where).order_by(Run.id.desc()).limit(limit)).all()
        return [self._run_row(r) for r in rows]

    def run(self, cid: int, run_id: int) -> RunRow | None:
        with self.sessions() as s:
            r = s.get(Run, run_id)
        return None if r is None or r.connection_id != cid else self._run_row(r)

    def run_by_number(self, cid: int, run_no: int) -> RunRow | None:
        with self.sessions() as s:
            r = s.scalar(
                select(Run)
                .where(Run.connection_id == cid, Run.run_no == run_no, Run.dry_run.is_(False))
                .order_by(Run.id.desc())
                .limit(1)
            )
        return None if r is None else self._run_row(r)

    def recent_sync_runs(self, cid: int, limit: int = 8) -> list[RunRow]:
        """The last sync runs (not undo ones, not dry runs): the schedule is derived from them."""
        with self.sessions() as s:
            rows = s.scalars(
                select(Run)
                .where(Run.connection_id == cid, Run.dry_run.is_(False), Run.kind == "sync")
                .order_by(Run.id.desc())
                .limit(limit)
            ).all()
        return [self._run_row(r) for r in rows]

    def journal_page(
        self,
        cid: int,
        run_id: int,
        *,
        search: str = "",
        created_only: bool = False,
        after: int | None = None,
        limit: int = 200,
    ) -> list[JournalRowView]:
        name = (
            select(IndexedRecord.name)
            .where(
                IndexedRecord.connection_id == cid,
                IndexedRecord.side == JournalEntry.side,
                IndexedRecord.record_id == JournalEntry.record_id,
            )
            .scalar_subquery()
        )
        where: list[Any] = [JournalEntry.run_id == run_id, JournalEntry.connection_id == cid]
        if after is not None:
            where.append(JournalEntry.id > after)
        if created_only:
            where.append(JournalEntry.action == "create")
        if search.strip():
            where.append(
                _search(search, name, JournalEntry.field, JournalEntry.before, JournalEntry.after)
            )
        with self.sessions() as s:
            rows = s.execute(
                select(JournalEntry, name).where(*where).order_by(JournalEntry.id).limit(limit)
            ).all()
        return [
            JournalRowView(
                j.id,
                j.side,
                j.record_id,
                nm or j.record_id,
                j.action,
                j.field,
                _json(j.before),
                _json(j.after),
            )
            for j, nm in rows
        ]

    def journal_count(self, cid: int, run_id: int) -> int:
        with self.sessions() as s:
            return int(
                s.scalar(
                    select(func.count()).where(
                        JournalEntry.run_id == run_id, JournalEntry.connection_id == cid
                    )
                )
                or 0
            )

    # --- the whole report (``pairsync health``) ------------------------------------------

    def report(self, conn: ConnectionRow) -> dict[str, Any]:
        """Everything ``pairsync health`` shows about one connection, as JSON values."""
        cid = conn.id
        # Pairs in sync: bound and in a rule's scope (a dormant pair is Excluded); counted
        # as the Health tab counts them.
        in_sync = self.contacts_count(cid, "bound", side="a")
        ignored = self.failures_count(cid, ignored=True)
        with self.sessions() as s:
            tombstones = s.scalar(
                select(func.count()).where(Binding.connection_id == cid, Binding.state != "active")
            )
            records = s.execute(
                select(
                    IndexedRecord.side,
                    IndexedRecord.record_id,
                    IndexedRecord.name,
                    IndexedRecord.status,
                    IndexedRecord.reason,
                )
                .where(
                    IndexedRecord.connection_id == cid,
                    IndexedRecord.status.in_(("excluded", "duplicate")),
                )
                .order_by(IndexedRecord.side, IndexedRecord.name)
            ).all()
            failures = s.scalars(
                select(Failure)
                .where(Failure.connection_id == cid, Failure.ignored.is_not(True))
                .order_by(Failure.code, Failure.name)
            ).all()
            conflict_rows = s.scalars(
                select(ConflictEntry)
                .where(ConflictEntry.connection_id == cid)
                .order_by(ConflictEntry.id.desc())
                .limit(500)
            ).all()
            runs = s.scalars(
                select(Run).where(Run.connection_id == cid).order_by(Run.id.desc()).limit(20)
            ).all()
            journal_count = s.scalar(select(func.count()).where(JournalEntry.connection_id == cid))
        not_fitting = [
            {
                "side": r.side,
                "record_id": r.record_id,
                "name": r.name,
                "field": r.field,
                "values": list(r.values),
                "reason": r.reason,
            }
            for r in self.not_fitting(cid)
        ]
        listed = [
            {"side": side, "record_id": rid, "name": nm, "reason": reason, "status": status}
            for side, rid, nm, status, reason in records
        ]
        excluded = [
            {k: v for k, v in e.items() if k != "status"}
            for e in listed
            if e["status"] == "excluded"
        ]
        duplicates = [
            {k: v for k, v in e.items() if k != "status"}
            for e in listed
            if e["status"] == "duplicate"
        ]
        failed = [
            {
                "id": f.id,
                "side": f.side,
                "record_id": f.record_id,
                "name": f.name,
                "app_side": f.target_side,
                "code": f.code,
                "reason": f.message,
                "fields": [f.field] if f.field else [],
                "attempts": f.attempts,
                "raw": f.raw,
            }
            for f in failures
        ]
        return {
            "connection": conn.name,
            "paused": conn.paused,
            "counts": {
                "in_sync": in_sync,
                "excluded": len(excluded),
                "duplicates": len(duplicates),
                "failed": len(failed),
                "ignored": ignored,
                "deleted_other_side": int(tombstones or 0),
                "rule_conflicts": sum(1 for c in conflict_rows if c.field.startswith("rule:")),
                "not_fitting": len(not_fitting),
            },
            "failed": failed,
            "not_fitting": not_fitting,
            "excluded": excluded,
            "duplicates": duplicates,
            "deleted_other_side": [e for e in excluded if e["reason"].startswith("deleted in")],
            "conflicts": [
                {
                    "id": c.id,
                    "field": c.field,
                    "value_a": json.loads(c.value_a),
                    "value_b": json.loads(c.value_b),
                    "winner": c.winner,
                    "at": c.at.isoformat(),
                    "binding": c.binding_id,
                }
                for c in conflict_rows
                if not c.field.startswith("rule:")
            ],
            "rule_conflicts": [
                {
                    "about": c.field.removeprefix("rule:"),
                    "message": json.loads(c.value_a),
                    "side": c.winner,
                    "at": c.at.isoformat(),
                    "binding": c.binding_id,
                }
                for c in conflict_rows
                if c.field.startswith("rule:")
            ],
            "journal_entries": int(journal_count or 0),
            "runs": [
                {
                    "run": r.run_no,
                    "dry_run": r.dry_run,
                    "status": r.status,
                    "started_at": r.started_at.isoformat(),
                    "counts": json.loads(r.counts),
                    "message": r.message,
                }
                for r in runs
            ],
        }
