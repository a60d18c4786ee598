"""Connections and their settings: create, show, change, pause, rename, export, import.

A settings change never touches a contact: the next run re-plans from the local index when
the change affects what flows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from app.errors import ConfigError
from app.mapping.config import MappingConfig
from app.mapping.fields import Direction
from app.rules import edit as rule_edit
from app.rules.model import rules_from_config
from app.schedule import MAX_INTERVAL, MIN_INTERVAL
from app.service.accounts import Accounts
from app.service.core import unique_name
from app.status import ConnectionSummary, connection_status
from app.store.models import Connection

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


def parse_on_off(value: str) -> bool:
    try:
        return ON_OFF[value.lower()]
    except KeyError:
        raise ConfigError(f"Expected on or off, not {value!r}.") from None


class Connections(Accounts):
    """Connections: two accounts, a direction, and the settings of how they sync."""

    def create_connection(
        self, name: str, account_a: str, account_b: str, options: ConnectionOptions
    ) -> dict[str, Any]:
        _validate_options(options)
        name = name.strip()
        if not name:
            raise ConfigError("A connection needs a name.")
        values = asdict(options) | {"phone_region": options.phone_region.upper()}
        self._catalog.add_connection(
            name, account_a, account_b, config=json.dumps({"mappings": {"off": []}}), **values
        )
        return self.show_connection(name)

    def _connection_json(self, conn: Connection) -> dict[str, Any]:
        a = self._catalog.account_by_id(conn.account_a_id)
        b = self._catalog.account_by_id(conn.account_b_id)
        last = self._catalog.last_run(conn.id)
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
        return [self._connection_json(c) for c in self._catalog.connections()]

    def show_connection(self, name: str) -> dict[str, Any]:
        return self._connection_json(self._catalog.connection(name))

    def update_connection(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change a connection's settings (direction, winner, options). Never touches data;
        the next run re-plans from the local index when the change affects what flows."""
        unknown = set(changes) - OPTION_NAMES
        if unknown:
            raise ConfigError(f"Unknown connection setting: {', '.join(sorted(unknown))}.")
        conn = self._catalog.connection(name)
        current = {k: getattr(conn, k) for k in OPTION_NAMES}
        options = ConnectionOptions(**(current | changes))
        _validate_options(options)
        if "direction" in changes and changes["direction"] != conn.direction:
            rules = rules_from_config(json.loads(conn.config or "{}"))
            if any(r.actions for r in rules):
                direction = Direction(options.direction)
                with self.opened(conn) as apps:
                    views = self._views(conn, apps, direction)
                clash = rule_edit.rule_clash(rules, views, direction)
                if clash:
                    raise ConfigError(clash)
        values = asdict(options) | {"phone_region": options.phone_region.upper()}
        self._catalog.update_connection(name, **values)
        return self.show_connection(name)

    def set_paused(self, name: str, paused: bool) -> None:
        values: dict[str, Any] = {"paused": paused}
        if not paused:
            values["needs_full_read"] = True  # SPEC §9: a run after pausing reads both fully
        self._catalog.update_connection(name, **values)

    def set_interval(self, name: str, minutes: int) -> int:
        """How often the desktop app syncs this connection (1–60 minutes)."""
        if not MIN_INTERVAL <= int(minutes) <= MAX_INTERVAL:
            raise ConfigError(f"The interval is between {MIN_INTERVAL} and {MAX_INTERVAL} minutes.")
        self._catalog.update_connection(name, interval_minutes=int(minutes))
        return int(minutes)

    def delete_connection(self, name: str) -> None:
        """Forget a connection and its sync state. The apps' contacts are never touched."""
        self._catalog.delete_connection(name)

    def rename_connection(self, name: str, new_name: str) -> dict[str, Any]:
        """Give a connection another name. Nothing else changes: its runs, bindings,
        history and settings stay with it (they hang on its id)."""
        new_name = new_name.strip()
        if not new_name:
            raise ConfigError("A connection needs a name.")
        if new_name != name:
            self._catalog.rename_connection(name, new_name)
        return self.show_connection(new_name)

    def suggest_connection_name(self, account_a: str, account_b: str) -> str:
        return unique_name(
            f"{account_a} ⇄ {account_b}", {c.name for c in self._catalog.connections()}
        )

    def connection_overview(self) -> list[ConnectionSummary]:
        """Every connection with its status chip (from the database only: cheap enough to
        refresh after each run)."""
        out = []
        for conn in self._catalog.connections():
            a = self._catalog.account_by_id(conn.account_a_id)
            b = self._catalog.account_by_id(conn.account_b_id)
            last = self._catalog.last_run(conn.id)
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

    # --- export and import -------------------------------------------------------------------

    def export_connection(self, name: str) -> dict[str, Any]:
        conn = self._catalog.connection(name)
        data = self._connection_json(conn)
        for key in ("paused", "last_run"):
            data.pop(key)
        for side, account_id in (("a", conn.account_a_id), ("b", conn.account_b_id)):
            acc = self._catalog.account_by_id(account_id)
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
            existing = self._catalog.find_account(acc_name)
            if existing is None:
                self.add_account(kind, acc_name, settings)
            elif existing.kind != kind:
                raise ConfigError(
                    f"Account {acc_name!r} exists here but is a {existing.kind}, not a {kind}."
                )
        self.create_connection(new_name, accounts[0][0], accounts[1][0], options)
        self._catalog.update_connection(new_name, config=json.dumps(config))
        return self.show_connection(new_name)
