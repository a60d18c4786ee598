"""Accounts, connections and the Health queries: the service's view of the database.

Rows come back detached (the session factory does not expire on commit), so callers read
them freely; every change is its own short transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.errors import ConfigError
from app.model import Record, record_from_json
from app.store.models import (
    Account,
    Binding,
    ConflictEntry,
    Connection,
    Failure,
    IndexedRecord,
    JournalEntry,
    Run,
)


class Catalog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # --- accounts --------------------------------------------------------------------------

    def add_account(
        self, name: str, kind: str, settings: dict[str, str], has_secret: bool
    ) -> Account:
        with self.sessions() as s, s.begin():
            if s.scalar(select(Account.id).where(Account.name == name)) is not None:
                raise ConfigError(f"An account named {name!r} already exists.")
            acc = Account(
                name=name, kind=kind, settings=json.dumps(settings), has_secret=has_secret
            )
            s.add(acc)
        return acc

    def find_account(self, name: str) -> Account | None:
        with self.sessions() as s:
            return s.scalar(select(Account).where(Account.name == name))

    def account(self, name: str) -> Account:
        acc = self.find_account(name)
        if acc is None:
            raise ConfigError(f"There is no account named {name!r} (see: pairsync account list).")
        return acc

    def account_by_id(self, account_id: int) -> Account:
        with self.sessions() as s:
            acc = s.get(Account, account_id)
        assert acc is not None
        return acc

    def accounts(self) -> list[Account]:
        with self.sessions() as s:
            return list(s.scalars(select(Account).order_by(Account.name)))

    def remove_account(self, name: str) -> Account:
        with self.sessions() as s, s.begin():
            acc = s.scalar(select(Account).where(Account.name == name))
            if acc is None:
                raise ConfigError(f"There is no account named {name!r}.")
            used = s.scalars(
                select(Connection.name).where(
                    (Connection.account_a_id == acc.id) | (Connection.account_b_id == acc.id)
                )
            ).all()
            if used:
                raise ConfigError(
                    f"Account {name!r} is used by connection(s) {', '.join(used)}; delete those "
                    "first."
                )
            s.delete(acc)
        return acc

    # --- connections -----------------------------------------------------------------------

    def add_connection(self, name: str, account_a: str, account_b: str, **values: Any) -> None:
        with self.sessions() as s, s.begin():
            if s.scalar(select(Connection.id).where(Connection.name == name)) is not None:
                raise ConfigError(f"A connection named {name!r} already exists.")
            a = s.scalar(select(Account).where(Account.name == account_a))
            b = s.scalar(select(Account).where(Account.name == account_b))
            for wanted, acc in ((account_a, a), (account_b, b)):
                if acc is None:
                    raise ConfigError(
                        f"There is no account named {wanted!r} (see: pairsync account list)."
                    )
            assert a is not None and b is not None
            if a.id == b.id:
                raise ConfigError("A connection needs two different accounts.")
            s.add(Connection(name=name, account_a_id=a.id, account_b_id=b.id, **values))

    def connection(self, name: str) -> Connection:
        with self.sessions() as s:
            conn = s.scalar(select(Connection).where(Connection.name == name))
        if conn is None:
            raise ConfigError(
                f"There is no connection named {name!r} (see: pairsync connection list)."
            )
        return conn

    def connections(self) -> list[Connection]:
        with self.sessions() as s:
            return list(s.scalars(select(Connection).order_by(Connection.name)))

    def update_connection(self, name: str, **values: Any) -> None:
        with self.sessions() as s, s.begin():
            conn = s.scalar(select(Connection).where(Connection.name == name))
            if conn is None:
                raise ConfigError(f"There is no connection named {name!r}.")
            for key, value in values.items():
                setattr(conn, key, value)

    def delete_connection(self, name: str) -> None:
        with self.sessions() as s, s.begin():
            conn = s.scalar(select(Connection).where(Connection.name == name))
            if conn is None:
                raise ConfigError(f"There is no connection named {name!r}.")
            s.delete(conn)

    def last_run(self, connection_id: int) -> Run | None:
        with self.sessions() as s:
            return s.scalar(
                select(Run)
                .where(Run.connection_id == connection_id, Run.dry_run.is_(False))
                .order_by(Run.id.desc())
                .limit(1)
            )

    def index_records(
        self, connection_id: int, side: str, chunk: int = 2000
    ) -> Iterator[list[tuple[Record, bool]]]:
        """Every indexed contact of one side with whether it is bound (an active binding),
        a chunk at a time: rule counts come from here, without reading the apps."""
        col = Binding.id_a if side == "a" else Binding.id_b
        bound = (
            select(Binding.id)
            .where(
                Binding.connection_id == connection_id,
                Binding.state == "active",
                col == IndexedRecord.record_id,
            )
            .exists()
        )
        last = ""
        while True:
            with self.sessions() as s:
                rows = s.execute(
                    select(
                        IndexedRecord.record_id,
                        IndexedRecord.version,
                        IndexedRecord.snapshot,
                        bound,
                    )
                    .where(
                        IndexedRecord.connection_id == connection_id,
                        IndexedRecord.side == side,
                        IndexedRecord.record_id > last,
                    )
                    .order_by(IndexedRecord.record_id)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            last = rows[-1][0]
            yield [(record_from_json(rid, v, snap), bool(b)) for rid, v, snap, b in rows]

    # --- health ----------------------------------------------------------------------------

    def health(self, conn: Connection) -> dict[str, Any]:
        cid = conn.id
        with self.sessions() as s:
            # Pairs in sync: bound and in a rule's scope (a dormant pair is Excluded).
            in_sync = s.scalar(
                select(func.count()).where(
                    IndexedRecord.connection_id == cid,
                    IndexedRecord.side == "a",
                    IndexedRecord.status == "bound",
                )
            )
            tombstones = s.scalar(
                select(func.count()).where(Binding.connection_id == cid, Binding.state != "active")
            )
            records = s.execute(
                select(
                    IndexedRecord.side,
                    IndexedRecord.record_id,
                    IndexedRecord.name,
                    IndexedRecord.status,
                    IndexedRecord.reason,
                )
                .where(
                    IndexedRecord.connection_id == cid,
                    IndexedRecord.status.in_(("excluded", "duplicate")),
                )
                .order_by(IndexedRecord.side, IndexedRecord.name)
            ).all()
            failures = s.scalars(
                select(Failure)
                .where(Failure.connection_id == cid)
                .order_by(Failure.code, Failure.name)
            ).all()
            conflict_rows = s.scalars(
                select(ConflictEntry)
                .where(ConflictEntry.connection_id == cid)
                .order_by(ConflictEntry.id.desc())
                .limit(500)
            ).all()
            runs = s.scalars(
                select(Run).where(Run.connection_id == cid).order_by(Run.id.desc()).limit(20)
            ).all()
            journal_count = s.scalar(select(func.count()).where(JournalEntry.connection_id == cid))
        listed = [
            {"side": side, "record_id": rid, "name": nm, "reason": reason, "status": status}
            for side, rid, nm, status, reason in records
        ]
        excluded = [
            {k: v for k, v in e.items() if k != "status"}
            for e in listed
            if e["status"] == "excluded"
        ]
        duplicates = [
            {k: v for k, v in e.items() if k != "status"}
            for e in listed
            if e["status"] == "duplicate"
        ]
        failed = [
            {
                "side": f.side,
                "record_id": f.record_id,
                "name": f.name,
                "app_side": f.target_side,
                "code": f.code,
                "reason": f.message,
                "fields": [f.field] if f.field else [],
                "attempts": f.attempts,
                "raw": f.raw,
            }
            for f in failures
        ]
        return {
            "connection": conn.name,
            "paused": conn.paused,
            "counts": {
                "in_sync": int(in_sync or 0),
                "excluded": len(excluded),
                "duplicates": len(duplicates),
                "failed": len(failed),
                "deleted_other_side": int(tombstones or 0),
                "rule_conflicts": sum(1 for c in conflict_rows if c.field.startswith("rule:")),
            },
            "failed": failed,
            "excluded": excluded,
            "duplicates": duplicates,
            "deleted_other_side": [e for e in excluded if e["reason"].startswith("deleted in")],
            "conflicts": [
                {
                    "field": c.field,
                    "value_a": json.loads(c.value_a),
                    "value_b": json.loads(c.value_b),
                    "winner": c.winner,
                    "at": c.at.isoformat(),
                    "binding": c.binding_id,
                }
                for c in conflict_rows
                if not c.field.startswith("rule:")
            ],
            "rule_conflicts": [
                {
                    "about": c.field.removeprefix("rule:"),
                    "message": json.loads(c.value_a),
                    "side": c.winner,
                    "at": c.at.isoformat(),
                    "binding": c.binding_id,
                }
                for c in conflict_rows
                if c.field.startswith("rule:")
            ],
            "journal_entries": int(journal_count or 0),
            "runs": [
                {
                    "run": r.run_no,
                    "dry_run": r.dry_run,
                    "status": r.status,
                    "started_at": r.started_at.isoformat(),
                    "counts": json.loads(r.counts),
                    "message": r.message,
                }
                for r in runs
            ],
        }
