"""Alembic environment: runs against the engine the store hands over (no ini file)."""

from __future__ import annotations

from alembic import context

from app.store.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        # Batch migrations rebuild a table (copy, drop, rename). With foreign keys on,
        # dropping ``connections`` would cascade-delete every run, binding, record and
        # failure that refers to it, so they are off while migrating (SQLite applies the
        # pragma only outside a transaction: it is the first statement) and on again after.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            context.configure(
                connection=connection, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


run_migrations_online()
