"""Listing the stored accounts without opening the full store (``pairsync account list``).

A command that only shows what is stored should not pay for SQLAlchemy, the engine and the
keyring: this reads the accounts with plain SQLite (``app.store.quick``) and falls back to
the full ``Service`` whenever the database needs more than a read (none yet, an older
schema). Same values as ``Service.list_accounts``.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.connectors.registry import app_kind
from app.paths import app_paths
from app.service.types import AccountInfo
from app.store.quick import read_accounts


def account_info(name: str, kind: str, settings: str, has_secret: bool) -> AccountInfo:
    """A stored account as the fronts see it (``settings``: the stored JSON)."""
    spec = app_kind(kind)
    return AccountInfo(
        name=name,
        kind=kind,
        app=spec.name,
        settings=dict(json.loads(settings)),
        required=spec.settings,
        needs_secret=spec.needs_secret,
        has_secret=bool(has_secret),
        form=spec.sign_in,
    )


def logs_folder(home: str | Path | None = None) -> Path:
    """Where the log files go (``Service(home).paths.logs``), without opening the store."""
    return app_paths(home).ensure().logs


def list_accounts(
    home: str | Path | None = None, *, allow_insecure_keyring: bool = False
) -> list[AccountInfo]:
    """Every stored account, by name: ``Service(home).list_accounts()``, without the cost of
    opening the full store when the database is current."""
    rows = read_accounts(app_paths(home).ensure().database)
    if rows is not None:
        return [account_info(r.name, r.kind, r.settings, r.has_secret) for r in rows]
    from app.service import Service

    service = Service(home, allow_insecure_keyring=allow_insecure_keyring)
    try:
        return service.list_accounts()
    finally:
        service.close()
