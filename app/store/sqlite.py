"""The database on a plain DB-API ``sqlite3`` connection: what a sync runs on.

Importing SQLAlchemy and building the ORM's tables was more than half of a cron-run sync's
start-up CPU (issue 18), and a sync's SQL was already plain statements. So the sync path (the
engine's state, ``app.store.state``; the connection and its accounts, ``app.store.connections``)
runs here, on the DB-API connection, and never loads SQLAlchemy. The ORM (``app.store.models``)
stays as the schema's definition for Alembic, and serves the editors and Health, which import
it when first used (``app.store.db.Store.sessions``). Both open the file the same way
(:func:`configure`, :func:`private`) and say a full disk or a read-only database in the same
sentence (:func:`storage_fault`).

Transactions are explicit: the connection is in autocommit mode, a read is its own snapshot,
and :meth:`Database.transaction` is ``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on any
exception, including a crash simulated with ``BaseException``). Taking the write lock at
``BEGIN`` means a transaction that reads before it writes never finds its snapshot stale.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import StorageError

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)
"""Every connection, plain or SQLAlchemy's: WAL (readers never wait for the writer), a commit
durable once the WAL is synced at checkpoints (NORMAL: what WAL makes safe against a crash of
the process), foreign keys (a deleted connection takes its sync state along), and up to ten
seconds' patience with another process's write."""

TIMEOUT = 10
CHUNK = 500
"""Parameters per statement or executemany call: a big list is never held at once."""


def configure(conn: sqlite3.Connection) -> None:
    for pragma in PRAGMAS:
        conn.execute(pragma)


def private(path: Path) -> None:
    """The database and its WAL files readable by their owner only (0600); SQLite gives the
    WAL files the database's mode, and the folder is 0700 besides."""
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)


_STORAGE_FAULTS = {
    "database or disk is full": "the disk is full; free some space and run Pairsync again",
    "attempt to write a readonly database": (
        "the file or its folder is read-only; make it writable or choose another folder with --home"
    ),
}


def storage_fault(path: Path, err: BaseException) -> StorageError | None:
    """A full disk or a read-only database, said in one sentence (never a traceback)."""
    if isinstance(err, sqlite3.OperationalError):
        for words, advice in _STORAGE_FAULTS.items():
            if words in str(err):
                return StorageError(f"Pairsync cannot write its database {path}: {advice}.")
    return None


def utcnow() -> datetime:
    return datetime.now(UTC)


def stamp(when: datetime) -> str:
    """``when`` as the ORM stores a ``DateTime`` column in SQLite (its fields as text, the
    zone left out: every time Pairsync stores is UTC), so ORM reads parse it back."""
    return (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}.{when.microsecond:06d}"
    )


def unstamp(value: str) -> datetime:
    """A stored ``DateTime`` column read back (the reverse of :func:`stamp`), in UTC."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


def chunked(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """``items`` a list of ``size`` at a time (same order)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Database:
    """Pairsync's SQLite file on plain connections: one per thread that uses it (a
    connection belongs to one thread at a time, as SQLAlchemy's pool gave each thread its
    own), opened on first use with :data:`PRAGMAS`.

    Every call translates a full disk or a read-only file into ``StorageError``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened, configured and made private on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self.faults():
                conn = sqlite3.connect(
                    self.path, timeout=TIMEOUT, isolation_level=None, check_same_thread=False
                )
                try:
                    configure(conn)
                except BaseException:
                    conn.close()
                    raise
            private(self.path)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    @contextlib.contextmanager
    def faults(self) -> Iterator[None]:
        """Storage faults as one sentence (``StorageError``); other errors as they are."""
        try:
            yield
        except sqlite3.Error as err:
            fault = storage_fault(self.path, err)
            if fault is not None:
                raise fault from None
            raise

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """A read, all its rows (its own snapshot, outside any transaction of this thread)."""
        with self.faults():
            return self.connection().execute(sql, tuple(params)).fetchall()

    @contextlib.contextmanager
    def reading(self, sql: str, params: Iterable[Any] = ()) -> Iterator[sqlite3.Cursor]:
        """A read whose rows are taken one at a time (a big side's index is never held as a
        list of rows besides what the caller builds from it)."""
        with self.faults():
            cursor = self.connection().execute(sql, tuple(params))
            try:
                yield cursor
            finally:
                cursor.close()  # a read stopped half-way holds no snapshot open

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything in the block is durable together, or none of it
        (any exception, ``BaseException`` too, rolls back)."""
        conn = self.connection()
        with self.faults():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # a full disk may have rolled back already
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every thread's connection (a Service is closed once, when done with)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()


def send(conn: sqlite3.Connection, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """Execute ``sql`` once per row (tuples in the statement's column order), a chunk at a
    time: same statement, same transaction, same order."""
    for part in chunked(rows):
        conn.executemany(sql, part)
