"""The typed values the facade hands the fronts (never ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
