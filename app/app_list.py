"""The list of apps the connection wizard offers (SPEC §1.1, §12).

Two sources, one list: every kind registered in ``app.connectors.registry`` (they work
today), plus the cloud apps the product will support but that have no connector yet. Those
are listed so that a user searching for "Gmail" learns where Pairsync is going, but they are
marked unavailable and the wizard never lets anyone pick them: nothing pretends to work.

The registry is the truth for each app: what an account needs (required settings, a
secret), a sentence about the app, and its sign-in form (``app.sign_in``: the fields, how it
is authorized — a folder, a file, a password, a token, a browser sign-in — and where to find
a token). This module turns it into what a person choosing an app sees. No Qt here: the GUI
and tests read the same list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.connectors.registry import KINDS, AppKind
from app.sign_in import SignInForm


@dataclass(frozen=True, slots=True)
class AppEntry:
    """One app as the wizard lists it."""

    kind: str
    name: str
    aliases: tuple[str, ...]
    description: str
    auth: str
    """How an account is authorized: ``folder`` or ``file`` (a local path picker),
    ``password`` (server address, user name, password), ``token`` (an API key or token),
    ``oauth`` (sign in in the browser) or ``settings`` (only the registry's settings)."""
    available: bool
    settings: tuple[str, ...] = ()
    """Required settings, from the registry (empty for apps that are not available)."""
    needs_secret: bool = False
    help_url: str = ""
    """Where the user finds the token or password this app asks for."""
    secret_help: str = ""
    """What to do in the app to get the token, said on the authorization page."""
    sign_in: SignInForm | None = None
    """The app's sign-in form as its registry entry declares it (None: the generic one)."""
    subscriptions: bool = False
    """A marketing app (its contacts subscribe): Sync Unsubscribes starts on with it."""

    @property
    def form(self) -> SignInForm:
        """The sign-in form the wizard renders: the declared one, else the required settings
        as text and, where the app needs a secret, a token with this entry's help."""
        if self.sign_in is not None:
            return self.sign_in
        return SignInForm.generic(
            self.settings, self.needs_secret, help_url=self.help_url, secret_help=self.secret_help
        )

    def matches(self, query: str) -> bool:
        """Whether the search box text finds this app: by name, kind or any alias."""
        words = query.casefold().split()
        if not words:
            return True
        hay = " ".join((self.name, self.kind, *self.aliases)).casefold()
        return all(w in hay for w in words)


WIZARD_AUTH = frozenset({"folder", "file", "password", "token", "settings", "oauth"})
"""How the wizard can authorize an account (a registered kind with another way would be
listed as coming soon rather than offered with a form that cannot work)."""

COMING_SOON: tuple[AppEntry, ...] = (
    AppEntry(
        "outlook",
        "Outlook",
        ("office 365", "microsoft 365", "hotmail", "outlook.com", "live", "exchange"),
        "Outlook / Microsoft 365 contacts, with folders and categories.",
        "oauth",
        False,
    ),
    AppEntry(
        "hubspot",
        "HubSpot",
        ("crm", "hubspot crm"),
        "HubSpot CRM contacts, with static lists and properties.",
        "token",
        False,
        help_url="https://developers.hubspot.com/docs/api/private-apps",
    ),
    AppEntry(
        "mailchimp",
        "Mailchimp",
        ("newsletter", "intuit mailchimp", "audience"),
        "One Mailchimp audience: members, tags and merge fields.",
        "token",
        False,
        help_url="https://mailchimp.com/help/about-api-keys/",
    ),
)


def _entry(spec: AppKind) -> AppEntry:
    form = spec.sign_in
    secret = form.secret
    return AppEntry(
        kind=spec.kind,
        name=spec.name,
        aliases=spec.aliases,
        description=spec.description,
        auth=form.auth,
        available=form.auth in WIZARD_AUTH,
        settings=spec.settings,
        needs_secret=spec.needs_secret,
        help_url=secret.help_url if secret is not None else "",
        secret_help=secret.help if secret is not None else "",
        sign_in=form,
        subscriptions=spec.subscriptions,
    )


def app_list(query: str = "") -> list[AppEntry]:
    """Every app, available ones first (in the registry's order: SPEC §12's local apps, then
    servers), then those coming soon (alphabetically); filtered by ``query`` (name, kind or
    alias, case-insensitive). A kind that gets a connector moves from "coming soon" to
    available by registering, with no change here.

    Not alphabetical for available apps: Enter in the wizard's search box picks the first
    match, and "vcard" or "vcf" must find the vCard folder before the vCard file."""
    entries = [_entry(spec) for spec in KINDS.values()]
    working = [e for e in entries if e.available]
    taken = {e.kind for e in entries}
    soon = sorted(
        [
            *(e for e in entries if not e.available),
            *(e for e in COMING_SOON if e.kind not in taken),
        ],
        key=lambda e: e.name,
    )
    return [e for e in (*working, *soon) if e.matches(query)]


def app_entry(kind: str) -> AppEntry | None:
    return next((e for e in app_list() if e.kind == kind), None)


@dataclass(frozen=True, slots=True)
class AccountCheck:
    """What connecting to an account found: proof that it works, in numbers a person
    recognises ("Connected: 212 contacts, 3 groups")."""

    kind: str
    app: str
    settings: dict[str, str]
    """The settings to store (normalized; a server's discovery may have added some)."""
    contacts: int
    fields: int
    segments: tuple[str, ...]
    account: str = ""
    """The account's name when an existing account was checked."""

    def as_json(self) -> dict[str, Any]:
        """As it crosses the sync worker's pipe (``app.sync_worker``: the wizard's Connect
        reads the app there, not on a thread of the window)."""
        return {
            "kind": self.kind,
            "app": self.app,
            "settings": dict(self.settings),
            "contacts": self.contacts,
            "fields": self.fields,
            "segments": list(self.segments),
            "account": self.account,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccountCheck:
        return cls(
            kind=str(data["kind"]),
            app=str(data["app"]),
            settings={str(k): str(v) for k, v in dict(data["settings"]).items()},
            contacts=int(data["contacts"]),
            fields=int(data["fields"]),
            segments=tuple(str(s) for s in data["segments"]),
            account=str(data.get("account", "")),
        )
