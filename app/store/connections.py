"""Accounts and connections as the user set them up: the facade's view of those tables.

Reads are plain SQL on the DB-API connection (``app.store.sqlite``) and hand back typed rows
(``app.store.rows``): a sync reads its connection and two accounts through them and never
loads SQLAlchemy (issue 18). Changes (add, remove, rename, settings) and the reads only the
editors need (the last run, the index for rule counts) still go through the ORM
(``app.store.models``, imported when first used), whose column defaults fill a new row.
Every change is its own short transaction. How each connection is doing (Health, Activity)
is read by ``app.store.health``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from app.errors import ConfigError
from app.model import ConnectionSettings, Direction, Record, Side, record_from_json
from app.store.rows import SELECT_ACCOUNT, SELECT_CONNECTION, AccountRow, ConnectionRow

if TYPE_CHECKING:
    from app.store.db import Store
    from app.store.models import Run

_NO_ACCOUNT = "There is no account named {!r} (see: pairsync account list)."
_NO_CONNECTION = "There is no connection named {!r} (see: pairsync connection list)."


class ConnectionStore:
    """The accounts and connections tables (secrets stay in the keyring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    # --- accounts --------------------------------------------------------------------------

    def add_account(
        self, name: str, kind: str, settings: dict[str, str], has_secret: bool
    ) -> AccountRow:
        from sqlalchemy import select

        from app.store.models import Account

        with self.store.session() as s, s.begin():
            if s.scalar(select(Account.id).where(Account.name == name)) is not None:
                raise ConfigError(f"An account named {name!r} already exists.")
            s.add(
                Account(name=name, kind=kind, settings=json.dumps(settings), has_secret=has_secret)
            )
        return self.account(name)

    def find_account(self, name: str) -> AccountRow | None:
        rows = self.db.rows(f"{SELECT_ACCOUNT} WHERE name = ?", (name,))
        return AccountRow.read(rows[0]) if rows else None

    def account(self, name: str) -> AccountRow:
        acc = self.find_account(name)
        if acc is None:
            raise ConfigError(_NO_ACCOUNT.format(name))
        return acc

    def account_by_id(self, account_id: int) -> AccountRow:
        [row] = self.db.rows(f"{SELECT_ACCOUNT} WHERE id = ?", (account_id,))
        return AccountRow.read(row)

    def accounts(self) -> list[AccountRow]:
        return [AccountRow.read(r) for r in self.db.rows(f"{SELECT_ACCOUNT} ORDER BY name")]

    def remove_account(self, name: str) -> AccountRow:
        from sqlalchemy import select

        from app.store.models import Account, Connection

        acc = self.find_account(name)
        with self.store.session() as s, s.begin():
            row = s.scalar(select(Account).where(Account.name == name))
            if row is None or acc is None:
                raise ConfigError(f"There is no account named {name!r}.")
            used = s.scalars(
                select(Connection.name).where(
                    (Connection.account_a_id == row.id) | (Connection.account_b_id == row.id)
                )
            ).all()
            if used:
                raise ConfigError(
                    f"Account {name!r} is used by connection(s) {', '.join(used)}; delete those "
                    "first."
                )
            s.delete(row)
        return acc

    # --- connections -----------------------------------------------------------------------

    def add_connection(self, name: str, account_a: str, account_b: str, **values: Any) -> None:
        from sqlalchemy import select

        from app.store.models import Account, Connection

        with self.store.session() as s, s.begin():
            if s.scalar(select(Connection.id).where(Connection.name == name)) is not None:
                raise ConfigError(f"A connection named {name!r} already exists.")
            a = s.scalar(select(Account).where(Account.name == account_a))
            b = s.scalar(select(Account).where(Account.name == account_b))
            for wanted, acc in ((account_a, a), (account_b, b)):
                if acc is None:
                    raise ConfigError(_NO_ACCOUNT.format(wanted))
            assert a is not None and b is not None
            if a.id == b.id:
                raise ConfigError("A connection needs two different accounts.")
            s.add(Connection(name=name, account_a_id=a.id, account_b_id=b.id, **values))

    def connection(self, name: str) -> ConnectionRow:
        rows = self.db.rows(f"{SELECT_CONNECTION} WHERE name = ?", (name,))
        if not rows:
            raise ConfigError(_NO_CONNECTION.format(name))
        return ConnectionRow.read(rows[0])

    def connections(self) -> list[ConnectionRow]:
        rows = self.db.rows(f"{SELECT_CONNECTION} ORDER BY name")
        return [ConnectionRow.read(r) for r in rows]

    def update_connection(self, name: str, **values: Any) -> None:
        from sqlalchemy import select

        from app.store.models import Connection

        with self.store.session() as s, s.begin():
            conn = s.scalar(select(Connection).where(Connection.name == name))
            if conn is None:
                raise ConfigError(f"There is no connection named {name!r}.")
            for key, value in values.items():
                setattr(conn, key, value)

    def rename_connection(self, name: str, new_name: str) -> None:
        """Only the name changes: runs, bindings, index and history hang on the id."""
        from sqlalchemy import select

        from app.store.models import Connection

        with self.store.session() as s, s.begin():
            conn = s.scalar(select(Connection).where(Connection.name == name))
            if conn is None:
                raise ConfigError(f"There is no connection named {name!r}.")
            if s.scalar(select(Connection.id).where(Connection.name == new_name)) is not None:
                raise ConfigError(f"A connection named {new_name!r} already exists.")
            conn.name = new_name

    def delete_connection(self, name: str) -> None:
        from sqlalchemy import select

        from app.store.models import Connection

        with self.store.session() as s, s.begin():
            conn = s.scalar(select(Connection).where(Connection.name == name))
            if conn is None:
                raise ConfigError(f"There is no connection named {name!r}.")
            s.delete(conn)

    def last_run(self, connection_id: int) -> Run | None:
        from sqlalchemy import select

        from app.store.models import Run

        with self.store.session() as s:
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
        bound = "id_a" if side == "a" else "id_b"
        last = ""
        while True:
            rows = self.db.rows(
                "SELECT r.record_id, r.version, r.snapshot, EXISTS (SELECT 1 FROM bindings AS b"
                f" WHERE b.connection_id = ? AND b.state = 'active' AND b.{bound} = r.record_id)"
                " FROM records AS r WHERE r.connection_id = ? AND r.side = ? AND r.record_id > ?"
                " ORDER BY r.record_id LIMIT ?",
                (connection_id, connection_id, side, last, chunk),
            )
            if not rows:
                return
            last = rows[-1][0]
            yield [(record_from_json(rid, v, snap), bool(b)) for rid, v, snap, b in rows]

    # --- re-authorization -----------------------------------------------------------------

    def update_account(self, name: str, *, settings: str, has_secret: bool) -> None:
        from sqlalchemy import select

        from app.store.models import Account

        with self.store.session() as s, s.begin():
            acc = s.scalar(select(Account).where(Account.name == name))
            if acc is None:
                raise ConfigError(f"There is no account named {name!r}.")
            acc.settings = settings
            acc.has_secret = has_secret

    def connections_using(self, account_id: int) -> list[str]:
        rows = self.db.rows(
            "SELECT name FROM connections WHERE account_a_id = ? OR account_b_id = ? ORDER BY name",
            (account_id, account_id),
        )
        return [name for (name,) in rows]


def settings_of(conn: ConnectionRow) -> ConnectionSettings:
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
