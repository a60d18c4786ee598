"""Sign-in through the system browser with a loopback redirect (RFC 8252 §7.3).

1. A listener is bound on ``127.0.0.1`` at a port the system picks, before anything else,
   so the browser's redirect can never find the port closed.
2. The consent address carries a PKCE S256 challenge (RFC 7636) and a random ``state``;
   the system browser opens it (``webbrowser``), or the caller shows it (``--no-browser``).
3. The listener answers requests until the one that carries ``code`` or ``error`` on the
   redirect path arrives (a browser may ask for ``/favicon.ico`` first), replies with a small
   page ("you can close this tab") and closes. A wrong ``state`` ends the sign-in: that answer
   was not meant for us.
4. The code is exchanged for tokens with the PKCE verifier (Authlib does the protocol part).

Failures are typed: :class:`ConsentDenied` (the user clicked Deny), :class:`SignInTimeout`
(nobody came back within the time allowed, 5 minutes by default), :class:`SignInCancelled`
(the caller's cancel event), :class:`SignInFailed` (anything else, in words). The first three
are :class:`~app.errors.AuthExpired`: the account still needs authorization (CLI exit 3).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.integrations.base_client import OAuthError

from app.connectors.oauth.client import OAuthClient
from app.errors import AuthExpired, PairsyncError, Unavailable

log = logging.getLogger(__name__)

SIGN_IN_TIMEOUT = 300.0
"""Seconds the listener waits for the browser to come back (5 minutes)."""
POLL = 0.2
"""How often the listener looks at the clock and the cancel event."""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pairsync</title>
<style>body{{font-family:system-ui,sans-serif;margin:4em auto;max-width:32em;color:#222}}
h1{{font-size:1.4em}}</style></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""


class SignInFailed(PairsyncError):
    """The sign-in did not succeed, for a reason said in words."""

    code = "sign_in"


class ConsentDenied(AuthExpired):
    code = "auth"


class SignInTimeout(AuthExpired):
    code = "auth"


class SignInCancelled(AuthExpired):
    code = "auth"


@dataclass(frozen=True, slots=True)
class SignInResult:
    refresh_token: str
    access_token: str
    expires_at: float
    """Unix time the access token stops working."""
    scope: str
    email: str = ""
    """The signed-in user's address, when the provider said (OpenID Connect ``email``)."""


@dataclass(slots=True)
class _Callback:
    params: dict[str, str]


class _Listener(HTTPServer):
    """One-shot loopback listener: keeps the first callback on the redirect path."""

    allow_reuse_address = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.timeout = POLL
        self.callback: _Callback | None = None
        self.expected_state = ""
        self.path = "/"

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{self.path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Listener
    timeout = 5.0
    """Seconds a connection may stay silent: a client that connects and sends nothing must
    not hold the sign-in past its deadline."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("loopback: " + format, *args)  # never the query: it holds the code

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != self.server.path or self.server.callback is not None:
            self._reply(404, "Not found", "This address is not part of the sign-in.")
            return
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if "code" not in query and "error" not in query:
            self._reply(400, "Nothing to do", "This page waits for the sign-in to come back.")
            return
        self.server.callback = _Callback(query)
        if query.get("state", "") != self.server.expected_state:
            self._reply(
                400,
                "Sign-in refused",
                "This answer does not belong to the sign-in Pairsync started. "
                "Go back to Pairsync and try again.",
            )
        elif "error" in query:
            self._reply(
                200, "Sign-in cancelled", "Pairsync was not given access. You can close this tab."
            )
        else:
            self._reply(200, "Signed in", "Pairsync is now connected. You can close this tab.")

    def _reply(self, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _id_token_email(id_token: str) -> str:
    """The ``email`` claim of an ID token received straight from the token endpoint over
    TLS (OpenID Connect Core §3.1.3.7 lets such a token skip signature checks). Used only
    to say who is signed in; never trusted for anything else."""
    try:
        payload = id_token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return ""
    email = data.get("email") if isinstance(data, dict) else None
    return email if isinstance(email, str) else ""


def _duration(seconds: float) -> str:
    if seconds >= 60:
        minutes = round(seconds / 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    whole = max(1, round(seconds))
    return f"{whole} second{'s' if whole != 1 else ''}"


def sign_in(
    client: OAuthClient,
    *,
    open_browser: Callable[[str], Any] | None = webbrowser.open,
    on_url: Callable[[str], None] | None = None,
    timeout: float = SIGN_IN_TIMEOUT,
    cancel: threading.Event | None = None,
    login_hint: str = "",
) -> SignInResult:
    """Run the whole sign-in and return the tokens.

    ``open_browser`` opens the consent address (None: do not open anything); ``on_url`` is
    told the address in any case (the CLI prints it with ``--no-browser``, the wizard shows
    it as a link in case no browser opened).
    """
    listener = _Listener()
    try:
        verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
        state = secrets.token_urlsafe(24)
        listener.expected_state = state
        session = client.session(listener.redirect_uri)
        params = dict(client.extra_authorize_params)
        if login_hint:
            params["login_hint"] = login_hint
        url, _ = session.create_authorization_url(
            client.authorize_url, state=state, code_verifier=verifier, **params
        )
        if on_url is not None:
            on_url(url)
        if open_browser is not None:
            try:
                open_browser(url)
            except Exception as err:  # a missing browser must not hide the address
                log.warning("Could not open a browser: %s", err)
        deadline = time.monotonic() + timeout
        while listener.callback is None:
            if cancel is not None and cancel.is_set():
                raise SignInCancelled(f"Signing in to {client.provider} was cancelled.")
            if time.monotonic() >= deadline:
                raise SignInTimeout(
                    f"Signing in to {client.provider} timed out: the browser did not come back "
                    f"within {_duration(timeout)}; try again."
                )
            listener.handle_request()
        params_back = listener.callback.params
    finally:
        listener.server_close()

    if params_back.get("state", "") != state:
        raise SignInFailed(
            f"The answer from {client.provider}'s sign-in page did not match this sign-in "
            "(wrong state); nothing was stored. Try again."
        )
    if "error" in params_back:
        error = params_back["error"]
        if error == "access_denied":
            raise ConsentDenied(f"Access to {client.provider} was denied in the browser.")
        raise SignInFailed(
            f"{client.provider}'s sign-in page refused: {error}"
            + (
                f" ({params_back['error_description']})"
                if "error_description" in params_back
                else ""
            )
            + "."
        )
    try:
        token = session.fetch_token(
            client.token_url, code=params_back["code"], code_verifier=verifier
        )
    except OAuthError as err:
        raise SignInFailed(
            f"{client.provider} refused to finish the sign-in ({err.error}"
            + (f": {err.description}" if err.description else "")
            + "); try again.",
            raw=str(err.error),
        ) from None
    except (requests.RequestException, ValueError) as err:
        raise Unavailable(
            f"{client.provider}'s sign-in server cannot be reached; try again.",
            raw=type(err).__name__,
        ) from None
    finally:
        session.close()
    refresh = str(token.get("refresh_token") or "")
    if not refresh:
        raise SignInFailed(
            f"{client.provider} signed you in but gave no lasting access (no refresh token). "
            f"Remove Pairsync from your account's connected apps, then sign in again."
        )
    return SignInResult(
        refresh_token=refresh,
        access_token=str(token.get("access_token", "")),
        expires_at=float(token.get("expires_at") or time.time() + 3000),
        scope=str(token.get("scope", "")),
        email=_id_token_email(str(token.get("id_token", ""))),
    )
