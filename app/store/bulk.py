"""The engine's fixed statements in plain SQL: what ``SyncState`` sends, many rows at a time.

A first sync of 10,000 contacts writes about 100,000 rows (index entries, their keys,
bindings, journal lines, intents). Through SQLAlchemy's Core ``executemany`` each row went
through the compiled statement's parameter processing (a dict per row, type processors, key
lookups): about a second and a half of CPU at 10k, more than SQLite took to store them. Here
each row is a tuple in the column order of a fixed statement, sent with ``executemany`` on
the DB-API connection (``app.store.sqlite.send``) inside ``SyncState``'s transaction.

The statements name their columns, so they stay correct when a migration adds a column with
a default; ``tests/store/test_bulk.py`` checks they match the ORM's tables (the schema's
definition) and that what they store reads back through the ORM.
"""

from __future__ import annotations


def _insert(table: str, columns: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"


UPSERT_RECORD = (
    _insert("records", "connection_id, side, record_id, version, snapshot, name, status, reason")
    + " ON CONFLICT (connection_id, side, record_id) DO UPDATE SET version = excluded.version,"
    " snapshot = excluded.snapshot, name = excluded.name, status = excluded.status,"
    " reason = excluded.reason"
)
INSERT_KEY = (
    _insert("record_keys", "connection_id, side, record_id, key, position")
    + " ON CONFLICT DO NOTHING"
)
DELETE_KEYS = "DELETE FROM record_keys WHERE connection_id = ? AND side = ? AND record_id = ?"
DELETE_RECORD_FAILURE = (
    "DELETE FROM failures WHERE connection_id = ? AND side = ? AND record_id = ?"
    " AND binding_id IS NULL"
)
DELETE_FAILURES = "DELETE FROM failures WHERE connection_id = ? AND side = ? AND record_id = ?"
SET_STATUS = (
    "UPDATE records SET status = ?, reason = ? WHERE connection_id = ? AND side = ?"
    " AND record_id = ?"
)
INSERT_BINDING = _insert(
    "bindings", "connection_id, id_a, id_b, base, rule_state, state, needs_merge, created_at"
)
SET_BASE = "UPDATE bindings SET base = ?, needs_merge = 0 WHERE id = ?"
INSERT_RUN = _insert(
    "runs", "connection_id, run_no, dry_run, status, counts, message, started_at, kind, undo_of"
)
PUT_CURSOR = (
    _insert("cursors", "connection_id, side, cursor, updated_at")
    + " ON CONFLICT (connection_id, side) DO UPDATE SET cursor = excluded.cursor,"
    " updated_at = excluded.updated_at WHERE cursor IS NOT excluded.cursor"
)
SET_RULE_STATE = "UPDATE bindings SET rule_state = ? WHERE id = ?"
SET_NEEDS_MERGE = "UPDATE bindings SET needs_merge = 1 WHERE id = ?"
INSERT_JOURNAL = _insert(
    "journal", "run_id, connection_id, side, record_id, action, field, before, after, at"
)
INSERT_CONFLICT = _insert(
    "conflicts", "run_id, connection_id, binding_id, field, value_a, value_b, winner, at"
)
INSERT_INTENT = _insert(
    "pending_ops",
    "op_id, connection_id, run_id, target_side, source_id, new_id, emails, rule_state, created_at",
)
DELETE_INTENT = "DELETE FROM pending_ops WHERE op_id = ?"
FIND_FAILURE = (
    "SELECT id, attempts, ignored, source_version FROM failures"
    " WHERE connection_id = ? AND side = ? AND record_id = ?"
)
INSERT_FAILURE = _insert(
    "failures",
    "connection_id, side, record_id, target_side, binding_id, name, code, message, field, raw,"
    " attempts, next_run_no, next_at, source_version, ignored, first_at, last_at",
)
UPDATE_FAILURE = (
    "UPDATE failures SET target_side = ?, binding_id = ?, name = ?, code = ?, message = ?,"
    " field = ?, raw = ?, attempts = ?, next_run_no = ?, next_at = ?, source_version = ?,"
    " ignored = ?, last_at = ? WHERE id = ?"
)
SET_STATE = "UPDATE bindings SET state = ? WHERE id = ?"
