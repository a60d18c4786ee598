"""Google's OAuth endpoints and which OAuth client Pairsync signs in with.

No credentials of ours live in the repository. The client id (and Google's non-secret
"installed app" secret, see https://developers.google.com/identity/protocols/oauth2/native-app)
come from, in this order:

1. the account's settings ``client_id`` / ``client_secret``;
2. ``oauth-clients.json`` in Pairsync's config folder: ``{"google": {"client_id": "...",
   "client_secret": "..."}}``;
3. :data:`BUILT_IN_CLIENT`: the installer's build bakes a client in by bundling a file
   ``built_in_client.json`` (same shape as ``oauth-clients.json``) beside this module, from the
   file that ``PAIRSYNC_OAUTH_CLIENTS`` names at build time (``installer/pairsync.spec``). The
   repository holds no such file, so a checkout has no built-in client.

``auth_base`` (tests: the emulator) replaces Google's sign-in hosts; plain http only to this
computer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from app.connectors.http import check_url
from app.connectors.oauth import OAuthClient
from app.errors import ConfigError

AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://oauth2.googleapis.com/token"
REVOKE_URL = "https://oauth2.googleapis.com/revoke"
API_BASE = "https://people.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/contacts", "openid", "email")
CLIENTS_FILE = "oauth-clients.json"

BUILT_IN_FILE = Path(__file__).with_name("built_in_client.json")
"""Bundled by the installer's build (PAIRSYNC_OAUTH_CLIENTS); absent in the repository."""


def built_in_client(path: Path = BUILT_IN_FILE) -> dict[str, str]:
    """The Google client baked into this build, or empty values when there is none.

    A broken file counts as none: the lookup then ends in the "bring your own client"
    sentence rather than in an error the user cannot mend.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    google = data.get("google") if isinstance(data, dict) else None
    if not isinstance(google, dict):
        return {"client_id": "", "client_secret": ""}
    return {
        "client_id": str(google.get("client_id", "")).strip(),
        "client_secret": str(google.get("client_secret", "")).strip(),
    }


BUILT_IN_CLIENT: dict[str, str] = built_in_client()
"""Filled from the installer's bundled file; empty in the repository."""

NO_CLIENT_MESSAGE = (
    "Google sign-in needs an OAuth client id: create a Desktop app client in Google Cloud "
    '(see the README, "Bring your own Google Cloud desktop client") and give it with '
    "--set client_id=... --set client_secret=..., or put it in {file}."
)


def client_credentials(settings: Mapping[str, str], config_dir: Path | None) -> tuple[str, str]:
    """(client id, client secret) by the lookup order above; ConfigError when none."""
    cid = settings.get("client_id", "").strip()
    if cid:
        return cid, settings.get("client_secret", "").strip()
    if config_dir is not None:
        path = config_dir / CLIENTS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = None
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path} cannot be read as JSON ({err}).") from None
        google = data.get("google") if isinstance(data, dict) else None
        if isinstance(google, dict) and str(google.get("client_id", "")).strip():
            return str(google["client_id"]).strip(), str(google.get("client_secret", "")).strip()
    if BUILT_IN_CLIENT.get("client_id"):
        return BUILT_IN_CLIENT["client_id"], BUILT_IN_CLIENT.get("client_secret", "")
    where = config_dir / CLIENTS_FILE if config_dir is not None else CLIENTS_FILE
    raise ConfigError(NO_CLIENT_MESSAGE.format(file=where))


def api_base(settings: Mapping[str, str]) -> str:
    base = settings.get("api_base", "").strip()
    return check_url(base, "The People API address (--set api_base=...)") if base else API_BASE


def oauth_client(settings: Mapping[str, str], config_dir: Path | None) -> OAuthClient:
    cid, secret = client_credentials(settings, config_dir)
    base = settings.get("auth_base", "").strip().rstrip("/")
    if base:
        check_url(base, "The sign-in address (--set auth_base=...)")
        urls = (base + "/o/oauth2/v2/auth", base + "/token", base + "/revoke")
    else:
        urls = (AUTHORIZE_URL, TOKEN_URL, REVOKE_URL)
    return OAuthClient(
        provider="Google",
        client_id=cid,
        client_secret=secret,
        authorize_url=urls[0],
        token_url=urls[1],
        revoke_url=urls[2],
        scopes=SCOPES,
        # offline: a refresh token; consent: Google sends a new one on every sign-in.
        extra_authorize_params={"access_type": "offline", "prompt": "consent"},
    )
