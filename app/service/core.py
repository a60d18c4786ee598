"""What every part of the facade shares: the database, the keyring, and opening the apps.

The facade's jobs live in one module each (``accounts``, ``connections``, ``mappings``,
``rules``, ``runs``, ``health``); each is a class that builds on this one and, where it needs
them, on the jobs before it (``Service`` at the top stacks them all). ``opened`` is the one
way to get a connection's two apps, and it always closes them, which matters beyond
tidiness — the CardDAV app saves its mirror of the address book and ends its HTTP session on
``close()``. (An account checked on its own, outside a connection, is opened and closed by
``accounts``.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from app.connectors.base import Connector, NarrowsReads
from app.connectors.registry import app_kind, storage_of
from app.engine.context import RUN_CEILING
from app.engine.needs import read_hint
from app.errors import AuthExpired
from app.mapping.config import MappingConfig, MappingView, build_views
from app.mapping.fields import FieldMapping
from app.model import ConnectionSettings, Direction, Schema, Side
from app.paths import AppPaths, app_paths
from app.rules.model import Rule, rules_from_config
from app.run_lock import writer_lock
from app.secrets import SecretStore
from app.store.connections import ConnectionStore, settings_of
from app.store.db import Store
from app.store.rows import AccountRow, ConnectionRow
from app.store.state import SyncState

if TYPE_CHECKING:  # SQLAlchemy's: loaded by the first Health read, never by a sync
    from app.store.health import HealthQueries

Apps = dict[Side, Connector]
"""A connection's two apps, opened: side A and side B."""
Accounts = dict[Side, AccountRow]
"""A connection's two accounts, read once per run: side A's and side B's."""

KEYRING_BACKEND_FILE = "keyring-backend"
"""The keyring backend that served a run, so the next one skips keyring's detection
(``app.secrets.SecretStore``)."""


class ServiceCore:
    """The database, the keyring and the apps, for the facade's jobs built on top.

    Everything here is private to the facade (``_store``, ``_connections``, ``_health``,
    ``_secrets``): the fronts call the jobs' public methods and get typed values back."""

    def __init__(
        self, home: str | Path | None = None, *, allow_insecure_keyring: bool = False
    ) -> None:
        self.home = None if home is None else str(home)
        """The folder asked for (None: PAIRSYNC_HOME or the platform's folders)."""
        self.paths: AppPaths = app_paths(home).ensure()
        self._store = Store(self.paths.database)
        self._connections = ConnectionStore(self._store)
        self._secrets = SecretStore(
            allow_insecure=allow_insecure_keyring,
            remember_in=self.paths.data / KEYRING_BACKEND_FILE,
        )

    @cached_property
    def _health(self) -> HealthQueries:
        """The Health read model, on the ORM (made on first use: a sync never asks)."""
        from app.store.health import HealthQueries

        return HealthQueries(self._store.sessions)

    def load_editors(self) -> None:
        """Load what the editors, the schedule and Health read through (SQLAlchemy's ORM and
        the Health read model) now rather than on first use. A sync never needs them, so a
        cron run never pays for them; the desktop app calls this at start, before its window
        shows, so that its first schedule tick or Health read on the GUI thread does not
        stop the window for the third of a second SQLAlchemy takes to import."""
        _ = self._health

    def close(self) -> None:
        self._store.backup_if_due()  # after configuration changes (app.store.integrity)
        self._store.close()

    @property
    def allow_insecure_keyring(self) -> bool:
        """Whether a plaintext keyring backend was accepted (``--allow-insecure-keyring``);
        the desktop app's sync worker is started with the same choice."""
        return self._secrets.allow_insecure

    def keyring_backend(self) -> str:
        """Where passwords and tokens are kept (the keyring backend's name), for Settings."""
        return self._secrets.backend_name()

    # --- opening the apps ------------------------------------------------------------------

    def _connector(self, account: AccountRow) -> Connector:
        spec = app_kind(account.kind)
        secret = self._secrets.get(account.name) if account.has_secret else None
        if spec.needs_secret and not secret:
            raise AuthExpired(f"Account {account.name!r} needs to be authorized again.")
        return spec.build(json.loads(account.settings), secret)

    def _accounts(self, conn: ConnectionRow) -> Accounts:
        return {
            Side.A: self._connections.account_by_id(conn.account_a_id),
            Side.B: self._connections.account_by_id(conn.account_b_id),
        }

    @contextmanager
    def opened(self, conn: ConnectionRow | str, accounts: Accounts | None = None) -> Iterator[Apps]:
        """A connection's two apps, open for the ``with`` block and closed after it, whatever
        happens (an app that fails to open closes the one opened before it). ``accounts``:
        the connection's two, when the caller has read them already (a run reads them once
        for its apps and its locks)."""
        if isinstance(conn, str):
            conn = self._connections.connection(conn)
        accounts = accounts or self._accounts(conn)
        apps: Apps = {}
        try:
            apps[Side.A] = self._connector(accounts[Side.A])
            apps[Side.B] = self._connector(accounts[Side.B])
            yield apps
        finally:
            for app in apps.values():
                app.close()

    # --- what runs and editors share -------------------------------------------------------

    def _writer(
        self, conn: ConnectionRow, accounts: Accounts | None = None
    ) -> AbstractContextManager[None]:
        """The connection's one-writer lock and its two apps' storage locks
        (``app.run_lock``), held while a run writes."""
        accounts = accounts or self._accounts(conn)
        storages = [
            storage_of(acc.kind, json.loads(acc.settings))
            for acc in (accounts[Side.A], accounts[Side.B])
        ]
        return writer_lock(self.paths.data / "locks", conn.id, conn.name, storages)

    def _state(self, conn: ConnectionRow) -> SyncState:
        return SyncState(self._store.db, conn.id)

    def _views(
        self,
        conn: ConnectionRow,
        apps: Apps,
        direction: Direction | None = None,
        config: MappingConfig | None = None,
    ) -> list[MappingView]:
        """The connection's mappings as they apply to these two apps now."""
        return build_views(
            Schema(apps[Side.A].fields()),
            Schema(apps[Side.B].fields()),
            config or _mapping_config(conn),
            direction or Direction.parse(conn.direction),
            app_a=apps[Side.A].info.name,
            app_b=apps[Side.B].info.name,
            segments=apps[Side.A].info.capabilities.segments
            and apps[Side.B].info.capabilities.segments,
            region=conn.phone_region,
        )

    def _run_settings(self, conn: ConnectionRow) -> ConnectionSettings:
        return settings_of(conn)

    def _narrow(
        self, conn: ConnectionRow, apps: Apps, mappings: list[FieldMapping], rules: list[Rule]
    ) -> None:
        """Tell the apps that can read less (``NarrowsReads``: HubSpot asks for properties
        by name) what a sync or preview of this connection uses of them; Undo and the
        editors read whole records."""
        settings = self._run_settings(conn)
        for side, app in apps.items():
            if isinstance(app, NarrowsReads):
                app.narrow_reads(read_hint(side, mappings, rules, settings))


RUN_CEILING_ENV = "PAIRSYNC_RUN_CEILING_S"
"""Overrides how long a run may take (seconds, default 4 hours); tests use it to stay short."""


def run_ceiling() -> float:
    try:
        value = float(os.environ.get(RUN_CEILING_ENV, "") or RUN_CEILING)
    except ValueError:
        return RUN_CEILING
    return value if 0 < value < float("inf") else RUN_CEILING


def _rules(conn: ConnectionRow) -> list[Rule]:
    return rules_from_config(json.loads(conn.config or "{}"))


def _mapping_config(conn: ConnectionRow) -> MappingConfig:
    return MappingConfig.from_json(json.loads(conn.config or "{}").get("mappings"))


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base 2``, ``base 3``… whichever is free."""
    name, n = base, 2
    while name in taken:
        name, n = f"{base} {n}", n + 1
    return name
