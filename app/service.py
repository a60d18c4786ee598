"""The one facade both fronts (CLI, GUI) call: accounts, connections, sync runs, health.

It returns plain data (dicts and dataclasses) and raises typed errors (``app.errors``); it
never prints and never imports Qt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.catalogue import AccountCheck, AppEntry, catalogue
from app.connectors.base import Connector
from app.connectors.registry import app_kind, normalize_settings, storage_of
from app.engine.sync import Progress, RunReport, Settings, SyncRun
from app.engine.undo import Reverter, UndoReport
from app.errors import AuthExpired, ConfigError, PairsyncError, Unavailable
from app.mapping.compat import compatibility
from app.mapping.config import (
    CustomMapping,
    MappingConfig,
    MappingView,
    active_mappings,
    add_custom,
    build_views,
    parse_values,
    remove_custom,
    toggle,
)
from app.mapping.fields import Direction
from app.model import FieldSpec, Schema, Side
from app.paths import AppPaths, app_paths
from app.preview import Preview, PreviewRun
from app.rules import edit as rule_edit
from app.rules.evaluate import RuleSet
from app.rules.model import (
    Rule,
    RuleDraft,
    mirror_problem,
    rules_from_config,
    rules_to_config,
)
from app.run_lock import ConnectionBusy, writer_lock
from app.schedule import (
    MAX_INTERVAL,
    MIN_INTERVAL,
    ConnectionState,
    RunFacts,
    ScheduleEntry,
    next_run,
)
from app.secrets import SecretStore
from app.status import ConnectionSummary, connection_status
from app.store.catalog import (
    CONFLICT_DAYS,
    Catalog,
    ConflictRow,
    ContactRow,
    FailureRow,
    HealthQueries,
    JournalRowView,
    RunRow,
)
from app.store.db import Store
from app.store.integrity import Backup, Restored, list_backups, restore
from app.store.integrity import DatabaseDamaged as DatabaseDamaged  # for the fronts
from app.store.models import Account, Connection, utcnow
from app.store.state import SyncState

EXPORT_VERSION = 1
ON_OFF = {"on": True, "off": False}


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    direction: str = "two-way"
    winner: str = "a"
    avoid_duplicates: bool = True
    unsubscribes: bool = False
    unsubscribe_opt_out: bool = False
    trash: bool = False
    propagate_clears: bool = True
    guard_max_writes: int = 500
    phone_region: str = ""


OPTION_NAMES = frozenset(ConnectionOptions.__dataclass_fields__)


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
        self.home = None if home is None else str(home)
        """The folder asked for (None: PAIRSYNC_HOME or the platform's folders)."""
        self.paths: AppPaths = app_paths(home).ensure()
        self.store = Store(self.paths.database)
        self.catalog = Catalog(self.store.sessions)
        self.secrets = SecretStore(allow_insecure=allow_insecure_keyring)

    def close(self) -> None:
        self.store.backup_if_due()  # after configuration changes (app.store.integrity)
        self.store.close()

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
        if self.catalog.find_account(name) is not None:
            raise ConfigError(f"An account named {name!r} already exists.")
        if spec.verify is not None:
            values = spec.verify(values, secret)
        if secret:
            self.secrets.set(name, secret)
        return _account_json(self.catalog.add_account(name, kind, values, bool(secret)))

    def list_accounts(self) -> list[dict[str, Any]]:
        return [_account_json(a) for a in self.catalog.accounts()]

    def remove_account(self, name: str) -> None:
        acc = self.catalog.remove_account(name)
        if acc.has_secret:
            self.secrets.delete(name)

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
        values = asdict(options) | {"phone_region": options.phone_region.upper()}
        self.catalog.add_connection(
            name, account_a, account_b, config=json.dumps({"mappings": {"off": []}}), **values
        )
        return self.show_connection(name)

    def _connection_json(self, conn: Connection) -> dict[str, Any]:
        a = self.catalog.account_by_id(conn.account_a_id)
        b = self.catalog.account_by_id(conn.account_b_id)
        last = self.catalog.last_run(conn.id)
        return {
            "name": conn.name,
            "a": {"account": a.name, "kind": a.kind},
            "b": {"account": b.name, "kind": b.kind},
            "direction": conn.direction,
            "winner": conn.winner,
            "avoid_duplicates": conn.avoid_duplicates,
            "unsubscribes": conn.unsubscribes,
            "unsubscribe_opt_out": conn.unsubscribe_opt_out,
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
        return [self._connection_json(c) for c in self.catalog.connections()]

    def show_connection(self, name: str) -> dict[str, Any]:
        return self._connection_json(self.catalog.connection(name))

    def update_connection(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change a connection's settings (direction, winner, options). Never touches data;
        the next run re-plans from the local index when the change affects what flows."""
        unknown = set(changes) - OPTION_NAMES
        if unknown:
            raise ConfigError(f"Unknown connection setting: {', '.join(sorted(unknown))}.")
        conn = self.catalog.connection(name)
        current = {k: getattr(conn, k) for k in OPTION_NAMES}
        options = ConnectionOptions(**(current | changes))
        _validate_options(options)
        if "direction" in changes and changes["direction"] != conn.direction:
            rules = rules_from_config(json.loads(conn.config or "{}"))
            if any(r.actions for r in rules):
                _conn, apps = self._with_apps(name)
                clash = rule_edit.rule_clash(
                    rules,
                    self._views(conn, apps, Direction(options.direction)),
                    Direction(options.direction),
                )
                if clash:
                    raise ConfigError(clash)
        values = asdict(options) | {"phone_region": options.phone_region.upper()}
        self.catalog.update_connection(name, **values)
        return self.show_connection(name)

    def set_paused(self, name: str, paused: bool) -> None:
        values: dict[str, Any] = {"paused": paused}
        if not paused:
            values["needs_full_read"] = True  # SPEC §9: a run after pausing reads both fully
        self.catalog.update_connection(name, **values)

    def delete_connection(self, name: str) -> None:
        """Forget a connection and its sync state. The apps' contacts are never touched."""
        self.catalog.delete_connection(name)

    def export_connection(self, name: str) -> dict[str, Any]:
        conn = self.catalog.connection(name)
        data = self._connection_json(conn)
        for key in ("paused", "last_run"):
            data.pop(key)
        for side, account_id in (("a", conn.account_a_id), ("b", conn.account_b_id)):
            acc = self.catalog.account_by_id(account_id)
            data[side] = {
                "account": acc.name,
                "kind": acc.kind,
                "settings": json.loads(acc.settings),
            }
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
                unsubscribe_opt_out=bool(data.get("unsubscribe_opt_out", False)),
                trash=bool(data.get("trash", False)),
                propagate_clears=bool(data.get("propagate_clears", True)),
                guard_max_writes=int(data.get("guard_max_writes", 500)),
                phone_region=str(data.get("phone_region", "")),
            )
            config = dict(data.get("config") or {"mappings": {"off": []}})
            MappingConfig.from_json(config.get("mappings"))  # refuse a malformed one now
            rules_from_config(config)
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"The export is incomplete or malformed ({err}).") from None
        for acc_name, kind, settings in accounts:
            existing = self.catalog.find_account(acc_name)
            if existing is None:
                self.add_account(kind, acc_name, settings)
            elif existing.kind != kind:
                raise ConfigError(
                    f"Account {acc_name!r} exists here but is a {existing.kind}, not a {kind}."
                )
        self.create_connection(new_name, accounts[0][0], accounts[1][0], options)
        self.catalog.update_connection(new_name, config=json.dumps(config))
        return self.show_connection(new_name)

    # --- syncing ------------------------------------------------------------------------------

    def sync(
        self,
        names: Sequence[str] = (),
        *,
        dry_run: bool = False,
        confirm: bool = False,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[RunReport]:
        """Sync connections now; ``should_stop`` lets the desktop app cancel a run at its
        next safe point (status cancelled, nothing half-written)."""
        conns = [self.catalog.connection(n) for n in names] if names else self.catalog.connections()
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
                self._sync_one(
                    conn,
                    dry_run=dry_run,
                    confirm=confirm,
                    progress=progress,
                    should_stop=should_stop,
                )
            )
        return reports

    def _sync_one(
        self,
        conn: Connection,
        *,
        dry_run: bool,
        confirm: bool,
        progress: Progress | None,
        should_stop: Callable[[], bool] | None = None,
    ) -> RunReport:
        acc_a = self.catalog.account_by_id(conn.account_a_id)
        acc_b = self.catalog.account_by_id(conn.account_b_id)
        apps: dict[Side, Connector] = {}
        try:
            apps = {Side.A: self.connector(acc_a), Side.B: self.connector(acc_b)}
            mappings = active_mappings(self._views(conn, apps))
            rules = _rules(conn)
        except AuthExpired as err:
            return self._not_started(conn, "auth", str(err), dry_run)
        except PairsyncError as err:
            return self._not_started(conn, "failed", str(err), dry_run)
        try:
            run = SyncRun(
                conn.name,
                SyncState(self.store.sessions, conn.id),
                apps,
                mappings,
                self._run_settings(conn),
                progress,
                rules=rules,
                should_stop=should_stop,
            )
            if dry_run:
                return run.run(dry_run=True, confirm=confirm)
            with self._writer(conn):
                report = run.run(dry_run=False, confirm=confirm)
            self.store.backup_if_due()
            return report
        except ConnectionBusy as err:
            return RunReport(connection=conn.name, status="busy", message=str(err))
        finally:
            for app in apps.values():
                app.close()

    def _writer(self, conn: Connection) -> AbstractContextManager[None]:
        """The connection's one-writer lock and its two apps' storage locks
        (``app.run_lock``), held while a run writes."""
        storages = [
            storage_of(acc.kind, json.loads(acc.settings))
            for acc in (
                self.catalog.account_by_id(conn.account_a_id),
                self.catalog.account_by_id(conn.account_b_id),
            )
        ]
        return writer_lock(self.paths.data / "locks", conn.id, conn.name, storages)

    # --- mappings ---------------------------------------------------------------------------

    def _views(
        self,
        conn: Connection,
        apps: dict[Side, Connector],
        direction: Direction | None = None,
        config: MappingConfig | None = None,
    ) -> list[MappingView]:
        return build_views(
            Schema(apps[Side.A].fields()),
            Schema(apps[Side.B].fields()),
            config or _mapping_config(conn),
            direction or Direction(conn.direction),
            app_a=apps[Side.A].info.name,
            app_b=apps[Side.B].info.name,
            segments=apps[Side.A].info.capabilities.segments
            and apps[Side.B].info.capabilities.segments,
            region=conn.phone_region,
        )

    def _with_apps(self, name: str) -> tuple[Connection, dict[Side, Connector]]:
        conn = self.catalog.connection(name)
        apps = {
            Side.A: self.connector(self.catalog.account_by_id(conn.account_a_id)),
            Side.B: self.connector(self.catalog.account_by_id(conn.account_b_id)),
        }
        return conn, apps

    def mappings(self, name: str) -> list[dict[str, Any]]:
        conn, apps = self._with_apps(name)
        return [v.as_json() for v in self._views(conn, apps)]

    def fields(self, name: str) -> dict[str, Any]:
        """Both apps' fields, for picking custom mappings."""
        _conn, apps = self._with_apps(name)
        out: dict[str, Any] = {}
        for side, app in apps.items():
            schema = app.schema()
            out[side.value] = {
                "app": app.info.name,
                "fields": [
                    {
                        "key": f.key,
                        "label": f.label,
                        "type": f.type.value,
                        "multi": f.multi,
                        "writable": f.writable,
                        "required": f.required,
                        "choices": list(f.choices),
                    }
                    for f in schema.fields
                ],
                "segments": list(schema.segments),
            }
        return out

    def add_mapping(
        self,
        name: str,
        a_field: str,
        b_field: str,
        *,
        direction: str = "two-way",
        values: str = "",
        values_back: str = "",
        pick_label: str = "",
    ) -> dict[str, Any]:
        conn, apps = self._with_apps(name)
        try:
            own = Direction(direction)
        except ValueError:
            raise ConfigError("Direction must be two-way, a-to-b or b-to-a.") from None
        custom = CustomMapping(
            a_field,
            b_field,
            own,
            parse_values(values),
            parse_values(values_back),
            pick_label.strip().casefold(),
        )
        config = add_custom(
            _mapping_config(conn),
            self._views(conn, apps),
            Schema(apps[Side.A].fields()),
            Schema(apps[Side.B].fields()),
            custom,
            Direction(conn.direction),
            app_a=apps[Side.A].info.name,
            app_b=apps[Side.B].info.name,
        )
        self._check_rules_allow(conn, apps, config)
        self._save_mappings(conn, config)
        return next(v for v in self.mappings(name) if v["key"] == custom.key)

    def toggle_mapping(self, name: str, key: str, on: bool) -> None:
        conn, apps = self._with_apps(name)
        config = toggle(_mapping_config(conn), self._views(conn, apps), key, on)
        if on:
            self._check_rules_allow(conn, apps, config)
        self._save_mappings(conn, config)

    def _check_rules_allow(
        self, conn: Connection, apps: dict[Side, Connector], config: MappingConfig
    ) -> None:
        """A mapping may not write a field an enabled rule sets (SPEC §3)."""
        clash = rule_edit.rule_clash(
            _rules(conn), self._views(conn, apps, config=config), Direction(conn.direction)
        )
        if clash:
            raise ConfigError(clash)

    def remove_mapping(self, name: str, key: str) -> None:
        conn = self.catalog.connection(name)
        self._save_mappings(conn, remove_custom(_mapping_config(conn), key))

    def _save_mappings(self, conn: Connection, config: MappingConfig) -> None:
        data = json.loads(conn.config or "{}")
        data["mappings"] = config.to_json()
        self.catalog.update_connection(conn.name, config=json.dumps(data))

    # --- rules ------------------------------------------------------------------------------

    def rules(self, name: str, *, counts: bool = True) -> list[dict[str, Any]]:
        """The rules, top first, as sentences, with what each one matches now (counted from
        the local index: no app is read)."""
        conn = self.catalog.connection(name)
        rules = _rules(conn)
        names, specs = self._rule_context(conn)
        ruleset = RuleSet(rules, Direction(conn.direction), specs)
        found = None
        if counts:
            found = rule_edit.count_matches(
                ruleset,
                {
                    side: self.catalog.index_records(conn.id, side.value)
                    for side in (Side.A, Side.B)
                },
            )
        return [rule_edit.rule_view(r, i, ruleset, names, found) for i, r in enumerate(rules, 1)]

    def _rule_context(self, conn: Connection) -> tuple[dict[Side, str], dict[Side, dict[str, Any]]]:
        """App names and field specs for sentences and typed filters; account names stand in
        when an app cannot be opened right now (e.g. it needs signing in again)."""
        names: dict[Side, str] = {}
        specs: dict[Side, dict[str, Any]] = {}
        for side, account_id in ((Side.A, conn.account_a_id), (Side.B, conn.account_b_id)):
            acc = self.catalog.account_by_id(account_id)
            names[side], specs[side] = acc.name, {}
            try:
                app = self.connector(acc)
                try:
                    specs[side] = {f.key: f for f in app.fields()}
                finally:
                    app.close()
            except PairsyncError:
                pass
        return names, specs

    def add_rule(self, name: str, draft: RuleDraft, position: int | None = None) -> dict[str, Any]:
        conn, apps = self._with_apps(name)
        rule = draft.build()
        self._check_rule(conn, apps, rule)
        rules = _rules(conn)
        at = len(rules) if position is None else position - 1
        if not 0 <= at <= len(rules):
            raise ConfigError(f"A position is between 1 and {len(rules) + 1}.")
        rules.insert(at, rule)
        self._save_rules(conn, rules)
        return self.rules(name)[at]

    def _check_rule(self, conn: Connection, apps: dict[Side, Connector], rule: Rule) -> None:
        rule_edit.check_rule(
            rule,
            {s: Schema(a.fields()) for s, a in apps.items()},
            {s: a.info.capabilities for s, a in apps.items()},
            self._views(conn, apps),
            {s: a.info.name for s, a in apps.items()},
        )

    def remove_rule(self, name: str, ref: str) -> None:
        conn = self.catalog.connection(name)
        rules = _rules(conn)
        del rules[rule_edit.find(rules, ref)]
        self._save_rules(conn, rules)

    def move_rule(self, name: str, ref: str, position: int) -> None:
        conn = self.catalog.connection(name)
        self._save_rules(conn, rule_edit.moved(_rules(conn), ref, position))

    def set_rule(
        self,
        name: str,
        ref: str,
        *,
        enabled: bool | None = None,
        undo: bool | None = None,
        other_way: bool | None = None,
    ) -> dict[str, Any]:
        """Turn a rule on or off, or flip its Undo / Other-way-around toggles."""
        conn = self.catalog.connection(name)
        rules = _rules(conn)
        i = rule_edit.find(rules, ref)
        old = rules[i]
        rule = replace(
            old,
            enabled=old.enabled if enabled is None else enabled,
            undo=old.undo if undo is None else undo,
            other_way=old.other_way if other_way is None else other_way,
        )
        if rule.other_way and not old.other_way:
            why = mirror_problem(rule)
            if why:
                raise ConfigError(f"“Other way around” is not possible here: {why}.")
        if rule.enabled and (not old.enabled or rule.other_way):
            _conn, apps = self._with_apps(name)
            self._check_rule(conn, apps, rule)
        rules[i] = rule
        self._save_rules(conn, rules)
        return self.rules(name, counts=False)[i]

    def _save_rules(self, conn: Connection, rules: list[Rule]) -> None:
        data = json.loads(conn.config or "{}")
        data["rules"] = rules_to_config(rules)
        self.catalog.update_connection(conn.name, config=json.dumps(data, ensure_ascii=False))

    # --- health ----------------------------------------------------------------------------

    def health(self, name: str) -> dict[str, Any]:
        return self.catalog.health(self.catalog.connection(name))

    # --- desktop app: wizard and dashboard ----------------------------------------------------
    # What the desktop app needs beyond the CLI's commands. Qt-free like the rest: the GUI
    # calls these on worker threads (each with its own Service) and shows what they return.

    def app_catalogue(self, query: str = "") -> list[AppEntry]:
        """The wizard's list of apps, filtered as the user types (names and aliases)."""
        return catalogue(query)

    def check_new_account(
        self,
        kind: str,
        settings: Mapping[str, str],
        secret: str | None = None,
        progress: Progress | None = None,
    ) -> AccountCheck:
        """Connect to an account that is not stored yet and read its schema: the wizard's
        proof that the folder, file or login works, before anything is saved. Raises a
        ``PairsyncError`` whose message says what is wrong, in words."""
        spec = app_kind(kind)
        values = normalize_settings(spec, settings)
        missing = [k for k in spec.settings if not str(values.get(k, "")).strip()]
        if missing:
            raise ConfigError(f"{spec.name} needs: {', '.join(missing)}.")
        spec.check(values)
        if spec.needs_secret and not secret:
            raise ConfigError(f"{spec.name} needs a password or token.")
        if progress is not None:
            progress(f"Connecting to {spec.name}", 0, 0)
        if spec.verify is not None:
            values = spec.verify(values, secret)
        return self._read_account(kind, spec.build(values, secret), values, progress)

    def check_account(self, name: str, progress: Progress | None = None) -> AccountCheck:
        """Connect to a stored account and read its schema (re-using a connected account)."""
        acc = self.catalog.account(name)
        if progress is not None:
            progress(f"Connecting to {app_kind(acc.kind).name}", 0, 0)
        check = self._read_account(
            acc.kind, self.connector(acc), json.loads(acc.settings), progress
        )
        return replace(check, account=acc.name)

    def _read_account(
        self,
        kind: str,
        app: Connector,
        settings: Mapping[str, str],
        progress: Progress | None,
    ) -> AccountCheck:
        try:
            if progress is not None:
                progress(f"Reading {app.info.name}", 0, 0)
            schema = app.schema()
            contacts = len(app.list_versions())
        except PairsyncError:
            raise
        except OSError as err:
            raise Unavailable(
                f"Could not read {app.info.name}: {err.strerror or err}.", raw=str(err)
            ) from None
        finally:
            app.close()
        return AccountCheck(
            kind=kind,
            app=app.info.name,
            settings=dict(settings),
            contacts=contacts,
            fields=len(schema.fields),
            segments=tuple(schema.segments),
        )

    def suggest_account_name(
        self, kind: str, settings: Mapping[str, str], *, replacing: str = ""
    ) -> str:
        """A name for a new account that no account has yet: the folder's or file's name,
        or the server's host name, else the app's name ("Contacts", "Contacts 2").
        ``replacing`` names an account the caller is about to replace (counted as free)."""
        base = ""
        if settings.get("path", "").strip():
            path = Path(settings["path"].strip().rstrip("/\\")).expanduser()
            base = path.stem if path.suffix else path.name
        elif settings.get("url", "").strip():
            base = urlsplit(settings["url"].strip()).hostname or ""
        base = base.strip() or app_kind(kind).name
        taken = {a.name for a in self.catalog.accounts()} - {replacing}
        return self._unique_name(base, taken)

    def suggest_connection_name(self, account_a: str, account_b: str) -> str:
        return self._unique_name(
            f"{account_a} ⇄ {account_b}", {c.name for c in self.catalog.connections()}
        )

    def rename_connection(self, name: str, new_name: str) -> dict[str, Any]:
        """Give a connection another name. Nothing else changes: its runs, bindings,
        history and settings stay with it (they hang on its id)."""
        new_name = new_name.strip()
        if not new_name:
            raise ConfigError("A connection needs a name.")
        if new_name != name:
            self.catalog.rename_connection(name, new_name)
        return self.show_connection(new_name)

    def connection_overview(self) -> list[ConnectionSummary]:
        """Every connection with its status chip (from the database only: cheap enough to
        refresh after each run)."""
        out = []
        for conn in self.catalog.connections():
            a = self.catalog.account_by_id(conn.account_a_id)
            b = self.catalog.account_by_id(conn.account_b_id)
            last = self.catalog.last_run(conn.id)
            facts = None
            if last is not None and last.status != "running":
                facts = {
                    "status": last.status,
                    "counts": json.loads(last.counts or "{}"),
                    "message": last.message,
                    "finished_at": last.finished_at,
                }
            out.append(
                ConnectionSummary(
                    name=conn.name,
                    account_a=a.name,
                    account_b=b.name,
                    kind_a=a.kind,
                    kind_b=b.kind,
                    direction=conn.direction,
                    paused=conn.paused,
                    status=connection_status(conn.paused, facts),
                    last_run_at=conn.last_run_at,
                )
            )
        return out

    def mapping_choices(self, name: str, side: str, key: str) -> dict[str, Any]:
        """For "Add custom mapping": the field picked on ``side`` and, for every field of the
        other app, whether the pair can be mapped now and, if not, why (SPEC §5) — the same
        checks ``add_mapping`` makes, so what the editor offers is what it accepts."""
        conn, apps = self._with_apps(name)
        try:
            picked_side = Side(side)
        except ValueError:
            raise ConfigError("A side is a or b.") from None
        schemas = {s: Schema(app.fields()) for s, app in apps.items()}
        names = {s: app.info.name for s, app in apps.items()}
        picked = schemas[picked_side].get(key)
        if picked is None:
            raise ConfigError(f"{names[picked_side]} has no field {key!r}.")
        views = self._views(conn, apps)
        taken = frozenset(
            {f"a:{k}" for v in views if v.enabled for k in v.fields_a}
            | {f"b:{k}" for v in views if v.enabled for k in v.fields_b}
        )
        direction = Direction(conn.direction)
        other = picked_side.other
        out = []
        for spec in schemas[other].fields:
            a, b = (picked, spec) if picked_side is Side.A else (spec, picked)
            compat = compatibility(a, b, app_a=names[Side.A], app_b=names[Side.B], taken=taken)
            into_b = compat.a_to_b and direction.writes(Side.B)
            into_a = compat.b_to_a and direction.writes(Side.A)
            possible, reason = compat.possible, compat.reason
            if possible and not (into_a or into_b):
                possible = False
                reason = (
                    f"The connection is {direction.value} and these fields can only flow the "
                    "other way."
                )
            out.append(
                {
                    **self._field_json(spec),
                    "possible": possible,
                    "a_to_b": into_b,
                    "b_to_a": into_a,
                    "reason": reason,
                    "needs_values": compat.needs_values,
                }
            )
        return {"side": picked_side.value, "field": self._field_json(picked), "other": out}

    def preview(
        self,
        name: str,
        *,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Preview:
        """A dry run of one connection, broken down for the wizard's last page: the same
        counts as ``pairsync sync NAME --dry-run --json`` plus exclusions by reason and the
        failures that are predictable now. Runs even when the connection is paused (the
        wizard keeps a new connection paused until the user presses Finish); it never
        writes to either app."""
        conn = self.catalog.connection(name)
        acc_a = self.catalog.account_by_id(conn.account_a_id)
        acc_b = self.catalog.account_by_id(conn.account_b_id)
        apps: dict[Side, Connector] = {}
        try:
            apps[Side.A] = self.connector(acc_a)
            apps[Side.B] = self.connector(acc_b)
            mappings = active_mappings(self._views(conn, apps))
            rules = _rules(conn)
        except PairsyncError as err:
            for app in apps.values():
                app.close()
            status = "auth" if isinstance(err, AuthExpired) else "failed"
            report = RunReport(connection=conn.name, status=status, dry_run=True, message=str(err))
            return Preview(report=report.as_json(), apps={"a": acc_a.name, "b": acc_b.name})
        settings = self._run_settings(conn)
        try:
            run = PreviewRun(
                conn.name,
                SyncState(self.store.sessions, conn.id),
                apps,
                mappings,
                settings,
                progress,
                rules=rules,
                should_stop=should_stop,
            )
            return run.preview()
        finally:
            for app in apps.values():
                app.close()

    @staticmethod
    def _unique_name(base: str, taken: set[str]) -> str:
        """``base``, or ``base 2``, ``base 3``… whichever is free."""
        name, n = base, 2
        while name in taken:
            name, n = f"{base} {n}", n + 1
        return name

    @staticmethod
    def _field_json(spec: FieldSpec) -> dict[str, Any]:
        return {
            "key": spec.key,
            "label": spec.label,
            "type": spec.type.value,
            "multi": spec.multi,
            "writable": spec.writable,
            "required": spec.required,
            "choices": list(spec.choices),
        }

    # --- desktop app: scheduler, health, activity ----------------------------------------------
    # What the background scheduler, the tray, the Health and Activity tabs and
    # re-authorization need. Qt-free like the rest: the scheduler's worker thread has its own
    # Service and runs syncs, undos and "use the other value" through it; the views page
    # through the Health queries below (keyset pages, never whole lists).

    @property
    def health_queries(self) -> HealthQueries:
        return HealthQueries(self.store.sessions)

    def _run_settings(self, conn: Connection) -> Settings:
        return Settings(
            direction=Direction(conn.direction),
            winner=Side(conn.winner),
            avoid_duplicates=conn.avoid_duplicates,
            propagate_clears=conn.propagate_clears,
            trash=conn.trash,
            unsubscribes=conn.unsubscribes,
            unsubscribe_opt_out=conn.unsubscribe_opt_out,
            guard_max_writes=conn.guard_max_writes,
            guard_shrink_percent=conn.guard_shrink_percent,
        )

    def _run_facts(self, conn: Connection) -> list[RunFacts]:
        return [
            RunFacts(
                r.status,
                r.started_at,
                r.finished_at,
                float(r.counts.get("retry_after", 0) or 0),
                r.message,
                int(r.counts.get("failed", 0) or 0),
            )
            for r in self.health_queries.recent_sync_runs(conn.id)
        ]

    def _not_started(self, conn: Connection, status: str, message: str, dry_run: bool) -> RunReport:
        """A run that could not start (an account needs signing in, an app cannot be
        opened) is recorded like any other run: Activity lists it, the status chip shows
        it, and the schedule holds (sign-in) or backs off instead of retrying blindly."""
        report = RunReport(connection=conn.name, status=status, dry_run=dry_run, message=message)
        if not dry_run:
            state = SyncState(self.store.sessions, conn.id)
            run_id, _ = state.begin_run(False)
            state.finish_run(run_id, status, report.as_json(), message, wrote=False)
        return report

    def schedule(self) -> list[ScheduleEntry]:
        """When each connection syncs next, derived from its runs in the database (so it
        survives restarts and sleep), with back-off after whole-run failures and holds for
        paused connections, sign-in and the mass-change guard (``app.schedule``)."""
        return [
            next_run(c.name, c.interval_minutes, c.paused, self._run_facts(c), c.created_at)
            for c in self.catalog.connections()
        ]

    def set_interval(self, name: str, minutes: int) -> int:
        """How often the desktop app syncs this connection (1–60 minutes)."""
        if not MIN_INTERVAL <= int(minutes) <= MAX_INTERVAL:
            raise ConfigError(f"The interval is between {MIN_INTERVAL} and {MAX_INTERVAL} minutes.")
        self.catalog.update_connection(name, interval_minutes=int(minutes))
        return int(minutes)

    def connection_state(self, name: str) -> ConnectionState:
        """The Health chip's facts for one connection: status with the live failure count,
        the schedule, and which accounts to sign in to again."""
        conn = self.catalog.connection(name)
        runs = self._run_facts(conn)
        queries = self.health_queries
        failed = queries.failures_count(conn.id, ignored=False)
        facts = None
        if runs and runs[0].status != "running":
            last_status = runs[0].status
            if last_status == "failed":
                # Some contacts failed (the live count decides, below), or, with no contact
                # failed, the run could not even start: an app that cannot be opened.
                last_status = "ok" if runs[0].failed else "unavailable"
            facts = {
                "status": last_status,
                "counts": {"failed": failed, "retry_after": runs[0].retry_after},
                "message": runs[0].message,
                "finished_at": runs[0].ended,
            }
        status = connection_status(conn.paused, facts)
        sign_in: tuple[str, ...] = ()
        if status.code == "auth":
            accounts = [
                self.catalog.account_by_id(i) for i in (conn.account_a_id, conn.account_b_id)
            ]
            with_secret = [a.name for a in accounts if app_kind(a.kind).needs_secret]
            sign_in = tuple(with_secret or [a.name for a in accounts])
        return ConnectionState(
            name=conn.name,
            status=status,
            schedule=next_run(conn.name, conn.interval_minutes, conn.paused, runs, conn.created_at),
            ignored=queries.failures_count(conn.id, ignored=True),
            sign_in=sign_in,
            last_run_at=runs[0].ended if runs else None,
        )

    def health_counts(self, name: str) -> dict[str, int]:
        """The numbers on the Health tabs."""
        cid = self.catalog.connection(name).id
        q = self.health_queries
        since = utcnow() - timedelta(days=CONFLICT_DAYS)
        return {
            "in_sync": q.contacts_count(cid, "bound", side="a"),
            "excluded": q.contacts_count(cid, "excluded"),
            "duplicates": q.contacts_count(cid, "duplicate"),
            "failed": q.failures_count(cid, ignored=False),
            "ignored": q.failures_count(cid, ignored=True),
            "conflicts": q.conflicts_count(cid, since=since),
        }

    def contacts_page(
        self,
        name: str,
        status: str,
        *,
        search: str = "",
        reason: str | None = None,
        after: tuple[str, str, str] | None = None,
        limit: int = 200,
    ) -> list[ContactRow]:
        """One page of In sync (status bound: one row per pair, side A), Excluded or
        Duplicates, ordered by name, filtered by a search on name and emails."""
        cid = self.catalog.connection(name).id
        return self.health_queries.contacts_page(
            cid,
            status,
            side="a" if status == "bound" else None,
            search=search,
            reason=reason,
            after=after,
            limit=limit,
        )

    def excluded_reasons(self, name: str) -> list[tuple[str, int]]:
        return self.health_queries.reasons(self.catalog.connection(name).id, "excluded")

    def failure_groups(
        self, name: str, *, search: str = "", ignored: bool = False
    ) -> list[tuple[str, int]]:
        """Failed contacts grouped by reason code, biggest group first."""
        cid = self.catalog.connection(name).id
        return self.health_queries.failure_groups(cid, search=search, ignored=ignored)

    def failures_page(
        self,
        name: str,
        code: str,
        *,
        search: str = "",
        ignored: bool = False,
        after: tuple[str, int] | None = None,
        limit: int = 200,
    ) -> list[FailureRow]:
        cid = self.catalog.connection(name).id
        return self.health_queries.failures_page(
            cid, code, search=search, ignored=ignored, after=after, limit=limit
        )

    def failure_raw(self, name: str, failure_id: int) -> str:
        return self.health_queries.failure_raw(self.catalog.connection(name).id, failure_id)

    def retry_failures(self, name: str, ids: Sequence[int] = (), code: str | None = None) -> int:
        """ "Retry now" (SPEC §9): the failures are due on the next run, which the desktop
        app starts at once. Retrying an ignored failure stops ignoring it."""
        cid = self.catalog.connection(name).id
        return self.health_queries.retry_failures(cid, ids, code)

    def ignore_failures(self, name: str, ids: Sequence[int], ignored: bool = True) -> int:
        """Ignore: out of the Failed counts and not retried until the contact changes."""
        cid = self.catalog.connection(name).id
        return self.health_queries.ignore_failures(cid, ids, ignored)

    def conflicts_page(
        self, name: str, *, search: str = "", after: int | None = None, limit: int = 200
    ) -> list[ConflictRow]:
        """Field and rule conflicts of the last 30 days, newest first."""
        cid = self.catalog.connection(name).id
        since = utcnow() - timedelta(days=CONFLICT_DAYS)
        return self.health_queries.conflicts_page(
            cid, search=search, since=since, after=after, limit=limit
        )

    def runs_page(self, name: str, *, before: int | None = None, limit: int = 100) -> list[RunRow]:
        """Runs newest first (Activity), dry runs left out."""
        cid = self.catalog.connection(name).id
        return self.health_queries.runs_page(cid, before=before, limit=limit)

    def journal_page(
        self,
        name: str,
        run_id: int,
        *,
        search: str = "",
        created_only: bool = False,
        after: int | None = None,
        limit: int = 200,
    ) -> list[JournalRowView]:
        """The field changes of one run, in the order they were written (SPEC §11)."""
        cid = self.catalog.connection(name).id
        return self.health_queries.journal_page(
            cid, run_id, search=search, created_only=created_only, after=after, limit=limit
        )

    def _reverter(self, conn: Connection) -> tuple[Reverter, dict[Side, Connector]]:
        apps: dict[Side, Connector] = {}
        try:
            apps[Side.A] = self.connector(self.catalog.account_by_id(conn.account_a_id))
            apps[Side.B] = self.connector(self.catalog.account_by_id(conn.account_b_id))
            reverter = Reverter(
                conn.name,
                SyncState(self.store.sessions, conn.id),
                apps,
                active_mappings(self._views(conn, apps)),
                self._run_settings(conn),
                rules=_rules(conn),
            )
        except BaseException:
            for app in apps.values():
                app.close()
            raise
        return reverter, apps

    def undo_run(
        self, name: str, run_id: int, *, record: tuple[str, str] | None = None
    ) -> UndoReport:
        """Undo a run, or one contact's changes in it (``record`` = (side, record id)), as a
        journaled run of its own (SPEC §11). Contacts the run created are kept and put in
        the segment "Pairsync Trash"; fields changed since are left alone and reported."""
        conn = self.catalog.connection(name)
        reverter, apps = self._reverter(conn)
        try:
            with self._writer(conn):
                rec = None if record is None else (Side(record[0]), record[1])
                return reverter.undo(run_id, rec)
        finally:
            for app in apps.values():
                app.close()

    def run_id(self, name: str, run_no: int) -> int:
        """The id of run number ``run_no`` (the number ``pairsync health`` shows)."""
        row = self.health_queries.run_by_number(self.catalog.connection(name).id, run_no)
        if row is None:
            raise ConfigError(f"Connection {name!r} has no run number {run_no}.")
        return row.id

    def use_other_value(self, name: str, conflict_id: int) -> UndoReport:
        """A conflict's losing value, written to both apps as a journaled run (SPEC §6)."""
        conn = self.catalog.connection(name)
        reverter, apps = self._reverter(conn)
        try:
            with self._writer(conn):
                return reverter.use_other(conflict_id)
        finally:
            for app in apps.values():
                app.close()

    def reauthorize(
        self,
        account: str,
        *,
        secret: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Sign in to an account again: replace its secret (and settings, e.g. a moved
        folder) after checking them like ``add_account`` does, keeping every connection
        that uses it with all its configuration. Returns those connections' names, which
        the desktop app then syncs at once."""
        acc = self.catalog.account(account)
        spec = app_kind(acc.kind)
        values = json.loads(acc.settings) | normalize_settings(spec, settings or {})
        missing = [k for k in spec.settings if not str(values.get(k, "")).strip()]
        if missing:
            raise ConfigError(f"{spec.name} needs: {', '.join(missing)}.")
        spec.check(values)
        if spec.needs_secret and not secret:
            raise ConfigError(f"{spec.name} needs a password or token to sign in again.")
        if spec.verify is not None:
            values = spec.verify(values, secret)
        # Proof that the new sign-in works: one authenticated listing, before anything is
        # stored (a stored but wrong password would only fail again at the next run).
        app = spec.build(values, secret)
        try:
            app.list_versions()
        finally:
            app.close()
        if secret:
            self.secrets.set(acc.name, secret)
        self.health_queries.update_account(
            acc.name, settings=json.dumps(values), has_secret=acc.has_secret or bool(secret)
        )
        return self.health_queries.connections_using(acc.id)


def _rules(conn: Connection) -> list[Rule]:
    return rules_from_config(json.loads(conn.config or "{}"))


def _mapping_config(conn: Connection) -> MappingConfig:
    return MappingConfig.from_json(json.loads(conn.config or "{}").get("mappings"))


def _account_json(acc: Account) -> dict[str, Any]:
    return {
        "name": acc.name,
        "kind": acc.kind,
        "settings": json.loads(acc.settings),
        "has_secret": acc.has_secret,
    }


def parse_on_off(value: str) -> bool:
    try:
        return ON_OFF[value.lower()]
    except KeyError:
        raise ConfigError(f"Expected on or off, not {value!r}.") from None


# --- the database itself (usable while it cannot be opened) ---------------------------------


def database_backups(home: str | Path | None = None) -> list[Backup]:
    """The rolling backups of Pairsync's database, newest first."""
    return list_backups(app_paths(home).database)


def restore_database(
    home: str | Path | None = None, backup: str | None = None, *, fresh: bool = False
) -> Restored:
    """Put a backup (default: the newest) in place of the database, or start again empty
    (``fresh``); the replaced file is kept beside it. See ``app.store.integrity``."""
    paths = app_paths(home).ensure()
    return restore(paths.database, Path(backup) if backup else None, fresh=fresh)
