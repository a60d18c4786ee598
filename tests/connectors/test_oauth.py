"""OAuth sign-in for desktop apps, end to end against the Google emulator's authorization
server, the test playing the browser (consent page → Allow/Deny → loopback redirect)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app.connectors.oauth import (
    ConsentDenied,
    OAuthClient,
    OAuthTokens,
    SignInCancelled,
    SignInFailed,
    SignInTimeout,
    sign_in,
)
from app.errors import AuthExpired, ConfigError
from tests.emulators.browser import Browser
from tests.emulators.google_people import CLIENT_ID, CLIENT_SECRET, GooglePeopleEmulator

SCOPES = ("https://www.googleapis.com/auth/contacts", "openid", "email")


@pytest.fixture
def google() -> Iterator[GooglePeopleEmulator]:
    with GooglePeopleEmulator() as emulator:
        yield emulator  # type: ignore[misc]


def client_for(emulator: GooglePeopleEmulator, **changes: str) -> OAuthClient:
    values = {
        "provider": "Google",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorize_url": emulator.url + "/o/oauth2/v2/auth",
        "token_url": emulator.url + "/token",
        "revoke_url": emulator.url + "/revoke",
    } | changes
    return OAuthClient(
        scopes=SCOPES,
        extra_authorize_params={"access_type": "offline", "prompt": "consent"},
        **values,
    )


def test_sign_in_success(google: GooglePeopleEmulator) -> None:
    browser = Browser("allow")
    shown: list[str] = []
    result = sign_in(client_for(google), open_browser=browser, on_url=shown.append, timeout=20)
    browser.join()
    assert not browser.errors
    assert result.refresh_token.startswith("1//")
    assert result.access_token and result.expires_at > time.time() + 3000
    assert result.email == "user@example.com"
    # The consent address carried PKCE S256, state, a loopback redirect and offline access.
    query = parse_qs(urlsplit(shown[0]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["state"][0]
    assert query["access_type"] == ["offline"]
    redirect = urlsplit(query["redirect_uri"][0])
    assert redirect.scheme == "http" and redirect.hostname == "127.0.0.1" and redirect.port
    # The browser's tab says it can be closed; the listener is gone afterwards.
    status, page = browser.pages[-1]
    assert status == 200 and "close this tab" in page
    with pytest.raises(requests.ConnectionError):
        requests.get(query["redirect_uri"][0], timeout=2)
    # The refresh token works.
    tokens = OAuthTokens(client_for(google), result.refresh_token)
    assert tokens.access_token().startswith("ya29.")


def test_wrong_state_is_refused_and_nothing_exchanged(google: GooglePeopleEmulator) -> None:
    browser = Browser("allow", tamper_state=True)
    with pytest.raises(SignInFailed, match="wrong state"):
        sign_in(client_for(google), open_browser=browser, timeout=20)
    browser.join()
    assert browser.pages[-1][0] == 400
    assert google.count("POST", "^/token$") == 0


def test_denied_consent(google: GooglePeopleEmulator) -> None:
    browser = Browser("deny")
    with pytest.raises(ConsentDenied, match="denied"):
        sign_in(client_for(google), open_browser=browser, timeout=20)
    browser.join()
    assert isinstance(ConsentDenied("x"), AuthExpired)  # CLI exit 3
    assert "close this tab" in browser.pages[-1][1]


def test_timeout_with_a_clear_message(google: GooglePeopleEmulator) -> None:
    browser = Browser("none")  # opens the page, never answers
    started = time.monotonic()
    with pytest.raises(SignInTimeout, match="timed out: the browser did not come back"):
        sign_in(client_for(google), open_browser=browser, timeout=1.0)
    assert time.monotonic() - started < 5


def test_cancel(google: GooglePeopleEmulator) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(SignInCancelled):
        sign_in(client_for(google), open_browser=None, timeout=20, cancel=cancel)


def test_unrelated_requests_do_not_end_the_sign_in(google: GooglePeopleEmulator) -> None:
    """A browser asks for /favicon.ico; only the redirect itself counts."""
    urls: list[str] = []

    def browser(url: str) -> None:
        urls.append(url)

        def run() -> None:
            redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
            assert requests.get(redirect + "favicon.ico", timeout=5).status_code == 404
            assert requests.get(redirect, timeout=5).status_code == 400  # no code, no error
            Browser("allow")._run(url)

        threading.Thread(target=run, daemon=True).start()

    result = sign_in(client_for(google), open_browser=browser, timeout=20)
    assert result.refresh_token


def test_wrong_client_secret_fails_in_words(google: GooglePeopleEmulator) -> None:
    browser = Browser("allow")
    with pytest.raises(SignInFailed, match="refused to finish the sign-in"):
        sign_in(client_for(google, client_secret="wrong"), open_browser=browser, timeout=20)


def test_plain_http_only_to_this_computer() -> None:
    with pytest.raises(ConfigError, match="https"):
        OAuthClient("Google", "id", "", "http://accounts.example.com/auth", "https://x/token", ())


def test_access_token_refreshed_before_expiry(google: GooglePeopleEmulator) -> None:
    refresh = google.issue_refresh_token()
    google.access_ttl = 100  # shorter than the 120 s leeway: every use refreshes
    tokens = OAuthTokens(client_for(google), refresh)
    first = tokens.access_token()
    second = tokens.access_token()
    assert first != second and tokens.refreshes == 2
    google.access_ttl = 3599
    third = tokens.access_token()
    assert tokens.access_token() == third and tokens.refreshes == 3


def test_refresh_after_the_app_refused_the_token(google: GooglePeopleEmulator) -> None:
    tokens = OAuthTokens(client_for(google), google.issue_refresh_token())
    old = tokens.access_token()
    google.expire_access_tokens()
    new = tokens.refresh(old)
    assert new != old
    assert tokens.refresh(old) == new  # a second thread with the same old token: no request
    assert tokens.refreshes == 2


@pytest.mark.parametrize("how", ["revoked", "expired", "unknown"])
def test_revoked_or_expired_refresh_token_is_auth_expired(
    google: GooglePeopleEmulator, how: str
) -> None:
    refresh = google.issue_refresh_token()
    if how == "revoked":
        r = requests.post(google.url + "/revoke", data={"token": refresh}, timeout=5)
        assert r.status_code == 200
    elif how == "expired":
        google.revoke_all()
    else:
        refresh = "1//never-issued"
    tokens = OAuthTokens(client_for(google), refresh)
    with pytest.raises(AuthExpired, match="sign in again") as err:
        tokens.access_token()
    assert err.value.raw == "invalid_grant"
    assert refresh not in str(err.value) and refresh not in err.value.raw


def test_token_server_down_is_unavailable_not_auth(google: GooglePeopleEmulator) -> None:
    from app.errors import Unavailable

    client = client_for(google)
    google.stop()
    with pytest.raises(Unavailable):
        OAuthTokens(client, "1//x").access_token()


def test_timeout_words() -> None:
    from app.connectors.oauth.loopback import SIGN_IN_TIMEOUT, _duration

    assert _duration(SIGN_IN_TIMEOUT) == "5 minutes"
    assert (_duration(1), _duration(30), _duration(60)) == ("1 second", "30 seconds", "1 minute")


def test_a_silent_connection_does_not_hold_the_sign_in(google: GooglePeopleEmulator) -> None:
    import socket

    opened: list[socket.socket] = []

    def browser(url: str) -> None:
        redirect = urlsplit(parse_qs(urlsplit(url).query)["redirect_uri"][0])
        sock = socket.create_connection((redirect.hostname, redirect.port))
        opened.append(sock)  # connects and never sends a byte

    started = time.monotonic()
    with pytest.raises(SignInTimeout):
        sign_in(client_for(google), open_browser=browser, timeout=1.0)
    assert time.monotonic() - started < 8
    for sock in opened:
        sock.close()
