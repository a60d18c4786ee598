"""HubSpot's HTTP API: requests, paging and pacing under the account's rate limits.

Everything goes through the shared :class:`~app.connectors.http.HttpClient` (timeouts, HTTPS
only except to loopback, no secrets in logs). On top of it:

* **Pacing.** HubSpot counts requests in a rolling window (``X-HubSpot-RateLimit-Max`` per
  ``-Interval-Milliseconds``; 100 per 10 s for a private app on a free portal). We keep our
  own record of when each request was sent and wait before one that would exceed the window,
  learning the limit from the headers and adopting the server's ``-Remaining`` when it is
  lower than ours (another program uses the same token). CRM search is exempt from that
  window but has its own per-second limit (4/s); it is paced separately.
* **429.** A request refused for rate reasons was not processed, so it is sent again (writes
  too) after ``Retry-After`` or a growing pause; only after several refusals does the run
  stop with :class:`RateLimited`.
* **Errors.** 401 becomes :class:`AuthExpired` with HubSpot's own words; a 403
  ``MISSING_SCOPES`` becomes :class:`MissingScopes`, one sentence naming the scope the token
  lacks and what it is needed for; 5xx on reads are retried by the HTTP layer.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import requests

from app.connectors.http import HttpClient, RetryPolicy
from app.errors import AuthExpired, ConfigError, RateLimited, Unavailable

DEFAULT_BASE = "https://api.hubapi.com"
DEFAULT_LIMIT = 100
DEFAULT_INTERVAL = 10.0
SEARCH_PER_SECOND = 4
PAGE = 100
"""Contacts per page of a listing (HubSpot's maximum)."""
SEARCH_PAGE = 200
SEARCH_CAP = 10_000
"""Results one search query can page through; deeper paging answers 400."""
BATCH = 100
MEMBERSHIP_PAGE = 250
MARGIN = 0.05
"""Seconds added to every window: our send time is earlier than HubSpot's receive time."""
MAX_429 = 8
"""Refusals of one request in a row before the run gives up (RateLimited)."""

SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
    "crm.lists.read",
    "crm.lists.write",
)
"""What a private app needs for Pairsync (``check`` proves each)."""
OPT_OUT_SCOPES = (
    "communication_preferences.statuses.batch.read",
    "communication_preferences.statuses.batch.write",
)
"""Optional: opt-outs read from and written to HubSpot's subscription preferences."""


class Window:
    """At most ``limit`` sends in any ``interval`` seconds (our side of a rolling limit)."""

    def __init__(self, limit: int, interval: float, sleep: Callable[[float], None]) -> None:
        self.limit = limit
        self.interval = interval
        self.sent: collections.deque[float] = collections.deque()
        self._sleep = sleep
        self._lock = threading.Lock()
        self.waited = 0.0

    def _prune(self, now: float) -> None:
        span = self.interval + MARGIN
        while self.sent and self.sent[0] <= now - span:
            self.sent.popleft()

    def take(self) -> None:
        """Wait until one more request fits, then count it as sent."""
        with self._lock:
            while True:
                now = time.monotonic()
                self._prune(now)
                if len(self.sent) < self.limit:
                    self.sent.append(now)
                    return
                pause = self.sent[0] + self.interval + MARGIN - now
                self.waited += max(pause, 0.0)
                self._sleep(max(pause, 0.001))

    def learn(self, limit: int | None, interval: float | None, remaining: int | None) -> None:
        """Adopt what the server says: its limit, and fewer remaining than we think."""
        with self._lock:
            if limit and limit > 0:
                self.limit = limit
            if interval and interval > 0:
                self.interval = interval
            if remaining is None:
                return
            now = time.monotonic()
            self._prune(now)
            ours = self.limit - len(self.sent)
            for _ in range(max(0, ours - remaining)):
                self.sent.append(now)

    def full(self) -> None:
        """The server refused for rate: treat the window as full from now."""
        with self._lock:
            now = time.monotonic()
            self._prune(now)
            while len(self.sent) < self.limit:
                self.sent.append(now)


@dataclass
class Counters:
    requests: int = 0
    rate_limited: int = 0
    by_kind: collections.Counter[str] = field(default_factory=collections.Counter)


class HubSpotError(Exception):
    """A non-2xx answer the caller must judge (validation, conflict, not found)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message") or f"HTTP {status}")
        self.status = status
        self.body = body

    @property
    def category(self) -> str:
        return str(self.body.get("category", ""))

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


class MissingScopes(AuthExpired):
    """HubSpot answered 403 ``MISSING_SCOPES``: the private app lacks a scope. One sentence
    names the scope and what it is for; the account needs its app's scopes changed."""

    def __init__(self, scopes: list[str], purpose: str, *, raw: str = "") -> None:
        named = " or ".join(scopes) if scopes else "a scope it needs"
        word = "scope" if len(scopes) <= 1 else "scopes"
        super().__init__(
            f"The HubSpot token lacks the {word} {named}, needed to {purpose}. In HubSpot, "
            "add it under Settings → Integrations → Private Apps (or Service Keys) → Scopes, "
            "then paste the app's access token again.",
            raw=raw,
        )
        self.scopes = tuple(scopes)


def required_scopes(body: dict[str, Any]) -> list[str]:
    """The scopes a 403 names: in ``errors[].context`` as HubSpot sends them (also accepted
    at the top level, and under the older key ``requiredScopes``)."""
    found: list[str] = []
    contexts = [e.get("context") for e in body.get("errors") or [] if isinstance(e, dict)]
    contexts.append(body.get("context"))
    for ctx in contexts:
        if isinstance(ctx, dict):
            for key in ("requiredGranularScopes", "requiredScopes"):
                found += [str(s) for s in ctx.get(key) or []]
    return list(dict.fromkeys(found))


def _purpose(path: str) -> str:
    """What a request is for, in words (for the missing-scope sentence)."""
    if "/communication-preferences/" in path:
        if path.endswith("/read") or "/batch/" not in path:
            return "read opt-outs from HubSpot's subscription preferences"
        return "opt contacts out in HubSpot's subscription preferences"
    if "/memberships/" in path or path.rstrip("/").endswith("/lists"):
        return "change HubSpot list members"
    if "/lists" in path:
        return "read HubSpot lists"
    if "/properties" in path:
        return "read the contact properties"
    if path.endswith(("/batch/create", "/batch/update", "/batch/archive")):
        return "write HubSpot contacts"
    return "read HubSpot contacts"


class StaticBearer(requests.auth.AuthBase):
    """``Authorization: Bearer`` with a private-app / service-key token. Given to the HTTP
    layer as its credentials, so it only ever goes to HubSpot's own origin (an OAuth app
    would pass the shared OAuth bearer instead)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class HubSpotApi:
    """One HubSpot account's API, paced under its limits."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE,
        *,
        auth: requests.auth.AuthBase | None = None,
        limit: int = DEFAULT_LIMIT,
        interval: float = DEFAULT_INTERVAL,
        search_per_second: int = SEARCH_PER_SECOND,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if auth is None and not token.strip():
            raise ConfigError("A HubSpot account needs its private-app access token.")
        self.base = base_url.rstrip("/")
        self.http = HttpClient(
            "HubSpot",
            self.base,
            auth=auth or StaticBearer(token.strip()),
            retry=RetryPolicy(attempts=1, max_wait=60),
        )
        self.window = Window(limit, interval, sleep)
        self.search_window = Window(search_per_second, 1.0, sleep)
        self._sleep = sleep
        self.counters = Counters()
        self.search_cap = SEARCH_CAP

    def close(self) -> None:
        self.http.close()

    # --- one request -------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        search: bool = False,
    ) -> tuple[int, Any]:
        """Send one request (paced, 429 retried); (status, JSON) for a 2xx answer.

        Any other answer raises: :class:`HubSpotError` for 4xx the caller may understand,
        ``AuthExpired``, ``RateLimited`` or ``Unavailable`` for the whole app.
        """
        url = self.base + path
        if query:
            url += "?" + urlencode(query, safe=",")
        data = json.dumps(body, separators=(",", ":")) if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        read = method == "GET" or path.endswith(("/batch/read", "/search"))
        window = self.search_window if search else self.window
        refused = failed = 0
        while True:
            window.take()
            self.counters.requests += 1
            self.counters.by_kind[_kind(method, path)] += 1
            try:
                # retry=False: 429s are handled here (paced, counted, writes too), and
                # reads that fail for the network or a 5xx are tried again below.
                response = self.http.request(method, url, data=data, headers=headers, retry=False)
            except Unavailable:
                failed += 1
                if not read or failed >= 3:
                    raise
                self._sleep(0.5 * 2**failed)
                continue
            except AuthExpired:
                raise AuthExpired(
                    "HubSpot refused the access token (it was revoked, expired or mistyped); "
                    "paste a current private-app token to authorize the account again."
                ) from None
            except RateLimited as err:
                # A 429: HubSpot did not process the request, so sending it again is safe.
                self.counters.rate_limited += 1
                refused += 1
                if refused >= MAX_429:
                    raise RateLimited(
                        "HubSpot keeps refusing requests for its rate limit; trying again later.",
                        retry_after=max(err.retry_after, window.interval),
                        raw=err.raw,
                    ) from None
                window.full()
                self._sleep(min(max(err.retry_after, 0.5 * refused), 30.0))
                continue
            self._learn(response, window)
            return self._judge(response, method, path)

    def _learn(self, response: requests.Response, window: Window) -> None:
        h = response.headers
        if window is self.search_window:
            return
        window.learn(
            _int(h.get("X-HubSpot-RateLimit-Max")),
            (_int(h.get("X-HubSpot-RateLimit-Interval-Milliseconds")) or 0) / 1000 or None,
            _int(h.get("X-HubSpot-RateLimit-Remaining")),
        )
        if h.get("X-HubSpot-RateLimit-Daily-Remaining") == "0":
            raise RateLimited(
                "HubSpot's daily API limit for this account is used up; syncing resumes tomorrow.",
                retry_after=3600.0,
            )

    def _judge(self, response: requests.Response, method: str, path: str) -> tuple[int, Any]:
        status = response.status_code
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        if 200 <= status < 300:
            return status, payload
        body: dict[str, Any] = (
            payload if isinstance(payload, dict) else {"message": response.text[:300]}
        )
        if status == 403:
            scopes = required_scopes(body)
            if scopes or body.get("category") == "MISSING_SCOPES":
                raise MissingScopes(scopes, _purpose(path), raw=str(body.get("message", ""))[:300])
            raise AuthExpired(
                "HubSpot refused this token access to "
                + _purpose(path)
                + ": "
                + (str(body.get("message", "")) or "403 Forbidden")[:200],
                raw=str(body.get("message", ""))[:300],
            )
        if status >= 500:  # 500/501 (502-504 were raised by the HTTP layer)
            raise Unavailable(
                f"HubSpot answered HTTP {status} to {method} {path}; trying again later.",
                raw=str(body.get("message", ""))[:300],
            )
        raise HubSpotError(status, body)

    # --- paging ----------------------------------------------------------------------------

    def pages(self, path: str, query: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """GET pages following ``paging.next.after``."""
        after: str | None = None
        while True:
            q = dict(query)
            if after:
                q["after"] = after
            _, data = self.call("GET", path, query=q)
            yield list(data.get("results", []))
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def search(self, body: dict[str, Any]) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """Pages of one CRM search (results, offset of the page), up to the search cap."""
        after = 0
        limit = int(body.get("limit", SEARCH_PAGE))
        while True:
            q = dict(body)
            if after:
                q["after"] = str(after)
            _, data = self.call("POST", "/crm/v3/objects/contacts/search", body=q, search=True)
            yield list(data.get("results", [])), after
            nxt = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not nxt:
                return
            after = int(nxt)
            if after + limit > self.search_cap:
                return  # the caller restarts from the last value it saw

    def contact_path(self, *parts: str) -> str:
        return "/crm/v3/objects/contacts" + "".join("/" + quote(p, safe="") for p in parts)


def _kind(method: str, path: str) -> str:
    if "/batch/" in path:
        return path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1]
    if path.endswith("/search"):
        return "search"
    if "/memberships" in path:
        return f"memberships {method}"
    return f"{method} {path.split('?')[0].rstrip('/').rsplit('/', 1)[-1]}"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
