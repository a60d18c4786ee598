"""Connections and their settings: create, show, change, pause, rename, export, import.

A settings change never touches a contact: the next run re-plans from the local index when
the change affects what flows.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.connectors.registry import app_kind
from app.errors import ConfigError
from app.mapping.config import MappingConfig
from app.model import ConnectionSettings
from app.printable import check_name, shown
from app.rules import edit as rule_edit
from app.rules.model import rules_from_config
from app.service.accounts import Accounts
from app.service.core import unique_name
from app.service.types import AccountRef, ConnectionView, LastRun
from app.sign_in import plain
from app.status import ConnectionSummary, connection_status
from app.store.connections import settings_columns, settings_of
from app.store.rows import AccountRow, ConnectionRow

EXPORT_VERSION = 1
ON_OFF = {"on": True, "off": False}


def parse_on_off(value: str) -> bool:
    try:
        return ON_OFF[value.lower()]
    except KeyError:
        raise ConfigError(f"Expected on or off, not {value!r}.") from None


def export_text(data: Mapping[str, Any]) -> str:
    """An export as text: the JSON ``connection export`` prints."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def parse_export(text: str, source: str) -> Any:
    """The JSON of an export, or a sentence saying why it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source} is not valid JSON (line {err.lineno}).") from None


def _write_atomically(path: Path, data: bytes) -> None:
    """A new file at ``path``, or the old one untouched: written beside it, then moved."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _subscription(acc: AccountRow) -> str | None:
    if "subscription" not in app_kind(acc.kind).optional:
        return None
    return str(json.loads(acc.settings).get("subscription", ""))


def _account_ref(acc: AccountRow) -> AccountRef:
    field = app_kind(acc.kind).subscription_field
    if field is None:
        return AccountRef(acc.name, acc.kind, _subscription(acc))
    return AccountRef(acc.name, acc.kind, _subscription(acc), plain(field.label), field.placeholder)


def _app_name(kind: str) -> str:
    from app.app_list import app_entry

    entry = app_entry(kind)
    return entry.name if entry is not None else kind


class Connections(Accounts):
    """Connections: two accounts, a direction, and the settings of how they sync."""

    def create_connection(
        self,
        name: str,
        account_a: str,
        account_b: str,
        settings: ConnectionSettings | None = None,
        *,
        paused: bool = False,
    ) -> ConnectionView:
        """``paused``: created paused, in the same transaction (the wizard's draft: no
        scheduler may see it unpaused, even for a moment)."""
        name = name.strip()
        if not name:
            raise ConfigError("A connection needs a name.")
        check_name(name, "A connection's name")
        self._connections.add_connection(
            name,
            account_a,
            account_b,
            config=json.dumps({"mappings": {"off": []}}),
            paused=paused,
            **settings_columns(settings or ConnectionSettings()),
        )
        return self.show_connection(name)

    def _view(self, conn: ConnectionRow) -> ConnectionView:
        a = self._connections.account_by_id(conn.account_a_id)
        b = self._connections.account_by_id(conn.account_b_id)
        last = self._connections.last_run(conn.id)
        return ConnectionView(
            name=conn.name,
            a=_account_ref(a),
            b=_account_ref(b),
            settings=settings_of(conn),
            paused=bool(conn.paused),
            last_run=None if last is None else LastRun(last.status, last.started_at, last.message),
        )

    def list_connections(self) -> list[ConnectionView]:
        return [self._view(c) for c in self._connections.connections()]

    def show_connection(self, name: str) -> ConnectionView:
        return self._view(self._connections.connection(name))

    def update_connection(self, name: str, **changes: Any) -> ConnectionView:
        """Change a connection's settings (``ConnectionSettings.USER_KEYS``: direction,
        winner, toggles, thresholds, interval…; text values are parsed as the CLI gives
        them). Never touches data; the next run re-plans from the local index when the
        change affects what flows."""
        conn = self._connections.connection(name)
        current = settings_of(conn)
        settings = current.changed(**changes)
        if settings.direction != current.direction:
            rules = rules_from_config(json.loads(conn.config or "{}"))
            if any(r.actions for r in rules):
                with self.opened(conn) as apps:
                    views = self._views(conn, apps, settings.direction)
                clash = rule_edit.rule_clash(rules, views, settings.direction)
                if clash:
                    raise ConfigError(clash)
        self._connections.update_connection(name, **settings_columns(settings))
        return self.show_connection(name)

    def set_subscription_field(self, name: str, side: str, field: str) -> ConnectionView:
        """Name the column (CSV) or property (vCard) that holds the subscription status in
        one side's account — what ``account add … --set subscription=…`` sets. It is the
        account's setting, so every connection using the account sees it; "" forgets it."""
        conn = self._connections.connection(name)
        if side not in ("a", "b"):
            raise ConfigError("A side is a or b.")
        acc = self._connections.account_by_id(
            conn.account_a_id if side == "a" else conn.account_b_id
        )
        spec = app_kind(acc.kind)
        if "subscription" not in spec.optional:
            raise ConfigError(f"{spec.name} keeps the subscription status itself: nothing to name.")
        values = dict(json.loads(acc.settings))
        if field.strip():
            values["subscription"] = field.strip()
        else:
            values.pop("subscription", None)
        self._connections.update_account(
            acc.name, settings=json.dumps(values), has_secret=bool(acc.has_secret)
        )
        return self.show_connection(name)

    def set_paused(self, name: str, paused: bool) -> None:
        values: dict[str, Any] = {"paused": paused}
        if not paused:
            values["needs_full_read"] = True  # SPEC §9: a run after pausing reads both fully
        self._connections.update_connection(name, **values)

    def set_interval(self, name: str, minutes: int) -> int:
        """How often the desktop app syncs this connection (1–60 minutes)."""
        return self.update_connection(name, interval_minutes=int(minutes)).settings.interval_minutes

    def delete_connection(self, name: str) -> None:
        """Forget a connection and its sync state. The apps' contacts are never touched."""
        self._connections.delete_connection(name)

    def rename_connection(self, name: str, new_name: str) -> ConnectionView:
        """Give a connection another name. Nothing else changes: its runs, bindings,
        history and settings stay with it (they hang on its id)."""
        new_name = new_name.strip()
        if not new_name:
            raise ConfigError("A connection needs a name.")
        check_name(new_name, "A connection's name")
        if new_name != name:
            self._connections.rename_connection(name, new_name)
        return self.show_connection(new_name)

    def suggest_connection_name(self, account_a: str, account_b: str) -> str:
        return unique_name(
            f"{account_a} ⇄ {account_b}", {c.name for c in self._connections.connections()}
        )

    def connection_overview(self) -> list[ConnectionSummary]:
        """Every connection with its status chip (from the database only: cheap enough to
        refresh after each run)."""
        out = []
        for conn in self._connections.connections():
            a = self._connections.account_by_id(conn.account_a_id)
            b = self._connections.account_by_id(conn.account_b_id)
            last = self._connections.last_run(conn.id)
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
                    app_a=_app_name(a.kind),
                    app_b=_app_name(b.kind),
                )
            )
        return out

    # --- export and import -------------------------------------------------------------------

    def export_connection(self, name: str) -> dict[str, Any]:
        conn = self._connections.connection(name)
        data = self._view(conn).as_json()
        for key in ("paused", "last_run"):
            data.pop(key)
        for side, account_id in (("a", conn.account_a_id), ("b", conn.account_b_id)):
            acc = self._connections.account_by_id(account_id)
            data[side] = {
                "account": acc.name,
                "kind": acc.kind,
                "settings": json.loads(acc.settings),
            }
        data["config"] = json.loads(conn.config)
        return {"pairsync_export": EXPORT_VERSION, **data}

    def export_connection_file(self, name: str, path: str | Path) -> Path:
        """Write ``export_connection`` to a file, as ``connection export NAME > FILE`` prints
        it (no secret is in it: they stay in the keyring). The file is replaced atomically."""
        data = export_text(self.export_connection(name)).encode("utf-8")
        target = Path(path).expanduser()
        try:
            _write_atomically(target, data)
        except OSError as err:
            raise ConfigError(f"Cannot write {target}: {err.strerror or err}.") from None
        return target

    def import_connection_file(
        self, path: str | Path, name: str | None = None, *, keep_both: bool = False
    ) -> ConnectionView:
        """``connection import FILE``: read an export and create the connection (and any
        account it names that does not exist here yet). ``keep_both``: when a connection of
        that name exists, the imported one is named "NAME 2" (the window's Import)."""
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"Cannot read {path}: {err.strerror or err}.") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not a Pairsync connection export.") from None
        return self.import_connection(parse_export(text, str(path)), name, keep_both=keep_both)

    def import_connection(
        self, data: Mapping[str, Any], name: str | None = None, *, keep_both: bool = False
    ) -> ConnectionView:
        if not isinstance(data, Mapping) or data.get("pairsync_export") != EXPORT_VERSION:
            raise ConfigError("This is not a Pairsync connection export (pairsync_export: 1).")
        try:
            new_name = name or str(data["name"])
            if keep_both:
                new_name = unique_name(
                    new_name.strip(), {c.name for c in self._connections.connections()}
                )
            accounts = []
            for side in ("a", "b"):
                acc = data[side]
                accounts.append(
                    (str(acc["account"]), str(acc["kind"]), dict(acc.get("settings", {})))
                )
            settings = ConnectionSettings.from_json(data)
            config = dict(data.get("config") or {"mappings": {"off": []}})
            MappingConfig.from_json(config.get("mappings"))  # refuse a malformed one now
            rules_from_config(config)
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise ConfigError(f"The export is incomplete or malformed ({shown(err)}).") from None
        except RecursionError:
            raise ConfigError("The export is nested too deeply to be a Pairsync export.") from None
        for acc_name, kind, acc_settings in accounts:
            existing = self._connections.find_account(acc_name)
            if existing is None:
                self.add_account(kind, acc_name, acc_settings)
            elif existing.kind != kind:
                raise ConfigError(
                    f"Account {acc_name!r} exists here but is a {existing.kind}, not a {kind}."
                )
        self.create_connection(new_name, accounts[0][0], accounts[1][0], settings)
        self._connections.update_connection(new_name, config=json.dumps(config))
        return self.show_connection(new_name)
