"""The plain DB-API side of the store (issue 18): what a sync runs on, without SQLAlchemy.

Same file, same pragmas, same sentences as the ORM's side; a transaction is all or nothing;
the typed rows a run reads agree with the ORM's tables and values.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from sqlalchemy import select

from app.engine.state import BatchOutcome, IndexEntry, NewBinding
from app.errors import StorageError
from app.model import Record, Side
from app.store.connections import ConnectionStore
from app.store.db import Store
from app.store.models import Account, Base, Connection
from app.store.rows import ACCOUNT_COLUMNS, CONNECTION_COLUMNS, ConnectionRow
from app.store.state import SyncState


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "pairsync.db")
    conns = ConnectionStore(store)
    conns.add_account("A", "memory", {"x": "1"}, False)
    conns.add_account("B", "memory", {}, True)
    conns.add_connection("c", "A", "B", direction="a-to-b", paused=True)
    return store


def test_both_sides_open_the_file_with_the_same_pragmas(store: Store) -> None:
    plain = store.db.connection()
    with store.engine.connect() as conn:
        orm = conn.connection.dbapi_connection
        assert orm is not None
        for pragma in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout"):
            asked = f"PRAGMA {pragma}"
            assert plain.execute(asked).fetchall() == orm.execute(asked).fetchall(), pragma
    assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert plain.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert plain.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert plain.execute("PRAGMA busy_timeout").fetchone() == (10000,)
    store.close()


def test_rows_name_every_column_and_read_what_the_orm_reads(store: Store) -> None:
    tables = Base.metadata.tables
    assert set(ACCOUNT_COLUMNS) <= set(tables["accounts"].columns.keys())
    assert set(CONNECTION_COLUMNS) == set(tables["connections"].columns.keys())
    conns = ConnectionStore(store)
    row = conns.connection("c")
    with store.session() as s:
        orm = s.scalars(select(Connection).where(Connection.name == "c")).one()
        accounts = {a.id: a for a in s.scalars(select(Account))}
    for f in fields(ConnectionRow):
        value, expected = getattr(row, f.name), getattr(orm, f.name)
        if f.name.endswith("_at") and expected is not None:
            assert value.tzinfo is not None  # the ORM's naive UTC, made aware
            value = value.replace(tzinfo=None)
        assert value == expected, f.name
    for acc in (conns.account_by_id(row.account_a_id), conns.account_by_id(row.account_b_id)):
        stored = accounts[acc.id]
        assert (acc.name, acc.kind, acc.settings, acc.has_secret) == (
            stored.name,
            stored.kind,
            stored.settings,
            stored.has_secret,
        )
    store.close()


def test_a_full_database_in_a_batch_is_one_sentence_and_commits_nothing(
    store: Store, tmp_path: Path
) -> None:
    cid = ConnectionStore(store).connection("c").id
    state = SyncState(store.db, cid)
    run_id, run_no = state.begin_run(False)
    plain = store.db.connection()
    [(pages,)] = plain.execute("PRAGMA page_count").fetchall()
    plain.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own "disk is full"
    big = [
        IndexEntry(Side.A, Record(f"a{n}", "v", {"note": "x" * 2000}), "x" * 2000, [], "bound")
        for n in range(200)
    ]
    with pytest.raises(StorageError) as info:
        state.commit(BatchOutcome(run_id, run_no, index=big, new_bindings=[NewBinding("a0", "b0")]))
    assert str(info.value) == (
        f"Pairsync cannot write its database {tmp_path / 'pairsync.db'}: the disk is full; "
        "free some space and run Pairsync again."
    )
    assert not plain.in_transaction
    assert state.count_index(Side.A) == 0  # all or nothing
    assert state.bindings_for(Side.A, ["a0"]) == {}
    store.close()


def test_a_transaction_rolls_back_on_any_exception(store: Store) -> None:
    class Killed(BaseException):
        pass

    cid = ConnectionStore(store).connection("c").id
    with pytest.raises(Killed), store.db.transaction() as conn:
        conn.execute("UPDATE connections SET run_count = 99 WHERE id = ?", (cid,))
        raise Killed
    assert ConnectionStore(store).connection("c").run_count == 0
    store.close()
