"""Google's OAuth 2 authorization server, as an installed ("Desktop app") client sees it.

Paths under the emulator's base URL, as on Google (host names aside):
``GET /o/oauth2/v2/auth`` (consent page), ``POST /token`` (authorization_code and
refresh_token grants), ``POST /revoke``. PKCE S256 is required here (Google allows plain and
none; requiring it proves the client sends it). Errors use RFC 6749's JSON shape with
Google's own words: ``invalid_grant`` "Token has been expired or revoked." for a revoked or
expired refresh token, "Bad Request" for a wrong code or verifier.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from tests.emulators.common import Reply, Request

CLIENT_ID = "pairsync-test.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-emulator-not-secret"
SCOPES = {
    "https://www.googleapis.com/auth/contacts",
    "https://www.googleapis.com/auth/contacts.readonly",
    "openid",
    "email",
    "profile",
}


def _is_loopback_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@dataclass(slots=True)
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    state: str
    expires: float
    used: bool = False


@dataclass(slots=True)
class _Refresh:
    scope: str
    revoked: bool = False
    access: set[str] = field(default_factory=set)


class OAuthServer:
    """Mixed into the emulator; keeps its own state under the emulator's lock."""

    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET

    def _oauth_init(self, auto_consent: bool, fixed_token: str | None) -> None:
        self.consent = "allow" if auto_consent else "page"
        """page: show the consent page; allow/deny: answer it at once as the user would."""
        self.user_email = "user@example.com"
        self.access_ttl = 3599
        self.fixed_token = fixed_token
        self._pending: dict[str, dict[str, str]] = {}
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._access: dict[str, float] = {}
        self.token_requests: list[dict[str, str]] = []

    # --- controls for tests ------------------------------------------------------------

    def issue_refresh_token(self, scope: str = "https://www.googleapis.com/auth/contacts") -> str:
        token = "1//" + secrets.token_urlsafe(32)
        with self.lock:  # type: ignore[attr-defined]
            self._refresh[token] = _Refresh(scope)
        return token

    def revoke_all(self) -> None:
        """The user removed the app's access (or the refresh tokens expired)."""
        with self.lock:  # type: ignore[attr-defined]
            for ref in self._refresh.values():
                ref.revoked = True
                for access in ref.access:
                    self._access.pop(access, None)

    def expire_access_tokens(self) -> None:
        with self.lock:  # type: ignore[attr-defined]
            self._access = {k: 0.0 for k in self._access}

    def bearer_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        token = header[7:]
        if self.fixed_token and token == self.fixed_token:
            return True
        with self.lock:  # type: ignore[attr-defined]
            expires = self._access.get(token)
        return expires is not None and expires > time.time()

    # --- endpoints ---------------------------------------------------------------------

    def _oauth_routes(self) -> None:
        self.route("GET", r"/o/oauth2/v2/auth", self.authorize)  # type: ignore[attr-defined]
        self.route("POST", r"/o/oauth2/v2/approve", self.approve)  # type: ignore[attr-defined]
        self.route("POST", r"/token", self.token)  # type: ignore[attr-defined]
        self.route("POST", r"/revoke", self.revoke)  # type: ignore[attr-defined]

    def _auth_error(self, text: str) -> Reply:
        return Reply.html(f"<h1>400. That’s an error.</h1><p>{html.escape(text)}</p>", 400)

    def authorize(self, request: Request) -> Reply:
        q = {k: v[0] for k, v in request.query.items()}
        if q.get("client_id") != self.client_id:
            return self._auth_error("Error 401: invalid_client. The OAuth client was not found.")
        redirect = q.get("redirect_uri", "")
        if not _is_loopback_redirect(redirect):
            return self._auth_error("Error 400: redirect_uri_mismatch")
        if q.get("response_type") != "code":
            return self._auth_error("Error 400: unsupported_response_type")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return self._auth_error("Error 400: invalid_request (PKCE S256 required here)")
        scopes = set(q.get("scope", "").split())
        if not scopes or not scopes <= SCOPES:
            return self._auth_error("Error 400: invalid_scope")
        ticket = secrets.token_urlsafe(12)
        with self.lock:  # type: ignore[attr-defined]
            self._pending[ticket] = q
        if self.consent == "allow":
            return self._decide(ticket, True)
        if self.consent == "deny":
            return self._decide(ticket, False)
        return Reply.html(
            "<!doctype html><title>Sign in - Google Accounts</title>"
            f"<p>Pairsync wants to access your Google Account {html.escape(self.user_email)}</p>"
            '<form method="post" action="/o/oauth2/v2/approve">'
            f'<input type="hidden" name="ticket" value="{ticket}">'
            '<button name="decision" value="allow">Allow</button>'
            '<button name="decision" value="deny">Cancel</button></form>'
        )

    def approve(self, request: Request) -> Reply:
        form = request.form()
        return self._decide(form.get("ticket", ""), form.get("decision") == "allow")

    def _decide(self, ticket: str, allow: bool) -> Reply:
        with self.lock:  # type: ignore[attr-defined]
            q = self._pending.pop(ticket, None)
        if q is None:
            return self._auth_error("This sign-in request has expired.")
        back: dict[str, str] = {}
        if allow:
            code = "4/" + secrets.token_urlsafe(24)
            with self.lock:  # type: ignore[attr-defined]
                self._codes[code] = _Grant(
                    q["client_id"],
                    q["redirect_uri"],
                    q["code_challenge"],
                    q.get("scope", ""),
                    q.get("state", ""),
                    time.time() + 600,
                )
            back["code"] = code
            back["scope"] = q.get("scope", "")
        else:
            back["error"] = "access_denied"
        if "state" in q:
            back["state"] = q["state"]
        sep = "&" if "?" in q["redirect_uri"] else "?"
        return Reply.redirect(q["redirect_uri"] + sep + urlencode(back))

    @staticmethod
    def _token_error(error: str, description: str, status: int = 400) -> Reply:
        return Reply.json({"error": error, "error_description": description}, status)

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            raw = base64.b64decode(header[6:]).decode()
            client_id, _, secret = raw.partition(":")
        return client_id == self.client_id and secret == self.client_secret

    def token(self, request: Request) -> Reply:
        form = request.form()
        with self.lock:  # type: ignore[attr-defined]
            self.token_requests.append({k: v for k, v in form.items() if k == "grant_type"})
        if not self._client_ok(request, form):
            return self._token_error("invalid_client", "The OAuth client was not found.", 401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            with self.lock:  # type: ignore[attr-defined]
                found = self._codes.get(form.get("code", ""))
                if found is not None:
                    found_used, found.used = found.used, True
            if (
                found is None
                or found_used
                or found.expires < time.time()
                or found.redirect_uri != form.get("redirect_uri")
                or s256(form.get("code_verifier", "")) != found.challenge
            ):
                return self._token_error("invalid_grant", "Bad Request")
            refresh = self.issue_refresh_token(found.scope)
            return self._tokens(refresh, found.scope, with_refresh=True)
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            with self.lock:  # type: ignore[attr-defined]
                ref = self._refresh.get(token)
            if ref is None or ref.revoked:
                return self._token_error("invalid_grant", "Token has been expired or revoked.")
            return self._tokens(token, ref.scope, with_refresh=False)
        return self._token_error("unsupported_grant_type", "Invalid grant_type: " + str(grant))

    def _tokens(self, refresh: str, scope: str, *, with_refresh: bool) -> Reply:
        access = "ya29." + secrets.token_urlsafe(32)
        with self.lock:  # type: ignore[attr-defined]
            self._access[access] = time.time() + self.access_ttl
            self._refresh[refresh].access.add(access)
        body: dict[str, object] = {
            "access_token": access,
            "expires_in": self.access_ttl,
            "scope": scope,
            "token_type": "Bearer",
        }
        if with_refresh:
            body["refresh_token"] = refresh
        if "openid" in scope.split():
            header = _b64({"alg": "RS256", "kid": "emulator", "typ": "JWT"})
            claims = _b64(
                {
                    "iss": "https://accounts.google.com",
                    "aud": self.client_id,
                    "sub": "1000000000001",
                    "email": self.user_email,
                    "email_verified": True,
                    "iat": int(time.time()),
                    "exp": int(time.time()) + 3600,
                }
            )
            body["id_token"] = f"{header}.{claims}.c2lnbmF0dXJl"
        return Reply.json(body, headers={"Cache-Control": "no-cache, no-store, max-age=0"})

    def revoke(self, request: Request) -> Reply:
        token = request.form().get("token") or request.arg("token")
        with self.lock:  # type: ignore[attr-defined]
            ref = self._refresh.get(token)
            if ref is not None:
                ref.revoked = True
                for access in ref.access:
                    self._access.pop(access, None)
                return Reply.json({})
            if token in self._access:
                del self._access[token]
                return Reply.json({})
        return self._token_error("invalid_token", "Token expired or revoked")
