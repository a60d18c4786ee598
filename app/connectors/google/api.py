"""People API v1 requests: paging, batches, errors, quota back-off.

Every request goes through the account's :class:`~app.connectors.http.HttpClient` (HTTPS
only, plain http only to this computer; the bearer token only to the API's own host) with
an access token from :class:`~app.connectors.oauth.OAuthTokens`.

Errors, in Google's shape ``{"error": {"code", "message", "status", "details": [ErrorInfo]}}``:

* 401 → the access token is renewed once and the request sent again; a second 401, or an
  ``invalid_grant`` while renewing → :class:`AuthExpired` ("sign in again").
* 403 → :class:`AuthExpired` with Google's words (a missing scope or a People API that is
  not enabled in the client's Cloud project).
* 429 ``RESOURCE_EXHAUSTED`` → waited out with exponential back-off and jitter, and the
  pace of later requests slows down (and recovers slowly after successes): a quota error
  never fails a contact. When it lasts longer than :attr:`Pacing.give_up` the run stops with
  :class:`RateLimited`. 429s are also retried for writes: Google refuses them before doing
  anything.
* 5xx and unreachable → reads are retried a few times, writes never (their answer may have
  been lost after Google applied them): :class:`Unavailable`.
* 400 ``FAILED_PRECONDITION`` with reason ``EXPIRED_SYNC_TOKEN`` (or a 410) →
  :class:`SyncTokenExpired`; other ``FAILED_PRECONDITION`` → :class:`StaleEtag`;
  other 4xx → :class:`ApiRefusal` with Google's message, for the caller to judge.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import requests

from app.connectors.http import HttpClient, RetryPolicy
from app.connectors.oauth import OAuthTokens
from app.errors import AuthExpired, RateLimited, Unavailable

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
BATCH_GET = 200
BATCH_WRITE = 200
MEMBERS_MODIFY = 1000
GROUP_PAGE = 1000


class ApiRefusal(Exception):
    """Google refused a request (4xx other than the ones handled here)."""

    def __init__(self, code: int, status: str, message: str, reason: str = "") -> None:
        super().__init__(f"HTTP {code} {status}: {message}")
        self.code, self.status, self.message, self.reason = code, status, message, reason


class SyncTokenExpired(ApiRefusal):
    pass


class StaleEtag(ApiRefusal):
    pass


@dataclass(slots=True)
class Pacing:
    """Adaptive spacing of requests after quota errors."""

    backoff: float = 1.0
    """First back-off after a 429, in seconds (doubled each time, with jitter)."""
    max_backoff: float = 32.0
    give_up: float = 120.0
    """Seconds of continuous 429s after which the run stops (RateLimited)."""
    interval: float = 0.0
    """Current minimum gap between requests; grows on 429s, shrinks on successes."""
    max_interval: float = 5.0


def _error(response: requests.Response) -> ApiRefusal:
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    status = str(error.get("status", ""))
    message = str(error.get("message", "") or response.reason or "")
    reason = ""
    for detail in error.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("reason"):
            reason = str(detail["reason"])
            break
    code = response.status_code
    if code == 410 or reason == "EXPIRED_SYNC_TOKEN" or "sync token is expired" in message.lower():
        return SyncTokenExpired(code, status, message, reason)
    if status == "FAILED_PRECONDITION":
        return StaleEtag(code, status, message, reason)
    return ApiRefusal(code, status, message, reason)


class PeopleApi:
    def __init__(
        self,
        base_url: str,
        tokens: OAuthTokens,
        *,
        pacing: Pacing | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
    ) -> None:
        self.base = base_url.rstrip("/")
        self.tokens = tokens
        self._bearer = tokens.auth()
        # One try per request here; the loop in _send decides what is retried.
        self.client = HttpClient(
            "Google Contacts",
            self.base,
            auth=self._bearer,
            timeout=timeout,
            retry=RetryPolicy(attempts=1),
        )
        self.pacing = pacing or Pacing()
        self._last = 0.0
        self._lock = threading.Lock()
        self.quota_waits = 0
        """429s waited out (tests and benchmarks read it)."""

    @property
    def sent(self) -> int:
        return self.client.sent

    def close(self) -> None:
        self.client.close()

    # --- one request ---------------------------------------------------------------------

    def _pace(self) -> None:
        with self._lock:
            wait = self._last + self.pacing.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()

    def _send(self, method: str, path: str, *, params: Any = None, body: Any = None) -> Any:
        url = f"{self.base}/{path}"
        if params:
            url += "?" + urlencode(params, doseq=True)
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        read = method == "GET"
        unavailable_tries = 3 if read else 1
        reauthorized = False
        started = time.monotonic()
        backoff = self.pacing.backoff
        attempt = 0
        while True:
            attempt += 1
            self._pace()
            try:
                response = self.client.request(method, url, data=data, headers=headers, retry=False)
            except AuthExpired:
                if reauthorized:
                    raise AuthExpired(
                        "Google Contacts no longer accepts Pairsync's sign-in: sign in again; "
                        "the connection keeps its settings.",
                        raw="HTTP 401",
                    ) from None
                self.tokens.refresh(self._bearer.last)
                reauthorized = True
                continue
            except RateLimited as err:
                waited = time.monotonic() - started
                self.pacing.interval = min(
                    self.pacing.max_interval, max(0.05, self.pacing.interval * 2 or 0.1)
                )
                if waited + backoff > self.pacing.give_up:
                    raise RateLimited(
                        "Google Contacts' quota is used up for now; the sync goes on later.",
                        retry_after=max(60.0, err.retry_after),
                        raw=err.raw,
                    ) from None
                self.quota_waits += 1
                time.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(self.pacing.max_backoff, backoff * 2)
                continue
            except Unavailable:
                if attempt >= unavailable_tries:
                    raise
                time.sleep(self.pacing.backoff * attempt * random.uniform(0.5, 1.0))
                continue
            if response.status_code < 400:
                self.pacing.interval *= 0.8
                if self.pacing.interval < 0.01:
                    self.pacing.interval = 0.0
                return response.json() if response.content else {}
            error = _error(response)
            if response.status_code == 403:
                raise AuthExpired(
                    f"Google refused access to the contacts: {error.message} Sign in again "
                    "(and check that the People API is enabled for the client).",
                    raw=f"HTTP 403 {error.status}",
                )
            raise error

    # --- people --------------------------------------------------------------------------

    def connections(
        self, *, sync_token: str | None = None, request_sync_token: bool = True, fields: str
    ) -> Iterator[dict[str, Any]]:
        """Pages of ``people.connections.list`` (1000 a page); the last one carries
        ``nextSyncToken``. Raises SyncTokenExpired for an expired ``sync_token``."""
        params: dict[str, Any] = {"personFields": fields, "pageSize": PAGE_SIZE}
        if request_sync_token:
            params["requestSyncToken"] = "true"
        if sync_token:
            params["syncToken"] = sync_token
        page_token = ""
        while True:
            query = dict(params)
            if page_token:
                query["pageToken"] = page_token
            page = self._send("GET", "v1/people/me/connections", params=query)
            yield page
            page_token = str(page.get("nextPageToken") or "")
            if not page_token:
                return

    def batch_get(self, names: Sequence[str], fields: str) -> dict[str, dict[str, Any] | None]:
        """Resource name → person (None when Google has no such contact)."""
        out: dict[str, dict[str, Any] | None] = {}
        for start in range(0, len(names), BATCH_GET):
            chunk = list(names[start : start + BATCH_GET])
            page = self._send(
                "GET",
                "v1/people:batchGet",
                params={"resourceNames": chunk, "personFields": fields},
            )
            for item in page.get("responses", []):
                name = str(item.get("requestedResourceName", ""))
                person = item.get("person")
                ok = int(item.get("httpStatusCode", 200) or 200) < 300
                out[name] = person if ok and isinstance(person, dict) else None
            for name in chunk:
                out.setdefault(name, None)
        return out

    def batch_create(
        self, people: Sequence[dict[str, Any]], read_mask: str
    ) -> list[dict[str, Any]]:
        body = {"contacts": [{"contactPerson": p} for p in people], "readMask": read_mask}
        answer = self._send("POST", "v1/people:batchCreateContacts", body=body)
        return [r.get("person") or {} for r in answer.get("createdPeople", [])]

    def batch_update(
        self, people: dict[str, dict[str, Any]], update_mask: str, read_mask: str
    ) -> dict[str, dict[str, Any]]:
        body = {"contacts": people, "updateMask": update_mask, "readMask": read_mask}
        answer = self._send("POST", "v1/people:batchUpdateContacts", body=body)
        return {
            name: result.get("person") or {}
            for name, result in (answer.get("updateResult") or {}).items()
        }

    # --- contact groups -----------------------------------------------------------------

    def groups(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page_token = ""
        while True:
            params: dict[str, Any] = {"pageSize": GROUP_PAGE}
            if page_token:
                params["pageToken"] = page_token
            page = self._send("GET", "v1/contactGroups", params=params)
            out.extend(page.get("contactGroups", []))
            page_token = str(page.get("nextPageToken") or "")
            if not page_token:
                return out

    def create_group(self, name: str) -> dict[str, Any]:
        return dict(self._send("POST", "v1/contactGroups", body={"contactGroup": {"name": name}}))

    def modify_members(self, group: str, add: Sequence[str], remove: Sequence[str]) -> list[str]:
        """Membership changes in bulk (1000 names a request); returns names not found."""
        missing: list[str] = []
        work = [(n, True) for n in add] + [(n, False) for n in remove]
        for start in range(0, len(work), MEMBERS_MODIFY):
            chunk = work[start : start + MEMBERS_MODIFY]
            body: dict[str, list[str]] = {}
            adding = [n for n, a in chunk if a]
            removing = [n for n, a in chunk if not a]
            if adding:
                body["resourceNamesToAdd"] = adding
            if removing:
                body["resourceNamesToRemove"] = removing
            answer = self._send("POST", f"v1/{quote(group)}/members:modify", body=body)
            missing.extend(answer.get("notFoundResourceNames", []) or [])
        return missing
