"""HubSpot's own OpenAPI files as the judge of every request and response the emulator sees.

The files in ``shared/specs/hubspot/`` are loaded once per process with ``openapi-core``.
A few places where the files disagree with what HubSpot really accepts are relaxed — only
these, each with its reason (``shared/reference/connector-apis.md`` §1, "Spec quirks"):

* ``SimplePublicObjectInputForCreate`` / ``SimplePublicObjectBatchInputForCreate`` list
  ``associations`` as required; HubSpot creates contacts without it (and its own docs send
  none).
* ``BatchReadInputSimplePublicObjectId`` lists ``properties`` and ``propertiesWithHistory``
  as required; only ``inputs`` is needed (the defaults are read without them).
* ``PublicObjectSearchRequest`` lists every field as required; clients omit ``after`` on the
  first page, ``query`` and others freely.
* ``PublicObjectSearchRequest.sorts`` is typed as strings while HubSpot's docs (and every
  SDK) send ``{"propertyName", "direction"}`` objects; both are accepted.
* error responses are declared with content type ``*/*`` (a validator cannot read them);
  HubSpot sends ``application/json``.
* ``security``: the files describe private-app auth as an API key in a header named
  ``private-app``, while HubSpot's private-app and service-key tokens travel as
  ``Authorization: Bearer …``; the emulator checks the bearer token itself, so the spec's
  security requirements are not evaluated.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from typing import Any

from tests.emulators.common import find_spec

HOST = "https://api.hubapi.com"

FILES = (
    ("/crm/v3/objects/contacts", "contacts.v3.json"),
    ("/crm/v3/properties", "properties.v3.json"),
    ("/crm/v3/lists", "lists.v3.json"),
    ("/communication-preferences/v4", "communication-preferences.v4.json"),
)


def _relax(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    schemas = data.get("components", {}).get("schemas", {})
    # Quirk: `associations` required on create inputs; HubSpot accepts inputs without it.
    for name in ("SimplePublicObjectInputForCreate", "SimplePublicObjectBatchInputForCreate"):
        if name in schemas:
            schemas[name]["required"] = [
                r for r in schemas[name].get("required", []) if r != "associations"
            ]
    # Quirk: batch read needs only `inputs`.
    if "BatchReadInputSimplePublicObjectId" in schemas:
        schemas["BatchReadInputSimplePublicObjectId"]["required"] = ["inputs"]
    # Quirk: every search field is marked required; none is.
    if "PublicObjectSearchRequest" in schemas:
        search = schemas["PublicObjectSearchRequest"]
        search["required"] = []
        # Quirk: sorts are objects in HubSpot's docs and SDKs, strings in the spec.
        search["properties"]["sorts"]["items"] = {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "required": ["propertyName"],
                    "properties": {
                        "propertyName": {"type": "string"},
                        "direction": {"type": "string", "enum": ["ASCENDING", "DESCENDING"]},
                    },
                },
            ]
        }
    # Quirk: errors are declared as "*/*" content, which no validator can parse; HubSpot
    # sends them as application/json.
    for response in data.get("components", {}).get("responses", {}).values():
        content = response.get("content", {})
        if "*/*" in content:
            content["application/json"] = content.pop("*/*")
    # Quirk: private-app bearer tokens vs the spec's "private-app" API-key header.
    data.pop("security", None)
    for ops in data.get("paths", {}).values():
        for op in ops.values():
            if isinstance(op, dict):
                op.pop("security", None)
    return data


@functools.cache
def _openapi(filename: str) -> Any:
    from openapi_core import Config, OpenAPI

    data = json.loads(find_spec(f"hubspot/{filename}").read_text(encoding="utf-8"))
    # The files passed openapi-spec-validator when they were copied (SOURCES.md); checking
    # the spec itself again on every load only costs time.
    return OpenAPI.from_dict(_relax(data), config=Config(spec_validator_cls=None))


_load_lock = threading.Lock()


def _for_path(path: str) -> Any | None:
    for prefix, filename in FILES:
        if path.startswith(prefix):
            with _load_lock:
                return _openapi(filename)
    return None


def check(
    method: str,
    path: str,
    query: dict[str, list[str]],
    headers: dict[str, str],
    body: bytes | None,
    status: int,
    response: bytes,
    response_type: str = "application/json",
) -> list[str]:
    """Problems with one exchange, as sentences (empty when both sides follow the spec)."""
    from openapi_core.testing import MockRequest, MockResponse
    from werkzeug.datastructures import ImmutableMultiDict

    api = _for_path(path)
    if api is None:
        return [f"{method} {path}: no HubSpot spec describes this path"]
    args = ImmutableMultiDict([(k, v) for k, vs in query.items() for v in vs])
    request = MockRequest(
        HOST,
        method.lower(),
        path,
        args=args,
        headers=headers,
        data=body or None,
        content_type=headers.get("Content-Type", "application/json").split(";")[0]
        if body
        else "application/json",
    )
    problems = [f"request {method} {path}: {_words(e)}" for e in api.iter_request_errors(request)]
    if not problems:
        answer = MockResponse(response, status_code=status, content_type=response_type)
        problems += [
            f"response {status} to {method} {path}: {_words(e)}"
            for e in api.iter_response_errors(request, answer)
        ]
    return problems


def _words(err: Exception) -> str:
    parts = [str(err)]
    cause = err.__cause__
    inner = getattr(cause, "schema_errors", None) or getattr(err, "schema_errors", None)
    if inner:
        parts += [str(getattr(e, "message", e)) for e in inner]
    elif cause is not None:
        parts.append(str(cause))
    return "; ".join(parts)
