"""The schema is created and upgraded only by Alembic, with a backup before migrating."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import inspect

from app.store.db import Store
from app.store.models import Base
from app.store.orm import current_revision, head_revision, make_engine, migrate


def test_empty_file_upgrades_to_head(tmp_path: Path) -> None:
    path = tmp_path / "pairsync.db"
    path.touch()
    store = Store(path)
    assert current_revision(store.engine) == head_revision(store.engine)
    tables = set(inspect(store.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    store.close()


def test_migrations_match_the_models(tmp_path: Path) -> None:
    """No model change without a migration: autogenerate finds nothing to do at head."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = Store(tmp_path / "p.db")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_backup_copy_before_migrating_an_older_schema(tmp_path: Path) -> None:
    path = tmp_path / "pairsync.db"
    Store(path).close()
    # Pretend the file is at an older revision: stamp it back to "nothing applied yet"
    # while keeping its data, as a user with an old version's file would have.
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE marker (x TEXT)")
    con.execute("INSERT INTO marker VALUES ('users data')")
    con.execute("UPDATE alembic_version SET version_num = 'old'")
    con.commit()
    con.close()
    engine = make_engine(path)
    try:
        migrate(path, engine)
    except Exception:
        pass  # 'old' is unknown to Alembic: what matters is the copy made first
    finally:
        engine.dispose()
    backup = tmp_path / "pairsync.db.bak-old"
    assert backup.exists()
    assert sqlite3.connect(backup).execute("SELECT x FROM marker").fetchone() == ("users data",)


def test_reopening_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "pairsync.db"
    Store(path).close()
    Store(path).close()
    assert not list(tmp_path.glob("*.bak-*"))


def test_upgrade_from_the_first_schema_keeps_data_and_a_backup(tmp_path: Path) -> None:
    from alembic import command

    from app.store.orm import alembic_config

    path = tmp_path / "pairsync.db"
    engine = make_engine(path)
    command.upgrade(alembic_config(engine), "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO accounts (name, kind, settings, has_secret, created_at) "
            "VALUES ('Phone', 'vcard-folder', '{}', 0, '2026-01-01')"
        )
    engine.dispose()
    store = Store(path)
    assert current_revision(store.engine) == head_revision(store.engine) != "0001"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM accounts").scalar() == "Phone"
        indexes = {r[1] for r in conn.exec_driver_sql("PRAGMA index_list('records')")}
    assert "ix_records_versions" in indexes
    store.close()
    backup = tmp_path / "pairsync.db.bak-0001"
    assert sqlite3.connect(backup).execute("SELECT name FROM accounts").fetchone() == ("Phone",)


def test_schema_head_is_the_newest_migration(tmp_path: Path) -> None:
    from app.store.db import SCHEMA_HEAD

    engine = make_engine(tmp_path / "pairsync.db")
    assert head_revision(engine) == SCHEMA_HEAD
    engine.dispose()


def test_opening_a_current_database_does_not_load_alembic(tmp_path: Path) -> None:
    """Every CLI run opens the database: when there is nothing to upgrade, one query."""
    import subprocess
    import sys

    path = tmp_path / "pairsync.db"
    Store(path).close()  # created and migrated
    code = (
        "import sys; from pathlib import Path; from app.store.db import Store; "
        f"Store(Path({str(path)!r})).close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
