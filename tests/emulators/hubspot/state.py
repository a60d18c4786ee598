"""What a HubSpot portal holds, and the rules HubSpot applies to it (no HTTP here).

Contacts, contact properties and contact lists, with the behaviour the vendor documents
(``shared/reference/connector-apis.md`` §1) and the OpenAPI files describe:

* every property value is a string; reads return only the properties asked for (or the
  defaults), ``hs_object_id``, ``createdate`` and ``lastmodifieddate`` are kept by HubSpot;
* read-only properties (``modificationMetadata.readOnlyValue``) and unknown properties are
  refused on write; an enumeration accepts only its options' *values* (``;``-separated for
  checkbox), a number must be a number, a bool ``true``/``false``, a date midnight UTC;
* email is unique (case-insensitive): a create with a taken email is a 409 "Contact already
  exists. Existing ID: N";
* archived contacts are out of listings, reads and search, and come back with
  ``archived=true``;
* lists: MANUAL and SNAPSHOT lists take members by id; DYNAMIC ones are computed from a
  filter (a Python predicate here, seeded by tests) and refuse edits;
* communication preferences: a portal-wide "unsubscribed from all email" status per email
  address (kept even without a contact). An opt-out sets ``hs_email_optout`` on the
  address's contact, which moves its ``lastmodifieddate``, and a contact created for an
  address that opted out starts opted out. Only the contact can opt in again
  (``resubscribe``, as through HubSpot's preferences page); the API never does;
* search reads an index that lags behind: a contact as written is found by search (and
  returned with the values it had then) only ``search_delay_ms`` after the write; reads by
  id and listings see it at once.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
"""What a read returns when no ``properties`` are asked for (HubSpot's documented set)."""

HUBSPOT_KEPT = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})


def now_iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    )


def parse_time(text: str) -> int | None:
    """Milliseconds since the epoch from epoch-ms digits or an ISO 8601 date(-time)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _prop(
    name: str,
    label: str,
    type_: str = "string",
    field_type: str = "text",
    *,
    options: Iterable[tuple[str, str]] = (),
    read_only: bool = False,
    calculated: bool = False,
    hubspot_defined: bool = True,
    unique: bool = False,
    group: str = "contactinformation",
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "description": "",
        "groupName": group,
        "options": [
            {"label": lab, "value": val, "displayOrder": i, "hidden": False}
            for i, (lab, val) in enumerate(options)
        ],
        "displayOrder": -1,
        "calculated": calculated,
        "externalOptions": False,
        "hasUniqueValue": unique,
        "hidden": False,
        "hubspotDefined": hubspot_defined,
        "formField": not read_only,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": read_only,
        },
        "archived": False,
        "createdAt": "2020-01-01T00:00:00.000Z",
        "updatedAt": "2020-01-01T00:00:00.000Z",
    }


LIFECYCLE = (
    ("Subscriber", "subscriber"),
    ("Lead", "lead"),
    ("Marketing Qualified Lead", "marketingqualifiedlead"),
    ("Sales Qualified Lead", "salesqualifiedlead"),
    ("Opportunity", "opportunity"),
    ("Customer", "customer"),
    ("Evangelist", "evangelist"),
    ("Other", "other"),
)

STANDARD_PROPERTIES: tuple[dict[str, Any], ...] = (
    _prop("email", "Email", "string", "text", unique=True),
    _prop("firstname", "First Name"),
    _prop("lastname", "Last Name"),
    _prop("salutation", "Salutation"),
    _prop("phone", "Phone Number", "string", "phonenumber"),
    _prop("mobilephone", "Mobile Phone Number", "string", "phonenumber"),
    _prop("fax", "Fax Number", "string", "phonenumber"),
    _prop("company", "Company Name"),
    _prop("jobtitle", "Job Title"),
    _prop("address", "Street Address"),
    _prop("city", "City"),
    _prop("state", "State/Region"),
    _prop("zip", "Postal Code"),
    _prop("country", "Country/Region"),
    _prop("website", "Website URL"),
    _prop("date_of_birth", "Date of birth"),
    _prop("message", "Message", "string", "textarea"),
    _prop(
        "hs_additional_emails", "Additional email addresses", "string", "textarea", read_only=True
    ),
    _prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", options=LIFECYCLE),
    _prop(
        "hs_lead_status",
        "Lead Status",
        "enumeration",
        "select",
        options=(
            ("New", "NEW"),
            ("Open", "OPEN"),
            ("In Progress", "IN_PROGRESS"),
            ("Unqualified", "UNQUALIFIED"),
        ),
    ),
    _prop("annualrevenue", "Annual Revenue", "string", "number"),
    _prop(
        "hs_email_optout",
        "Unsubscribed from all email",
        "bool",
        "booleancheckbox",
        options=(("True", "true"), ("False", "false")),
        read_only=True,
    ),
    _prop("createdate", "Create Date", "datetime", "date", read_only=True),
    _prop("lastmodifieddate", "Last Modified Date", "datetime", "date", read_only=True),
    _prop("hs_object_id", "Record ID", "number", "number", read_only=True),
    _prop(
        "num_notes",
        "Number of Sales Activities",
        "number",
        "number",
        read_only=True,
        calculated=True,
    ),
    _prop(
        "hs_analytics_num_page_views",
        "Number of Pageviews",
        "number",
        "number",
        read_only=True,
        calculated=True,
    ),
)


EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class ApiError(Exception):
    """An error HubSpot answers with (the ``Error`` schema)."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        context: dict[str, list[str]] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.context = context
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.context:
            out["context"] = self.context
        if self.errors:
            out["errors"] = self.errors
        return out


@dataclass
class Contact:
    id: str
    properties: dict[str, str]
    created: int
    updated: int
    archived_at: int | None = None

    def to_json(self, wanted: Iterable[str] | None) -> dict[str, Any]:
        names = DEFAULT_PROPERTIES if wanted is None else tuple(wanted)
        props = {
            n: self.properties.get(n) for n in names if n in self.properties or n in HUBSPOT_KEPT
        }
        props["hs_object_id"] = self.id
        props["createdate"] = now_iso(self.created)
        props["lastmodifieddate"] = now_iso(self.updated)
        if wanted is not None:
            props = {n: v for n, v in props.items() if n in names or n == "hs_object_id"}
        out: dict[str, Any] = {
            "id": self.id,
            # HubSpot sends null for a property asked for but empty; the spec's
            # additionalProperties are strings, so empty ones are left out here.
            "properties": {k: v for k, v in props.items() if v is not None},
            "createdAt": now_iso(self.created),
            "updatedAt": now_iso(self.updated),
            "archived": self.archived_at is not None,
        }
        if self.archived_at is not None:
            out["archivedAt"] = now_iso(self.archived_at)
        return out


SUBSCRIPTIONS = ((1, "Marketing Information"), (2, "One to One"))
"""The portal's email subscription types (what an opt-out of all email covers)."""


@dataclass
class WideStatus:
    status: str  # SUBSCRIBED | UNSUBSCRIBED
    at: int


@dataclass
class ContactList:
    list_id: str
    name: str
    processing_type: str  # MANUAL | SNAPSHOT | DYNAMIC
    created: int
    updated: int
    members: dict[str, int] = field(default_factory=dict)
    """Record id -> when it joined (MANUAL/SNAPSHOT)."""
    predicate: Callable[[Contact], bool] | None = None
    """DYNAMIC lists: who is in."""
    version: int = 1

    def to_json(self, size: int) -> dict[str, Any]:
        return {
            "listId": self.list_id,
            "listVersion": self.version,
            "name": self.name,
            "objectTypeId": "0-1",
            "processingStatus": "COMPLETE",
            "processingType": self.processing_type,
            "size": size,
            "createdAt": now_iso(self.created),
            "updatedAt": now_iso(self.updated),
        }


class Portal:
    """One HubSpot account's data. Thread-safe: the server runs a thread per request."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.properties: dict[str, dict[str, Any]] = {
            p["name"]: dict(p) for p in STANDARD_PROPERTIES
        }
        self.contacts: dict[str, Contact] = {}
        self.lists: dict[str, ContactList] = {}
        self.search_delay_ms = 0
        self._index: dict[str, Contact] = {}
        """What search sees: each contact as it was when last indexed."""
        self._pending: list[tuple[int, Contact]] = []
        """Writes not yet indexed: (when search sees them, the contact as written)."""
        self.wide: dict[str, WideStatus] = {}
        """Lower-cased email -> its portal-wide email status."""
        self._next_id = 101
        self._next_list = 1
        self._last_ms = 0
        self.clock: Callable[[], float] | None = None
        """Tests may set a clock (seconds) to control timestamps."""

    # --- time and ids -------------------------------------------------------------------

    def now_ms(self) -> int:
        import time

        ms = int((self.clock() if self.clock else time.time()) * 1000)
        self._last_ms = max(ms, self._last_ms)
        return self._last_ms

    def _new_id(self) -> str:
        rid = str(self._next_id)
        self._next_id += 1
        return rid

    # --- seeding (tests) -----------------------------------------------------------------

    def add_property(
        self,
        name: str,
        label: str,
        type_: str = "string",
        field_type: str = "text",
        *,
        options: Iterable[tuple[str, str]] = (),
        read_only: bool = False,
        calculated: bool = False,
    ) -> None:
        with self.lock:
            self.properties[name] = _prop(
                name,
                label,
                type_,
                field_type,
                options=options,
                read_only=read_only,
                calculated=calculated,
                hubspot_defined=False,
                group="custom",
            )

    def seed(self, properties: dict[str, str], *, modified_ms: int | None = None) -> Contact:
        """A contact as if a user made it in HubSpot (no validation of read-only ones)."""
        with self.lock:
            now = self.now_ms() if modified_ms is None else modified_ms
            props = {k: v for k, v in properties.items() if v != ""}
            wide = self.wide.get(props.get("email", "").strip().casefold())
            if wide is not None and wide.status == "UNSUBSCRIBED":
                props["hs_email_optout"] = "true"
            c = Contact(self._new_id(), props, now, now)
            self.contacts[c.id] = c
            self._queue(c)
            return c

    def edit(self, contact_id: str, **properties: str) -> Contact:
        with self.lock:
            c = self.contacts[contact_id]
            for k, v in properties.items():
                if v == "":
                    c.properties.pop(k, None)
                else:
                    c.properties[k] = v
            c.updated = self.now_ms()
            self._queue(c)
            return c

    def archive(self, contact_id: str) -> None:
        with self.lock:
            self.contacts[contact_id].archived_at = self.now_ms()
            self._queue(self.contacts[contact_id])

    # --- the search index -----------------------------------------------------------------

    def _queue(self, c: Contact) -> None:
        snap = Contact(c.id, dict(c.properties), c.created, c.updated, c.archived_at)
        self._pending.append((self.now_ms() + self.search_delay_ms, snap))

    def searchable(self) -> list[Contact]:
        """The live contacts search finds, as the index has them (see the module docstring)."""
        with self.lock:
            now = self.now_ms()
            due = [p for p in self._pending if p[0] <= now]
            if due:
                self._pending = [p for p in self._pending if p[0] > now]
                for _, snap in due:
                    self._index[snap.id] = snap
            return sorted(
                (c for c in self._index.values() if c.archived_at is None),
                key=lambda c: int(c.id),
            )

    def add_list(
        self,
        name: str,
        processing_type: str = "MANUAL",
        members: Iterable[str] = (),
        predicate: Callable[[Contact], bool] | None = None,
    ) -> ContactList:
        with self.lock:
            now = self.now_ms()
            lst = ContactList(
                str(self._next_list), name, processing_type, now, now, predicate=predicate
            )
            self._next_list += 1
            for rid in members:
                lst.members[rid] = now
            self.lists[lst.list_id] = lst
            return lst

    # --- communication preferences ------------------------------------------------------

    def opt_out(self, email: str, *, set_property: bool = True) -> bool:
        """The address opts out of all email (True if it had not already). Its contact gets
        ``hs_email_optout`` = true unless ``set_property`` is off (a test stands for a status
        HubSpot keeps by address that the contact's property does not show)."""
        with self.lock:
            key = email.strip().casefold()
            old = self.wide.get(key)
            if old is not None and old.status == "UNSUBSCRIBED":
                return False
            self.wide[key] = WideStatus("UNSUBSCRIBED", self.now_ms())
            c = self.by_email(key)
            if c is not None and set_property:
                self.edit(c.id, hs_email_optout="true")
            return True

    def resubscribe(self, email: str) -> None:
        """The contact opts in again themselves (HubSpot's preferences page, a form)."""
        with self.lock:
            key = email.strip().casefold()
            self.wide[key] = WideStatus("SUBSCRIBED", self.now_ms())
            c = self.by_email(key)
            if c is not None:
                self.edit(c.id, hs_email_optout="false")

    def wide_status(self, email: str) -> dict[str, Any] | None:
        """The ``PublicWideStatus`` of an address (None when it never had one)."""
        wide = self.wide.get(email.strip().casefold())
        if wide is None:
            return None
        return {
            "channel": "EMAIL",
            "status": wide.status,
            "subscriberIdString": email,
            "timestamp": now_iso(wide.at),
            "wideStatusType": "PORTAL_WIDE",
        }

    def subscription_statuses(self, email: str, changed: bool) -> list[dict[str, Any]]:
        """``PublicStatus`` for each subscription type after an opt-out of all email."""
        wide = self.wide[email.strip().casefold()]
        return [
            {
                "channel": "EMAIL",
                "source": "Public API",
                "status": "UNSUBSCRIBED",
                "subscriberIdString": email,
                "subscriptionId": sid,
                "subscriptionName": name,
                "timestamp": now_iso(wide.at),
                "setStatusSuccessReason": "UNSUBSCRIBE_FROM_ALL_OCCURRED"
                if changed
                else "NO_STATUS_CHANGE",
            }
            for sid, name in SUBSCRIPTIONS
        ]

    def by_email(self, email: str) -> Contact | None:
        key = email.strip().casefold()
        for c in self.contacts.values():
            if c.archived_at is None and c.properties.get("email", "").casefold() == key:
                return c
        return None

    def live(self) -> list[Contact]:
        return sorted(
            (c for c in self.contacts.values() if c.archived_at is None), key=lambda c: int(c.id)
        )

    def list_members(self, lst: ContactList) -> list[tuple[str, int]]:
        if lst.processing_type == "DYNAMIC":
            pred = lst.predicate or (lambda c: False)
            return [(c.id, c.created) for c in self.live() if pred(c)]
        live = {c.id for c in self.live()}
        return sorted(
            ((rid, t) for rid, t in lst.members.items() if rid in live), key=lambda m: int(m[0])
        )

    # --- validation ----------------------------------------------------------------------

    def check_values(self, properties: dict[str, str]) -> list[dict[str, str]]:
        """HubSpot's per-property validation: a list of problems (empty when all fine)."""
        problems: list[dict[str, str]] = []
        for name, value in properties.items():
            prop = self.properties.get(name)
            if prop is None:
                problems.append(
                    {
                        "name": name,
                        "error": "PROPERTY_DOESNT_EXIST",
                        "message": f'Property "{name}" does not exist',
                    }
                )
                continue
            if prop["modificationMetadata"]["readOnlyValue"] or prop.get("calculated"):
                problems.append(
                    {
                        "name": name,
                        "error": "READ_ONLY_VALUE",
                        "message": f'"{name}" is a read only property; its value cannot be set.',
                    }
                )
                continue
            if value == "":
                continue  # clears the value
            problem = self._check_one(prop, value)
            if problem:
                problems.append({"name": name, **problem})
        return problems

    def _check_one(self, prop: dict[str, Any], value: str) -> dict[str, str] | None:
        kind = prop["type"]
        if kind == "enumeration":
            allowed = {o["value"] for o in prop["options"]}
            parts = value.split(";") if prop["fieldType"] == "checkbox" else [value]
            bad = [p for p in parts if p not in allowed]
            if bad:
                shown = ", ".join(f'"{o["value"]}"' for o in prop["options"])
                return {
                    "error": "INVALID_OPTION",
                    "message": f"{bad[0]} was not one of the allowed options: [{shown}]",
                }
        elif kind == "number":
            try:
                Decimal(value)
            except InvalidOperation:
                return {"error": "INVALID_DECIMAL", "message": f"{value} is not a valid number."}
        elif kind == "bool":
            if value not in ("true", "false"):
                return {"error": "INVALID_BOOLEAN", "message": f"{value} is not a valid boolean."}
        elif kind in ("date", "datetime"):
            ms = parse_time(value)
            if ms is None or (kind == "date" and ms % 86_400_000):
                return {
                    "error": "INVALID_DATE",
                    "message": f"{value} is not a valid {kind} (a date must be midnight UTC).",
                }
        elif prop["name"] == "email" and not EMAIL_RE.fullmatch(value.strip()):
            return {"error": "INVALID_EMAIL", "message": f"Email address {value} is invalid"}
        return None


def validation_error(problems: list[dict[str, str]]) -> ApiError:
    """The 400 HubSpot answers for bad property values."""
    import json

    detail = [
        {"isValid": False, "message": p["message"], "error": p["error"], "name": p["name"]}
        for p in problems
    ]
    return ApiError(
        400,
        "VALIDATION_ERROR",
        "Property values were not valid: " + json.dumps(detail),
        errors=[
            {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
            for p in problems
        ],
    )
