"""Accounts, connections and the Health queries: the service's view of the database.

Rows come back detached (the session factory does not expire on commit), so callers read
them freely; every change is its own short transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from app.errors import ConfigError
from app.model import Record, record_from_json
from app.store.models import (
    Account,
    Binding,
    ConflictEntry,
    Connection,
    Failure,
    IndexedRecord,
    JournalEntry,
    RecordKey,
    Run,
)
from app.store.state import NOT_FITTING


class Catalog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # --- accounts --------------------------------------------------------------------------

    def add_account(
        self, name: str, kind: str, settings: dict[str, str], has_secret: bool
    ) -> Account:
        with self.sessions() as s, s.begin():
            if s.scalar(select(Account.id).where(Account.name == name)) is not None:
                raise ConfigError(f"An account named {name!r} already exists.")
            acc = Account(
                name=name, kind=kind, settings=json.dumps(settings), has_secret=has_secret
            )
            s.add(acc)
        return acc

    def find_account(self, name: str) -> Account | None:
        with self.sessions() as s:
            return s.scalar(select(Account).where(Account.name == name))

    def account(self, name: str) -> Account:
        acc = self.find_account(name)
        if acc is None:
            raise ConfigError(f"There is no account named {name!r} (see: pairsync account list).")
        return acc

    def account_by_id(self, account_id: int) -> Account:
        with self.sessions() as s:
            acc = s.get(Account, account_id)
        assert acc is not None
        return acc

    def accounts(self) -> list[Account]:
        with self.sessions() as s:
            return list(s.scalars(select(Account).order_by(Account.name)))

    def remove_account(self, name: str) -> Account:
        with self.sessions() as s, s.begin():
            acc = s.scalar(select(Account).where(Account.name == name))
            if acc is None:
                raise ConfigError(f"There is no account named {name!r}.")
            used = s.scalars(
                select(Connection.name).where(
                    (Connection.account_a_id == acc.id) | (Connection.account_b_id == acc.id)
                )
            ).all()
            if used:
                raise ConfigError(
                    f"Account {name!r} is used by connection(s) {', '.join(used)}; delete those "
                    "first."
                )
            s.delete(acc)
        return acc

    # --- connections -----------------------------------------------------------------------

    def add_connection(self, name: str, account_a: str, account_b: str, **values: Any) -> None:
        with self.sessions() as s, s.begin():
            if s.scalar(select(Connection.id).where(Connection.name == name)) is not None:
                raise ConfigError(f"A connection named {name!r} already exists.")
            a = s.scalar(select(Account).where(Account.name == account_a))
            b = s.scalar(select(Account).where(Account.name == account_b))
            for wanted, acc in ((account_a, a), (account_b, b)):
                if acc is None:
                    raise ConfigError(
                        f"There is no account named {wanted!r} (see: pairsync account list)."
                    )
            assert a is not None and b is not None
            if a.id == b.id:
                raise ConfigError("A connection needs two different accounts.")
            s.add(Connection(name=name, account_a_id=a.id, account_b_id=b.id, **values))

    def connection(self, name: str) -> Connection:
        with self.sessions() as s:
            conn = s.scalar(select(Connection).where(Connection.name == name))
        if conn is None:
            raise ConfigError(
                f"There is no connection named {name!r} (see: pairsync connection list)."
            )
        return conn

    def connections(self) -> list[Connection]:
        with self.sessions() as s:
            return list(s.scalars(select(Connection).order_by(Connection.name)))

    def update_connection(self, name: str, **values: Any) -> None:
        with self.sessions() as s, s.begin():
            conn = s.scalar(select(Connection).where(Connection.name == name))
            if conn is None:
                raise ConfigError(f"There is no connection named {name!r}.")
            for key, value in values.items():
                setattr(conn, key, value)

    def rename_connection(self, name: str, new_name: str) -> None:
        """Only the name changes: runs, bindings, index and history hang on the id."""
        with self.sessions() as s, s.begin():
            conn = s.scalar(select(Connection).where(Connection.name == name))
            if conn is None:
                raise ConfigError(f"There is no connection named {name!r}.")
            if s.scalar(select(Connection.id).where(Connection.name == new_name)) is not None:
                raise ConfigError(f"A connection named {new_name!r} already exists.")
            conn.name = new_name

    def delete_connection(self, name: str) -> None:
        with self.sessions() as s, s.begin():
            conn = s.scalar(select(Connection).where(Connection.name == name))
            if conn is None:
                raise ConfigError(f"There is no connection named {name!r}.")
            s.delete(conn)

    def last_run(self, connection_id: int) -> Run | None:
        with self.sessions() as s:
            return s.scalar(
                select(Run)
                .where(Run.connection_id == connection_id, Run.dry_run.is_(False))
                .order_by(Run.id.desc())
                .limit(1)
            )

    def index_records(
        self, connection_id: int, side: str, chunk: int = 2000
    ) -> Iterator[list[tuple[Record, bool]]]:
        """Every indexed contact of one side with whether it is bound (an active binding),
        a chunk at a time: rule counts come from here, without reading the apps."""
        col = Binding.id_a if side == "a" else Binding.id_b
        bound = (
            select(Binding.id)
            .where(
                Binding.connection_id == connection_id,
                Binding.state == "active",
                col == IndexedRecord.record_id,
            )
            .exists()
        )
        last = ""
        while True:
            with self.sessions() as s:
                rows = s.execute(
                    select(
                        IndexedRecord.record_id,
                        IndexedRecord.version,
                        IndexedRecord.snapshot,
                        bound,
                    )
                    .where(
                        IndexedRecord.connection_id == connection_id,
                        IndexedRecord.side == side,
                        IndexedRecord.record_id > last,
                    )
                    .order_by(IndexedRecord.record_id)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            last = rows[-1][0]
            yield [(record_from_json(rid, v, snap), bool(b)) for rid, v, snap, b in rows]

    # --- health ----------------------------------------------------------------------------

    def health(self, conn: Connection) -> dict[str, Any]:
        cid = conn.id
        with self.sessions() as s:
            # Pairs in sync: bound and in a rule's scope (a dormant pair is Excluded).
            in_sync = s.scalar(
                select(func.count()).where(
                    IndexedRecord.connection_id == cid,
                    IndexedRecord.side == "a",
                    IndexedRecord.status == "bound",
                )
            )
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
            ignored = s.scalar(
                select(func.count()).where(Failure.connection_id == cid, Failure.ignored.is_(True))
            )
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
            not_fitting = self._not_fitting(s, cid)
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
                "in_sync": int(in_sync or 0),
                "excluded": len(excluded),
                "duplicates": len(duplicates),
                "failed": len(failed),
                "ignored": int(ignored or 0),
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

    @staticmethod
    def _not_fitting(s: Session, cid: int) -> list[dict[str, Any]]:
        """Values an app had no room for, one entry per contact and field (SPEC §10 "Not
        fitting"): read from the bindings' bases, where the engine keeps them while the two
        apps hold different values on purpose."""
        out: list[dict[str, Any]] = []
        rows = s.execute(
            select(Binding.id_a, Binding.id_b, Binding.base).where(
                Binding.connection_id == cid,
                Binding.state == "active",
                Binding.base.like(f'%"{NOT_FITTING}"%'),
            )
        ).all()
        for id_a, id_b, base_text in rows:
            for entry in json.loads(base_text or "{}").values():
                note = entry.get(NOT_FITTING) if isinstance(entry, dict) else None
                if not isinstance(note, dict):
                    continue
                side = str(note.get("side", ""))
                rid = id_a if side == "a" else id_b
                out.append(
                    {
                        "side": side,
                        "record_id": rid,
                        "name": "",
                        "field": str(note.get("field", "")),
                        "values": [str(v) for v in note.get("values", [])],
                        "reason": str(note.get("message", "")),
                    }
                )
        for side in ("a", "b"):
            ids = [e["record_id"] for e in out if e["side"] == side]
            names: dict[str, str] = {}
            for start in range(0, len(ids), 500):
                found = s.execute(
                    select(IndexedRecord.record_id, IndexedRecord.name).where(
                        IndexedRecord.connection_id == cid,
                        IndexedRecord.side == side,
                        IndexedRecord.record_id.in_(ids[start : start + 500]),
                    )
                ).all()
                names.update((rid, nm) for rid, nm in found)
            for e in out:
                if e["side"] == side:
                    e["name"] = names.get(e["record_id"], "") or e["record_id"]
        out.sort(key=lambda e: (e["name"].casefold(), e["field"]))
        return out


# --- desktop app: paged Health and Activity queries ------------------------------------------
#
# Lists page with a keyset ("after" = the sort key of the last row shown), never OFFSET, so
# the 500th page of 100k contacts costs what the first does; every list is ordered by an
# index (see migration 0004). Rows come back as small frozen dataclasses.

CONFLICT_DAYS = 30
"""Health's Conflicts tab shows this many days (SPEC §10)."""


@dataclass(frozen=True, slots=True)
class ContactRow:
    side: str
    record_id: str
    name: str
    email: str
    status: str
    reason: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.side, self.record_id)


@dataclass(frozen=True, slots=True)
class NotFittingRow:
    """A value an app had no room for (Health's "Not fitting"): the rest of the contact
    is in sync."""

    side: str
    record_id: str
    name: str
    field: str
    values: tuple[str, ...]
    reason: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.name.casefold(), self.side, self.record_id, self.field)


@dataclass(frozen=True, slots=True)
class FailureRow:
    id: int
    side: str
    record_id: str
    target_side: str
    name: str
    code: str
    message: str
    field: str
    attempts: int
    last_at: datetime
    ignored: bool

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.id)


@dataclass(frozen=True, slots=True)
class ConflictRow:
    id: int
    run_id: int
    binding_id: int
    name: str
    field: str
    value_a: Any
    value_b: Any
    winner: str
    at: datetime
    resolved_run_id: int | None

    @property
    def is_rule(self) -> bool:
        return self.field.startswith("rule:")


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    run_no: int
    kind: str
    undo_of: int | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    message: str


@dataclass(frozen=True, slots=True)
class JournalRowView:
    id: int
    side: str
    record_id: str
    name: str
    action: str
    field: str
    before: Any
    after: Any


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
    """Paged, searchable reads behind the desktop app's Health and Activity tabs."""

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

    def not_fitting(self, cid: int, *, search: str = "") -> list[NotFittingRow]:
        """Every value an app had no room for (few: one per contact and field), by name."""
        with self.sessions() as s:
            items = Catalog._not_fitting(s, cid)
        words = search.casefold().split()
        rows = [
            NotFittingRow(
                e["side"], e["record_id"], e["name"], e["field"], tuple(e["values"]), e["reason"]
            )
            for e in items
        ]
        if words:
            rows = [
                r
                for r in rows
                if all(w in f"{r.name} {r.field} {' '.join(r.values)}".casefold() for w in words)
            ]
        return sorted(rows, key=lambda r: r.key)

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

    # --- accounts (re-authorization) -----------------------------------------------------------

    def update_account(self, name: str, *, settings: str, has_secret: bool) -> None:
        with self.sessions() as s, s.begin():
            acc = s.scalar(select(Account).where(Account.name == name))
            if acc is None:
                raise ConfigError(f"There is no account named {name!r}.")
            acc.settings = settings
            acc.has_secret = has_secret

    def connections_using(self, account_id: int) -> list[str]:
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(Connection.name)
                    .where(
                        (Connection.account_a_id == account_id)
                        | (Connection.account_b_id == account_id)
                    )
                    .order_by(Connection.name)
                )
            )
