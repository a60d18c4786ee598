"""The registry of app kinds: kind → how to build its connector from an account's settings.

Connectors are imported lazily so that starting the CLI never pays for every app's
dependencies.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from app.connectors.base import Connector
from app.errors import ConfigError
from app.paths import app_paths
from app.sign_in import SECRET, Field, Input, SignInForm

if TYPE_CHECKING:  # the OAuth library is loaded only when an OAuth app is used
    import threading

    from app.connectors.oauth import OAuthClient, SignInResult


@dataclass(frozen=True, slots=True)
class AppKind:
    kind: str
    name: str
    aliases: tuple[str, ...]
    settings: tuple[str, ...]
    """Required settings (``--set KEY=VALUE``)."""
    needs_secret: bool
    build: Callable[[Mapping[str, str], str | None], Connector]
    check: Callable[[Mapping[str, str]], None]
    verify: Callable[[Mapping[str, str], str | None], dict[str, str]] | None = None
    """Called when the account is added, with its secret: tries the connection and returns
    the settings to store (e.g. the address book the server's discovery found)."""
    optional: tuple[str, ...] = ()
    """Settings an account may have: ``subscription`` names the CSV column or vCard
    property that holds the subscription status; ``formula_guard`` (CSV, on or off) neutralises
    values a spreadsheet would run as formulas."""
    oauth: Callable[[Mapping[str, str]], OAuthClient] | None = None
    """For apps signed in through the browser: the OAuth client for these settings. The
    account's secret is then the refresh token the sign-in returns."""
    description: str = ""
    """One sentence for a person choosing an app (the wizard's list)."""
    subscriptions: bool = False
    """A marketing app with its own subscription status per contact: a new connection with
    it gets Sync Unsubscribes on by default."""
    subscription_field: Field | None = None
    """For an app that keeps no subscription status of its own but lets the user name where
    it is (the ``subscription`` setting): how the window asks for it ("Subscription column",
    e.g. Newsletter)."""
    form: SignInForm | None = None
    """The sign-in form the fronts render (``app.sign_in``); None: the generic one (the
    required settings as text, then a token where the app needs a secret)."""

    @property
    def sign_in(self) -> SignInForm:
        return self.form or SignInForm.generic(self.settings, self.needs_secret)


def _path(settings: Mapping[str, str]) -> Path:
    raw = settings.get("path", "").strip()
    if not raw:
        raise ConfigError("This app needs a path: add --set path=...")
    return Path(os.path.expanduser(raw))


def _check_folder(settings: Mapping[str, str]) -> None:
    path = _path(settings)
    if not path.is_dir():
        raise ConfigError(f"The folder {path} does not exist; create it or pick another one.")


def _check_file(settings: Mapping[str, str], what: str = "a CSV account") -> None:
    path = _path(settings)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; {what} needs a file.")
    if not path.parent.is_dir():
        raise ConfigError(f"The folder {path.parent} does not exist; create it first.")
    if path.exists() and not path.is_file():  # /dev/zero, a pipe, a socket: never ends
        raise ConfigError(f"{path} is not a regular file; {what} needs a file.")


def _formula_guard(settings: Mapping[str, str]) -> bool:
    value = settings.get("formula_guard", "on").strip().lower() or "on"
    if value not in ("on", "off"):
        raise ConfigError(f"formula_guard is on or off, not {value!r}.")
    return value == "on"


def _check_csv(settings: Mapping[str, str]) -> None:
    _check_file(settings)
    _formula_guard(settings)


def _check_vcard_file(settings: Mapping[str, str]) -> None:
    """Like a CSV file (a new name is created at the first sync), and an existing file must
    hold at least one card: a CSV or a photo picked by mistake is refused here."""
    from app.connectors.vcard_file import looks_like_vcards

    _check_file(settings, "a vCard file account")
    path = _path(settings)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as err:
        raise ConfigError(f"The file {path} cannot be read ({err.strerror}).") from None
    if not looks_like_vcards(data):
        raise ConfigError(
            f"{path} is not a vCard file (it holds no BEGIN:VCARD); choose a .vcf export."
        )


def _vcard_folder(settings: Mapping[str, str], secret: str | None) -> Connector:
    from app.connectors.vcard_folder import VCardFolderApp

    return VCardFolderApp(_path(settings), settings.get("subscription", ""))


def _vcard_file(settings: Mapping[str, str], secret: str | None) -> Connector:
    from app.connectors.vcard_file import VCardFileApp

    return VCardFileApp(_path(settings), settings.get("subscription", ""))


def _csv(settings: Mapping[str, str], secret: str | None) -> Connector:
    from app.connectors.csv import CsvApp

    return CsvApp(
        _path(settings), settings.get("subscription", ""), formula_guard=_formula_guard(settings)
    )


def _check_carddav(settings: Mapping[str, str]) -> None:
    from app.connectors.http import check_url

    check_url(settings.get("url", ""), "The CardDAV address (--set url=...)")
    if not settings.get("username", "").strip():
        raise ConfigError("A CardDAV account needs --set username=... (your login or Apple ID).")


def _carddav(settings: Mapping[str, str], secret: str | None) -> Connector:
    from app.connectors.carddav import CardDavApp

    return CardDavApp(
        settings["url"],
        settings.get("username", ""),
        secret or "",
        addressbook=settings.get("addressbook"),
        create=settings.get("create"),
        cache_dir=app_paths().data / "cache",
    )


def _verify_carddav(settings: Mapping[str, str], secret: str | None) -> dict[str, str]:
    """Discover the address book now (and create it when asked), so a wrong address,
    password or book name is reported by ``account add``, and runs skip discovery.

    A book given as a full URL skips discovery, so ``check`` asks the server about it (one
    request): a wrong password or a URL that is not an address book is refused here, not
    at the first sync."""
    from app.connectors.carddav import CardDavApp

    app = CardDavApp(
        settings["url"],
        settings.get("username", ""),
        secret or "",
        addressbook=settings.get("addressbook"),
        create=settings.get("create"),
    )
    try:
        app.check()
        found = app.settings()
    finally:
        app.close()
    return {k: v for k, v in settings.items() if k != "create"} | found


def _google_client(settings: Mapping[str, str]) -> OAuthClient:
    from app.connectors.google import sign_in_client

    return sign_in_client(settings, app_paths().config)


def _check_google(settings: Mapping[str, str]) -> None:
    from app.connectors.google import check

    check(settings, app_paths().config)


def _google(settings: Mapping[str, str], secret: str | None) -> Connector:
    from app.connectors.google import build

    paths = app_paths()
    return build(settings, secret or "", config_dir=paths.config, cache_dir=paths.data / "cache")


def _check_hubspot(settings: Mapping[str, str]) -> None:
    from app.connectors.http import check_url

    base = settings.get("api_base", "").strip()
    if base:
        check_url(base, "The HubSpot API address (--set api_base=...)")
    limit = settings.get("rate_limit", "").strip()
    if limit and (not limit.isdigit() or int(limit) < 1):
        raise ConfigError("--set rate_limit=N takes the requests HubSpot allows per 10 seconds.")


def _hubspot(settings: Mapping[str, str], secret: str | None) -> Connector:
    from app.connectors.hubspot import HubSpotApp
    from app.connectors.hubspot.api import DEFAULT_BASE

    limit = settings.get("rate_limit", "").strip()
    return HubSpotApp(
        secret or "",
        api_base=settings.get("api_base", "").strip() or DEFAULT_BASE,
        rate_limit=int(limit) if limit.isdigit() else None,
    )


def _verify_hubspot(settings: Mapping[str, str], secret: str | None) -> dict[str, str]:
    """Read the contact properties with the token now: a mistyped or revoked token, or one
    without the contacts scopes, is refused by ``account add``, not at the first sync."""
    from app.connectors.hubspot import HubSpotApp

    app = _hubspot(settings, secret)
    assert isinstance(app, HubSpotApp)
    try:
        app.check()
    finally:
        app.close()
    return dict(settings)


_VCARD_SUBSCRIPTION = Field(
    "subscription", "Subscription property", required=False, placeholder="e.g. X-NEWSLETTER"
)

KINDS: dict[str, AppKind] = {
    "vcard-folder": AppKind(
        "vcard-folder",
        "vCard folder",
        ("vcf", "vdir", "contacts folder"),
        ("path",),
        False,
        _vcard_folder,
        _check_folder,
        optional=("subscription",),
        description="A folder with one .vcf file per contact (vdirsyncer, Radicale, Evolution, "
        "phone exports).",
        form=SignInForm((Field("path", "&Folder", Input.FOLDER),)),
        subscription_field=_VCARD_SUBSCRIPTION,
    ),
    "vcard-file": AppKind(
        "vcard-file",
        "vCard file",
        ("vcf file", "contacts.vcf", "google export", "outlook export", "phone export"),
        ("path",),
        False,
        _vcard_file,
        _check_vcard_file,
        optional=("subscription",),
        description="One .vcf file holding many contacts (iCloud, Google Contacts, Outlook and "
        "phone exports).",
        form=SignInForm(
            (Field("path", "&File", Input.FILE, file_filter="vCard files (*.vcf *.vcard)"),),
            note="Pick an existing .vcf file (an export from iCloud, Google Contacts, Outlook "
            "or a phone), or name a new one: it is created at the first sync.",
        ),
        subscription_field=_VCARD_SUBSCRIPTION,
    ),
    "csv": AppKind(
        "csv",
        "CSV file",
        ("spreadsheet", "excel", "outlook csv", "google csv"),
        ("path",),
        False,
        _csv,
        _check_csv,
        optional=("subscription", "formula_guard"),
        description="A spreadsheet of contacts (Outlook and Google Contacts exports, or your "
        "own columns).",
        form=SignInForm(
            (Field("path", "&File", Input.FILE, file_filter="CSV files (*.csv)"),),
            note="Pick an existing CSV file, or name a new one: it is created at the first sync.",
        ),
        subscription_field=Field(
            "subscription", "Subscription column", required=False, placeholder="e.g. Newsletter"
        ),
    ),
    "carddav": AppKind(
        "carddav",
        "CardDAV",
        ("icloud", "nextcloud", "fastmail", "radicale", "webdav", "apple contacts"),
        ("url", "username"),
        True,
        _carddav,
        _check_carddav,
        _verify_carddav,
        optional=("addressbook", "create"),
        description="An address book on a CardDAV server: iCloud, Nextcloud, Fastmail, Radicale…",
        form=SignInForm(
            (
                Field(
                    "url",
                    "Server &address",
                    Input.URL,
                    placeholder="e.g. https://contacts.icloud.com or https://cloud.example.org",
                ),
                Field("username", "&User name", placeholder="your login or Apple ID"),
                Field(
                    "addressbook",
                    "Address boo&k",
                    required=False,
                    placeholder="the first one found, if empty",
                ),
                Field(
                    SECRET,
                    "&Password",
                    Input.PASSWORD,
                    help_url="https://support.apple.com/en-us/102654",
                ),
            )
        ),
    ),
    "google": AppKind(
        "google",
        "Google Contacts",
        ("gmail", "google", "g suite", "google workspace", "android"),
        (),
        True,
        _google,
        _check_google,
        optional=("client_id", "client_secret", "api_base", "auth_base", "account_email"),
        oauth=_google_client,
        description="Your Google or Gmail contacts, with their labels and groups.",
        form=SignInForm(
            (
                Field(
                    "client_id",
                    "OAuth &client id",
                    required=False,
                    placeholder="…apps.googleusercontent.com, if Pairsync has none",
                ),
                Field("client_secret", "Client &secret", required=False),
            ),
            browser=True,
        ),
    ),
    "hubspot": AppKind(
        "hubspot",
        "HubSpot",
        ("crm", "hubspot crm", "hub spot"),
        (),
        True,
        _hubspot,
        _check_hubspot,
        _verify_hubspot,
        optional=("api_base", "rate_limit"),
        description="HubSpot CRM contacts, with their properties (drop-downs too), lists and "
        "opt-outs.",
        subscriptions=True,
        form=SignInForm(
            (
                Field(
                    "api_base",
                    "API address",
                    Input.URL,
                    required=False,
                    placeholder="https://api.hubapi.com, if empty",
                ),
                Field(
                    SECRET,
                    "Access &token",
                    Input.TOKEN,
                    help="In HubSpot: Settings → Integrations → Private Apps (or Service Keys) → "
                    "create one with the scopes crm.objects.contacts.read, "
                    "crm.objects.contacts.write, crm.schemas.contacts.read, crm.lists.read and "
                    "crm.lists.write (and, to sync opt-outs, "
                    "communication_preferences.statuses.batch.read and .write), then copy its "
                    "access token here.",
                    help_url="https://developers.hubspot.com/docs/api/private-apps",
                ),
            )
        ),
    ),
}


def browser_sign_in(
    spec: AppKind,
    settings: Mapping[str, str],
    *,
    open_browser: bool,
    on_url: Callable[[str], None] | None,
    timeout: float | None,
    cancel: threading.Event | None,
) -> SignInResult:
    """Sign in to an app of ``spec`` through the system browser (``app.connectors.oauth``):
    the tokens, whose refresh token becomes the account's secret."""
    import webbrowser

    from app.connectors.oauth import SIGN_IN_TIMEOUT, sign_in

    if spec.oauth is None:
        raise ConfigError(f"{spec.name} is not signed in through the browser.")
    spec.check(settings)
    return sign_in(
        spec.oauth(settings),
        open_browser=webbrowser.open if open_browser else None,
        on_url=on_url,
        timeout=SIGN_IN_TIMEOUT if timeout is None else timeout,
        cancel=cancel,
    )


def app_kind(kind: str) -> AppKind:
    try:
        return KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(KINDS))
        raise ConfigError(f"Unknown app kind {kind!r}; known kinds: {known}.") from None


def normalize_settings(kind: AppKind, settings: Mapping[str, str]) -> dict[str, str]:
    out = dict(settings)
    if "path" in out:
        out["path"] = str(Path(os.path.expanduser(out["path"])).resolve())
    return out


def storage_of(kind: str, settings: Mapping[str, str]) -> tuple[str, str]:
    """(key, words) naming where an account's contacts are stored: two accounts (or two
    connections) over the same folder, file or address book have the same key, so a run
    lock on it (``app.run_lock``) keeps two runs from writing the same contacts at once.

    Files and folders: the real path (symlinks resolved). CardDAV: the address book's URL
    (or, before discovery stored one, the server and the book's name) without the user,
    since two logins may share one book."""
    if kind == "google":  # one Google account: its API host and the signed-in user
        base = settings.get("api_base", "").strip().rstrip("/") or "https://people.googleapis.com"
        who = settings.get("account_email", "").strip().casefold()
        return f"google:{base.lower()}|{who}", f"the Google account {who or base}"
    if "path" in settings and kind != "carddav":
        raw = settings.get("path", "").strip()
        path = Path(os.path.realpath(os.path.expanduser(raw))) if raw else Path()
        return f"path:{os.path.normcase(str(path))}", str(path)
    url = settings.get("url", "").strip()
    book = (settings.get("addressbook") or "").strip()
    if book.startswith(("http://", "https://")):
        where = book
    elif book.startswith("/"):
        parts = urlsplit(url)
        where = f"{parts.scheme}://{parts.netloc}{book}"
    else:
        where = f"{url.rstrip('/')}#{book}"
    parts = urlsplit(where)
    key = f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port or ''}"
    key += (parts.path.rstrip("/") or "/") + (f"#{parts.fragment}" if parts.fragment else "")
    return f"{kind}:{key}", f"the address book {where}" if book else f"the server {url}"
