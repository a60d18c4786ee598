"""An account and a connection as stored, in plain typed rows read with plain SQL.

What a run reads of its connection (settings, mapping and rule configuration, the two
accounts) comes through these, not ORM objects: a sync never loads SQLAlchemy (issue 18).
The columns are the ORM models' (``app.store.models``, the schema's definition); a test checks
the two agree (``tests/store/test_sqlite.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from app.store.sqlite import unstamp


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: int
    name: str
    kind: str
    settings: str
    """JSON of the non-secret settings, as stored."""
    has_secret: bool

    @classmethod
    def read(cls, row: Sequence[Any]) -> AccountRow:
        aid, name, kind, settings, has_secret = row
        return cls(int(aid), str(name), str(kind), str(settings or "{}"), bool(has_secret))


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    id: int
    name: str
    account_a_id: int
    account_b_id: int
    direction: str
    winner: str
    avoid_duplicates: bool
    unsubscribes: bool
    unsubscribe_opt_out: bool
    trash: bool
    propagate_clears: bool
    paused: bool
    guard_max_writes: int
    guard_shrink_percent: int
    phone_region: str
    config: str
    """JSON: mapping and rule configuration."""
    run_count: int
    synced_once: bool
    needs_full_read: bool
    interval_minutes: int
    last_run_at: datetime | None
    created_at: datetime
    """UTC-aware (the ORM hands SQLite's stored times back naive; both mean UTC)."""

    @classmethod
    def read(cls, row: Sequence[Any]) -> ConnectionRow:
        values = dict(zip(CONNECTION_COLUMNS, row, strict=True))
        for name in _BOOLEANS:
            values[name] = bool(values[name])
        last = values["last_run_at"]
        values["last_run_at"] = None if last is None else unstamp(last)
        values["created_at"] = unstamp(values["created_at"])
        values["config"] = values["config"] or "{}"
        values["phone_region"] = values["phone_region"] or ""
        return cls(**values)


ACCOUNT_COLUMNS = ("id", "name", "kind", "settings", "has_secret")
CONNECTION_COLUMNS = tuple(f.name for f in fields(ConnectionRow))
_BOOLEANS = tuple(f.name for f in fields(ConnectionRow) if f.type == "bool")
SELECT_ACCOUNT = f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM accounts"
SELECT_CONNECTION = f"SELECT {', '.join(CONNECTION_COLUMNS)} FROM connections"
