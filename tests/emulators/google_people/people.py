"""The People API v1 endpoints a contact sync uses, with Google's JSON shapes.

Every request is checked against the Discovery document (query parameters and body) and
every answer too; a violation is recorded in ``spec_errors`` (tests assert it stays empty)
and a bad request is refused with 400 INVALID_ARGUMENT as Google does.

Behaviour added by hand (the Discovery document does not encode it), from the method
descriptions and reference/connector-apis.md §2:

* ``connections.list``: ``personFields`` required; ``pageSize`` 1..1000 (default 100);
  ``pageToken`` replayed with identical other parameters; ``requestSyncToken`` gives
  ``nextSyncToken`` on the last page; ``syncToken`` returns changed people only, deleted ones
  with ``metadata.deleted`` and renamed ones with ``metadata.previousResourceNames``; sync
  tokens older than :attr:`sync_token_ttl` (7 days) or issued before
  :meth:`expire_sync_tokens` fail with 400 FAILED_PRECONDITION, reason EXPIRED_SYNC_TOKEN.
* batch limits: batchGet 200, batchCreateContacts 200, batchUpdateContacts 200,
  members:modify 1000 (400 INVALID_ARGUMENT above them).
* updates need ``person.metadata.sources`` with the CONTACT source's etag; a different etag
  → 400 FAILED_PRECONDITION (the whole request, like Google's single updateContact).
* singleton fields (names, biographies, birthdays, genders): more than one → 400.
* contact groups: unique names (409 ALREADY_EXISTS), system groups myContacts/starred take
  members, other system groups are read-only; membership changes change the person's etag.
* quota: :meth:`fail_next` makes the next requests answer 429 RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.common import DiscoveryValidator, Reply, Request, SpecError, find_spec

SPEC = find_spec("google-people/people.v1.json")
"""The vendor's Discovery document (``shared/specs/`` beside the repository)."""

PERSON_FIELDS = frozenset(
    [
        "addresses",
        "ageRanges",
        "biographies",
        "birthdays",
        "calendarUrls",
        "clientData",
        "coverPhotos",
        "emailAddresses",
        "events",
        "externalIds",
        "genders",
        "imClients",
        "interests",
        "locales",
        "locations",
        "memberships",
        "metadata",
        "miscKeywords",
        "names",
        "nicknames",
        "occupations",
        "organizations",
        "phoneNumbers",
        "photos",
        "relations",
        "sipAddresses",
        "skills",
        "urls",
        "userDefined",
    ]
)
UPDATE_FIELDS = frozenset(
    [
        "addresses",
        "biographies",
        "birthdays",
        "calendarUrls",
        "clientData",
        "emailAddresses",
        "events",
        "externalIds",
        "genders",
        "imClients",
        "interests",
        "locales",
        "locations",
        "memberships",
        "miscKeywords",
        "names",
        "nicknames",
        "occupations",
        "organizations",
        "phoneNumbers",
        "relations",
        "sipAddresses",
        "urls",
        "userDefined",
    ]
)
SINGLETONS = frozenset({"names", "biographies", "birthdays", "genders"})
FORMATTED_TYPES = {
    "home": "Home",
    "work": "Work",
    "other": "Other",
    "mobile": "Mobile",
    "homeFax": "Home Fax",
    "workFax": "Work Fax",
    "otherFax": "Other Fax",
    "pager": "Pager",
    "workMobile": "Work Mobile",
    "workPager": "Work Pager",
    "main": "Main",
    "googleVoice": "Google Voice",
    "blog": "Blog",
    "homePage": "Home Page",
    "profile": "Profile",
}
TYPED = frozenset({"emailAddresses", "phoneNumbers", "addresses", "urls", "organizations"})
SYSTEM_GROUPS = {
    "myContacts": "My Contacts",
    "starred": "Starred",
    "friends": "Friends",
    "family": "Family",
    "coworkers": "Coworkers",
    "chatBuddies": "Chat contacts",
    "all": "All contacts",
    "blocked": "Blocked",
}
MEMBER_GROUPS = frozenset({"myContacts", "starred"})
DAY = 86400.0


def _tok(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _untok(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


class ApiError(Exception):
    def __init__(
        self, code: int, status: str, message: str, reason: str = "", field_: str = ""
    ) -> None:
        super().__init__(message)
        self.code, self.status, self.message, self.reason = code, status, message, reason

    def reply(self) -> Reply:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.reason:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": self.reason,
                    "domain": "people.googleapis.com" if self.code != 429 else "googleapis.com",
                }
            ]
        return Reply.json({"error": error}, self.code)


def bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


@dataclass(slots=True)
class Contact:
    rid: str
    source_id: str
    data: dict[str, list[dict[str, Any]]]
    groups: set[str]
    seq: int
    updated: float
    deleted: bool = False
    previous: list[str] = field(default_factory=list)
    revision: int = 1

    @property
    def source_etag(self) -> str:
        raw = f"{self.rid}:{self.revision}".encode()
        return "#" + base64.b64encode(hashlib.sha1(raw).digest()).decode()[:14]

    @property
    def etag(self) -> str:
        raw = f"{self.rid}:{self.revision}:{sorted(self.groups)}".encode()
        return "%EgU" + base64.b64encode(hashlib.sha1(raw).digest()).decode()[:20]


@dataclass(slots=True)
class Group:
    rid: str
    name: str
    system: bool
    updated: float
    revision: int = 1
    deleted: bool = False

    @property
    def etag(self) -> str:
        return "#" + base64.b64encode(f"{self.rid}:{self.revision}".encode()).decode()[:16]


class PeopleApi:
    """Mixed into the emulator: the People API's state and handlers."""

    def _people_init(self) -> None:
        self.validator = DiscoveryValidator(SPEC)
        self.spec_errors: list[str] = []
        self.check_responses = True
        """Check every answer against the Discovery document (off for benchmarks: jsonschema
        takes longer than the rest of the emulator)."""
        self.contacts: dict[str, Contact] = {}
        self.groups: dict[str, Group] = {}
        self._seq = 0
        self._ids = itertools.count(1)
        self.clock_offset = 0.0
        """Seconds added to the clock (tests move time forward)."""
        self.sync_token_ttl = 7 * DAY
        self._token_floor = 0
        self._fail: list[tuple[int, str]] = []
        self._snapshots: dict[str, tuple[list[str], str, int]] = {}
        now = self.now()
        for gid in SYSTEM_GROUPS:
            self.groups[f"contactGroups/{gid}"] = Group(f"contactGroups/{gid}", gid, True, now)

    def now(self) -> float:
        return time.time() + self.clock_offset

    def _bump(self) -> int:
        self._seq += 1
        return self._seq

    # --- controls for tests --------------------------------------------------------------

    def fail_next(self, count: int = 1, status: str = "RESOURCE_EXHAUSTED") -> None:
        """The next ``count`` People API requests answer 429 (or 503 UNAVAILABLE)."""
        with self.lock:  # type: ignore[attr-defined]
            code = 429 if status == "RESOURCE_EXHAUSTED" else 503
            self._fail.extend([(code, status)] * count)

    def expire_sync_tokens(self) -> None:
        with self.lock:  # type: ignore[attr-defined]
            self._token_floor = self._seq + 1
            self._bump()

    def add_contact(
        self, data: dict[str, list[dict[str, Any]]], groups: set[str] | None = None
    ) -> str:
        """A contact made "in the Google Contacts UI" (as the user would)."""
        with self.lock:  # type: ignore[attr-defined]
            return self._create(data, set(groups or ()) | {"contactGroups/myContacts"}).rid

    def edit_contact(self, rid: str, **fields: list[dict[str, Any]]) -> None:
        with self.lock:  # type: ignore[attr-defined]
            c = self.contacts[rid]
            for key, value in fields.items():
                if value:
                    c.data[key] = [dict(v) for v in value]
                else:
                    c.data.pop(key, None)
            self._touch(c)

    def delete_contact(self, rid: str) -> None:
        with self.lock:  # type: ignore[attr-defined]
            c = self.contacts[rid]
            c.deleted = True
            self._touch(c)

    def rename_contact(self, rid: str) -> str:
        """Google gives the contact a new resource name (e.g. a profile got linked)."""
        with self.lock:  # type: ignore[attr-defined]
            c = self.contacts.pop(rid)
            c.previous.append(rid)
            c.rid = f"people/c{next(self._ids) + 7_000_000_000_000_000_000}"
            self.contacts[c.rid] = c
            self._touch(c)
            return c.rid

    def merge_contacts(self, keep: str, gone: str) -> str:
        """The user merges two contacts in Google: ``gone`` is deleted, ``keep`` gets the
        other's values it lacked and a new resource name listing both old ones."""
        with self.lock:  # type: ignore[attr-defined]
            other = self.contacts[gone]
            c = self.contacts[keep]
            for key, items in other.data.items():
                c.data.setdefault(key, [dict(i) for i in items])
            c.groups |= other.groups
            other.deleted = True
            self._touch(other)
            new = self.rename_contact(keep)
            self.contacts[new].previous.append(gone)
            return new

    def add_group(self, name: str) -> str:
        with self.lock:  # type: ignore[attr-defined]
            return self._new_group(name).rid

    def set_groups(self, rid: str, groups: set[str]) -> None:
        with self.lock:  # type: ignore[attr-defined]
            c = self.contacts[rid]
            c.groups = set(groups) | {"contactGroups/myContacts"}
            self._touch(c)

    def group_named(self, name: str) -> Group | None:
        for g in self.groups.values():
            if g.name == name and not g.deleted:
                return g
        return None

    # --- state ---------------------------------------------------------------------------

    def _create(self, data: dict[str, list[dict[str, Any]]], groups: set[str]) -> Contact:
        n = next(self._ids)
        rid = f"people/c{6_000_000_000_000_000_000 + n * 7919}"
        c = Contact(rid, f"{n:x}", {}, groups, self._bump(), self.now())
        for key, items in data.items():
            if items:
                c.data[key] = [self._clean(key, item) for item in items]
        self.contacts[rid] = c
        return c

    def _clean(self, key: str, item: dict[str, Any]) -> dict[str, Any]:
        """Drop output-only and metadata from a written field value."""
        out = {
            k: v
            for k, v in item.items()
            if k not in ("metadata", "formattedType", "canonicalForm", "displayName")
            or (k == "displayName" and key == "emailAddresses")
        }
        if key == "names":
            out.pop("displayNameLastFirst", None)
        return out

    def _touch(self, c: Contact) -> None:
        c.revision += 1
        c.seq = self._bump()
        c.updated = self.now()

    def _new_group(self, name: str) -> Group:
        gid = hashlib.sha1(f"{name}:{next(self._ids)}".encode()).hexdigest()[:14]
        g = Group(f"contactGroups/{gid}", name, False, self.now())
        self.groups[g.rid] = g
        return g

    # --- rendering -----------------------------------------------------------------------

    def _meta(self, c: Contact, primary: bool) -> dict[str, Any]:
        meta: dict[str, Any] = {"source": {"type": "CONTACT", "id": c.source_id}}
        if primary:
            meta["primary"] = True
            meta["sourcePrimary"] = True
        return meta

    def render(self, c: Contact, fields: set[str]) -> dict[str, Any]:
        person: dict[str, Any] = {"resourceName": c.rid, "etag": c.etag}
        meta: dict[str, Any] = {
            "sources": [
                {
                    "type": "CONTACT",
                    "id": c.source_id,
                    "etag": c.source_etag,
                    "updateTime": _rfc3339(c.updated),
                }
            ],
            "objectType": "PERSON",
        }
        if c.previous:
            meta["previousResourceNames"] = list(c.previous)
        if c.deleted:
            meta["deleted"] = True
            person["metadata"] = meta
            return person
        person["metadata"] = meta  # sources (with the etag) come back whatever the mask
        for key in sorted(fields & set(c.data)):
            items = []
            for i, item in enumerate(c.data[key]):
                out = dict(item)
                out["metadata"] = self._meta(c, i == 0)
                if key in TYPED and out.get("type"):
                    out["formattedType"] = FORMATTED_TYPES.get(out["type"], out["type"])
                if key == "names":
                    parts = [
                        out.get(k, "")
                        for k in (
                            "honorificPrefix",
                            "givenName",
                            "middleName",
                            "familyName",
                            "honorificSuffix",
                        )
                    ]
                    joined = " ".join(p for p in parts if p)
                    out["displayName"] = out.get("unstructuredName") or joined
                    last_first = ", ".join(
                        p for p in (out.get("familyName", ""), out.get("givenName", "")) if p
                    )
                    out["displayNameLastFirst"] = last_first or out["displayName"]
                    out.setdefault("unstructuredName", out["displayName"])
                items.append(out)
            if items:
                person[key] = items
        if "memberships" in fields:
            person["memberships"] = [
                {
                    "metadata": {"source": {"type": "CONTACT", "id": c.source_id}},
                    "contactGroupMembership": {
                        "contactGroupId": g.split("/", 1)[1],
                        "contactGroupResourceName": g,
                    },
                }
                for g in sorted(c.groups)
            ]
        return person

    def render_group(self, g: Group) -> dict[str, Any]:
        members = [c for c in self.contacts.values() if g.rid in c.groups and not c.deleted]
        out: dict[str, Any] = {
            "resourceName": g.rid,
            "etag": g.etag,
            "metadata": {"updateTime": _rfc3339(g.updated)},
            "groupType": "SYSTEM_CONTACT_GROUP" if g.system else "USER_CONTACT_GROUP",
            "name": g.name,
            "formattedName": SYSTEM_GROUPS.get(g.name, g.name) if g.system else g.name,
        }
        if members:
            out["memberCount"] = len(members)
        return out

    # --- request plumbing --------------------------------------------------------------

    def _api(self, method_id: str, request: Request, work: Any) -> Reply:
        if not self.bearer_ok(request):  # type: ignore[attr-defined]
            return ApiError(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                "ACCESS_TOKEN_EXPIRED" if request.headers.get("authorization") else "",
            ).reply()
        with self.lock:  # type: ignore[attr-defined]
            if self._fail:
                code, status = self._fail.pop(0)
                return ApiError(
                    code,
                    status,
                    "Quota exceeded for quota metric 'Read requests' and limit 'Read requests "
                    "per minute per user' of service 'people.googleapis.com'."
                    if code == 429
                    else "The service is currently unavailable.",
                    "RATE_LIMIT_EXCEEDED" if code == 429 else "",
                ).reply()
            try:
                self.validator.check_query(method_id, request.query)
                body = request.json() if request.body else None
                if body is not None:
                    self.validator.check_request(method_id, body)
            except SpecError as err:
                self.spec_errors.append(str(err))
                return bad(f"Invalid request: {err}").reply()
            except ValueError:
                return bad("Invalid JSON payload received.").reply()
            try:
                result = work(request, body)
            except ApiError as err:
                return err.reply()
            try:
                if self.check_responses:
                    self.validator.check_response(method_id, result)
            except SpecError as err:  # an emulator bug: recorded, answered anyway
                self.spec_errors.append(str(err))
            return Reply.json(result)

    def _people_routes(self) -> None:
        r = self.route  # type: ignore[attr-defined]
        r("GET", r"/v1/people/me/connections", self.h_list)
        r("GET", r"/v1/people:batchGet", self.h_batch_get)
        r("GET", r"/v1/people/(?P<id>[^/:]+)", self.h_get)
        r("POST", r"/v1/people:batchCreateContacts", self.h_batch_create)
        r("POST", r"/v1/people:batchUpdateContacts", self.h_batch_update)
        r("PATCH", r"/v1/people/(?P<id>[^/:]+):updateContact", self.h_update_one)
        r("GET", r"/v1/contactGroups", self.h_groups)
        r("POST", r"/v1/contactGroups", self.h_group_create)
        r("POST", r"/v1/contactGroups/(?P<id>[^/:]+)/members:modify", self.h_modify)

    @staticmethod
    def _mask(text: str, allowed: frozenset[str], what: str) -> set[str]:
        fields = {f.strip() for f in text.split(",") if f.strip()}
        fields = {f[7:] if f.startswith("person.") else f for f in fields}
        if not fields:
            raise bad(f"{what} must not be empty.")
        unknown = fields - allowed
        if unknown:
            raise bad(f'Invalid {what} path: "{sorted(unknown)[0]}".')
        return fields

    # --- people ------------------------------------------------------------------------

    def h_list(self, request: Request) -> Reply:
        return self._api("people.connections.list", request, self._list)

    def _list(self, request: Request, body: Any) -> dict[str, Any]:
        fields = self._mask(request.arg("personFields"), PERSON_FIELDS, "personFields")
        size = int(request.arg("pageSize", "0") or 0) or 100
        if not 1 <= size <= 1000:
            raise bad("pageSize must be between 1 and 1000.")
        params = sorted((k, v) for k, v in request.query.items() if k != "pageToken")
        key = hashlib.sha1(repr(params).encode()).hexdigest()
        sync = request.arg("syncToken")
        page = request.arg("pageToken")
        if page:
            snap = self._snapshots.get(page)
            if snap is None or snap[1] != key:
                raise bad("Page token is invalid or the other parameters changed.")
            rids, _, start_seq = snap
        else:
            since = 0
            if sync:
                data = _untok(sync)
                if data is None:
                    raise bad("Sync token is invalid.")
                if data["s"] < self._token_floor or self.now() - data["t"] > self.sync_token_ttl:
                    raise ApiError(
                        400,
                        "FAILED_PRECONDITION",
                        "Sync token is expired. Clear local cache and retry call without the "
                        "sync token.",
                        "EXPIRED_SYNC_TOKEN",
                    )
                since = data["s"]
            chosen = [
                c for c in self.contacts.values() if (c.seq > since if sync else not c.deleted)
            ]
            order = request.arg("sortOrder", "LAST_MODIFIED_ASCENDING")
            if order == "LAST_MODIFIED_DESCENDING":
                chosen.sort(key=lambda c: -c.seq)
            else:
                chosen.sort(key=lambda c: c.seq)
            rids = [c.rid for c in chosen]
            start_seq = self._seq
        offset = int((_untok(page) or {}).get("o", 0)) if page else 0
        chunk = rids[offset : offset + size]
        people = [self.render(self.contacts[r], fields) for r in chunk if r in self.contacts]
        out: dict[str, Any] = {"connections": people} if people else {}
        out["totalItems"] = len(rids)
        out["totalPeople"] = len(rids)
        if offset + size < len(rids):
            token = _tok({"o": offset + size, "k": key[:8], "n": next(self._ids)})
            self._snapshots[token] = (rids, key, start_seq)
            out["nextPageToken"] = token
        elif request.arg("requestSyncToken") == "true":
            out["nextSyncToken"] = _tok({"s": start_seq, "t": self.now()})
        return out

    def h_get(self, request: Request) -> Reply:
        assert request.match is not None
        rid = "people/" + request.match["id"]

        def work(request: Request, body: Any) -> dict[str, Any]:
            fields = self._mask(request.arg("personFields"), PERSON_FIELDS, "personFields")
            c = self.contacts.get(rid)
            if c is None or c.deleted:
                raise ApiError(404, "NOT_FOUND", "Requested entity was not found.")
            return self.render(c, fields)

        return self._api("people.get", request, work)

    def h_batch_get(self, request: Request) -> Reply:
        def work(request: Request, body: Any) -> dict[str, Any]:
            fields = self._mask(request.arg("personFields"), PERSON_FIELDS, "personFields")
            names = request.args("resourceNames")
            if not names or len(names) > 200:
                raise bad("resourceNames must hold between 1 and 200 names.")
            responses = []
            for rid in names:
                c = self.contacts.get(rid)
                if c is None or c.deleted:
                    responses.append(
                        {
                            "httpStatusCode": 404,
                            "requestedResourceName": rid,
                            "status": {"code": 5, "message": "Requested entity was not found."},
                        }
                    )
                else:
                    responses.append(
                        {
                            "httpStatusCode": 200,
                            "person": self.render(c, fields),
                            "requestedResourceName": rid,
                            "status": {},
                        }
                    )
            return {"responses": responses}

        return self._api("people.getBatchGet", request, work)

    def _check_person(self, person: dict[str, Any], fields: set[str] | None) -> None:
        for key in SINGLETONS:
            if len(person.get(key, [])) > 1:
                raise bad(
                    f"Only one {key[:-1] if key != 'biographies' else 'biography'} "
                    "is allowed per contact."
                )
        keys = set(person) - {"resourceName", "etag", "metadata"}
        unknown = keys - UPDATE_FIELDS
        if unknown:
            raise bad(f"Field {sorted(unknown)[0]} cannot be written.")
        if fields is not None and keys - fields:
            # Google ignores fields outside the mask; we refuse, to catch a wrong mask.
            raise bad(f"person.{sorted(keys - fields)[0]} is not in updatePersonFields.")
        for item in person.get("userDefined", []):
            if not str(item.get("key", "")).strip() or not str(item.get("value", "")).strip():
                raise bad("userDefined key and value must not be empty.")
        for m in person.get("memberships", []):
            g = m.get("contactGroupMembership", {}).get("contactGroupResourceName", "")
            group = self.groups.get(g)
            if group is None or (group.system and group.name not in MEMBER_GROUPS):
                raise bad(f"Cannot add the contact to {g}.")

    def h_batch_create(self, request: Request) -> Reply:
        def work(request: Request, body: Any) -> dict[str, Any]:
            body = body or {}
            read = self._mask(body.get("readMask", ""), PERSON_FIELDS, "readMask")
            contacts = body.get("contacts", [])
            if not contacts or len(contacts) > 200:
                raise bad("contacts must hold between 1 and 200 contacts.")
            for item in contacts:
                self._check_person(item.get("contactPerson", {}), None)
            created = []
            for item in contacts:
                person = dict(item.get("contactPerson", {}))
                groups = {
                    m["contactGroupMembership"]["contactGroupResourceName"]
                    for m in person.pop("memberships", [])
                } | {"contactGroups/myContacts"}
                data = {k: v for k, v in person.items() if k in UPDATE_FIELDS}
                c = self._create(data, groups)
                created.append(
                    {
                        "httpStatusCode": 200,
                        "person": self.render(c, read),
                        "requestedResourceName": c.rid,
                        "status": {},
                    }
                )
            return {"createdPeople": created}

        return self._api("people.batchCreateContacts", request, work)

    def _apply_update(self, rid: str, person: dict[str, Any], fields: set[str]) -> Contact:
        c = self.contacts[rid]
        for key in fields:
            if key == "memberships":
                c.groups = {
                    m["contactGroupMembership"]["contactGroupResourceName"]
                    for m in person.get("memberships", [])
                }
                continue
            items = person.get(key, [])
            if items:
                c.data[key] = [self._clean(key, i) for i in items]
            else:
                c.data.pop(key, None)
        self._touch(c)
        return c

    def _check_update(self, rid: str, person: dict[str, Any], fields: set[str]) -> None:
        c = self.contacts.get(rid)
        if c is None or c.deleted:
            raise ApiError(404, "NOT_FOUND", "Requested entity was not found.")
        sources = person.get("metadata", {}).get("sources", [])
        contact = [s for s in sources if s.get("type") == "CONTACT"]
        if not contact:
            raise bad("Request person.metadata.sources must be specified.")
        if contact[0].get("etag") != c.source_etag:
            raise ApiError(
                400,
                "FAILED_PRECONDITION",
                "Request person.etag is different than the current person.etag. Clear local "
                "cache and get the latest person.",
                "failedPrecondition",
            )
        self._check_person(person, fields)

    def h_batch_update(self, request: Request) -> Reply:
        def work(request: Request, body: Any) -> dict[str, Any]:
            body = body or {}
            fields = self._mask(body.get("updateMask", ""), UPDATE_FIELDS, "updateMask")
            read = self._mask(body.get("readMask", ""), PERSON_FIELDS, "readMask")
            contacts = body.get("contacts", {})
            if not contacts or len(contacts) > 200:
                raise bad("contacts must hold between 1 and 200 contacts.")
            for rid, person in contacts.items():
                self._check_update(rid, person, fields)
            result = {}
            for rid, person in contacts.items():
                c = self._apply_update(rid, person, fields)
                result[rid] = {
                    "httpStatusCode": 200,
                    "person": self.render(c, read),
                    "requestedResourceName": rid,
                    "status": {},
                }
            return {"updateResult": result}

        return self._api("people.batchUpdateContacts", request, work)

    def h_update_one(self, request: Request) -> Reply:
        assert request.match is not None
        rid = "people/" + request.match["id"]

        def work(request: Request, body: Any) -> dict[str, Any]:
            fields = self._mask(
                request.arg("updatePersonFields"), UPDATE_FIELDS, "updatePersonFields"
            )
            read = (
                self._mask(request.arg("personFields"), PERSON_FIELDS, "personFields")
                if request.arg("personFields")
                else fields
            )
            self._check_update(rid, body or {}, fields)
            return self.render(self._apply_update(rid, body or {}, fields), read)

        return self._api("people.updateContact", request, work)

    # --- contact groups -----------------------------------------------------------------

    def h_groups(self, request: Request) -> Reply:
        def work(request: Request, body: Any) -> dict[str, Any]:
            size = int(request.arg("pageSize", "0") or 0) or 30
            if not 1 <= size <= 1000:
                raise bad("pageSize must be between 1 and 1000.")
            live = [g for g in self.groups.values() if not g.deleted]
            offset = int((_untok(request.arg("pageToken")) or {}).get("o", 0))
            chunk = live[offset : offset + size]
            out: dict[str, Any] = {
                "contactGroups": [self.render_group(g) for g in chunk],
                "totalItems": len(live),
            }
            if offset + size < len(live):
                out["nextPageToken"] = _tok({"o": offset + size})
            else:
                out["nextSyncToken"] = _tok({"s": self._seq, "t": self.now(), "g": 1})
            return out

        return self._api("contactGroups.list", request, work)

    def h_group_create(self, request: Request) -> Reply:
        def work(request: Request, body: Any) -> dict[str, Any]:
            name = str((body or {}).get("contactGroup", {}).get("name", "")).strip()
            if not name:
                raise bad("contactGroup.name must not be empty.")
            taken = {g.name.casefold() for g in self.groups.values() if not g.deleted}
            taken |= {v.casefold() for v in SYSTEM_GROUPS.values()}
            if name.casefold() in taken:
                raise ApiError(409, "ALREADY_EXISTS", "Contact group name already exists.")
            return self.render_group(self._new_group(name))

        return self._api("contactGroups.create", request, work)

    def h_modify(self, request: Request) -> Reply:
        assert request.match is not None
        rid = "contactGroups/" + request.match["id"]

        def work(request: Request, body: Any) -> dict[str, Any]:
            body = body or {}
            g = self.groups.get(rid)
            if g is None or g.deleted:
                raise ApiError(404, "NOT_FOUND", "Requested entity was not found.")
            add = list(body.get("resourceNamesToAdd", []))
            remove = list(body.get("resourceNamesToRemove", []))
            if len(add) + len(remove) > 1000:
                raise bad("At most 1000 resource names can be modified at once.")
            if g.system and (add and g.name not in MEMBER_GROUPS):
                raise bad(f"Cannot add contacts to {rid}.")
            missing: list[str] = []
            for names, adding in ((add, True), (remove, False)):
                for name in names:
                    c = self.contacts.get(name)
                    if c is None or c.deleted:
                        missing.append(name)
                        continue
                    before = set(c.groups)
                    if adding:
                        c.groups.add(rid)
                    else:
                        c.groups.discard(rid)
                    if c.groups != before:
                        self._touch(c)
            return {"notFoundResourceNames": missing} if missing else {}

        return self._api("contactGroups.members.modify", request, work)
