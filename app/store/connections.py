"""Accounts and connections as the user set them up: the facade's view of those tables.

Rows come back detached (the session factory does not expire on commit), so callers read
them freely; every change is its own short transaction. How each connection is doing
(Health, Activity) is read by ``app.store.health``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.errors import ConfigError
from app.model import ConnectionSettings, Direction, Record, Side, record_from_json
from app.store.models import Account, Binding, Connection, IndexedRecord, Run


class ConnectionStore:
    """The accounts and connections tables (secrets stay in the keyring)."""

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

    def rename_connection(self, name: str, new_name: str) -> None:
        """Only the name changes: runs, bindings, index and history hang on the id."""
        with self.sessions() as s, s.begin():
            conn = s.scalar(select(Connection).where(Connection.name == name))
            if conn is None:
                raise ConfigError(f"There is no connection named {name!r}.")
            if s.scalar(select(Connection.id).where(Connection.name == new_name)) is not None:
                raise ConfigError(f"A connection named {new_name!r} already exists.")
            conn.name = new_name

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

    # --- re-authorization -----------------------------------------------------------------

    def update_account(self, name: str, *, settings: str, has_secret: bool) -> None:
        with self.sessions() as s, s.begin():
            acc = s.scalar(select(Account).where(Account.name == name))
            if acc is None:
                raise ConfigError(f"There is no account named {name!r}.")
            acc.settings = settings
            acc.has_secret = has_secret

    def connections_using(self, account_id: int) -> list[str]:
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(Connection.name)
                    .where(
                        (Connection.account_a_id == account_id)
                        | (Connection.account_b_id == account_id)
                    )
                    .order_by(Connection.name)
                )
            )


def settings_of(conn: Connection) -> ConnectionSettings:
    """A connection row's settings as the one settings type (``app.model``)."""
    return ConnectionSettings(
        direction=Direction.parse(conn.direction),
        winner=Side(conn.winner),
        avoid_duplicates=conn.avoid_duplicates,
        unsubscribes=conn.unsubscribes,
        unsubscribe_opt_out=conn.unsubscribe_opt_out,
        trash=conn.trash,
        propagate_clears=conn.propagate_clears,
        guard_max_writes=conn.guard_max_writes,
        phone_region=conn.phone_region,
        interval_minutes=conn.interval_minutes,
        guard_shrink_percent=conn.guard_shrink_percent,
    )


def settings_columns(settings: ConnectionSettings) -> dict[str, Any]:
    """The columns to store for ``settings`` (enums as their text)."""
    return {
        key: str(value) if isinstance(value, StrEnum) else value
        for key, value in (
            (k, getattr(settings, k)) for k in (*settings.USER_KEYS, "guard_shrink_percent")
        )
    }
