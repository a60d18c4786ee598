"""The one way connectors talk HTTP: a ``requests.Session`` per account, with the rules of
DESIGN.md applied in one place.

* Timeouts always (connect and read), and a total deadline for every exchange (redirects and
  the whole body included): a server that trickles its answer a byte at a time is cut off
  when the deadline passes (a watchdog shuts the socket) and that is not retried.
* Answers are read with a size cap (decompressed bytes): past it the transfer is abandoned
  with :class:`TooLarge`, so a huge answer costs at most the cap in memory.
* Reads (``retry=True``) are retried with exponential back-off on connection errors,
  timeouts, 429 and 502/503/504, honouring ``Retry-After``; a wait longer than ``max_wait``
  is not slept through but raised as :class:`RateLimited` so the scheduler can come back.
* Writes (``retry=False``) are never retried: a write whose answer was lost may have been
  applied, and only the caller knows how to find out.
* 401 → :class:`AuthExpired`; what is still failing after the retries → :class:`Unavailable`
  or :class:`RateLimited`. Every other status is returned for the caller to judge.
* HTTPS only; plain HTTP only to a loopback address (tests, local servers).
* Redirects are followed by hand, keeping the method and body (``requests`` turns a 302
  PROPFIND into a GET). Credentials go only to the origins (scheme, host and port) they were
  given for: the account's address, and origins the connector vouches for with
  :meth:`HttpClient.allow_origin` (an address the user gave, or one the account's own server
  named in its answer, like iCloud's partition host). A redirect to any other origin is not
  followed: it stops with :class:`Redirected`, naming both hosts, so the user can enter the
  new address if they trust it.
* Basic credentials are encoded as UTF-8 (``requests`` would use Latin-1 and, for any other
  character, raise an error quoting the password's character and its position).
* Nothing secret is logged or put into an error: URLs never carry credentials (refused by
  :func:`check_url`) and headers are never logged.
* What ``requests`` takes from the environment (``HTTPS_PROXY``/``NO_PROXY``,
  ``REQUESTS_CA_BUNDLE``, ``~/.netrc``) is read once per host, not on every request (it walks
  the whole environment each time, which costs more than a request to a server nearby).
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import ipaddress
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from app.errors import AuthExpired, ConfigError, RateLimited, Unavailable

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
USER_AGENT = "Pairsync/0.1 (+contact sync)"

DEADLINE = 180.0
"""Seconds one exchange (request, redirects and the whole answer) may take, by default."""
MAX_BYTES = 100_000_000
"""Largest answer read (after decompression), by default: 100 MB."""
DEADLINE_ENV = "PAIRSYNC_HTTP_DEADLINE_S"
MAX_BYTES_ENV = "PAIRSYNC_HTTP_MAX_BYTES"
"""Environment overrides of the two defaults (tests use them to stay short)."""
_CHUNK = 1 << 16


class Redirected(Unavailable):
    """The server sent us to another origin, where the credentials are not sent."""

    code = "redirected"


class TooLarge(Unavailable):
    """An answer bigger than the size cap (the transfer was abandoned)."""

    code = "too_large"


class TimedOut(Unavailable):
    """An exchange that did not finish within its total deadline."""

    code = "timed_out"


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if 0 < value < float("inf") else default


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute URL, the port filled in from the scheme."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def _host_text(url: str) -> str:
    """The host (and a port that is not the scheme's default) of ``url``, for a sentence."""
    scheme, host, port = origin_of(url)
    default = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default else f"{shown}:{port}"


def size_text(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:g} MB"
    return f"{size / 1000:g} kB" if size >= 1000 else f"{size} bytes"


# --- total deadlines ---------------------------------------------------------------------


class _Watch:
    """One exchange's deadline and the connections it used (shut down when it passes)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._connections: list[urllib3.connection.HTTPConnection] = []
        self._lock = threading.Lock()

    def attach(self, conn: urllib3.connection.HTTPConnection) -> None:
        with self._lock:
            self._connections.append(conn)
            expired = self.expired
        if expired:
            _shut(conn)

    def fire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for conn in connections:
            _shut(conn)


def _shut(conn: urllib3.connection.HTTPConnection) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    # the plain socket's shutdown, under TLS too: a blocked read returns at once
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One thread for the whole process that fires the watches whose deadline passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watch]] = []
        self._count = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, watch: _Watch) -> None:
        with self._cond:
            heapq.heappush(self._heap, (watch.deadline, next(self._count), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="pairsync-http-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def finish(self, watch: _Watch) -> None:
        with self._cond:
            watch.deadline = float("inf")  # popped and ignored when its time comes

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, watch = self._heap[0]
                if watch.deadline == float("inf"):
                    heapq.heappop(self._heap)
                    continue
                wait = when - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            watch.fire()


_WATCHDOG = _Watchdog()
_current = threading.local()
"""``watch``: the exchange this thread is in (its connections attach themselves to it)."""


def _attach(conn: urllib3.connection.HTTPConnection) -> None:
    watch: _Watch | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.attach(conn)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)

    def connect(self) -> None:
        super().connect()
        _attach(self)  # again: a watch that fired while connecting shuts it now


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)

    def connect(self) -> None:
        super().connect()
        _attach(self)


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose connections a watch can shut when its deadline passes."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


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
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and ":" in parts.netloc.rsplit("]", 1)[-1]):
        raise ConfigError(f"{what} has a port that is not a number from 1 to 65535: {url!r}.")
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
        deadline: float | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.app_name = app_name
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.deadline = deadline or _env_number(DEADLINE_ENV, DEADLINE)
        """Seconds one exchange may take in all (see the module docstring)."""
        self.max_bytes = max_bytes or int(_env_number(MAX_BYTES_ENV, MAX_BYTES))
        """Largest answer read, in bytes."""
        self._auth: tuple[bytes, bytes] | requests.auth.AuthBase | None = (
            (auth[0].encode("utf-8"), auth[1].encode("utf-8")) if isinstance(auth, tuple) else auth
        )
        self._origins = {origin_of(check_url(base_url))}
        """Where the credentials may go."""
        self._lock = threading.Lock()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.trust_env = False  # the environment is read once per host instead
        self._environments: dict[tuple[str, str], _Environment] = {}
        adapter = _WatchedAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.sent = 0
        """Requests sent, redirects and retries included (tests and benchmarks count them)."""

    def close(self) -> None:
        self.session.close()

    def allow_origin(self, url: str) -> None:
        """Let the credentials go to ``url``'s origin too: for an address the connector
        trusts as much as the account's own (one the user gave, or one the account's server
        named in its answer, like iCloud's partition host). Never for a redirect."""
        self._origins.add(origin_of(check_url(url)))

    def _credentials_for(self, url: str) -> tuple[bytes, bytes] | requests.auth.AuthBase | None:
        if self._auth is None:
            return None
        return self._auth if origin_of(url) in self._origins else None

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
        """One exchange, following redirects by hand (method and body kept), the answer read
        in full within the size cap."""
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
                auth=self._credentials_for(url) or env.netrc,  # type: ignore[arg-type]
                timeout=self.timeout,
                allow_redirects=False,
                proxies=env.proxies,
                verify=env.verify,
                cert=env.cert,
                stream=True,
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
                self._read_body(response, url)
                return response
            response.close()
            target = urljoin(url, location)
            old, new = urlsplit(url), urlsplit(target)
            if new.scheme == "http" and old.scheme == "https":
                raise Unavailable(
                    f"{self.app_name} redirected a secure request to plain http ({new.hostname})."
                )
            if (
                self._auth is not None
                and origin_of(target) != origin_of(url)
                and origin_of(target) not in self._origins
            ):
                raise Redirected(
                    f"{self.app_name} at {_host_text(url)} sent Pairsync on to another server, "
                    f"{_host_text(target)}; your password was not sent there. If you trust "
                    f"{_host_text(target)}, enter its address as the server address."
                )
            if response.status_code == 303:
                method, data = "GET", None
            url = target
        raise Unavailable(f"{self.app_name} redirected too many times ({urlsplit(url).hostname}).")

    def _read_body(self, response: requests.Response, url: str) -> None:
        """Read ``response``'s body into ``response.content``, at most ``max_bytes`` of it."""
        limit = self.max_bytes
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit and "Content-Encoding" not in response.headers:
            response.close()
            raise self._too_large(url)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > limit:
                response.close()
                raise self._too_large(url)
            chunks.append(chunk)
        response._content = b"".join(chunks)
        response._content_consumed = True

    def _too_large(self, url: str) -> TooLarge:
        return TooLarge(
            f"{self.app_name} at {_host_text(url)} sent an answer larger than "
            f"{size_text(self.max_bytes)}, the most Pairsync reads at once; it was not read."
        )

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
            watch = _Watch(time.monotonic() + self.deadline)
            _current.watch = watch
            _WATCHDOG.add(watch)
            try:
                response = self._send_once(method, url, body, headers or {})
            except (requests.RequestException, urllib3.exceptions.HTTPError) as err:
                if watch.expired:  # the server is there but too slow: not retried
                    raise TimedOut(
                        f"{self.app_name} at {host} did not finish answering within "
                        f"{self.deadline:g} seconds; trying again later.",
                        raw=f"{method} cut off after {self.deadline:g} s",
                    ) from None
                if not isinstance(err, (requests.ConnectionError, requests.Timeout)):
                    raise Unavailable(
                        f"{self.app_name} at {host} sent an answer that could not be read "
                        f"({type(err).__name__}).",
                        raw=type(err).__name__,
                    ) from None
                if last:
                    kind = "timed out" if isinstance(err, requests.Timeout) else "refused"
                    raise Unavailable(
                        f"{self.app_name} at {host} cannot be reached (connection {kind}).",
                        raw=type(err).__name__,
                    ) from None
                time.sleep(pause)
                pause *= 2
                continue
            finally:
                _current.watch = None
                _WATCHDOG.finish(watch)
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
