"""The engine's memory in SQLite: the local index, bindings, failures, intents, journal.

``SyncState`` implements ``app.engine.state.SyncStateStore``, the protocol the engine sees
(plain notes in, plain values out; never an ORM row). Each method that changes data commits
its own short transaction; ``commit`` makes a whole batch outcome durable at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.engine.state import (
    BatchOutcome,
    BindingRow,
    ConflictFacts,
    ConnectionFacts,
    DueFailure,
    FailureNote,
    IndexEntry,
    IntentNote,
    JournalRow,
    RunFacts,
    SyncStateStore,
)
from app.model import Record, Side, record_from_json
from app.store import bulk
from app.store.models import (
    Binding,
    ConflictEntry,
    Failure,
    IndexedRecord,
    JournalEntry,
    PendingOp,
    RecordKey,
    Run,
    utcnow,
)

CHUNK = bulk.CHUNK

BINDINGS = cast(Table, Binding.__table__)


def chunked(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_text = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(value, ensure_ascii=False)``, without building an encoder per call (a first
sync dumps about ten values per contact)."""


def _dump(value: Any) -> str | None:
    return None if value is None else _text(value)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(text: str) -> str:
    """Text SQLite can hold: a lone surrogate (an undecodable byte an app kept as a
    ``surrogateescape``) becomes U+FFFD instead of failing the whole commit."""
    return _SURROGATE.sub("\ufffd", text)


def backoff(attempts: int, run_no: int, now: datetime) -> tuple[int, datetime | None]:
    """SPEC §9: retry on the next run, after 3 runs, after 10, then daily."""
    if attempts <= 1:
        return run_no + 1, None
    if attempts == 2:
        return run_no + 3, None
    if attempts == 3:
        return run_no + 10, None
    return run_no + 1, now + timedelta(days=1)


class SyncState:
    """One connection's sync state, as the engine reads and writes it (the engine's
    ``SyncStateStore``, ``app.engine.state``): the local index of both apps' contacts,
    bindings with their per-mapping base values, cursors, failures and their retry schedule,
    conflicts, runs, the field-level journal and the write-ahead intents (pending creates)
    that make a crash lose and duplicate nothing.

    The engine's only door to the database (it never writes SQL and never sees an ORM row);
    the facade makes one per run (``ServiceCore._state``). Each change is its own short
    transaction; ``commit`` makes a batch's whole outcome (bindings, bases, journal, cursors)
    durable together. Bulk statements, a part at a time, for a first sync's hot paths."""

    def __init__(self, sessions: sessionmaker[Session], connection_id: int) -> None:
        self.sessions = sessions
        self.cid = connection_id

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """A read in plain SQL on a session's connection (``app.store.bulk``'s way): every run
        asks these few questions, and through the ORM each cost more Python (a statement
        compiled per process, an identity map, row objects) than SQLite took to answer."""
        with self.sessions() as s:
            return list(s.connection().exec_driver_sql(sql, params).fetchall())

    # --- connection and runs ------------------------------------------------------------

    def connection(self) -> ConnectionFacts:
        [(synced_once, needs_full_read)] = self._rows(
            "SELECT synced_once, needs_full_read FROM connections WHERE id = ?", (self.cid,)
        )
        return ConnectionFacts(synced_once=bool(synced_once), needs_full_read=bool(needs_full_read))

    def begin_run(
        self, dry_run: bool, kind: str = "sync", undo_of: int | None = None
    ) -> tuple[int, int]:
        with self.sessions() as s, s.begin():
            conn = s.connection()
            [(count,)] = conn.exec_driver_sql(
                "SELECT run_count FROM connections WHERE id = ?", (self.cid,)
            ).fetchall()
            run_no = (count or 0) + 1
            started = bulk.stamp(conn, utcnow())
            added = conn.exec_driver_sql(
                bulk.INSERT_RUN,
                (self.cid, run_no, dry_run, "running", "{}", "", started, kind, undo_of),
            )
            if not dry_run:
                conn.exec_driver_sql(
                    "UPDATE connections SET run_count = ? WHERE id = ?", (run_no, self.cid)
                )
            run_id = added.lastrowid
            assert run_id is not None
            return int(run_id), run_no

    def finish_run(
        self, run_id: int, status: str, counts: dict[str, Any], message: str, wrote: bool
    ) -> None:
        with self.sessions() as s, s.begin():
            conn = s.connection()
            at = bulk.stamp(conn, utcnow())
            [(kind, dry_run)] = conn.exec_driver_sql(
                "SELECT kind, dry_run FROM runs WHERE id = ?", (run_id,)
            ).fetchall()
            conn.exec_driver_sql(
                "UPDATE runs SET status = ?, counts = ?, message = ?, finished_at = ? WHERE id = ?",
                (status, json.dumps(counts), message, at, run_id),
            )
            if kind != "sync":
                return  # an undo neither reads the apps fully nor counts for the schedule
            if not dry_run and status in ("ok", "failed"):
                conn.exec_driver_sql(
                    "UPDATE connections SET last_run_at = ?, synced_once = 1, needs_full_read = 0"
                    " WHERE id = ?",
                    (at, self.cid),
                )
            else:
                conn.exec_driver_sql(
                    "UPDATE connections SET last_run_at = ? WHERE id = ?", (at, self.cid)
                )

    # --- the local index ----------------------------------------------------------------

    def index_versions(self, side: Side) -> dict[str, str]:
        with self.sessions() as s:
            # A cursor, read as the dict is built: the side's rows are never held as a list.
            rows = s.connection().exec_driver_sql(
                "SELECT record_id, version FROM records WHERE connection_id = ? AND side = ?",
                (self.cid, side.value),
            )
            return {rid: version for rid, version in rows}

    def index_versions_of(self, side: Side, ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self.sessions() as s:
            conn = s.connection()
            for part in chunked(list(dict.fromkeys(ids))):
                rows = conn.exec_driver_sql(
                    "SELECT record_id, version FROM records WHERE connection_id = ? AND side = ?"
                    f" AND record_id IN ({', '.join('?' * len(part))})",
                    (self.cid, side.value, *part),
                )
                out.update({rid: version for rid, version in rows})
        return out

    def load_records(self, side: Side, ids: Iterable[str]) -> dict[str, tuple[Record, str]]:
        """Snapshots from the index: id -> (record, status)."""
        out: dict[str, tuple[Record, str]] = {}
        id_list = list(ids)
        with self.sessions() as s:
            for part in chunked(id_list):
                rows = s.execute(
                    select(
                        IndexedRecord.record_id,
                        IndexedRecord.version,
                        IndexedRecord.snapshot,
                        IndexedRecord.status,
                    ).where(
                        IndexedRecord.connection_id == self.cid,
                        IndexedRecord.side == side.value,
                        IndexedRecord.record_id.in_(part),
                    )
                )
                for rid, version, snap, status in rows:
                    out[rid] = (record_from_json(rid, version, snap), status)
        return out

    def key_holders(self, side: Side, keys: Iterable[str]) -> dict[str, set[str]]:
        key_list = list(set(keys))
        out: dict[str, set[str]] = {}
        with self.sessions() as s:
            for part in chunked(key_list):
                rows = s.execute(
                    select(RecordKey.key, RecordKey.record_id).where(
                        RecordKey.connection_id == self.cid,
                        RecordKey.side == side.value,
                        RecordKey.key.in_(part),
                    )
                )
                for key, rid in rows:
                    out.setdefault(key, set()).add(rid)
        return out

    # --- cursors: where each feed stopped, and which mapping set the bases belong to -----------

    def cursor(self, key: str) -> str | None:
        rows = self._rows(
            "SELECT cursor FROM cursors WHERE connection_id = ? AND side = ?", (self.cid, key)
        )
        return str(rows[0][0]) if rows else None

    def set_cursor(self, key: str, value: str | None) -> None:
        with self.sessions() as s, s.begin():
            self._put_cursor(s, key, value)

    def _put_cursor(self, s: Session, key: str, value: str | None) -> None:
        """Store a cursor; one that did not move is not written (``updated_at``: when it
        last moved), so a run where nothing changed adds nothing to the database's log."""
        conn = s.connection()
        if value is None:
            conn.exec_driver_sql(
                "DELETE FROM cursors WHERE connection_id = ? AND side = ?", (self.cid, key)
            )
        else:
            at = bulk.stamp(conn, utcnow())
            conn.exec_driver_sql(bulk.PUT_CURSOR, (self.cid, key, value, at))

    def active_bindings(self) -> Iterator[list[BindingRow]]:
        """Every active binding, a chunk at a time (re-planning after a configuration change)."""
        last = 0
        while True:
            with self.sessions() as s:
                rows = list(
                    s.scalars(
                        select(Binding)
                        .where(
                            Binding.connection_id == self.cid,
                            Binding.state == "active",
                            Binding.id > last,
                        )
                        .order_by(Binding.id)
                        .limit(CHUNK * 4)
                    )
                )
            if not rows:
                return
            last = rows[-1].id
            yield [self._row(b) for b in rows]

    def ids_with_status(self, side: Side, status: str) -> list[str]:
        rows = self._rows(
            "SELECT record_id FROM records WHERE connection_id = ? AND side = ? AND status = ?",
            (self.cid, side.value, status),
        )
        return [rid for (rid,) in rows]

    def keys_of(self, side: Side, ids: Iterable[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.sessions() as s:
            for part in chunked(list(ids)):
                rows = s.execute(
                    select(RecordKey.record_id, RecordKey.key)
                    .where(
                        RecordKey.connection_id == self.cid,
                        RecordKey.side == side.value,
                        RecordKey.record_id.in_(part),
                    )
                    .order_by(RecordKey.position)
                )
                for rid, key in rows:
                    out.setdefault(rid, []).append(key)
        return out

    def _put_index(self, s: Session, entries: Sequence[IndexEntry]) -> None:
        """Upsert index rows and their keys in bulk (the hot path of a first sync)."""
        if not entries:
            return
        conn, cid = s.connection(), self.cid
        # Indexed as processed: an earlier failure of this contact is over. (A failure of
        # this same batch is written after the index, so it stays.)
        bulk.send(
            conn,
            bulk.DELETE_RECORD_FAILURE,
            ((cid, e.side.value, e.record.id) for e in entries if e.status != "failed"),
        )
        bulk.send(conn, bulk.DELETE_KEYS, ((cid, e.side.value, e.record.id) for e in entries))
        # One row per record, in the order records first appear, from its last entry.
        last = {(e.side.value, e.record.id): n for n, e in enumerate(entries)}
        bulk.send(
            conn,
            bulk.UPSERT_RECORD,
            (
                (
                    cid,
                    side,
                    rid,
                    e.record.version,
                    e.snapshot,
                    e.record.display_name()[:500],
                    e.status,
                    e.reason[:500],
                )
                for (side, rid), e in ((k, entries[n]) for k, n in last.items())
            ),
        )
        del last
        keys = {
            (e.side.value, e.record.id, key[:500]): pos
            for e in entries
            for pos, key in enumerate(dict.fromkeys(e.keys))
        }
        bulk.send(
            conn,
            bulk.INSERT_KEY,
            ((cid, side, rid, key, pos) for (side, rid, key), pos in keys.items()),
        )

    def _drop_index(self, s: Session, side: Side, ids: Iterable[str]) -> None:
        for part in chunked(list(ids)):
            s.execute(
                delete(IndexedRecord).where(
                    IndexedRecord.connection_id == self.cid,
                    IndexedRecord.side == side.value,
                    IndexedRecord.record_id.in_(part),
                )
            )
            s.execute(
                delete(RecordKey).where(
                    RecordKey.connection_id == self.cid,
                    RecordKey.side == side.value,
                    RecordKey.record_id.in_(part),
                )
            )

    # --- bindings -----------------------------------------------------------------------

    @staticmethod
    def _row(b: Binding) -> BindingRow:
        return BindingRow(
            b.id,
            b.id_a,
            b.id_b,
            b.state,
            json.loads(b.base),
            b.needs_merge,
            json.loads(b.rule_state or "{}"),
        )

    def bindings_for(self, side: Side, ids: Iterable[str]) -> dict[str, BindingRow]:
        col = Binding.id_a if side is Side.A else Binding.id_b
        out: dict[str, BindingRow] = {}
        with self.sessions() as s:
            for part in chunked(list(ids)):
                for b in s.scalars(
                    select(Binding).where(Binding.connection_id == self.cid, col.in_(part))
                ):
                    out[b.id_a if side is Side.A else b.id_b] = self._row(b)
        return out

    def bindings_by_id(self, ids: Iterable[int]) -> list[BindingRow]:
        out: list[BindingRow] = []
        with self.sessions() as s:
            for part in chunked(list(ids)):
                out.extend(
                    self._row(b)
                    for b in s.scalars(
                        select(Binding).where(
                            Binding.connection_id == self.cid, Binding.id.in_(part)
                        )
                    )
                )
        return out

    def bindings_needing_merge(self) -> list[BindingRow]:
        rows = self._rows(
            "SELECT id, id_a, id_b, state, base, needs_merge, rule_state FROM bindings"
            " WHERE connection_id = ? AND needs_merge = 1",
            (self.cid,),
        )
        return [
            BindingRow(
                bid, id_a, id_b, state, json.loads(base), bool(merge), json.loads(rs or "{}")
            )
            for bid, id_a, id_b, state, base, merge, rs in rows
        ]

    def bound_unindexed(self, side: Side) -> list[str]:
        bound = "id_a" if side is Side.A else "id_b"
        rows = self._rows(
            f"SELECT b.{bound} FROM bindings AS b WHERE b.connection_id = ? AND b.needs_merge = 1"
            " AND b.state = 'active' AND NOT EXISTS (SELECT 1 FROM records AS r WHERE"
            f" r.connection_id = ? AND r.side = ? AND r.record_id = b.{bound})",
            (self.cid, self.cid, side.value),
        )
        return [rid for (rid,) in rows]

    def count_index(self, side: Side) -> int:
        [(count,)] = self._rows(
            "SELECT count(*) FROM records WHERE connection_id = ? AND side = ?",
            (self.cid, side.value),
        )
        return int(count or 0)

    # --- intents (crash safety for creates) ----------------------------------------------

    def open_intents(self) -> list[IntentNote]:
        rows = self._rows(
            "SELECT op_id, run_id, target_side, source_id, new_id, emails, rule_state"
            " FROM pending_ops WHERE connection_id = ?",
            (self.cid,),
        )
        return [
            IntentNote(
                op_id=op_id,
                run_id=run_id,
                target_side=Side(target),
                source_id=source_id,
                new_id=new_id,
                emails=list(json.loads(emails or "[]")),
                rule_state=dict(json.loads(rule_state or "{}")),
            )
            for op_id, run_id, target, source_id, new_id, emails, rule_state in rows
        ]

    def add_intents(self, intents: Sequence[IntentNote]) -> None:
        """Commit intents in bulk (Core executemany: no ORM object per intent)."""
        if not intents:
            return
        with self.sessions() as s, s.begin():
            conn = s.connection()
            at = bulk.stamp(conn, utcnow())
            bulk.send(
                conn,
                bulk.INSERT_INTENT,
                (
                    (
                        i.op_id,
                        self.cid,
                        i.run_id,
                        i.target_side.value,
                        i.source_id,
                        i.new_id,
                        json.dumps(i.emails),
                        _text(i.rule_state),
                        at,
                    )
                    for i in intents
                ),
            )

    def resolve_intent(
        self,
        op_id: str,
        source: Side,
        source_id: str,
        new_id: str | None,
        state: str = "active",
        rule_state: dict[str, Any] | None = None,
    ) -> None:
        """An interrupted create: bind it if the app has it, else forget the intent."""
        with self.sessions() as s, s.begin():
            if new_id is not None:
                id_a, id_b = (source_id, new_id) if source is Side.A else (new_id, source_id)
                exists = s.scalar(
                    select(Binding.id).where(
                        Binding.connection_id == self.cid,
                        (Binding.id_a == id_a) | (Binding.id_b == id_b),
                    )
                )
                if exists is None:
                    s.add(
                        Binding(
                            connection_id=self.cid,
                            id_a=id_a,
                            id_b=id_b,
                            needs_merge=state == "active",
                            base="{}",
                            state=state,
                            rule_state=_text(rule_state or {}),
                        )
                    )
            s.execute(delete(PendingOp).where(PendingOp.op_id == op_id))

    # --- committing what a run did -----------------------------------------------------------

    def commit(self, outcome: BatchOutcome) -> None:
        """One transaction: everything that must be durable together after a batch."""
        o = outcome
        run_id, run_no, matched = o.run_id, o.run_no, o.matched
        now = utcnow()
        with self.sessions() as s, s.begin():
            conn, cid = s.connection(), self.cid
            at = bulk.stamp(conn, now)
            self._put_index(s, o.index)
            bulk.send(
                conn,
                bulk.INSERT_BINDING,
                (
                    (
                        cid,
                        nb.id_a,
                        nb.id_b,
                        json.dumps(nb.base),
                        _text(nb.rule_state),
                        "active",
                        matched,
                        at,
                    )
                    for nb in o.new_bindings
                ),
            )
            bulk.send(conn, bulk.SET_BASE, ((json.dumps(base), bid) for bid, base in o.bases))
            bulk.send(
                conn,
                bulk.SET_RULE_STATE,
                ((_text(st), bid) for bid, st in o.rule_states),
            )
            bulk.send(conn, bulk.SET_NEEDS_MERGE, ((bid,) for bid in o.replan))
            if o.tombstones:
                table = BINDINGS
                s.execute(
                    update(table)
                    .where(table.c.id == bindparam("bid"))
                    .values(state=bindparam("new_state")),
                    [{"bid": t.binding_id, "new_state": t.state} for t in o.tombstones],
                )
            bulk.send(
                conn,
                bulk.SET_STATUS,
                (
                    (st.status, st.reason[:500], cid, st.side.value, st.record_id)
                    for st in o.statuses
                ),
            )
            for rb in o.rebound:
                # The contact is back under another id: its binding follows it.
                column = "id_a" if rb.side is Side.A else "id_b"
                s.execute(
                    update(Binding).where(Binding.id == rb.binding_id).values({column: rb.new_id})
                )
            by_side: dict[Side, list[str]] = {}
            for ref in o.dropped:
                by_side.setdefault(ref.side, []).append(ref.record_id)
            for side, rids in by_side.items():
                self._drop_index(s, side, rids)
            bulk.send(
                conn,
                bulk.DELETE_FAILURES,
                ((cid, ref.side.value, ref.record_id) for ref in o.cleared),
            )
            for part in chunked(list(o.clear_binding_failures)):
                s.execute(
                    delete(Failure).where(
                        Failure.connection_id == self.cid, Failure.binding_id.in_(part)
                    )
                )
            for f in o.failures:
                self._put_failure(s, f, run_no, now)
            bulk.send(
                conn,
                bulk.INSERT_JOURNAL,
                (
                    (
                        run_id,
                        cid,
                        j.side.value,
                        j.record_id,
                        j.action,
                        j.field,
                        _dump(j.before),
                        _dump(j.after),
                        at,
                    )
                    for j in o.journal
                ),
            )
            bulk.send(
                conn,
                bulk.INSERT_CONFLICT,
                (
                    (
                        run_id,
                        cid,
                        c.binding_id,
                        c.field,
                        _text(c.value_a),
                        _text(c.value_b),
                        c.winner,
                        at,
                    )
                    for c in o.conflicts
                ),
            )
            bulk.send(conn, bulk.DELETE_INTENT, ((op,) for op in o.done_intents))
            for key, value in o.cursors.items():
                self._put_cursor(s, key, value)

    def _put_failure(self, s: Session, f: FailureNote, run_no: int, now: datetime) -> None:
        row = s.scalar(
            select(Failure).where(
                Failure.connection_id == self.cid,
                Failure.side == f.side.value,
                Failure.record_id == f.record_id,
            )
        )
        if row is None:
            row = Failure(
                connection_id=self.cid,
                side=f.side.value,
                record_id=f.record_id,
                attempts=0,
                ignored=False,
                first_at=now,
            )
            s.add(row)
        if row.ignored and row.source_version != f.source_version:
            row.ignored = False  # the contact changed since the user chose Ignore
        row.attempts = (row.attempts or 0) + 1
        row.target_side = f.target_side.value
        row.binding_id = f.binding_id
        row.name = _storable(f.name[:500])
        row.code = f.code
        row.message = _storable(f.message)
        row.field = _storable(f.field or "")
        row.raw = _storable(f.raw[:4000])
        row.source_version = f.source_version
        row.last_at = now
        row.next_run_no, row.next_at = backoff(row.attempts, run_no, now)

    # --- failures ---------------------------------------------------------------------------

    def due_failures(self, run_no: int) -> list[DueFailure]:
        now = utcnow()
        with self.sessions() as s:
            conn = s.connection()
            rows = conn.exec_driver_sql(
                "SELECT side, record_id, binding_id, next_at, next_run_no FROM failures"
                " WHERE connection_id = ? AND ignored IS NOT 1",
                (self.cid,),
            ).fetchall()
            read_time = bulk.unstamp(conn)
        out = []
        for side, rid, binding_id, stored_at, next_run_no in rows:
            if stored_at is not None:
                next_at = read_time(stored_at)
                if next_at.tzinfo is None:
                    next_at = next_at.replace(tzinfo=now.tzinfo)
                if next_at <= now:
                    out.append(DueFailure(Side(side), rid, binding_id))
            elif next_run_no <= run_no:
                out.append(DueFailure(Side(side), rid, binding_id))
        return out

    # --- undo and "use the other value" (app.engine.undo) --------------------------------------

    def run_row(self, run_id: int) -> RunFacts | None:
        """A run of this connection (None when it is another connection's or unknown)."""
        with self.sessions() as s:
            run = s.get(Run, run_id)
        if run is None or run.connection_id != self.cid:
            return None
        return RunFacts(run.id, bool(run.dry_run), run.status)

    def journal_of(
        self, run_id: int, records: Iterable[tuple[Side, str]] | None = None
    ) -> list[JournalRow]:
        """What a run wrote, in the order it wrote it; only these records when given."""
        wanted = None if records is None else {(side.value, rid) for side, rid in records}
        with self.sessions() as s:
            rows = s.scalars(
                select(JournalEntry)
                .where(JournalEntry.run_id == run_id, JournalEntry.connection_id == self.cid)
                .order_by(JournalEntry.id)
            ).all()
        return [
            JournalRow(
                j.id,
                Side(j.side),
                j.record_id,
                j.action,
                j.field,
                None if j.before is None else json.loads(j.before),
                None if j.after is None else json.loads(j.after),
            )
            for j in rows
            if wanted is None or (j.side, j.record_id) in wanted
        ]

    def created_since(self, side: Side, run_id: int) -> list[str]:
        rows = self._rows(
            "SELECT DISTINCT record_id FROM journal WHERE run_id >= ? AND connection_id = ?"
            " AND side = ? AND action = 'create'",
            (run_id, self.cid, side.value),
        )
        return [rid for (rid,) in rows]

    def index_meta(self, side: Side, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Index status and reason of these records (kept when a record is re-indexed)."""
        out: dict[str, tuple[str, str]] = {}
        with self.sessions() as s:
            for part in chunked(list(ids)):
                rows = s.execute(
                    select(
                        IndexedRecord.record_id, IndexedRecord.status, IndexedRecord.reason
                    ).where(
                        IndexedRecord.connection_id == self.cid,
                        IndexedRecord.side == side.value,
                        IndexedRecord.record_id.in_(part),
                    )
                )
                for rid, status, reason in rows:
                    out[rid] = (status, reason)
        return out

    def conflict(self, conflict_id: int) -> ConflictFacts | None:
        with self.sessions() as s:
            row = s.get(ConflictEntry, conflict_id)
        if row is None or row.connection_id != self.cid:
            return None
        return ConflictFacts(
            row.id, row.run_id, row.binding_id, row.field, Side(row.winner), row.resolved_run_id
        )

    def resolve_conflict(self, conflict_id: int, run_id: int) -> None:
        with self.sessions() as s, s.begin():
            s.execute(
                update(ConflictEntry)
                .where(ConflictEntry.id == conflict_id, ConflictEntry.connection_id == self.cid)
                .values(resolved_run_id=run_id)
            )


def _implements(state: SyncState) -> SyncStateStore:
    """mypy checks here that ``SyncState`` is the engine's ``SyncStateStore``."""
    return state
