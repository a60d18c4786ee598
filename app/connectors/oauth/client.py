"""Who we are to an OAuth provider, and where its endpoints are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.requests_client import OAuth2Session

from app.connectors.http import USER_AGENT, check_url

TOKEN_TIMEOUT = (10.0, 30.0)
"""Connect and read timeouts of every token-endpoint request."""


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """An installed-app OAuth client: its id (and the provider's non-secret "secret" for
    desktop clients, where it has one) and the provider's endpoints."""

    provider: str
    """The app's name, for messages ("Google")."""
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    revoke_url: str = ""
    extra_authorize_params: Mapping[str, str] = field(default_factory=dict)
    """Provider-specific authorization parameters (Google: ``access_type=offline``)."""

    def __post_init__(self) -> None:
        check_url(self.authorize_url, f"{self.provider}'s sign-in address")
        check_url(self.token_url, f"{self.provider}'s token address")
        if self.revoke_url:
            check_url(self.revoke_url, f"{self.provider}'s revocation address")

    def session(self, redirect_uri: str | None = None) -> OAuth2Session:
        """An Authlib session for the token endpoint (never for API calls)."""
        extra: dict[str, Any] = {}
        if redirect_uri is not None:
            extra["redirect_uri"] = redirect_uri
        session = OAuth2Session(
            client_id=self.client_id,
            client_secret=self.client_secret or None,
            # Installed apps send their (public) secret in the body, as Google documents.
            token_endpoint_auth_method="client_secret_post" if self.client_secret else "none",
            scope=" ".join(self.scopes),
            code_challenge_method="S256",
            default_timeout=TOKEN_TIMEOUT,
            **extra,
        )
        session.headers["User-Agent"] = USER_AGENT
        return session
