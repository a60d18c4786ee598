"""The one facade both fronts (CLI, GUI) call: accounts, connections, sync runs, health.

It returns plain data (dicts and dataclasses) and raises typed errors (``app.errors``); it
never prints and never imports Qt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from app.connectors.base import Connector
from app.connectors.registry import app_kind, normalize_settings
from app.engine.sync import Progress, RunReport, Settings, SyncRun
from app.errors import AuthExpired, ConfigError, PairsyncError
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
from app.model import Schema, Side
from app.paths import AppPaths, app_paths
from app.rules import edit as rule_edit
from app.rules.evaluate import RuleSet
from app.rules.model import Rule, RuleDraft, rules_from_config, rules_to_config
from app.secrets import SecretStore
from app.store.catalog import Catalog
from app.store.db import Store
from app.store.models import Account, Connection
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
        self.paths: AppPaths = app_paths(home).ensure()
        self.store = Store(self.paths.database)
        self.catalog = Catalog(self.store.sessions)
        self.secrets = SecretStore(allow_insecure=allow_insecure_keyring)

    def close(self) -> None:
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
    ) -> list[RunReport]:
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
                self._sync_one(conn, dry_run=dry_run, confirm=confirm, progress=progress)
            )
        return reports

    def _sync_one(
        self, conn: Connection, *, dry_run: bool, confirm: bool, progress: Progress | None
    ) -> RunReport:
        acc_a = self.catalog.account_by_id(conn.account_a_id)
        acc_b = self.catalog.account_by_id(conn.account_b_id)
        apps: dict[Side, Connector] = {}
        try:
            apps = {Side.A: self.connector(acc_a), Side.B: self.connector(acc_b)}
            mappings = active_mappings(self._views(conn, apps))
            rules = _rules(conn)
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
            unsubscribes=conn.unsubscribes,
            unsubscribe_opt_out=conn.unsubscribe_opt_out,
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
                rules=rules,
            )
            return run.run(dry_run=dry_run, confirm=confirm)
        finally:
            for app in apps.values():
                app.close()

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
