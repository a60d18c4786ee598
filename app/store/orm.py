"""The SQLAlchemy side of the database: the engine the ORM and Alembic use, and migrations.

Loaded only by what needs it (``app.store.db.Store.engine`` / ``sessions``): a schema
upgrade, the editors of accounts and connections, Health. A sync runs on the plain
connection (``app.store.sqlite``) and never imports this module. Both sides open the file the
same way (``sqlite.configure``, ``sqlite.private``) and say a full disk or a read-only
database in the same sentence (``sqlite.storage_fault``).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import ExceptionContext

from app.store.quick import SCHEMA_HEAD, revision_of
from app.store.sqlite import TIMEOUT, configure, private, storage_fault

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def _storage_fault(path: Path) -> Any:
    def handle(context: ExceptionContext) -> None:
        """A full disk or a read-only database, said in one sentence (never a traceback)."""
        fault = storage_fault(path, context.original_exception)
        if fault is not None:
            raise fault from None

    return handle


def make_engine(path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": TIMEOUT}
    )
    event.listen(engine, "connect", lambda conn, _record: configure(conn))
    event.listen(engine, "connect", lambda _conn, _record: private(path))
    event.listen(engine, "handle_error", _storage_fault(path))
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
        assert isinstance(raw, sqlite3.Connection)
        return revision_of(raw)


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
            assert isinstance(raw, sqlite3.Connection)
            dest = sqlite3.connect(backup)
            try:
                raw.backup(dest)
            finally:
                dest.close()
            private(backup)
    elif inspect(engine).get_table_names():
        # Tables but no revision: not ours, or from before migrations. Keep a copy.
        engine.dispose()
        shutil.copy2(path, path.with_name(path.name + ".bak-unversioned"))
    from alembic import command

    command.upgrade(alembic_config(engine), "head")
    return current
