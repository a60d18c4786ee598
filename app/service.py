"""The one facade both fronts (CLI, GUI) call: accounts, connections, sync runs, health.

It returns plain data (dicts and dataclasses) and raises typed errors (``app.errors``); it
never prints and never imports Qt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.connectors.base import Connector
from app.connectors.registry import app_kind, normalize_settings
from app.engine.sync import Progress, RunReport, Settings, SyncRun
from app.errors import AuthExpired, ConfigError, PairsyncError
from app.mapping.defaults import default_mappings
from app.mapping.fields import Direction
from app.model import Side
from app.paths import AppPaths, app_paths
from app.secrets import SecretStore
from app.store.db import Store
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
from app.store.state import SyncState

EXPORT_VERSION = 1
ON_OFF = {"on": True, "off": False}


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    direction: str = "two-way"
    winner: str = "a"
    avoid_duplicates: bool = True
    unsubscribes: bool = False
    trash: bool = False
    propagate_clears: bool = True
    guard_max_writes: int = 500
    phone_region: str = ""


def _validate_options(o: ConnectionOptions) -> None:
    if o.direction not in {d.value for d in Direction}:
        raise ConfigError(f"Direction must be two-way, a-to-b or b-to-a, not {o.direction!r}.")
    if o.winner not in ("a", "b"):
        raise ConfigError(f"The winning app must be a or b, not {o.winner!r}.")
    if o.guard_max_writes < 1:
        raise ConfigError("The mass-change threshold must be at least 1.")
    if o.phone_region and (len(o.phone_region) != 2 or not o.phone_region.isalpha()):
        raise ConfigError("The phone region is a two-letter country code, like GB or US.")


class Service:
    def __init__(
        self, home: str | Path | None = None, *, allow_insecure_keyring: bool = False
    ) -> None:
        self.paths: AppPaths = app_paths(home).ensure()
        self.store = Store(self.paths.database)
        self.secrets = SecretStore(allow_insecure=allow_insecure_keyring)

    def close(self) -> None:
        self.store.close()

    def _session(self) -> Session:
        return self.store.session()

    # --- accounts --------------------------------------------------------------------------

    def add_account(
        self, kind: str, name: str, settings: Mapping[str, str], secret: str | None = None
    ) -> dict[str, Any]:
        spec = app_kind(kind)
        name = name.strip()
        if not name:
            raise ConfigError("An account needs a name.")
        values = normalize_settings(spec, settings)
        missing = [k for k in spec.settings if not values.get(k)]
        if missing:
            keys = ", ".join(f"--set {k}=..." for k in missing)
            raise ConfigError(f"A {spec.name} account needs {keys}.")
        spec.check(values)
        if spec.needs_secret and not secret:
            raise ConfigError(f"A {spec.name} account needs a secret: use --secret-env VAR.")
        with self._session() as s, s.begin():
            if s.scalar(select(Account.id).where(Account.name == name)) is not None:
                raise ConfigError(f"An account named {name!r} already exists.")
            if secret:
                self.secrets.set(name, secret)
            acc = Account(
                name=name, kind=kind, settings=json.dumps(values), has_secret=bool(secret)
            )
            s.add(acc)
        return self._account_json(acc)

    @staticmethod
    def _account_json(acc: Account) -> dict[str, Any]:
        return {
            "name": acc.name,
            "kind": acc.kind,
            "settings": json.loads(acc.settings),
            "has_secret": acc.has_secret,
        }

    def list_accounts(self) -> list[dict[str, Any]]:
        with self._session() as s:
            return [
                self._account_json(a) for a in s.scalars(select(Account).order_by(Account.name))
            ]

    def _account(self, s: Session, name: str) -> Account:
        acc = s.scalar(select(Account).where(Account.name == name))
        if acc is None:
            raise ConfigError(f"There is no account named {name!r} (see: pairsync account list).")
        return acc

    def remove_account(self, name: str) -> None:
        with self._session() as s, s.begin():
            acc = self._account(s, name)
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
            if acc.has_secret:
                self.secrets.delete(name)
            s.delete(acc)

    def connector(self, account: Account) -> Connector:
        spec = app_kind(account.kind)
        secret = self.secrets.get(account.name) if account.has_secret else None
        if spec.needs_secret and not secret:
            raise AuthExpired(f"Account {account.name!r} needs to be authorized again.")
        return spec.build(json.loads(account.settings), secret)

    # --- connections ------------------------------------------------------------------------

    def create_connection(
        self, name: str, account_a: str, account_b: str, options: ConnectionOptions
    ) -> dict[str, Any]:
        _validate_options(options)
        name = name.strip()
        if not name:
            raise ConfigError("A connection needs a name.")
        with self._session() as s, s.begin():
            if s.scalar(select(Connection.id).where(Connection.name == name)) is not None:
                raise ConfigError(f"A connection named {name!r} already exists.")
            a, b = self._account(s, account_a), self._account(s, account_b)
            if a.id == b.id:
                raise ConfigError("A connection needs two different accounts.")
            conn = Connection(
                name=name,
                account_a_id=a.id,
                account_b_id=b.id,
                direction=options.direction,
                winner=options.winner,
                avoid_duplicates=options.avoid_duplicates,
                unsubscribes=options.unsubscribes,
                trash=options.trash,
                propagate_clears=options.propagate_clears,
                guard_max_writes=options.guard_max_writes,
                phone_region=options.phone_region.upper(),
                config=json.dumps({"mappings": {"off": []}}),
            )
            s.add(conn)
        return self.show_connection(name)

    def _connection(self, s: Session, name: str) -> Connection:
        conn = s.scalar(select(Connection).where(Connection.name == name))
        if conn is None:
            raise ConfigError(
                f"There is no connection named {name!r} (see: pairsync connection list)."
            )
        return conn

    def _connection_json(self, s: Session, conn: Connection) -> dict[str, Any]:
        a, b = s.get(Account, conn.account_a_id), s.get(Account, conn.account_b_id)
        assert a is not None and b is not None
        last = s.scalar(
            select(Run)
            .where(Run.connection_id == conn.id, Run.dry_run.is_(False))
            .order_by(Run.id.desc())
            .limit(1)
        )
        return {
            "name": conn.name,
            "a": {"account": a.name, "kind": a.kind},
            "b": {"account": b.name, "kind": b.kind},
            "direction": conn.direction,
            "winner": conn.winner,
            "avoid_duplicates": conn.avoid_duplicates,
            "unsubscribes": conn.unsubscribes,
            "trash": conn.trash,
            "propagate_clears": conn.propagate_clears,
            "guard_max_writes": conn.guard_max_writes,
            "phone_region": conn.phone_region,
            "paused": conn.paused,
            "last_run": None
            if last is None
            else {
                "status": last.status,
                "started_at": last.started_at.isoformat(),
                "message": last.message,
            },
        }

    def list_connections(self) -> list[dict[str, Any]]:
        with self._session() as s:
            return [
                self._connection_json(s, c)
                for c in s.scalars(select(Connection).order_by(Connection.name))
            ]

    def show_connection(self, name: str) -> dict[str, Any]:
        with self._session() as s:
            return self._connection_json(s, self._connection(s, name))

    def set_paused(self, name: str, paused: bool) -> None:
        with self._session() as s, s.begin():
            conn = self._connection(s, name)
            conn.paused = paused
            if not paused:
                conn.needs_full_read = True  # SPEC §9: a run after pausing reads both apps fully

    def delete_connection(self, name: str) -> None:
        """Forget a connection and its sync state. The apps' contacts are never touched."""
        with self._session() as s, s.begin():
            s.delete(self._connection(s, name))

    def export_connection(self, name: str) -> dict[str, Any]:
        with self._session() as s:
            conn = self._connection(s, name)
            a, b = s.get(Account, conn.account_a_id), s.get(Account, conn.account_b_id)
            assert a is not None and b is not None
            data = self._connection_json(s, conn)
            for key in ("paused", "last_run", "a", "b"):
                data.pop(key)
            data["a"] = {"account": a.name, "kind": a.kind, "settings": json.loads(a.settings)}
            data["b"] = {"account": b.name, "kind": b.kind, "settings": json.loads(b.settings)}
            data["config"] = json.loads(conn.config)
            return {"pairsync_export": EXPORT_VERSION, **data}

    def import_connection(self, data: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
        if not isinstance(data, Mapping) or data.get("pairsync_export") != EXPORT_VERSION:
            raise ConfigError("This is not a Pairsync connection export (pairsync_export: 1).")
        try:
            new_name = name or str(data["name"])
            accounts = []
            for side in ("a", "b"):
                acc = data[side]
                accounts.append(
                    (str(acc["account"]), str(acc["kind"]), dict(acc.get("settings", {})))
                )
            options = ConnectionOptions(
                direction=str(data.get("direction", "two-way")),
                winner=str(data.get("winner", "a")),
                avoid_duplicates=bool(data.get("avoid_duplicates", True)),
                unsubscribes=bool(data.get("unsubscribes", False)),
                trash=bool(data.get("trash", False)),
                propagate_clears=bool(data.get("propagate_clears", True)),
                guard_max_writes=int(data.get("guard_max_writes", 500)),
                phone_region=str(data.get("phone_region", "")),
            )
            config = data.get("config", {"mappings": {"off": []}})
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"The export is incomplete or malformed ({err}).") from None
        for acc_name, kind, settings in accounts:
            with self._session() as s:
                existing = s.scalar(select(Account).where(Account.name == acc_name))
            if existing is None:
                self.add_account(kind, acc_name, settings)
            elif existing.kind != kind:
                raise ConfigError(
                    f"Account {acc_name!r} exists here but is a {existing.kind}, not a {kind}."
                )
        self.create_connection(new_name, accounts[0][0], accounts[1][0], options)
        with self._session() as s, s.begin():
            self._connection(s, new_name).config = json.dumps(config)
        return self.show_connection(new_name)

    # --- syncing ------------------------------------------------------------------------------

    def sync(
        self,
        names: Sequence[str] = (),
        *,
        dry_run: bool = False,
        confirm: bool = False,
        progress: Progress | None = None,
    ) -> list[RunReport]:
        with self._session() as s:
            if names:
                conns = [self._connection(s, n) for n in names]
            else:
                conns = list(s.scalars(select(Connection).order_by(Connection.name)))
        reports = []
        for conn in conns:
            if conn.paused:
                reports.append(
                    RunReport(
                        connection=conn.name,
                        status="paused",
                        message="Paused: nothing read or written.",
                    )
                )
                continue
            reports.append(
                self._sync_one(conn, dry_run=dry_run, confirm=confirm, progress=progress)
            )
        return reports

    def _sync_one(
        self, conn: Connection, *, dry_run: bool, confirm: bool, progress: Progress | None
    ) -> RunReport:
        with self._session() as s:
            acc_a, acc_b = s.get(Account, conn.account_a_id), s.get(Account, conn.account_b_id)
        assert acc_a is not None and acc_b is not None
        apps: dict[Side, Connector] = {}
        try:
            apps = {Side.A: self.connector(acc_a), Side.B: self.connector(acc_b)}
            schema_a, schema_b = apps[Side.A].schema(), apps[Side.B].schema()
            config = json.loads(conn.config or "{}")
            mappings = default_mappings(
                schema_a,
                schema_b,
                segments=apps[Side.A].info.capabilities.segments
                and apps[Side.B].info.capabilities.segments,
                region=conn.phone_region,
                off=config.get("mappings", {}).get("off", ()),
            )
        except AuthExpired as err:
            return RunReport(connection=conn.name, status="auth", dry_run=dry_run, message=str(err))
        except PairsyncError as err:
            return RunReport(
                connection=conn.name, status="failed", dry_run=dry_run, message=str(err)
            )
        settings = Settings(
            direction=Direction(conn.direction),
            winner=Side(conn.winner),
            avoid_duplicates=conn.avoid_duplicates,
            propagate_clears=conn.propagate_clears,
            trash=conn.trash,
            guard_max_writes=conn.guard_max_writes,
            guard_shrink_percent=conn.guard_shrink_percent,
        )
        try:
            run = SyncRun(
                conn.name,
                SyncState(self.store.sessions, conn.id),
                apps,
                mappings,
                settings,
                progress,
            )
            return run.run(dry_run=dry_run, confirm=confirm)
        finally:
            for app in apps.values():
                app.close()

    # --- health ----------------------------------------------------------------------------

    def health(self, name: str) -> dict[str, Any]:
        with self._session() as s:
            conn = self._connection(s, name)
            cid = conn.id
            in_sync = s.scalar(
                select(func.count()).where(Binding.connection_id == cid, Binding.state == "active")
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
            excluded = [
                {"side": side, "record_id": rid, "name": nm, "reason": reason}
                for side, rid, nm, status, reason in records
                if status == "excluded"
            ]
            duplicates = [
                {"side": side, "record_id": rid, "name": nm, "reason": reason}
                for side, rid, nm, status, reason in records
                if status == "duplicate"
            ]
            deleted = [e for e in excluded if e["reason"].startswith("deleted in")]
            failures = s.scalars(
                select(Failure)
                .where(Failure.connection_id == cid)
                .order_by(Failure.code, Failure.name)
            ).all()
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
            conflict_rows = s.scalars(
                select(ConflictEntry)
                .where(ConflictEntry.connection_id == cid)
                .order_by(ConflictEntry.id.desc())
                .limit(500)
            ).all()
            conflicts = [
                {
                    "field": c.field,
                    "value_a": json.loads(c.value_a),
                    "value_b": json.loads(c.value_b),
                    "winner": c.winner,
                    "at": c.at.isoformat(),
                    "binding": c.binding_id,
                }
                for c in conflict_rows
            ]
            runs = s.scalars(
                select(Run).where(Run.connection_id == cid).order_by(Run.id.desc()).limit(20)
            ).all()
            journal_count = s.scalar(select(func.count()).where(JournalEntry.connection_id == cid))
        return {
            "connection": name,
            "paused": conn.paused,
            "counts": {
                "in_sync": int(in_sync or 0),
                "excluded": len(excluded),
                "duplicates": len(duplicates),
                "failed": len(failed),
                "deleted_other_side": int(tombstones or 0),
            },
            "failed": failed,
            "excluded": excluded,
            "duplicates": duplicates,
            "deleted_other_side": deleted,
            "conflicts": conflicts,
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


def parse_on_off(value: str) -> bool:
    try:
        return ON_OFF[value.lower()]
    except KeyError:
        raise ConfigError(f"Expected on or off, not {value!r}.") from None
