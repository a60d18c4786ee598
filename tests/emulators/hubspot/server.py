"""The HubSpot emulator's HTTP side: a threaded server on 127.0.0.1 speaking CRM v3.

Endpoints (paths, shapes and status codes as ``shared/specs/hubspot/*.json`` describe them):

* ``GET /crm/v3/properties/contacts`` and ``/{name}``;
* ``GET /crm/v3/objects/contacts`` (``limit`` ≤ 100, ``after``, ``properties``,
  ``archived``), ``GET /crm/v3/objects/contacts/{id}``;
* ``POST /crm/v3/objects/contacts/batch/{read,create,update,archive}`` — at most 100
  inputs; per-input failures come back as 207 multi-status with ``errors``; a create whose
  email is taken fails the whole batch with 409 "Contact already exists. Existing ID: N";
  bad values fail the inputs they are in (``validation="per-input"``, 207, the default) or
  the whole batch with 400 (``validation="batch"``, as older portals do);
* ``POST /crm/v3/objects/contacts/search`` — filters (EQ NEQ LT LTE GT GTE BETWEEN IN NOT_IN
  HAS_PROPERTY NOT_HAS_PROPERTY CONTAINS_TOKEN), one sort, ``limit`` ≤ 200, at most
  ``search_cap`` (10,000) results per query: paging beyond answers 400; it sees a write only
  ``search_delay`` seconds later (an index that lags; 0 in most tests);
* lists: ``POST /crm/v3/lists`` (create), ``POST /crm/v3/lists/search``, ``GET
  /crm/v3/lists/{id}``, ``GET /crm/v3/lists/{id}/memberships`` (``limit`` ≤ 250),
  ``PUT …/memberships/add`` and ``…/remove`` (MANUAL/SNAPSHOT only);
* communication preferences v4: ``POST /communication-preferences/v4/statuses/batch/
  unsubscribe-all/read`` and ``…/batch/unsubscribe-all`` (``channel=EMAIL``, at most 100
  email addresses), ``GET …/statuses/{email}/unsubscribe-all``: the portal-wide "opted out
  of all email" status by address; an opt-out also sets the contact's ``hs_email_optout``
  (which moves its ``lastmodifieddate``); nothing here re-subscribes anyone;
* private-app bearer token auth (401 otherwise) and the token's scopes (``scopes``; 403
  ``MISSING_SCOPES`` as HubSpot answers it, see ``scopes.py``);
* rate limits: ``limit`` requests per ``interval`` seconds (rolling, search excluded) with
  ``X-HubSpot-RateLimit-*`` headers, search's own per-second limit, and 429s with HubSpot's
  body. Every exchange is counted (``stats``) and, when ``validate`` is on, checked against
  the vendor's OpenAPI files; what breaks them is collected in ``violations``.
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.emulators.hubspot.scopes import CRM_SCOPES, missing, missing_scopes_body
from tests.emulators.hubspot.state import (
    EMAIL_RE,
    ApiError,
    Contact,
    Portal,
    now_iso,
    parse_time,
    validation_error,
)

BATCH_LIMIT = 100
PAGE_LIMIT = 100
SEARCH_PAGE_LIMIT = 200
MEMBERSHIP_PAGE_LIMIT = 250
DEFAULT_SEARCH_DELAY = 3.0
"""Seconds before search finds a write. HubSpot documents a short delay without a figure
(connector-apis.md §1: "[unverified exact delay]"); a few seconds is what users report."""
PREFS = "/communication-preferences/v4/statuses"
PREFS_BATCH_LIMIT = 100
"""[unverified] HubSpot documents no input limit for the status batches; the emulator holds
them to the CRM's 100 (what the connector sends), so a client sending more is caught."""


@dataclass
class Stats:
    requests: int = 0
    by_route: collections.Counter[str] = field(default_factory=collections.Counter)
    rate_limited: int = 0
    """429s answered (both limits)."""
    search_rate_limited: int = 0
    started: float = field(default_factory=time.monotonic)


class RateWindow:
    """A rolling window: at most ``limit`` requests in any ``interval`` seconds."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        self.times: collections.deque[float] = collections.deque()

    def take(self, now: float) -> tuple[bool, int]:
        """(allowed, remaining after this one)."""
        while self.times and self.times[0] <= now - self.interval:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False, 0
        self.times.append(now)
        return True, self.limit - len(self.times)


class HubSpotEmulator:
    """Start with ``with HubSpotEmulator() as hs:``; seed through ``hs.portal``."""

    def __init__(
        self,
        *,
        access_token: str = "pat-na1-test-token",
        port: int = 0,
        rate_limit: int = 100,
        rate_interval: float = 10.0,
        search_per_second: int = 4,
        daily_limit: int = 250_000,
        search_cap: int = 10_000,
        validation: str = "per-input",
        retry_after: bool = False,
        validate: bool = True,
        scopes: Iterable[str] = CRM_SCOPES,
        search_delay: float = DEFAULT_SEARCH_DELAY,
    ) -> None:
        self.portal = Portal()
        self.portal.search_delay_ms = int(search_delay * 1000)
        self.access_token = access_token
        self.scopes = frozenset(scopes)
        """What the token was granted; a request needing another scope is answered 403."""
        self.window = RateWindow(rate_limit, rate_interval)
        self.search_window = RateWindow(search_per_second, 1.0)
        self.daily_limit = daily_limit
        self.daily_used = 0
        self.search_cap = search_cap
        self.validation = validation
        self.retry_after = retry_after
        self.validate = validate
        self.violations: list[str] = []
        self.stats = Stats()
        self.requests_log: list[tuple[str, str, int]] = []
        """(method, path with its query, status) of every request."""
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubSpotEmulator:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HubSpotEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_rate_limit(self, limit: int, interval: float = 10.0) -> None:
        with self._lock:
            self.window = RateWindow(limit, interval)

    # --- one exchange ----------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
        route = _route_name(method, path)
        out_headers: dict[str, str] = {}
        with self._lock:
            self.stats.requests += 1
            self.stats.by_route[route] += 1
        status, payload = self._answer(method, path, query, headers, body, route, out_headers)
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        with self._lock:
            self.requests_log.append((method, raw_path, status))
        if self.validate and status != 401:
            problems = _spec_check(method, path, query, headers, body, status, data)
            if problems:
                with self._lock:
                    self.violations.extend(problems)
        return status, out_headers, data

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        route: str,
        out: dict[str, str],
    ) -> tuple[int, Any]:
        auth = headers.get("Authorization", "")
        if auth != f"Bearer {self.access_token}":
            return 401, ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            ).body()
        limited = self._rate(route, out)
        if limited is not None:
            return 429, limited
        lacking = missing(method, path, self.scopes)
        if lacking:
            return 403, missing_scopes_body(lacking)
        try:
            return self._dispatch(method, path, query, body)
        except ApiError as err:
            return err.status, err.body()
        except (ValueError, KeyError, TypeError) as err:
            return 400, ApiError(400, "VALIDATION_ERROR", f"Invalid input JSON: {err}").body()

    def _rate(self, route: str, out: dict[str, str]) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            if route == "search":
                ok, remaining = self.search_window.take(now)
                if not ok:
                    self.stats.rate_limited += 1
                    self.stats.search_rate_limited += 1
                    if self.retry_after:
                        out["Retry-After"] = "1"
                    return _limit_body("SECONDLY", "secondly")
                return None
            ok, remaining = self.window.take(now)
            if ok:
                self.daily_used += 1
            out["X-HubSpot-RateLimit-Max"] = str(self.window.limit)
            out["X-HubSpot-RateLimit-Remaining"] = str(remaining)
            out["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(int(self.window.interval * 1000))
            out["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            out["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(0, self.daily_limit - self.daily_used)
            )
            if not ok:
                self.stats.rate_limited += 1
                if self.retry_after:
                    oldest = self.window.times[0] if self.window.times else now
                    out["Retry-After"] = str(
                        max(1, int(oldest + self.window.interval - now + 0.999))
                    )
                return _limit_body("TEN_SECONDLY_ROLLING", "ten_secondly_rolling")
        return None

    # --- routes ------------------------------------------------------------------------------

    def _dispatch(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        p = self.portal
        data: Any = json.loads(body) if body else None
        with p.lock:
            if method == "GET" and path == "/crm/v3/properties/contacts":
                archived = _flag(query, "archived")
                return 200, {
                    "results": [
                        v for v in p.properties.values() if bool(v.get("archived")) == archived
                    ]
                }
            if (
                m := re.fullmatch(r"/crm/v3/properties/contacts/([^/]+)", path)
            ) and method == "GET":
                prop = p.properties.get(m[1])
                if prop is None:
                    raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to find property {m[1]}")
                return 200, prop
            if path == "/crm/v3/objects/contacts" and method == "GET":
                return 200, self._list(query)
            if (
                m := re.fullmatch(r"/crm/v3/objects/contacts/batch/(\w+)", path)
            ) and method == "POST":
                return self._batch(m[1], data, _flag(query, "archived"))
            if path == "/crm/v3/objects/contacts/search" and method == "POST":
                return 200, self._search(data)
            if (m := re.fullmatch(r"/crm/v3/objects/contacts/(\d+)", path)) and method == "GET":
                c = p.contacts.get(m[1])
                if c is None or c.archived_at is not None:
                    raise ApiError(404, "OBJECT_NOT_FOUND", "Object not found.")
                return 200, c.to_json(_props(query))
            if path == "/crm/v3/lists" and method == "POST":
                return 200, self._create_list(data)
            if path == "/crm/v3/lists/search" and method == "POST":
                return 200, self._search_lists(data)
            if (m := re.fullmatch(r"/crm/v3/lists/(\d+)", path)) and method == "GET":
                lst = self._get_list(m[1])
                return 200, {"list": lst.to_json(len(p.list_members(lst)))}
            if (m := re.fullmatch(r"/crm/v3/lists/(\d+)/memberships", path)) and method == "GET":
                return 200, self._members(self._get_list(m[1]), query)
            if (
                m := re.fullmatch(r"/crm/v3/lists/(\d+)/memberships/(add|remove)", path)
            ) and method == "PUT":
                return 200, self._edit_members(self._get_list(m[1]), m[2], data)
            if path.startswith(PREFS):
                return self._prefs(method, path[len(PREFS) :], query, data)
        raise ApiError(404, "OBJECT_NOT_FOUND", f"No route for {method} {path}")

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = int(query.get("limit", ["10"])[0])
        if limit > PAGE_LIMIT or limit < 1:
            raise ApiError(400, "VALIDATION_ERROR", f"limit must be between 1 and {PAGE_LIMIT}")
        after = int(query.get("after", ["0"])[0] or 0)
        archived = _flag(query, "archived")
        wanted = _props(query)
        rows = sorted(
            (c for c in self.portal.contacts.values() if (c.archived_at is not None) == archived),
            key=lambda c: int(c.id),
        )
        page = [c for c in rows if int(c.id) > after][:limit]
        out: dict[str, Any] = {"results": [c.to_json(wanted) for c in page]}
        if page and int(page[-1].id) < int(rows[-1].id):
            nxt = page[-1].id
            out["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return out

    def _batch(self, action: str, data: dict[str, Any], archived: bool) -> tuple[int, Any]:
        inputs = data.get("inputs")
        if not isinstance(inputs, list):
            raise ApiError(400, "VALIDATION_ERROR", "inputs is required")
        if not inputs or len(inputs) > BATCH_LIMIT:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Batch input size must be between 1 and {BATCH_LIMIT}, got {len(inputs)}",
            )
        started = now_iso(self.portal.now_ms())
        if action == "read":
            return self._batch_read(inputs, data.get("properties"), archived, started)
        if action == "create":
            return self._batch_create(inputs, started)
        if action == "update":
            return self._batch_update(inputs, started)
        if action == "archive":
            for item in inputs:
                c = self.portal.contacts.get(str(item["id"]))
                if c is not None and c.archived_at is None:
                    self.portal.archive(c.id)
            return 204, None
        raise ApiError(404, "OBJECT_NOT_FOUND", f"No batch action {action}")

    def _respond(
        self,
        results: list[Contact],
        errors: list[dict[str, Any]],
        started: str,
        ok: int,
        wanted: Any,
        traces: list[str | None] | None = None,
    ) -> tuple[int, Any]:
        rows = [c.to_json(wanted) for c in results]
        for row, trace in zip(rows, traces or [], strict=False):
            if trace:
                row["objectWriteTraceId"] = trace
        out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": rows,
            "startedAt": started,
            "completedAt": now_iso(self.portal.now_ms()),
        }
        if errors:
            out["errors"] = errors
            out["numErrors"] = len(errors)
            return 207, out
        return ok, out

    def _batch_read(
        self, inputs: list[dict[str, Any]], wanted: Any, archived: bool, started: str
    ) -> tuple[int, Any]:
        found: list[Contact] = []
        missing: list[str] = []
        for item in inputs:
            c = self.portal.contacts.get(str(item["id"]))
            if c is None or (c.archived_at is not None) != archived:
                missing.append(str(item["id"]))
            else:
                found.append(c)
        errors = []
        if missing:
            errors.append(
                _std_error(
                    "OBJECT_NOT_FOUND",
                    "Could not get some CONTACT objects, they may be deleted or not exist. "
                    f"Check that ids are valid. (ids: {', '.join(missing)})",
                    {"ids": missing},
                )
            )
        return self._respond(found, errors, started, 200, wanted if wanted else None)

    def _validate_inputs(self, inputs: list[dict[str, Any]]) -> dict[int, list[dict[str, str]]]:
        bad: dict[int, list[dict[str, str]]] = {}
        for i, item in enumerate(inputs):
            props = item.get("properties") or {}
            problems = self.portal.check_values({k: str(v) for k, v in props.items()})
            if problems:
                bad[i] = problems
        if bad and self.validation == "batch":
            raise validation_error([p for ps in bad.values() for p in ps])
        return bad

    def _batch_create(self, inputs: list[dict[str, Any]], started: str) -> tuple[int, Any]:
        p = self.portal
        seen: dict[str, int] = {}
        for i, item in enumerate(inputs):
            email = str((item.get("properties") or {}).get("email") or "").strip().casefold()
            if not email:
                continue
            existing = p.by_email(email)
            if existing is not None:
                raise ApiError(
                    409, "CONFLICT", f"Contact already exists. Existing ID: {existing.id}"
                )
            if email in seen:
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"Duplicate unique property value: email {email} appears in inputs "
                    f"{seen[email]} and {i}",
                )
            seen[email] = i
        bad = self._validate_inputs(inputs)
        created: list[Contact] = []
        traces: list[str | None] = []
        errors = []
        wanted: set[str] = set()
        for i, item in enumerate(inputs):
            props = {k: str(v) for k, v in (item.get("properties") or {}).items()}
            if i in bad:
                errors.append(_input_error(bad[i], item))
                continue
            if not any(props.get(k) for k in ("email", "firstname", "lastname")):
                errors.append(
                    _std_error(
                        "VALIDATION_ERROR",
                        "A contact needs at least one of email, firstname or lastname.",
                        _trace(item),
                    )
                )
                continue
            created.append(p.seed(props))
            traces.append(item.get("objectWriteTraceId"))
            wanted |= set(props)
        return self._respond(created, errors, started, 201, sorted(wanted), traces)

    def _batch_update(self, inputs: list[dict[str, Any]], started: str) -> tuple[int, Any]:
        p = self.portal
        bad = self._validate_inputs(inputs)
        updated: list[Contact] = []
        traces: list[str | None] = []
        errors = []
        missing: list[str] = []
        wanted: set[str] = set()
        for i, item in enumerate(inputs):
            rid = str(item["id"])
            c = p.contacts.get(rid)
            if c is None or c.archived_at is not None:
                missing.append(rid)
                continue
            if i in bad:
                errors.append(_input_error(bad[i], item))
                continue
            props = {k: str(v) for k, v in (item.get("properties") or {}).items()}
            email = props.get("email", "").strip().casefold()
            other = p.by_email(email) if email else None
            if other is not None and other.id != rid:
                errors.append(
                    _std_error(
                        "CONFLICT",
                        f"Contact already exists. Existing ID: {other.id}",
                        {"ids": [rid], **_trace(item)},
                    )
                )
                continue
            p.edit(rid, **props)
            updated.append(c)
            traces.append(item.get("objectWriteTraceId"))
            wanted |= set(props)
        if missing:
            errors.append(
                _std_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some CONTACT objects, they may be deleted or not exist. "
                    f"(ids: {', '.join(missing)})",
                    {"ids": missing},
                )
            )
        return self._respond(updated, errors, started, 200, sorted(wanted), traces)

    # --- search ---------------------------------------------------------------------------------

    def _search(self, data: dict[str, Any]) -> dict[str, Any]:
        limit = int(data.get("limit", 10))
        if limit > SEARCH_PAGE_LIMIT or limit < 1:
            raise ApiError(400, "VALIDATION_ERROR", f"limit must be at most {SEARCH_PAGE_LIMIT}")
        after = int(data.get("after") or 0)
        if after + limit > self.search_cap:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"The search cannot return more than {self.search_cap} results; narrow it "
                "with filters (paging past it is refused).",
            )
        groups = data.get("filterGroups") or []
        if len(groups) > 5 or sum(len(g.get("filters", [])) for g in groups) > 18:
            raise ApiError(400, "VALIDATION_ERROR", "Too many filter groups or filters.")
        rows = [
            c for c in self.portal.searchable() if not groups or any(_group(g, c) for g in groups)
        ]
        for sort in reversed(data.get("sorts") or []):
            if isinstance(sort, str):
                name, desc = sort.lstrip("-"), sort.startswith("-")
            else:
                name, desc = sort["propertyName"], sort.get("direction") == "DESCENDING"
            rows.sort(key=lambda c, n=name: _sort_key(c, n), reverse=desc)
        if len(data.get("sorts") or []) > 1:
            raise ApiError(400, "VALIDATION_ERROR", "Only one sort is allowed.")
        page = rows[after : after + limit]
        wanted = data.get("properties") or None
        out: dict[str, Any] = {"total": len(rows), "results": [c.to_json(wanted) for c in page]}
        if after + limit < len(rows):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return out

    # --- communication preferences ------------------------------------------------------------

    def _prefs(
        self, method: str, rest: str, query: dict[str, list[str]], data: Any
    ) -> tuple[int, Any]:
        if query.get("channel", [""])[0] != "EMAIL":
            raise ApiError(400, "VALIDATION_ERROR", "channel must be EMAIL")
        p = self.portal
        started = now_iso(p.now_ms())
        if method == "GET" and (m := re.fullmatch(r"/([^/]+)/unsubscribe-all", rest)):
            email = unquote(m[1])
            wide = p.wide_status(email)
            return 200, {
                "status": "COMPLETE",
                "results": [wide] if wide and wide["status"] == "UNSUBSCRIBED" else [],
                "startedAt": started,
                "completedAt": now_iso(p.now_ms()),
            }
        if method != "POST" or rest not in (
            "/batch/unsubscribe-all/read",
            "/batch/unsubscribe-all",
        ):
            raise ApiError(404, "OBJECT_NOT_FOUND", f"No route for {method} {PREFS}{rest}")
        inputs = [str(x) for x in (data or {}).get("inputs") or []]
        if not inputs or len(inputs) > PREFS_BATCH_LIMIT:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Batch input size must be between 1 and {PREFS_BATCH_LIMIT}, got {len(inputs)}",
            )
        valid = [e for e in dict.fromkeys(inputs) if EMAIL_RE.fullmatch(e.strip())]
        bad = [e for e in dict.fromkeys(inputs) if e not in valid]
        if bad and not rest.endswith("/read"):
            # Nothing is changed when one address is not one (the write has no 207).
            raise ApiError(400, "VALIDATION_ERROR", f"Invalid email address: {bad[0]}")
        results: list[dict[str, Any]] = []
        for email in valid:
            if rest.endswith("/read"):
                wide = p.wide_status(email)
                results.append(
                    {"subscriberIdString": email, "wideStatuses": [wide] if wide else []}
                )
            else:
                changed = p.opt_out(email)
                results.append(
                    {
                        "subscriberIdString": email,
                        "statuses": p.subscription_statuses(email, changed),
                    }
                )
        out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": now_iso(p.now_ms()),
        }
        if bad and rest.endswith("/read"):
            out["errors"] = [
                _std_error(
                    "VALIDATION_ERROR",
                    f"Invalid email address: {e}",
                    {"subscriberIdString": [e]},
                )
                for e in bad
            ]
            out["numErrors"] = len(bad)
            return 207, out
        return 200, out

    # --- lists ----------------------------------------------------------------------------------

    def _get_list(self, list_id: str) -> Any:
        lst = self.portal.lists.get(list_id)
        if lst is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"List {list_id} does not exist.")
        return lst

    def _create_list(self, data: dict[str, Any]) -> dict[str, Any]:
        name = str(data["name"]).strip()
        if data.get("objectTypeId") != "0-1":
            raise ApiError(400, "VALIDATION_ERROR", "Only contact lists (0-1) are emulated.")
        kind = data["processingType"]
        if kind not in ("MANUAL", "SNAPSHOT", "DYNAMIC"):
            raise ApiError(400, "VALIDATION_ERROR", f"Unknown processingType {kind}")
        if any(x.name.casefold() == name.casefold() for x in self.portal.lists.values()):
            raise ApiError(400, "VALIDATION_ERROR", f"A list named {name} already exists.")
        lst = self.portal.add_list(name, kind)
        return {"list": lst.to_json(0)}

    def _search_lists(self, data: dict[str, Any]) -> dict[str, Any]:
        offset = int(data.get("offset") or 0)
        count = min(int(data.get("count") or 20), 500)
        query = str(data.get("query") or "").casefold()
        kinds = data.get("processingTypes") or None
        rows = [
            x
            for x in sorted(self.portal.lists.values(), key=lambda x: int(x.list_id))
            if query in x.name.casefold() and (kinds is None or x.processing_type in kinds)
        ]
        page = rows[offset : offset + count]
        return {
            "lists": [
                {**x.to_json(len(self.portal.list_members(x))), "additionalProperties": {}}
                for x in page
            ],
            "offset": offset + len(page),
            "hasMore": offset + len(page) < len(rows),
            "total": len(rows),
        }

    def _members(self, lst: Any, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = int(query.get("limit", ["100"])[0])
        if limit > MEMBERSHIP_PAGE_LIMIT or limit < 1:
            raise ApiError(
                400, "VALIDATION_ERROR", f"limit must be at most {MEMBERSHIP_PAGE_LIMIT}"
            )
        after = int(query.get("after", ["0"])[0] or 0)
        members = self.portal.list_members(lst)
        page = members[after : after + limit]
        out: dict[str, Any] = {
            "results": [{"recordId": rid, "membershipTimestamp": now_iso(t)} for rid, t in page],
            "total": len(members),
        }
        if after + limit < len(members):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return out

    def _edit_members(self, lst: Any, action: str, data: list[Any]) -> dict[str, Any]:
        if lst.processing_type == "DYNAMIC":
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"List {lst.list_id} is a DYNAMIC list; memberships of dynamic lists cannot "
                "be edited.",
            )
        if len(data) > 100_000:
            raise ApiError(400, "VALIDATION_ERROR", "At most 100,000 record ids per call.")
        live = {c.id for c in self.portal.live()}
        added, removed, missing = [], [], []
        now = self.portal.now_ms()
        for rid in map(str, data):
            if rid not in live:
                missing.append(rid)
            elif action == "add" and rid not in lst.members:
                lst.members[rid] = now
                added.append(rid)
            elif action == "remove" and rid in lst.members:
                del lst.members[rid]
                removed.append(rid)
        lst.updated = now
        return {"recordsIdsAdded": added, "recordIdsRemoved": removed, "recordIdsMissing": missing}


# --- helpers ---------------------------------------------------------------------------------


def _route_name(method: str, path: str) -> str:
    if path.startswith(PREFS):
        return "prefs read" if path.endswith("/read") or method == "GET" else "prefs write"
    if path.endswith("/contacts/search"):
        return "search"
    if m := re.fullmatch(r"/crm/v3/objects/contacts/batch/(\w+)", path):
        return f"batch/{m[1]}"
    if path == "/crm/v3/objects/contacts":
        return "list"
    if path.startswith("/crm/v3/properties"):
        return "properties"
    if "/memberships" in path:
        return f"memberships {method}"
    if path.startswith("/crm/v3/lists"):
        return f"lists {method}"
    return f"{method} {path}"


def _limit_body(policy: str, words: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": f"You have reached your {words} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        # Not in HubSpot's documented 429 body, but the spec's Error schema requires it.
        "category": "RATE_LIMITS",
    }


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[0].lower() == "true"


def _props(query: dict[str, list[str]]) -> list[str] | None:
    raw = query.get("properties")
    if not raw:
        return None
    return [p for item in raw for p in item.split(",") if p]


def _trace(item: dict[str, Any]) -> dict[str, list[str]]:
    trace = item.get("objectWriteTraceId")
    return {"objectWriteTraceId": [str(trace)]} if trace else {}


def _std_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


def _input_error(problems: list[dict[str, str]], item: dict[str, Any]) -> dict[str, Any]:
    err = validation_error(problems)
    return {
        **_std_error(
            "VALIDATION_ERROR",
            err.message,
            {"propertyName": [p["name"] for p in problems], **_trace(item)},
        ),
        "errors": err.errors or [],
    }


def _value(c: Contact, name: str) -> str | None:
    if name == "hs_object_id":
        return c.id
    if name == "lastmodifieddate":
        return str(c.updated)
    if name == "createdate":
        return str(c.created)
    return c.properties.get(name)


def _sort_key(c: Contact, name: str) -> tuple[int, Any]:
    v = _value(c, name)
    if v is None:
        return (1, "")
    if name in ("hs_object_id", "lastmodifieddate", "createdate"):
        return (0, int(v))
    return (0, v.casefold())


def _compare(a: str, b: str, name: str) -> int:
    if name in ("hs_object_id", "lastmodifieddate", "createdate"):
        x, y = int(a), parse_time(b) if name != "hs_object_id" else int(b)
        if y is None:
            raise ApiError(400, "VALIDATION_ERROR", f"{b} is not a valid value for {name}")
        return (x > y) - (x < y)
    try:
        fx, fy = float(a), float(b)
        return (fx > fy) - (fx < fy)
    except ValueError:
        al, bl = a.casefold(), b.casefold()
        return (al > bl) - (al < bl)


def _group(group: dict[str, Any], c: Contact) -> bool:
    for f in group.get("filters", []):
        name, op = f["propertyName"], f["operator"]
        v = _value(c, name)
        if op == "HAS_PROPERTY":
            ok = v not in (None, "")
        elif op == "NOT_HAS_PROPERTY":
            ok = v in (None, "")
        elif v is None:
            ok = op in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN")
        elif op in ("IN", "NOT_IN"):
            inside = any(_compare(v, x, name) == 0 for x in f.get("values", []))
            ok = inside if op == "IN" else not inside
        elif op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = str(f.get("value", "")).casefold().strip("*")
            ok = (token in v.casefold()) == (op == "CONTAINS_TOKEN")
        elif op == "BETWEEN":
            ok = _compare(v, f["value"], name) >= 0 and _compare(v, f["highValue"], name) <= 0
        else:
            cmp = _compare(v, str(f["value"]), name)
            ok = {
                "EQ": cmp == 0,
                "NEQ": cmp != 0,
                "LT": cmp < 0,
                "LTE": cmp <= 0,
                "GT": cmp > 0,
                "GTE": cmp >= 0,
            }[op]
        if not ok:
            return False
    return True


def _spec_check(
    method: str,
    path: str,
    query: dict[str, list[str]],
    headers: dict[str, str],
    body: bytes,
    status: int,
    data: bytes,
) -> list[str]:
    from tests.emulators.hubspot.spec import check

    return check(method, path, query, headers, body, status, data)


def _handler(emulator: HubSpotEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items()}
            status, extra, data = emulator.handle(self.command, self.path, headers, body)
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            if data:
                self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
