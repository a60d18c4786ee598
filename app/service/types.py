"""The typed values the facade hands the fronts (never ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.model import ConnectionSettings


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """A stored account as the fronts show it (its secret stays in the keyring)."""

    name: str
    kind: str
    app: str
    """The app's name ("CardDAV", "CSV file")."""
    settings: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    """The settings an account of this kind must have (the sign-in form asks for them)."""
    needs_secret: bool = False
    has_secret: bool = False

    def as_json(self) -> dict[str, Any]:
        """As ``account list --json`` prints it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "settings": dict(self.settings),
            "has_secret": self.has_secret,
        }


@dataclass(frozen=True, slots=True)
class AccountRef:
    """One side of a connection: which account, of which kind."""

    account: str
    kind: str
    subscription: str | None = None
    """The CSV column or vCard property holding the subscription status ("" when none is
    named); None when the app has no such setting (its status comes from the app)."""


@dataclass(frozen=True, slots=True)
class LastRun:
    status: str
    started_at: datetime
    message: str


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """A connection as the fronts show it: its two accounts, settings and state."""

    name: str
    a: AccountRef
    b: AccountRef
    settings: ConnectionSettings
    paused: bool
    last_run: LastRun | None = None

    def as_json(self) -> dict[str, Any]:
        """As ``connection show --json`` prints it (settings flat, beside the accounts)."""
        return {
            "name": self.name,
            "a": {"account": self.a.account, "kind": self.a.kind},
            "b": {"account": self.b.account, "kind": self.b.kind},
            **self.settings.to_json(),
            "paused": self.paused,
            "last_run": None
            if self.last_run is None
            else {
                "status": self.last_run.status,
                "started_at": self.last_run.started_at.isoformat(),
                "message": self.last_run.message,
            },
        }
