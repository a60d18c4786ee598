"""Opening the database: SQLite in WAL mode, migrated to the newest schema on open.

Before any migration runs on an existing file, a copy is kept beside it
(``pairsync.db.bak-<revision>``) so a failed or unwanted upgrade never loses the user's setup.

Opening a database that is already current reads its revision with one plain query and
compares it with ``SCHEMA_HEAD``: Alembic (a quarter of a second of imports and script
loading) is only loaded when there is something to upgrade. Every CLI run, cron run and
worker opens the database, so this is most of a no-change run's start-up.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.store.integrity import Backup, DatabaseDamaged, backup_if_due, check_database
from app.store.quick import SCHEMA_HEAD

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision (a new migration changes it in app.store.quick; a test
# checks they agree).


def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 10}
    )
    event.listen(engine, "connect", _on_connect)
    return engine


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (None: a new database), without loading Alembic."""
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        try:
            rows = raw.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.OperationalError:  # no such table: never migrated
            return None
    return str(rows[0][0]) if len(rows) == 1 else None


def head_revision(engine: Engine) -> str | None:
    """The newest revision according to Alembic's scripts (tests: equals ``SCHEMA_HEAD``)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def migrate(path: Path, engine: Engine) -> str | None:
    """Upgrade the file to the newest schema; returns the backup path's revision, if any."""
    current = current_revision(engine)
    if current == SCHEMA_HEAD:
        return None
    head = head_revision(engine)
    if current == head:
        return None
    if current is not None and path.exists():
        backup = path.with_name(f"{path.name}.bak-{current}")
        with engine.connect() as conn:
            # A consistent copy even in WAL mode: SQLite's own backup API.
            raw = conn.connection.dbapi_connection
            assert raw is not None
            dest = sqlite3.connect(backup)
            try:
                raw.backup(dest)  # type: ignore[attr-defined]
            finally:
                dest.close()
    elif inspect(engine).get_table_names():
        # Tables but no revision: not ours, or from before migrations. Keep a copy.
        engine.dispose()
        shutil.copy2(path, path.with_name(path.name + ".bak-unversioned"))
    from alembic import command

    command.upgrade(alembic_config(engine), "head")
    return current


class Store:
    """The open database: an engine plus a session factory. One per process.

    A damaged or lost database is refused before SQLite could start an empty one over it
    (``app.store.integrity``: ``DatabaseDamaged``, one sentence saying how to restore).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        check_database(path)
        self.engine = make_engine(path)
        try:
            migrate(path, self.engine)
        except DBAPIError as err:
            self.engine.dispose()
            if isinstance(err.orig, sqlite3.DatabaseError):
                check_database(path)  # says which file and how to restore it
                raise DatabaseDamaged(
                    f"Pairsync's database {path} cannot be opened ({err.orig})."
                ) from None
            raise
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def backup_if_due(self) -> Backup | None:
        """Keep the rolling backup current (``integrity.backup_if_due``); never raises."""
        try:
            with self.engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                assert isinstance(raw, sqlite3.Connection)
                return backup_if_due(self.path, raw)
        except (OSError, sqlite3.Error, DBAPIError) as err:
            log.warning("could not back up the database: %s", err)
            return None

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        self.engine.dispose()
