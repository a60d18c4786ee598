"""Reading HubSpot's answers to batch writes: which input a result or an error belongs to,
which properties a validation error names and why, and one error per contact from several.
"""

from __future__ import annotations

import json
from typing import Any

from app.connectors.hubspot.schema import ContactSchema
from app.errors import NotFitting, Rejected
from app.model import WriteResult, email_key


def adding(result: WriteResult, error: Rejected) -> WriteResult:
    """The result with one more field error (a real failure comes first)."""
    issues = [e for e in (result.error, error) if isinstance(e, Rejected)]
    if result.error is not None and not isinstance(result.error, Rejected):
        return result
    return WriteResult(result.op_id, record=result.record, error=first_error(issues))


def first_error(issues: list[Rejected]) -> Rejected | None:
    """One error for a result: a real failure before values that merely did not fit."""
    if not issues:
        return None
    failures = [i for i in issues if not isinstance(i, NotFitting)]
    if not failures:
        return issues[0]
    issues = failures
    if len(issues) == 1:
        return issues[0]
    first = issues[0]
    fields = ", ".join(sorted({i.field or "" for i in issues if i.field}))
    return type(first)(
        " ".join(i.message for i in issues), field=first.field, raw=f"fields: {fields}"
    )


def trace_of(result: dict[str, Any], inputs: list[dict[str, Any]]) -> str | None:
    trace = result.get("objectWriteTraceId")
    if trace:
        return str(trace)
    rid = str(result.get("id", ""))
    for i in inputs:
        if str(i.get("id", "")) == rid:
            return str(i["objectWriteTraceId"])
    email = email_key(str((result.get("properties") or {}).get("email") or ""))
    for i in inputs:
        if email and email_key(str(i["properties"].get("email") or "")) == email:
            return str(i["objectWriteTraceId"])
    return None


def property_names(body: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for e in body.get("errors") or []:
        names += list((e.get("context") or {}).get("propertyName") or [])
    names += list((body.get("context") or {}).get("propertyName") or [])
    message = str(body.get("message", ""))
    if not names and "[" in message:
        try:
            detail = json.loads(message[message.index("[") :])
            names = [str(d["name"]) for d in detail if isinstance(d, dict) and "name" in d]
        except (ValueError, KeyError, TypeError):
            pass
    return list(dict.fromkeys(names))


def reason(message: str, name: str) -> str:
    if "[" in message:
        try:
            detail = json.loads(message[message.index("[") :])
            for d in detail:
                if isinstance(d, dict) and d.get("name") == name:
                    return str(d.get("message", "")).split(": [")[0]
        except (ValueError, TypeError):
            pass
    return message[:200]


def field_of(prop: str, schema: ContactSchema) -> str:
    for key, name in schema.single.items():
        if name == prop:
            return key
    if prop in ("email", "hs_additional_emails"):
        return "emails"
    if prop in ("phone", "mobilephone", "fax"):
        return "phones"
    if prop in ("address", "city", "state", "zip", "country"):
        return "addresses"
    return prop
