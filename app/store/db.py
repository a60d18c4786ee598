"""Opening the database: SQLite in WAL mode, migrated to the newest schema on open.

Two doors to the same file. ``Store.db`` is the plain DB-API connection (``app.store.sqlite``)
that every sync runs on: it loads nothing but ``sqlite3``. ``Store.sessions`` / ``engine`` are
SQLAlchemy's (``app.store.orm``), made on first use by the paths that still work through the
ORM (the editors of accounts and connections, Health, migrations). Importing SQLAlchemy was
more than half of a cron-run sync's start-up (issue 18), so a sync never asks for them.

Opening a database that is already current reads its revision with one plain query and
compares it with ``SCHEMA_HEAD``: SQLAlchemy and Alembic (a quarter of a second of imports and
script loading) are only loaded when there is something to upgrade. Before any migration runs
on an existing file, a copy is kept beside it (``pairsync.db.bak-<revision>``) so a failed or
unwanted upgrade never loses the user's setup.
"""

from __future__ import annotations

import logging
import sqlite3
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from app.errors import StorageError
from app.store.integrity import Backup, DatabaseDamaged, backup_if_due, check_database
from app.store.quick import SCHEMA_HEAD, revision_of
from app.store.sqlite import Database

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


class Store:
    """The open database: the plain connection (``db``) plus, on first use, SQLAlchemy's
    engine and session factory. One per process or thread (``Service``).

    A damaged or lost database is refused before SQLite could start an empty one over it
    (``app.store.integrity``: ``DatabaseDamaged``, one sentence saying how to restore).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        check_database(path)
        self.db = Database(path)
        try:
            current = self._revision()
        except sqlite3.DatabaseError as err:
            self._refuse(err)
        if current != SCHEMA_HEAD:
            self._migrate()

    def _revision(self) -> str | None:
        with self.db.faults():
            return revision_of(self.db.connection())

    def _migrate(self) -> None:
        from sqlalchemy.exc import DBAPIError

        from app.store.orm import migrate

        try:
            migrate(self.path, self.engine)
        except DBAPIError as err:
            if isinstance(err.orig, sqlite3.DatabaseError):
                self._refuse(err.orig)
            self.close()
            raise

    def _refuse(self, err: sqlite3.DatabaseError) -> NoReturn:
        self.close()
        check_database(self.path)  # says which file and how to restore it
        raise DatabaseDamaged(
            f"Pairsync's database {self.path} cannot be opened ({err})."
        ) from None

    @cached_property
    def engine(self) -> Engine:
        """SQLAlchemy's engine (made on first use: never by a sync)."""
        from app.store.orm import make_engine

        return make_engine(self.path)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """The ORM's session factory (made on first use: never by a sync)."""
        from sqlalchemy.orm import sessionmaker

        return sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    def backup_if_due(self) -> Backup | None:
        """Keep the rolling backup current (``integrity.backup_if_due``); never raises."""
        try:
            return backup_if_due(self.path, self.db.connection())
        except (OSError, sqlite3.Error, StorageError) as err:
            log.warning("could not back up the database: %s", err)
            return None

    def close(self) -> None:
        self.db.close()
        engine = self.__dict__.get("engine")
        if engine is not None:
            engine.dispose()
