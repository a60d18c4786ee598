"""The one way connectors talk HTTP: a ``requests.Session`` per account, with the rules of
DESIGN.md applied in one place.

* Timeouts always (connect and read).
* Reads (``retry=True``) are retried with exponential back-off on connection errors,
  timeouts, 429 and 502/503/504, honouring ``Retry-After``; a wait longer than ``max_wait``
  is not slept through but raised as :class:`RateLimited` so the scheduler can come back.
* Writes (``retry=False``) are never retried: a write whose answer was lost may have been
  applied, and only the caller knows how to find out.
* 401 → :class:`AuthExpired`; what is still failing after the retries → :class:`Unavailable`
  or :class:`RateLimited`. Every other status is returned for the caller to judge.
* HTTPS only; plain HTTP only to a loopback address (tests, local servers).
* Redirects are followed by hand, keeping the method and body (``requests`` turns a 302
  PROPFIND into a GET), and credentials are only re-sent to the same host or a sibling host
  of the same domain over HTTPS (iCloud redirects to a partition host).
* Nothing secret is logged or put into an error: URLs never carry credentials (refused by
  :func:`check_url`) and headers are never logged.
* What ``requests`` takes from the environment (``HTTPS_PROXY``/``NO_PROXY``,
  ``REQUESTS_CA_BUNDLE``, ``~/.netrc``) is read once per host, not on every request (it walks
  the whole environment each time, which costs more than a request to a server nearby).
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from app.errors import AuthExpired, ConfigError, RateLimited, Unavailable

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
USER_AGENT = "Pairsync/0.1 (+contact sync)"


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str = "The server address") -> str:
    """``url`` if it is an absolute http(s) URL we may use; ConfigError saying why not."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} must be a full https:// address, not {url!r}.")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{what} must not contain a user name or password; give the password with "
            "--secret-env instead."
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{what} must use https:// (plain http is only allowed to this computer)."
        )
    return url.strip()


def _same_site(a: str, b: str) -> bool:
    """Hosts that may receive the same credentials: equal, or siblings under one domain."""
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    pa, pb = a.split("."), b.split(".")
    return len(pa) >= 2 and len(pb) >= 2 and pa[-2:] == pb[-2:]


def retry_after(response: requests.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return default
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    """Tries in all for a read (the first one included)."""
    backoff: float = 0.5
    """First pause in seconds; doubled after every failed try."""
    max_wait: float = 30.0
    """Longest pause slept through; a longer Retry-After raises RateLimited at once."""


@dataclass(frozen=True, slots=True)
class _Environment:
    """Settings ``requests`` reads from the environment for one host."""

    proxies: Any
    verify: Any
    cert: Any
    netrc: tuple[str, str] | None
    """``~/.netrc`` credentials for a host we have none for (as requests would send)."""


class HttpClient:
    """One account's HTTP session. Safe to share between a few worker threads."""

    def __init__(
        self,
        app_name: str,
        base_url: str,
        *,
        auth: tuple[str, str] | requests.auth.AuthBase | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        pool_size: int = 8,
    ) -> None:
        self.app_name = app_name
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._auth = auth
        self._auth_host = urlsplit(check_url(base_url)).hostname or ""
        self._lock = threading.Lock()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.trust_env = False  # the environment is read once per host instead
        self._environments: dict[tuple[str, str], _Environment] = {}
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.sent = 0
        """Requests sent, redirects and retries included (tests and benchmarks count them)."""

    def close(self) -> None:
        self.session.close()

    def _credentials_for(self, url: str) -> tuple[str, str] | requests.auth.AuthBase | None:
        if self._auth is None:
            return None
        host = urlsplit(url).hostname or ""
        return self._auth if _same_site(self._auth_host, host) else None

    def _environment(self, url: str) -> _Environment:
        """What ``requests`` would take from the environment for ``url`` (proxies, CA bundle,
        client certificate, .netrc credentials), found once per scheme and host."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc.lower())
        found = self._environments.get(key)
        if found is None:
            probe = requests.Session()  # trust_env=True: exactly what requests would do
            try:
                merged = probe.merge_environment_settings(url, {}, None, None, None)
            finally:
                probe.close()
            # requests reads ~/.netrc only for a request that carries no credentials
            netrc = requests.utils.get_netrc_auth(url) if not self._credentials_for(url) else None
            found = _Environment(merged["proxies"], merged["verify"], merged["cert"], netrc)
            with self._lock:
                self._environments[key] = found
        return found

    def _send_once(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: Mapping[str, str],
    ) -> requests.Response:
        """One exchange, following redirects by hand (method and body kept)."""
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url)
            with self._lock:
                self.sent += 1
            env = self._environment(url)
            started = time.perf_counter()
            response = self.session.request(
                method,
                url,
                data=data,
                headers=dict(headers),
                auth=self._credentials_for(url) or env.netrc,
                timeout=self.timeout,
                allow_redirects=False,
                proxies=env.proxies,
                verify=env.verify,
                cert=env.cert,
            )
            log.debug(
                "%s %s -> %s (%.0f ms)",
                method,
                url,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
            location = response.headers.get("Location")
            if response.status_code not in REDIRECTS or not location:
                return response
            target = urljoin(url, location)
            old, new = urlsplit(url), urlsplit(target)
            if new.scheme == "http" and old.scheme == "https":
                raise Unavailable(
                    f"{self.app_name} redirected a secure request to plain http ({new.hostname})."
                )
            if response.status_code == 303:
                method, data = "GET", None
            url = target
            response.close()
        raise Unavailable(f"{self.app_name} redirected too many times ({urlsplit(url).hostname}).")

    def request(
        self,
        method: str,
        url: str,
        *,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool,
    ) -> requests.Response:
        """Send one request; see the module docstring for what is retried and raised."""
        body = data.encode("utf-8") if isinstance(data, str) else data
        host = urlsplit(url).hostname or url
        attempts = self.retry.attempts if retry else 1
        pause = self.retry.backoff
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = self._send_once(method, url, body, headers or {})
            except (requests.ConnectionError, requests.Timeout) as err:
                if last:
                    kind = "timed out" if isinstance(err, requests.Timeout) else "refused"
                    raise Unavailable(
                        f"{self.app_name} at {host} cannot be reached (connection {kind}).",
                        raw=type(err).__name__,
                    ) from None
                time.sleep(pause)
                pause *= 2
                continue
            status = response.status_code
            if status == 401:
                raise AuthExpired(
                    f"{self.app_name} at {host} refused the user name or password; "
                    "check them (an app-specific password where the provider needs one) and "
                    "authorize the account again."
                )
            if status not in RETRY_STATUSES:
                return response
            wait = retry_after(response, pause)
            if status == 429 and (last or wait > self.retry.max_wait):
                raise RateLimited(
                    f"{self.app_name} at {host} asks to slow down; trying again later.",
                    retry_after=max(wait, 1.0),
                    raw=f"HTTP 429 on {method}",
                )
            if last or wait > self.retry.max_wait:
                raise Unavailable(
                    f"{self.app_name} at {host} is not available right now (HTTP {status}).",
                    raw=f"HTTP {status} on {method}",
                )
            response.close()
            time.sleep(wait)
            pause *= 2
        raise AssertionError("unreachable")  # pragma: no cover
