"""Migration 0004 (desktop app): an existing database keeps its data and gets the defaults."""

from __future__ import annotations

from pathlib import Path

from alembic import command

from app.store.db import Store
from app.store.orm import alembic_config, make_engine


def test_upgrade_from_0003_sets_the_desktop_defaults(tmp_path: Path) -> None:
    path = tmp_path / "pairsync.db"
    engine = make_engine(path)
    command.upgrade(alembic_config(engine), "0003")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO accounts (id, name, kind, settings, has_secret, created_at) VALUES "
            "(1, 'A', 'csv', '{}', 0, '2026-01-01'), (2, 'B', 'csv', '{}', 0, '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO connections (id, name, account_a_id, account_b_id, direction, winner, "
            "avoid_duplicates, unsubscribes, trash, propagate_clears, paused, "
            "guard_max_writes, guard_shrink_percent, phone_region, config, run_count, "
            "synced_once, needs_full_read, created_at) VALUES (1, 'c', 1, 2, 'two-way', 'a', "
            "1, 0, 0, 1, 0, 500, 20, '', '{}', 1, 1, 0, '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO runs (id, connection_id, run_no, dry_run, status, counts, message, "
            "started_at) VALUES (1, 1, 1, 0, 'ok', '{}', '', '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO failures (id, connection_id, side, record_id, target_side, name, "
            "code, message, field, raw, attempts, next_run_no, source_version, first_at, "
            "last_at) VALUES (1, 1, 'a', 'r', 'b', 'Ann', 'rejected', 'no', '', '', 1, 2, "
            "'v1', '2026-01-01', '2026-01-01')"
        )
    engine.dispose()
    store = Store(path)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT interval_minutes FROM connections").scalar() == 5
        assert conn.exec_driver_sql("SELECT kind, undo_of FROM runs").one() == ("sync", None)
        assert conn.exec_driver_sql("SELECT ignored FROM failures").scalar() == 0
    store.close()
    engine = make_engine(path)
    command.downgrade(alembic_config(engine), "0003")  # and back, data kept
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM connections").scalar() == "c"
    engine.dispose()


def test_rebuilding_a_table_never_cascades_into_the_sync_state(tmp_path: Path) -> None:
    """Batch migrations rebuild ``connections``; with foreign keys on, the old table's drop
    would delete every run and binding (ON DELETE CASCADE). They must all survive."""
    path = tmp_path / "pairsync.db"
    engine = make_engine(path)
    command.upgrade(alembic_config(engine), "0002")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO accounts (id, name, kind, settings, has_secret, created_at) VALUES "
            "(1, 'A', 'csv', '{}', 0, '2026-01-01'), (2, 'B', 'csv', '{}', 0, '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO connections (id, name, account_a_id, account_b_id, direction, winner, "
            "avoid_duplicates, unsubscribes, trash, propagate_clears, paused, "
            "guard_max_writes, guard_shrink_percent, phone_region, config, run_count, "
            "synced_once, needs_full_read, created_at) VALUES (1, 'c', 1, 2, 'two-way', 'a', "
            "1, 0, 0, 1, 0, 500, 20, '', '{}', 1, 1, 0, '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO runs (id, connection_id, run_no, dry_run, status, counts, message, "
            "started_at) VALUES (1, 1, 1, 0, 'ok', '{}', '', '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO bindings (id, connection_id, id_a, id_b, state, base, needs_merge, "
            "created_at) VALUES (1, 1, 'x', 'y', 'active', '{}', 0, '2026-01-01')"
        )
    engine.dispose()
    store = Store(path)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM runs").scalar() == 1
        assert conn.exec_driver_sql("SELECT count(*) FROM bindings").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # on again
    store.close()
