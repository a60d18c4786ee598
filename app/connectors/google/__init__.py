"""Google Contacts through the People API v1 (see ``app`` for the connector)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from app.connectors.google.api import PeopleApi
from app.connectors.google.app import GoogleContactsApp
from app.connectors.google.auth import api_base, oauth_client
from app.connectors.oauth import OAuthClient, OAuthTokens

__all__ = ["GoogleContactsApp", "build", "check", "sign_in_client"]

ACCOUNT_EMAIL = "account_email"
"""Setting stored after the sign-in: who the account is (shown, and keys the mirror)."""


def sign_in_client(settings: Mapping[str, str], config_dir: Path | None) -> OAuthClient:
    return oauth_client(settings, config_dir)


def check(settings: Mapping[str, str], config_dir: Path | None) -> None:
    """Addresses are https (plain http only to this computer) and a client id is known."""
    api_base(settings)
    oauth_client(settings, config_dir)


def build(
    settings: Mapping[str, str],
    refresh_token: str,
    *,
    config_dir: Path | None,
    cache_dir: Path | None,
) -> GoogleContactsApp:
    base = api_base(settings)
    tokens = OAuthTokens(oauth_client(settings, config_dir), refresh_token)
    mirror = None
    if cache_dir is not None:
        who = (
            settings.get(ACCOUNT_EMAIL, "").strip().casefold()
            or hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()
        )
        key = hashlib.sha256(f"{base}\n{who}".encode()).hexdigest()[:20]
        mirror = cache_dir / f"google-{key}.json"
    return GoogleContactsApp(PeopleApi(base, tokens), mirror_file=mirror)
