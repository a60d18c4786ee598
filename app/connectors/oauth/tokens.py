"""Access tokens from a stored refresh token, refreshed before they expire.

The refresh token is the account's secret: it comes from the keyring and is never written
anywhere by this module. Access tokens live only in memory, one per connector instance, and
are refreshed ``LEEWAY`` seconds before they expire (and once more when the app answers 401
anyway, see :meth:`OAuthTokens.refresh`).

``invalid_grant`` from the token endpoint means the sign-in is over (revoked, expired after
months unused, password changed, a Testing app's 7 days): :class:`~app.errors.AuthExpired`,
which puts the connection in "Needs re-authorization" and keeps its configuration.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import requests
from authlib.integrations.base_client import OAuthError

from app.connectors.oauth.client import OAuthClient
from app.errors import AuthExpired, Unavailable

log = logging.getLogger(__name__)

LEEWAY = 120.0
"""Refresh an access token this many seconds before it expires."""


class OAuthTokens:
    """A live access token for one account. Thread-safe."""

    def __init__(
        self,
        client: OAuthClient,
        refresh_token: str,
        *,
        on_new_refresh_token: Callable[[str], None] | None = None,
        leeway: float = LEEWAY,
    ) -> None:
        self.client = client
        self._refresh_token = refresh_token
        self._on_new = on_new_refresh_token
        self._leeway = leeway
        self._access = ""
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0
        """Token requests made (tests and benchmarks count them)."""

    def access_token(self) -> str:
        with self._lock:
            if not self._access or time.time() >= self._expires_at - self._leeway:
                self._refresh_locked()
            return self._access

    def refresh(self, rejected: str = "") -> str:
        """A new access token, after the app refused ``rejected`` (another thread may
        already have replaced it: then that one is used)."""
        with self._lock:
            if not self._access or self._access == rejected:
                self._refresh_locked()
            return self._access

    def _expired(self, detail: str) -> AuthExpired:
        return AuthExpired(
            f"{self.client.provider} no longer accepts Pairsync's sign-in ({detail}): "
            "sign in again; the connection keeps its settings.",
            raw=detail,
        )

    def _refresh_locked(self) -> None:
        if not self._refresh_token:
            raise self._expired("no sign-in stored")
        session = self.client.session()
        try:
            token = session.refresh_token(self.client.token_url, refresh_token=self._refresh_token)
        except OAuthError as err:
            if err.error in ("invalid_grant", "unauthorized_client", "invalid_client"):
                raise self._expired(str(err.error)) from None
            raise Unavailable(
                f"{self.client.provider}'s sign-in server refused to renew access "
                f"({err.error}); trying again later.",
                raw=str(err.error),
            ) from None
        except (requests.RequestException, ValueError) as err:
            raise Unavailable(
                f"{self.client.provider}'s sign-in server cannot be reached right now.",
                raw=type(err).__name__,
            ) from None
        finally:
            session.close()
        self.refreshes += 1
        access = str(token.get("access_token") or "")
        if not access:
            raise Unavailable(f"{self.client.provider} renewed access without a token.")
        self._access = access
        self._expires_at = float(token.get("expires_at") or time.time() + 3000)
        new_refresh = str(token.get("refresh_token") or "")
        if new_refresh and new_refresh != self._refresh_token:
            # Providers that rotate refresh tokens: the caller stores the new one.
            self._refresh_token = new_refresh
            if self._on_new is not None:
                self._on_new(new_refresh)

    def auth(self) -> BearerAuth:
        return BearerAuth(self)


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer`` with a token that is always fresh, for ``requests``."""

    def __init__(self, tokens: OAuthTokens) -> None:
        self.tokens = tokens
        self.last = ""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self.last = self.tokens.access_token()
        request.headers["Authorization"] = f"Bearer {self.last}"
        return request
