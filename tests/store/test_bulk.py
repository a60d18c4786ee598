"""The plain-SQL statements of ``app.store.bulk`` against the ORM's tables (issue 18).

The bulk statements bypass the ORM, so nothing fills in a column's Python-side default for
them: a new column with such a default (and no server default) must be added to the statement,
or its rows would be stored with NULL. And what they store must read back through the ORM as
the ORM would have stored it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.engine.state import (
    BatchOutcome,
    DueFailure,
    IndexEntry,
    IntentNote,
    JournalNote,
    NewBinding,
)
from app.model import Record, Side
from app.store import bulk
from app.store.connections import ConnectionStore
from app.store.db import Store
from app.store.models import Base, Binding, Failure, JournalEntry, PendingOp
from app.store.state import SyncState

INSERTS = {
    name: value
    for name, value in vars(bulk).items()
    if isinstance(value, str) and value.startswith("INSERT INTO")
}


@pytest.mark.parametrize("name", sorted(INSERTS))
def test_inserts_name_every_column_the_orm_would_fill(name: str) -> None:
    match = re.match(r"INSERT INTO (\w+) \(([^)]*)\)", INSERTS[name])
    assert match is not None
    table = Base.metadata.tables[match.group(1)]
    named = {c.strip() for c in match.group(2).split(",")}
    assert named <= set(table.columns.keys())
    for column in table.columns:
        if column.primary_key and column.autoincrement in (True, "auto") and column.name == "id":
            continue
        filled_by_orm = column.default is not None and column.server_default is None
        if filled_by_orm or not column.nullable:
            assert column.name in named, f"{name} leaves {table.name}.{column.name} unset"


def test_bulk_rows_read_back_through_the_orm(tmp_path: Path) -> None:
    store = Store(tmp_path / "pairsync.db")
    conns = ConnectionStore(store)
    conns.add_account("A", "memory", {}, False)
    conns.add_account("B", "memory", {}, False)
    conns.add_connection("c", "A", "B")
    cid = conns.connection("c").id
    state = SyncState(store.db, cid)
    run_id, run_no = state.begin_run(False)
    before = datetime.now(UTC) - timedelta(seconds=1)
    state.add_intents([IntentNote("op1", run_id, Side.B, "a1", None, ["x@example.com"])])
    rec_a = Record("a1", "v1", {"full_name": "Ann"})
    rec_b = Record("b1", "v2", {"full_name": "Ann"})
    state.commit(
        BatchOutcome(
            run_id,
            run_no,
            index=[
                IndexEntry(Side.A, rec_a, "{}", ["x@example.com"], "bound"),
                IndexEntry(Side.B, rec_b, "{}", ["x@example.com"], "bound"),
            ],
            new_bindings=[NewBinding("a1", "b1", {"name": "Ann"}, {"log": []})],
            journal=[JournalNote(Side.B, "b1", "create", "full_name", None, "Ann")],
            done_intents=["op1"],
        )
    )
    with store.sessions() as s:
        binding = s.scalars(select(Binding)).one()
        journal = s.scalars(select(JournalEntry)).one()
        assert s.scalars(select(PendingOp)).all() == []
    assert (binding.id_a, binding.id_b, binding.state, binding.needs_merge) == (
        "a1",
        "b1",
        "active",
        False,
    )
    assert binding.created_at.replace(tzinfo=UTC) >= before
    assert journal.at.replace(tzinfo=UTC) >= before
    assert (journal.field, journal.after) == ("full_name", '"Ann"')
    assert state.index_versions(Side.A) == {"a1": "v1"}
    assert state.key_holders(Side.B, ["x@example.com"]) == {"x@example.com": {"b1"}}
    store.close()


def test_due_failures_read_in_plain_sql_keep_the_retry_schedule(tmp_path: Path) -> None:
    """Retry times stored by the ORM are read back in plain SQL as the ORM would: a failure
    is due by its date once it has one, by its run number otherwise, never when ignored."""
    store = Store(tmp_path / "pairsync.db")
    conns = ConnectionStore(store)
    conns.add_account("A", "memory", {}, False)
    conns.add_account("B", "memory", {}, False)
    conns.add_connection("c", "A", "B")
    cid = conns.connection("c").id
    now = datetime.now(UTC)
    rows = {
        "past": dict(next_at=now - timedelta(hours=1), next_run_no=99),
        "future": dict(next_at=now + timedelta(hours=1), next_run_no=0),
        "run-due": dict(next_at=None, next_run_no=5),
        "run-later": dict(next_at=None, next_run_no=6),
        "ignored": dict(next_at=None, next_run_no=0, ignored=True),
    }
    with store.sessions() as s, s.begin():
        for rid, values in rows.items():
            s.add(
                Failure(
                    connection_id=cid,
                    side="a",
                    record_id=rid,
                    target_side="b",
                    binding_id=7 if rid == "past" else None,
                    code="rejected",
                    message="m",
                    **values,
                )
            )
    due = SyncState(store.db, cid).due_failures(5)
    assert sorted(due, key=lambda d: d.record_id) == [
        DueFailure(Side.A, "past", 7),
        DueFailure(Side.A, "run-due", None),
    ]
