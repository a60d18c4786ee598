"""How an account of an app is signed in to, as plain data: the form each app kind declares in
the registry (``app.connectors.registry``) and the fronts render — the wizard's account page
and the "sign in again" dialog in the window, the prompts and messages of ``account add`` in
the CLI. An app that declares its form here needs nothing of its own in ``app/ui``.

A form is a list of fields, each filling one account setting (``path``, ``url``…) or the
account's secret (a password or token: masked, kept only in the system's keyring), or it says
the app is signed in through the browser (OAuth: the page shows a "Sign in with …" button
and no secret field). Labels may mark a keyboard shortcut with ``&`` (as Qt and Windows menus
do); ``plain`` gives them without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Input(StrEnum):
    """What a field asks for, which decides how it is shown."""

    TEXT = "text"
    URL = "url"
    FOLDER = "folder"
    """A folder, with a picker."""
    FILE = "file"
    """A file, with a picker that also takes a new name (created at the first sync)."""
    PASSWORD = "password"
    """The account's password: masked, kept only in the keyring."""
    TOKEN = "token"
    """The account's access token or API key: masked, kept only in the keyring."""

    @property
    def secret(self) -> bool:
        return self in (Input.PASSWORD, Input.TOKEN)


SECRET = "secret"
"""The key of a form's secret field (the secret is not an account setting)."""


def plain(label: str) -> str:
    """A label without its shortcut mark (``Server &address`` → ``Server address``)."""
    return label.replace("&&", "\0").replace("&", "").replace("\0", "&")


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a sign-in form."""

    key: str
    """The account setting it fills, or ``SECRET``."""
    label: str
    input: Input = Input.TEXT
    required: bool = True
    placeholder: str = ""
    """A hint shown in the empty field ("the first one found, if empty")."""
    help: str = ""
    """Words under the field: where the app shows the token, which scopes it needs."""
    help_url: str = ""
    """A page saying where to find what the field asks for ("Where do I find this?")."""
    file_filter: str = ""
    """For a file: the picker's filter, e.g. ``vCard files (*.vcf *.vcard)``."""


@dataclass(frozen=True, slots=True)
class SignInForm:
    """The sign-in form of one app kind (see the module docstring)."""

    fields: tuple[Field, ...] = ()
    browser: bool = False
    """Signed in through the browser (OAuth): no secret field; the button opens the browser."""
    note: str = ""
    """A sentence under the form ("Pick an existing CSV file, or name a new one…")."""

    @property
    def settings(self) -> tuple[Field, ...]:
        """The fields that fill account settings (all but the secret)."""
        return tuple(f for f in self.fields if f.key != SECRET)

    @property
    def secret(self) -> Field | None:
        return next((f for f in self.fields if f.key == SECRET), None)

    @property
    def auth(self) -> str:
        """How the account is authorized, in one word: ``oauth`` (the browser), ``folder``
        or ``file`` (a local path), ``password``, ``token``, or ``settings`` (only settings)."""
        if self.browser:
            return "oauth"
        for f in self.fields:
            if f.input in (Input.FOLDER, Input.FILE, Input.PASSWORD, Input.TOKEN):
                return str(f.input)
        return "settings"

    def field(self, key: str) -> Field | None:
        return next((f for f in self.fields if f.key == key), None)

    @classmethod
    def generic(
        cls,
        settings: Sequence[str],
        needs_secret: bool,
        *,
        help_url: str = "",
        secret_help: str = "",
    ) -> SignInForm:
        """The form of a kind that declares none: its required settings as text fields,
        then an API key or token where it needs a secret."""
        fields = [Field(key, key.replace("_", " ").capitalize()) for key in settings]
        if needs_secret:
            fields.append(
                Field(SECRET, "API &key or token", Input.TOKEN, help=secret_help, help_url=help_url)
            )
        return cls(tuple(fields))
