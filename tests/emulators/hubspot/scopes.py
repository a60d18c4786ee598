"""Which scopes each emulated HubSpot route needs, and HubSpot's 403 when a token lacks one.

A private app (or service key) is granted a set of scopes when it is made; a request its
token has no scope for is answered 403 ``MISSING_SCOPES`` before anything is done. The
scopes per route are taken from the ``security`` of each operation in
``shared/specs/hubspot/*.json`` (each entry is one alternative there: any alternative whose
scopes the token all holds lets the request through; ``test_hubspot_emulator`` checks the
table against the files). The properties API lists a hundred alternatives (one per object
type); only the two about contacts apply to ``/crm/v3/properties/contacts``.

The 403 body is HubSpot's, as its SDK issue trackers show it (e.g. HubSpot/hubspot-api-nodejs
#268): ``category`` ``MISSING_SCOPES``, a fixed message, and the scopes in
``errors[0].context.requiredGranularScopes``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

CRM_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
    "crm.lists.read",
    "crm.lists.write",
)
"""What the wizard asks a private app to have (the default token's scopes)."""
COMM_PREFS_SCOPES = (
    "communication_preferences.statuses.batch.read",
    "communication_preferences.statuses.batch.write",
)
"""Optional: opt-outs through the communication-preferences API."""
ALL_SCOPES = CRM_SCOPES + COMM_PREFS_SCOPES + ("communication_preferences.read",)

_CP = "/communication-preferences/v4/statuses"

ROUTES: tuple[tuple[str, str, str, tuple[tuple[str, ...], ...]], ...] = (
    # (method, path pattern, spec path, alternatives)
    (
        "GET",
        r"/crm/v3/properties/contacts(/[^/]+)?",
        "/crm/v3/properties/{objectType}",
        (("crm.objects.contacts.read",), ("crm.schemas.contacts.read",)),
    ),
    ("GET", r"/crm/v3/objects/contacts", "", (("crm.objects.contacts.read",),)),
    (
        "GET",
        r"/crm/v3/objects/contacts/\d+",
        "/crm/v3/objects/contacts/{contactId}",
        (("crm.objects.contacts.read",),),
    ),
    ("POST", r"/crm/v3/objects/contacts/batch/read", "", (("crm.objects.contacts.read",),)),
    ("POST", r"/crm/v3/objects/contacts/search", "", (("crm.objects.contacts.read",),)),
    ("POST", r"/crm/v3/objects/contacts/batch/\w+", "", (("crm.objects.contacts.write",),)),
    ("POST", r"/crm/v3/lists", "", (("crm.lists.write",),)),
    ("POST", r"/crm/v3/lists/search", "", (("crm.lists.read",),)),
    ("GET", r"/crm/v3/lists/\d+", "/crm/v3/lists/{listId}", (("crm.lists.read",),)),
    (
        "GET",
        r"/crm/v3/lists/\d+/memberships",
        "/crm/v3/lists/{listId}/memberships",
        (("crm.lists.read",),),
    ),
    (
        "PUT",
        r"/crm/v3/lists/\d+/memberships/(add|remove)",
        "/crm/v3/lists/{listId}/memberships/add",
        (("crm.lists.read", "crm.lists.write"),),
    ),
    (
        "POST",
        _CP + r"/batch/unsubscribe-all/read",
        "",
        (("communication_preferences.statuses.batch.read",),),
    ),
    (
        "POST",
        _CP + r"/batch/unsubscribe-all",
        "",
        (("communication_preferences.statuses.batch.write",),),
    ),
    (
        "GET",
        _CP + r"/[^/]+/unsubscribe-all",
        _CP + "/{subscriberIdString}/unsubscribe-all",
        (("communication_preferences.read_write",), ("communication_preferences.read",)),
    ),
)


def required(method: str, path: str) -> tuple[tuple[str, ...], ...]:
    """The scope alternatives for a request (empty: none needed, or no such route)."""
    for verb, pattern, _, alternatives in ROUTES:
        if verb == method and re.fullmatch(pattern, path):
            return alternatives
    return ()


def missing(method: str, path: str, granted: frozenset[str]) -> tuple[str, ...]:
    """The scopes to name in a 403 (empty when the token may make this request)."""
    alternatives = required(method, path)
    if not alternatives or any(set(alt) <= granted for alt in alternatives):
        return ()
    return tuple(dict.fromkeys(s for alt in alternatives for s in alt))


def missing_scopes_body(scopes: tuple[str, ...]) -> dict[str, Any]:
    return {
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call. "
        "Read more about required scopes here: https://developers.hubspot.com/scopes.",
        "correlationId": str(uuid.uuid4()),
        "errors": [
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": list(scopes)},
            }
        ],
        "links": {"scopes": "https://developers.hubspot.com/scopes"},
        "category": "MISSING_SCOPES",
    }


def parse_scopes(text: str) -> frozenset[str]:
    """``--scopes``: comma-separated names, or ``all`` / ``crm`` for the sets above."""
    names: set[str] = set()
    for part in (p.strip() for p in text.split(",")):
        if part == "all":
            names |= set(ALL_SCOPES)
        elif part == "crm":
            names |= set(CRM_SCOPES)
        elif part:
            names.add(part)
    return frozenset(names)
