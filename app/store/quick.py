"""Reads that need no SQLAlchemy: what ``pairsync account list`` shows, straight from SQLite.

Importing SQLAlchemy and building the ORM's tables costs a CLI run about a third of a second
before it does anything; a command that only lists what is stored should start as fast as
the interpreter. These reads take the database exactly as ``app.store.db.Store`` would open
it, and answer None whenever that open would have more to do (no database yet, a schema that
is not the newest, a file that is not fit to open): the caller then opens the full store,
which migrates or says what is wrong. Read-only: never creates, migrates or writes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.store.integrity import check_database
from app.store.rows import SELECT_ACCOUNT, AccountRow

SCHEMA_HEAD = "0004"
"""The newest migration's revision. A new migration changes it (a test checks they agree)."""


def revision_of(conn: sqlite3.Connection) -> str | None:
    """The schema revision of an open database (None: never migrated)."""
    try:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.OperationalError:  # no such table: never migrated
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def _open_current(database: Path) -> sqlite3.Connection | None:
    """The database, open read-only, when it exists, is fit to open and is current."""
    if not database.is_file():
        return None
    check_database(database)  # a damaged file says so, exactly as the full store would
    try:
        conn = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        current = revision_of(conn)
    except sqlite3.Error:
        conn.close()
        return None
    if current != SCHEMA_HEAD:
        conn.close()
        return None
    return conn


def read_accounts(database: Path) -> list[AccountRow] | None:
    """Every stored account, by name; None when the full store must open the database."""
    conn = _open_current(database)
    if conn is None:
        return None
    try:
        rows = conn.execute(f"{SELECT_ACCOUNT} ORDER BY name").fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return [AccountRow.read(row) for row in rows]
