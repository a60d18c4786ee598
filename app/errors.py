"""Typed errors, raised at the boundary of each app and shown to the user as they are.

Every error carries a stable ``code`` (what Health groups failures by), a plain-language
``message`` and, where it concerns one field, the ``field``. ``raw`` keeps the app's own
words for the "show raw error" view; it must never contain a secret.
"""

from __future__ import annotations


class PairsyncError(Exception):
    """Base of every error Pairsync reports. ``str(err)`` is the user-facing sentence."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None, raw: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.raw = raw


class ConfigError(PairsyncError):
    """The user's configuration or command line is wrong (CLI exit 2)."""

    code = "config"


class DatabaseDamaged(ConfigError):
    """Pairsync's database is damaged, empty or missing: refused rather than replaced by an
    empty one; the message says where the newest backup is and how to restore it
    (``app.store.integrity``)."""

    code = "database"


class KeyringError(ConfigError):
    code = "keyring"


class AuthExpired(PairsyncError):
    """The app refused our credentials: the account needs re-authorization (CLI exit 3)."""

    code = "auth"


class RateLimited(PairsyncError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 60.0, raw: str = "") -> None:
        super().__init__(message, raw=raw)
        self.retry_after = retry_after


class Unavailable(PairsyncError):
    """The app cannot be reached right now (network, server error, missing folder)."""

    code = "unavailable"


class Rejected(PairsyncError):
    """The app refused one record (a validation error); other records are unaffected."""

    code = "rejected"


class ReadOnlyFile(Rejected):
    """The file the contact lives in may not be written (its permissions say read-only):
    Pairsync never replaces it, whatever the folder allows."""

    code = "read_only"


class NotFitting(Rejected):
    """Some values have no room in the app (a 3rd e-mail into a file with two e-mail
    columns): everything else of the record was written, and the record as stored comes
    with the result. Not a failure: the pair is in sync with what each app can hold, and
    Health names the values once (SPEC §10 "Not fitting")."""

    code = "not_fitting"

    def __init__(self, message: str, *, field: str, values: tuple[str, ...]) -> None:
        super().__init__(message, field=field)
        self.values = values


class RequiredMissing(Rejected):
    code = "required_missing"


class NotFound(PairsyncError):
    code = "not_found"


class Conflict(PairsyncError):
    """The record changed in the app since we read it; it is re-read on the next run."""

    code = "changed_meanwhile"


class BadData(PairsyncError):
    """A record we could not read (broken vCard, bad CSV row, API garbage)."""

    code = "unreadable"


class ValueNotAllowed(Rejected):
    """A choice value with no entry in the mapping's value table (fails only that field)."""

    code = "value_not_allowed"
