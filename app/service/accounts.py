"""Accounts: adding, checking, listing, forgetting, signing in again.

An account's settings are checked in one place (``_checked``) whichever way they arrive:
``account add``, the wizard's "Connect" and the re-authorization dialog ask the same
questions in the same order, so what one front accepts the other does too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from app.connectors.base import Connector
from app.connectors.registry import AppKind, app_kind, browser_sign_in, normalize_settings
from app.engine.sync import Progress
from app.errors import ConfigError, PairsyncError, Unavailable
from app.printable import check_name
from app.service.core import ServiceCore, unique_name
from app.service.listing import account_info
from app.service.types import AccountInfo
from app.sign_in import plain
from app.store.rows import AccountRow

if TYPE_CHECKING:  # the wizard's list: loaded when asked for, a sync never is (issue 18)
    from app.app_list import AccountCheck, AppEntry

# How each asker words a missing setting or secret (the CLI names its options, and what
# the app's sign-in form calls them).
_ASK_CLI = (
    "{An} {app} account needs {options}.",
    "{An} {app} account needs {secret}: use --secret-env VAR.{where}",
)
_ASK_WINDOW = ("{app} needs: {names}.", "{app} needs a password or token.")
_ASK_SIGN_IN = ("{app} needs: {names}.", "{app} needs a password or token to sign in again.")


def _checked(
    spec: AppKind,
    values: dict[str, str],
    secret: str | None,
    wording: tuple[str, str],
) -> dict[str, str]:
    """The settings to store for an account of ``spec``, after every check an account
    gets: required settings present, the kind's own check (a folder exists, an address is
    HTTPS…), a secret where the app needs one. Does not contact the app (``_verified``)."""
    form = spec.sign_in
    an = "An" if spec.name[:1] in "AEIOU" else "A"
    missing = [k for k in spec.settings if not str(values.get(k, "")).strip()]
    if missing:
        options = []
        for key in missing:
            field = form.field(key)
            what = f" ({plain(field.label).lower()})" if field is not None else ""
            options.append(f"--set {key}=...{what}")
        raise ConfigError(
            wording[0].format(
                An=an, app=spec.name, options=", ".join(options), names=", ".join(missing)
            )
        )
    spec.check(values)
    if spec.needs_secret and not secret:
        field = form.secret
        what = f"its {plain(field.label).lower()}" if field is not None else "a secret"
        where = f" Where to find it: {field.help_url}" if field and field.help_url else ""
        raise ConfigError(wording[1].format(An=an, app=spec.name, secret=what, where=where))
    return values


def _verified(spec: AppKind, values: dict[str, str], secret: str | None) -> dict[str, str]:
    """Ask the app itself (discovery, sign-in) where the kind can; the settings it found."""
    return values if spec.verify is None else spec.verify(values, secret)


def _info(acc: AccountRow) -> AccountInfo:
    return account_info(acc.name, acc.kind, acc.settings, bool(acc.has_secret))


class Accounts(ServiceCore):
    """Accounts: one per app login, folder or file; their secrets live in the keyring."""

    def add_account(
        self, kind: str, name: str, settings: Mapping[str, str], secret: str | None = None
    ) -> AccountInfo:
        spec = app_kind(kind)
        name = name.strip()
        if not name:
            raise ConfigError("An account needs a name.")
        check_name(name, "An account's name")
        values = _checked(spec, normalize_settings(spec, settings), secret, _ASK_CLI)
        if self._connections.find_account(name) is not None:
            raise ConfigError(f"An account named {name!r} already exists.")
        values = _verified(spec, values, secret)
        if secret:
            self._secrets.set(name, secret)
        return _info(self._connections.add_account(name, kind, values, bool(secret)))

    def signs_in_with_browser(self, kind: str) -> bool:
        """Whether accounts of ``kind`` are authorized by a sign-in in the browser."""
        return app_kind(kind).oauth is not None

    def add_account_signed_in(
        self,
        kind: str,
        name: str,
        settings: Mapping[str, str],
        *,
        open_browser: bool = True,
        on_url: Callable[[str], None] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> AccountInfo:
        """Add an account of an app signed in through the browser (Google): the sign-in
        runs first (RFC 8252 loopback; see ``app.connectors.oauth``), and the refresh token
        it returns becomes the account's secret in the keyring. ``on_url`` is told the
        consent address (the CLI prints it for ``--no-browser``)."""
        spec = app_kind(kind)
        name = name.strip()
        if not name:
            raise ConfigError("An account needs a name.")
        if self._connections.find_account(name) is not None:
            raise ConfigError(f"An account named {name!r} already exists.")
        values = normalize_settings(spec, settings)
        result = browser_sign_in(
            spec,
            values,
            open_browser=open_browser,
            on_url=on_url,
            timeout=timeout,
            cancel=cancel,
        )
        values = {**values, "account_email": result.email} if result.email else values
        return self.add_account(kind, name, values, result.refresh_token)

    def reauthorize_signed_in(
        self,
        account: str,
        *,
        open_browser: bool = True,
        on_url: Callable[[str], None] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> list[str]:
        """ "Sign in again" for an app signed in through the browser: a new sign-in with
        the account's stored settings; its connections keep all their configuration."""
        acc = self._connections.account(account)
        spec = app_kind(acc.kind)
        values = dict(json.loads(acc.settings))
        result = browser_sign_in(
            spec,
            values,
            open_browser=open_browser,
            on_url=on_url,
            timeout=timeout,
            cancel=cancel,
        )
        update = {"account_email": result.email} if result.email else {}
        return self.reauthorize(account, secret=result.refresh_token, settings=update)

    def list_accounts(self) -> list[AccountInfo]:
        return [_info(a) for a in self._connections.accounts()]

    def account(self, name: str) -> AccountInfo:
        """One stored account: its app, settings, and what signing in to it asks for."""
        return _info(self._connections.account(name))

    def remove_account(self, name: str) -> None:
        acc = self._connections.remove_account(name)
        if acc.has_secret:
            self._secrets.delete(name)

    def app_list(self, query: str = "") -> list[AppEntry]:
        """The wizard's list of apps, filtered as the user types (names and aliases)."""
        from app.app_list import app_list

        return app_list(query)

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
        values = _checked(spec, normalize_settings(spec, settings), secret, _ASK_WINDOW)
        if progress is not None:
            progress(f"Connecting to {spec.name}", 0, 0)
        values = _verified(spec, values, secret)
        return self._read_account(kind, spec.build(values, secret), values, progress)

    def check_account(self, name: str, progress: Progress | None = None) -> AccountCheck:
        """Connect to a stored account and read its schema (re-using a connected account)."""
        acc = self._connections.account(name)
        if progress is not None:
            progress(f"Connecting to {app_kind(acc.kind).name}", 0, 0)
        check = self._read_account(
            acc.kind, self._connector(acc), json.loads(acc.settings), progress
        )
        return replace(check, account=acc.name)

    def _read_account(
        self,
        kind: str,
        app: Connector,
        settings: Mapping[str, str],
        progress: Progress | None,
    ) -> AccountCheck:
        from app.app_list import AccountCheck

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
        taken = {a.name for a in self._connections.accounts()} - {replacing}
        return unique_name(base, taken)

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
        acc = self._connections.account(account)
        spec = app_kind(acc.kind)
        values = json.loads(acc.settings) | normalize_settings(spec, settings or {})
        values = _verified(spec, _checked(spec, values, secret, _ASK_SIGN_IN), secret)
        # Proof that the new sign-in works: one authenticated listing, before anything is
        # stored (a stored but wrong password would only fail again at the next run).
        app = spec.build(values, secret)
        try:
            app.list_versions()
        finally:
            app.close()
        if secret:
            self._secrets.set(acc.name, secret)
        self._connections.update_account(
            acc.name, settings=json.dumps(values), has_secret=acc.has_secret or bool(secret)
        )
        return self._connections.connections_using(acc.id)
