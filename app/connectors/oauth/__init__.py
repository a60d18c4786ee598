"""OAuth 2 for desktop apps (RFC 8252), shared by every cloud app: sign-in through the
system browser with a loopback redirect, PKCE and ``state`` (:mod:`.loopback`), and access
tokens kept fresh from a refresh token that lives only in the keyring (:mod:`.tokens`).

The protocol parts (authorization URL, PKCE challenge, token requests) come from Authlib;
this package adds the loopback listener, timeouts, and the mapping of failures to
Pairsync's typed errors. Qt-free: the wizard runs :func:`sign_in` on a worker thread.
"""

from app.connectors.oauth.client import OAuthClient
from app.connectors.oauth.loopback import (
    SIGN_IN_TIMEOUT,
    ConsentDenied,
    SignInCancelled,
    SignInFailed,
    SignInResult,
    SignInTimeout,
    sign_in,
)
from app.connectors.oauth.tokens import BearerAuth, OAuthTokens

__all__ = [
    "SIGN_IN_TIMEOUT",
    "BearerAuth",
    "ConsentDenied",
    "OAuthClient",
    "OAuthTokens",
    "SignInCancelled",
    "SignInFailed",
    "SignInResult",
    "SignInTimeout",
    "sign_in",
]
