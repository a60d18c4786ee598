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

from sqlalchemy import Table, bindparam, delete, func, select, true, update
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
    Connection,
    Cursor,
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

    # --- connection and runs ------------------------------------------------------------

    def connection(self) -> ConnectionFacts:
        with self.sessions() as s:
            conn = s.get(Connection, self.cid)
            assert conn is not None
            return ConnectionFacts(
                synced_once=bool(conn.synced_once), needs_full_read=bool(conn.needs_full_read)
            )

    def begin_run(
        self, dry_run: bool, kind: str = "sync", undo_of: int | None = None
    ) -> tuple[int, int]:
        with self.sessions() as s, s.begin():
            conn = s.get(Connection, self.cid)
            assert conn is not None
            run_no = conn.run_count + 1
            run = Run(
                connection_id=self.cid, run_no=run_no, dry_run=dry_run, kind=kind, undo_of=undo_of
            )
            s.add(run)
            if not dry_run:
                conn.run_count = run_no
            s.flush()
            return run.id, run_no

    def finish_run(
        self, run_id: int, status: str, counts: dict[str, Any], message: str, wrote: bool
    ) -> None:
        with self.sessions() as s, s.begin():
            run = s.get(Run, run_id)
            assert run is not None
            run.status = status
            run.counts = json.dumps(counts)
            run.message = message
            run.finished_at = utcnow()
            conn = s.get(Connection, self.cid)
            assert conn is not None
            if run.kind != "sync":
                return  # an undo neither reads the apps fully nor counts for the schedule
            conn.last_run_at = run.finished_at
            if not run.dry_run and status in ("ok", "failed"):
                conn.synced_once = True
                conn.needs_full_read = False

    # --- the local index ----------------------------------------------------------------

    def index_versions(self, side: Side) -> dict[str, str]:
        with self.sessions() as s:
            # Fetched a part at a time: the whole side's rows are never held next to the dict.
            rows = s.execute(
                select(IndexedRecord.record_id, IndexedRecord.version)
                .where(IndexedRecord.connection_id == self.cid, IndexedRecord.side == side.value)
                .execution_options(yield_per=CHUNK)
            )
            return {rid: version for rid, version in rows}

    def index_versions_of(self, side: Side, ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self.sessions() as s:
            for part in chunked(list(dict.fromkeys(ids))):
                rows = s.execute(
                    select(IndexedRecord.record_id, IndexedRecord.version).where(
                        IndexedRecord.connection_id == self.cid,
                        IndexedRecord.side == side.value,
                        IndexedRecord.record_id.in_(part),
                    )
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
        with self.sessions() as s:
            row = s.get(Cursor, (self.cid, key))
            return None if row is None else row.cursor

    def set_cursor(self, key: str, value: str | None) -> None:
        with self.sessions() as s, s.begin():
            self._put_cursor(s, key, value)

    def _put_cursor(self, s: Session, key: str, value: str | None) -> None:
        if value is None:
            s.execute(delete(Cursor).where(Cursor.connection_id == self.cid, Cursor.side == key))
        else:
            s.merge(Cursor(connection_id=self.cid, side=key, cursor=value, updated_at=utcnow()))

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
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(IndexedRecord.record_id).where(
                        IndexedRecord.connection_id == self.cid,
                        IndexedRecord.side == side.value,
                        IndexedRecord.status == status,
                    )
                )
            )

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
        with self.sessions() as s:
            return [
                self._row(b)
                for b in s.scalars(
                    select(Binding).where(
                        Binding.connection_id == self.cid, Binding.needs_merge == true()
                    )
                )
            ]

    def bound_unindexed(self, side: Side) -> list[str]:
        bound = Binding.id_a if side is Side.A else Binding.id_b
        with self.sessions() as s:
            indexed = (
                select(IndexedRecord.record_id)
                .where(
                    IndexedRecord.connection_id == self.cid,
                    IndexedRecord.side == side.value,
                    IndexedRecord.record_id == bound,
                )
                .exists()
            )
            return list(
                s.scalars(
                    select(bound).where(
                        Binding.connection_id == self.cid,
                        Binding.needs_merge == true(),
                        Binding.state == "active",
                        ~indexed,
                    )
                )
            )

    def count_index(self, side: Side) -> int:
        with self.sessions() as s:
            return int(
                s.scalar(
                    select(func.count()).where(
                        IndexedRecord.connection_id == self.cid, IndexedRecord.side == side.value
                    )
                )
                or 0
            )

    # --- intents (crash safety for creates) ----------------------------------------------

    def open_intents(self) -> list[IntentNote]:
        with self.sessions() as s:
            rows = s.scalars(select(PendingOp).where(PendingOp.connection_id == self.cid))
            return [
                IntentNote(
                    op_id=p.op_id,
                    run_id=p.run_id,
                    target_side=Side(p.target_side),
                    source_id=p.source_id,
                    new_id=p.new_id,
                    emails=list(json.loads(p.emails or "[]")),
                    rule_state=dict(json.loads(p.rule_state or "{}")),
                )
                for p in rows
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
            rows = s.scalars(
                select(Failure).where(
                    Failure.connection_id == self.cid, Failure.ignored.is_not(True)
                )
            ).all()
        out = []
        for f in rows:
            if f.next_at is not None:
                next_at = f.next_at if f.next_at.tzinfo else f.next_at.replace(tzinfo=now.tzinfo)
                if next_at <= now:
                    out.append(f)
            elif f.next_run_no <= run_no:
                out.append(f)
        return [DueFailure(Side(f.side), f.record_id, f.binding_id) for f in out]

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
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(JournalEntry.record_id)
                    .where(
                        JournalEntry.run_id >= run_id,
                        JournalEntry.connection_id == self.cid,
                        JournalEntry.side == side.value,
                        JournalEntry.action == "create",
                    )
                    .distinct()
                )
            )

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
