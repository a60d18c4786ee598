"""The engine's memory in SQLite: the local index, bindings, failures, intents, journal.

``SyncState`` implements ``app.engine.state.SyncStateStore``, the protocol the engine sees
(plain notes in, plain values out; never an ORM row), in plain SQL on the DB-API connection
(``app.store.sqlite``): a sync never loads SQLAlchemy (issue 18: it was more than half of a
cron run's start-up). Each method that changes data commits its own short transaction;
``commit`` makes a whole batch outcome durable at once. The tables are defined by the ORM
models (``app.store.models``, Alembic's schema); ``tests/store/test_bulk.py`` checks that what
is stored here reads back through them as the ORM itself would have stored it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

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
    PairRef,
    RunFacts,
    SyncStateStore,
)
from app.model import Record, Side, record_from_json
from app.store import bulk
from app.store.sqlite import (
    CHUNK,
    Database,
    chunked,
    placeholders,
    send,
    stamp,
    unstamp,
    utcnow,
)

_BINDING = "id, id_a, id_b, state, base, needs_merge, rule_state"
"""A binding's columns in the order ``_binding`` reads them."""


def _binding(row: Sequence[Any]) -> BindingRow:
    bid, id_a, id_b, state, base, merge, rule_state = row
    return BindingRow(
        bid, id_a, id_b, state, json.loads(base), bool(merge), json.loads(rule_state or "{}")
    )


_PAIR = "id, id_a, id_b, state, needs_merge"
"""A binding's columns without its base and rule state, in the order ``_pair`` reads them."""


def _pair(row: Sequence[Any]) -> PairRef:
    bid, id_a, id_b, state, merge = row
    return PairRef(bid, id_a, id_b, state, bool(merge))


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

    The engine's only door to the database (it never writes SQL and never sees a row of it);
    the facade makes one per run (``ServiceCore._state``), tests over a ``Store``'s ``db``.
    Each change is its own short transaction; ``commit`` makes a batch's whole outcome
    (bindings, bases, journal, cursors) durable together. Bulk statements (``app.store.bulk``),
    a chunk at a time, for a first sync's hot paths."""

    def __init__(self, db: Database, connection_id: int) -> None:
        self.db = db
        self.cid = connection_id

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self.db.rows(sql, params)

    def _in(self, sql: str, head: tuple[Any, ...], ids: Iterable[Any]) -> Iterator[Any]:
        """Rows of ``sql`` (ending in ``IN ({})``) for ``ids``, a chunk of ids at a time."""
        for part in chunked(dict.fromkeys(ids)):
            yield from self.db.rows(sql.format(placeholders(len(part))), (*head, *part))

    # --- connection and runs ------------------------------------------------------------

    def connection(self) -> ConnectionFacts:
        [(synced_once, needs_full_read)] = self._rows(
            "SELECT synced_once, needs_full_read FROM connections WHERE id = ?", (self.cid,)
        )
        return ConnectionFacts(synced_once=bool(synced_once), needs_full_read=bool(needs_full_read))

    def begin_run(
        self, dry_run: bool, kind: str = "sync", undo_of: int | None = None
    ) -> tuple[int, int]:
        with self.db.transaction() as conn:
            [(count,)] = conn.execute(
                "SELECT run_count FROM connections WHERE id = ?", (self.cid,)
            ).fetchall()
            run_no = (count or 0) + 1
            added = conn.execute(
                bulk.INSERT_RUN,
                (self.cid, run_no, dry_run, "running", "{}", "", stamp(utcnow()), kind, undo_of),
            )
            if not dry_run:
                conn.execute(
                    "UPDATE connections SET run_count = ? WHERE id = ?", (run_no, self.cid)
                )
            run_id = added.lastrowid
            assert run_id is not None
            return int(run_id), run_no

    def finish_run(
        self, run_id: int, status: str, counts: dict[str, Any], message: str, wrote: bool
    ) -> None:
        with self.db.transaction() as conn:
            at = stamp(utcnow())
            [(kind, dry_run)] = conn.execute(
                "SELECT kind, dry_run FROM runs WHERE id = ?", (run_id,)
            ).fetchall()
            conn.execute(
                "UPDATE runs SET status = ?, counts = ?, message = ?, finished_at = ? WHERE id = ?",
                (status, json.dumps(counts), message, at, run_id),
            )
            if kind != "sync":
                return  # an undo neither reads the apps fully nor counts for the schedule
            if not dry_run and status in ("ok", "failed"):
                conn.execute(
                    "UPDATE connections SET last_run_at = ?, synced_once = 1, needs_full_read = 0"
                    " WHERE id = ?",
                    (at, self.cid),
                )
            else:
                conn.execute("UPDATE connections SET last_run_at = ? WHERE id = ?", (at, self.cid))

    # --- the local index ----------------------------------------------------------------

    def index_versions(self, side: Side) -> dict[str, str]:
        # A cursor, read as the dict is built: the side's rows are never held as a list.
        with self.db.reading(
            "SELECT record_id, version FROM records WHERE connection_id = ? AND side = ?",
            (self.cid, side.value),
        ) as rows:
            return {rid: version for rid, version in rows}

    def index_versions_of(self, side: Side, ids: Iterable[str]) -> dict[str, str]:
        return {
            rid: version
            for rid, version in self._in(
                "SELECT record_id, version FROM records WHERE connection_id = ? AND side = ?"
                " AND record_id IN ({})",
                (self.cid, side.value),
                ids,
            )
        }

    def load_records(self, side: Side, ids: Iterable[str]) -> dict[str, tuple[Record, str]]:
        """Snapshots from the index: id -> (record, status)."""
        return {
            rid: (record_from_json(rid, version, snap), status)
            for rid, version, snap, status in self._in(
                "SELECT record_id, version, snapshot, status FROM records"
                " WHERE connection_id = ? AND side = ? AND record_id IN ({})",
                (self.cid, side.value),
                ids,
            )
        }

    def key_holders(self, side: Side, keys: Iterable[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for key, rid in self._in(
            "SELECT key, record_id FROM record_keys WHERE connection_id = ? AND side = ?"
            " AND key IN ({})",
            (self.cid, side.value),
            set(keys),
        ):
            out.setdefault(key, set()).add(rid)
        return out

    # --- cursors: where each feed stopped, and which mapping set the bases belong to -----------

    def cursor(self, key: str) -> str | None:
        rows = self._rows(
            "SELECT cursor FROM cursors WHERE connection_id = ? AND side = ?", (self.cid, key)
        )
        return str(rows[0][0]) if rows else None

    def set_cursor(self, key: str, value: str | None) -> None:
        with self.db.transaction() as conn:
            self._put_cursor(conn, key, value)

    def _put_cursor(self, conn: sqlite3.Connection, key: str, value: str | None) -> None:
        """Store a cursor; one that did not move is not written (``updated_at``: when it
        last moved), so a run where nothing changed adds nothing to the database's log."""
        if value is None:
            conn.execute(
                "DELETE FROM cursors WHERE connection_id = ? AND side = ?", (self.cid, key)
            )
        else:
            conn.execute(bulk.PUT_CURSOR, (self.cid, key, value, stamp(utcnow())))

    def active_pair_ids(self) -> Iterator[list[int]]:
        """Every active binding's id, a chunk at a time (re-planning after a configuration
        change)."""
        last = 0
        while True:
            rows = self._rows(
                "SELECT id FROM bindings WHERE connection_id = ? AND state = 'active'"
                " AND id > ? ORDER BY id LIMIT ?",
                (self.cid, last, CHUNK * 4),
            )
            if not rows:
                return
            last = rows[-1][0]
            yield [bid for (bid,) in rows]

    def ids_with_status(self, side: Side, status: str) -> list[str]:
        rows = self._rows(
            "SELECT record_id FROM records WHERE connection_id = ? AND side = ? AND status = ?",
            (self.cid, side.value, status),
        )
        return [rid for (rid,) in rows]

    def keys_of(self, side: Side, ids: Iterable[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for rid, key in self._in(
            "SELECT record_id, key FROM record_keys WHERE connection_id = ? AND side = ?"
            " AND record_id IN ({}) ORDER BY position",
            (self.cid, side.value),
            ids,
        ):
            out.setdefault(rid, []).append(key)
        return out

    def _put_index(self, conn: sqlite3.Connection, entries: Sequence[IndexEntry]) -> None:
        """Upsert index rows and their keys in bulk (the hot path of a first sync)."""
        if not entries:
            return
        cid = self.cid
        # Indexed as processed: an earlier failure of this contact is over. (A failure of
        # this same batch is written after the index, so it stays.)
        send(
            conn,
            bulk.DELETE_RECORD_FAILURE,
            ((cid, e.side.value, e.record.id) for e in entries if e.status != "failed"),
        )
        send(conn, bulk.DELETE_KEYS, ((cid, e.side.value, e.record.id) for e in entries))
        # One row per record, in the order records first appear, from its last entry.
        last = {(e.side.value, e.record.id): n for n, e in enumerate(entries)}
        send(
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
        send(
            conn,
            bulk.INSERT_KEY,
            ((cid, side, rid, key, pos) for (side, rid, key), pos in keys.items()),
        )

    def _drop_index(self, conn: sqlite3.Connection, side: Side, ids: Iterable[str]) -> None:
        for part in chunked(ids):
            where = (
                f"WHERE connection_id = ? AND side = ? AND record_id IN ({placeholders(len(part))})"
            )
            conn.execute(f"DELETE FROM records {where}", (self.cid, side.value, *part))
            conn.execute(f"DELETE FROM record_keys {where}", (self.cid, side.value, *part))

    # --- bindings -----------------------------------------------------------------------

    def bindings_for(self, side: Side, ids: Iterable[str]) -> dict[str, BindingRow]:
        column = "id_a" if side is Side.A else "id_b"
        out: dict[str, BindingRow] = {}
        for row in self._in(
            f"SELECT {_BINDING} FROM bindings WHERE connection_id = ? AND {column} IN ({{}})",
            (self.cid,),
            ids,
        ):
            b = _binding(row)
            out[b.id_on(side)] = b
        return out

    def pairs_for(self, side: Side, ids: Iterable[str]) -> dict[str, PairRef]:
        column = "id_a" if side is Side.A else "id_b"
        out: dict[str, PairRef] = {}
        for row in self._in(
            f"SELECT {_PAIR} FROM bindings WHERE connection_id = ? AND {column} IN ({{}})",
            (self.cid,),
            ids,
        ):
            p = _pair(row)
            out[p.id_on(side)] = p
        return out

    def bindings_by_id(self, ids: Iterable[int]) -> list[BindingRow]:
        return [
            _binding(row)
            for row in self._in(
                f"SELECT {_BINDING} FROM bindings WHERE connection_id = ? AND id IN ({{}})",
                (self.cid,),
                ids,
            )
        ]

    def pairs_needing_merge(self) -> list[PairRef]:
        rows = self._rows(
            f"SELECT {_PAIR} FROM bindings WHERE connection_id = ? AND needs_merge = 1",
            (self.cid,),
        )
        return [_pair(row) for row in rows]

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
        """Commit intents in bulk, one transaction, before the creates are sent."""
        if not intents:
            return
        with self.db.transaction() as conn:
            at = stamp(utcnow())
            send(
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
        with self.db.transaction() as conn:
            if new_id is not None:
                id_a, id_b = (source_id, new_id) if source is Side.A else (new_id, source_id)
                exists = conn.execute(
                    "SELECT id FROM bindings WHERE connection_id = ? AND (id_a = ? OR id_b = ?)",
                    (self.cid, id_a, id_b),
                ).fetchone()
                if exists is None:
                    conn.execute(
                        bulk.INSERT_BINDING,
                        (
                            self.cid,
                            id_a,
                            id_b,
                            "{}",
                            _text(rule_state or {}),
                            state,
                            state == "active",
                            stamp(utcnow()),
                        ),
                    )
            conn.execute(bulk.DELETE_INTENT, (op_id,))

    # --- committing what a run did -----------------------------------------------------------

    def commit(self, outcome: BatchOutcome) -> None:
        """One transaction: everything that must be durable together after a batch."""
        o = outcome
        run_id, run_no, matched = o.run_id, o.run_no, o.matched
        now = utcnow()
        at = stamp(now)
        cid = self.cid
        with self.db.transaction() as conn:
            self._put_index(conn, o.index)
            send(
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
            send(conn, bulk.SET_BASE, ((json.dumps(base), bid) for bid, base in o.bases))
            send(conn, bulk.SET_RULE_STATE, ((_text(st), bid) for bid, st in o.rule_states))
            send(conn, bulk.SET_NEEDS_MERGE, ((bid,) for bid in o.replan))
            send(conn, bulk.SET_STATE, ((t.state, t.binding_id) for t in o.tombstones))
            send(
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
                conn.execute(
                    f"UPDATE bindings SET {column} = ? WHERE id = ?", (rb.new_id, rb.binding_id)
                )
            by_side: dict[Side, list[str]] = {}
            for ref in o.dropped:
                by_side.setdefault(ref.side, []).append(ref.record_id)
            for side, rids in by_side.items():
                self._drop_index(conn, side, rids)
            send(
                conn,
                bulk.DELETE_FAILURES,
                ((cid, ref.side.value, ref.record_id) for ref in o.cleared),
            )
            for part in chunked(o.clear_binding_failures):
                conn.execute(
                    "DELETE FROM failures WHERE connection_id = ?"
                    f" AND binding_id IN ({placeholders(len(part))})",
                    (cid, *part),
                )
            for f in o.failures:
                self._put_failure(conn, f, run_no, now)
            send(
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
            send(
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
            send(conn, bulk.DELETE_INTENT, ((op,) for op in o.done_intents))
            for key, value in o.cursors.items():
                self._put_cursor(conn, key, value)

    def _put_failure(
        self, conn: sqlite3.Connection, f: FailureNote, run_no: int, now: datetime
    ) -> None:
        """A failure's row: a new one, or the contact's earlier one with one attempt more
        (an Ignore holds only while the contact is the version the user ignored)."""
        row = conn.execute(bulk.FIND_FAILURE, (self.cid, f.side.value, f.record_id)).fetchone()
        attempts = 1 if row is None else (row[1] or 0) + 1
        ignored = row is not None and bool(row[2]) and row[3] == f.source_version
        next_run_no, next_at = backoff(attempts, run_no, now)
        values = (
            f.target_side.value,
            f.binding_id,
            _storable(f.name[:500]),
            f.code,
            _storable(f.message),
            _storable(f.field or ""),
            _storable(f.raw[:4000]),
            attempts,
            next_run_no,
            None if next_at is None else stamp(next_at),
            f.source_version,
            ignored,
        )
        at = stamp(now)
        if row is None:
            conn.execute(
                bulk.INSERT_FAILURE,
                (self.cid, f.side.value, f.record_id, *values, at, at),
            )
        else:
            conn.execute(bulk.UPDATE_FAILURE, (*values, at, row[0]))

    # --- failures ---------------------------------------------------------------------------

    def due_failures(self, run_no: int) -> list[DueFailure]:
        now = utcnow()
        rows = self._rows(
            "SELECT side, record_id, binding_id, next_at, next_run_no FROM failures"
            " WHERE connection_id = ? AND ignored IS NOT 1",
            (self.cid,),
        )
        out = []
        for side, rid, binding_id, stored_at, next_run_no in rows:
            if stored_at is not None:
                if unstamp(stored_at) <= now:
                    out.append(DueFailure(Side(side), rid, binding_id))
            elif next_run_no <= run_no:
                out.append(DueFailure(Side(side), rid, binding_id))
        return out

    # --- undo and "use the other value" (app.engine.undo) --------------------------------------

    def run_row(self, run_id: int) -> RunFacts | None:
        """A run of this connection (None when it is another connection's or unknown)."""
        rows = self._rows(
            "SELECT id, dry_run, status FROM runs WHERE id = ? AND connection_id = ?",
            (run_id, self.cid),
        )
        if not rows:
            return None
        [(rid, dry_run, status)] = rows
        return RunFacts(rid, bool(dry_run), status)

    def journal_of(
        self, run_id: int, records: Iterable[tuple[Side, str]] | None = None
    ) -> list[JournalRow]:
        """What a run wrote, in the order it wrote it; only these records when given."""
        wanted = None if records is None else {(side.value, rid) for side, rid in records}
        rows = self._rows(
            "SELECT id, side, record_id, action, field, before, after FROM journal"
            " WHERE run_id = ? AND connection_id = ? ORDER BY id",
            (run_id, self.cid),
        )
        return [
            JournalRow(
                jid,
                Side(side),
                rid,
                action,
                field,
                None if before is None else json.loads(before),
                None if after is None else json.loads(after),
            )
            for jid, side, rid, action, field, before, after in rows
            if wanted is None or (side, rid) in wanted
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
        return {
            rid: (status, reason)
            for rid, status, reason in self._in(
                "SELECT record_id, status, reason FROM records WHERE connection_id = ?"
                " AND side = ? AND record_id IN ({})",
                (self.cid, side.value),
                ids,
            )
        }

    def conflict(self, conflict_id: int) -> ConflictFacts | None:
        rows = self._rows(
            "SELECT id, run_id, binding_id, field, winner, resolved_run_id FROM conflicts"
            " WHERE id = ? AND connection_id = ?",
            (conflict_id, self.cid),
        )
        if not rows:
            return None
        [(cid, run_id, binding_id, field, winner, resolved)] = rows
        return ConflictFacts(cid, run_id, binding_id, field, Side(winner), resolved)

    def resolve_conflict(self, conflict_id: int, run_id: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE conflicts SET resolved_run_id = ? WHERE id = ? AND connection_id = ?",
                (run_id, conflict_id, self.cid),
            )


def _implements(state: SyncState) -> SyncStateStore:
    """mypy checks here that ``SyncState`` is the engine's ``SyncStateStore``."""
    return state
