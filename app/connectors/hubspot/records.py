"""HubSpot contact JSON ↔ :class:`Record`, and Record fields → property values to write.

Reading: every property value is a string; choices are shown by their option labels,
multi-choice values are ``;``-separated option values, ``hs_email_optout`` is the
subscription status ("true" = opted out of all email).

Writing: a field's value becomes the properties behind it. What HubSpot could not hold is
left out and the rest of the contact is still written: a second email
(``hs_additional_emails`` is HubSpot's own), a fourth phone or a second address have no room
(:class:`NotFitting`, not a failure); an unknown field, a label that is no option or a
read-only property fail that field (:class:`Rejected`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from app.connectors.hubspot.schema import ADDRESS_PARTS, OPT_OUT, PHONE_SLOTS, ContactSchema
from app.errors import NotFitting, Rejected, ValueNotAllowed
from app.model import Address, FieldType, FieldValue, Labeled, Record, is_empty_value

_TRUE = frozenset({"true", "yes", "y", "1", "on", "x", "checked"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "unchecked"})


def parse_boolean(text: str) -> bool | None:
    word = text.strip().casefold()
    return True if word in _TRUE else False if word in _FALSE else None


def parse_date(text: str) -> str | None:
    """``YYYY-MM-DD`` from an ISO date or date-time (what the mapping layer hands over)."""
    try:
        return date.fromisoformat(text.strip()[:10]).isoformat()
    except ValueError:
        return None


def parse_datetime(text: str) -> str | None:
    """An ISO 8601 date-time (UTC) HubSpot accepts; a bare date is midnight UTC."""
    s = text.strip()
    try:
        when = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def version_of(data: dict[str, Any], segments: Iterable[str] = (), tag: str = "") -> str:
    """``updatedAt`` and the contact's lists: list membership does not move ``updatedAt``.
    ``tag`` names what was read (``ReadHint.tag``): a contact read for other fields is
    another version, read again when the fields a sync uses change."""
    stamp = str(data.get("updatedAt") or data.get("properties", {}).get("lastmodifieddate") or "")
    if tag:
        stamp = f"{stamp}~{tag}"
    lists = sorted(segments)
    if not lists:
        return stamp
    digest = hashlib.sha1("\x1f".join(lists).encode()).hexdigest()[:8]
    return f"{stamp}#{digest}"


def to_record(
    data: dict[str, Any], schema: ContactSchema, segments: frozenset[str], tag: str = ""
) -> Record:
    props: dict[str, Any] = data.get("properties") or {}

    def get(name: str) -> str:
        value = props.get(name)
        return "" if value is None else str(value)

    fields: dict[str, FieldValue] = {}
    keys = {f.key: f for f in schema.fields}
    if "emails" in keys:
        emails = [get("email").strip()] if get("email").strip() else []
        emails += [e.strip() for e in get("hs_additional_emails").split(";") if e.strip()]
        if emails:
            fields["emails"] = tuple(Labeled(e) for e in emails)
    if "phones" in keys:
        phones = tuple(Labeled(get(p), label) for p, label in PHONE_SLOTS if get(p).strip())
        if phones:
            fields["phones"] = phones
    if "addresses" in keys:
        parts = {attr: get(p) for p, attr in ADDRESS_PARTS}
        address = Address(**parts)
        if not address.is_empty():
            fields["addresses"] = (address,)
    for key, name in schema.single.items():
        raw = get(name)
        if not raw.strip():
            continue
        prop = schema.properties[name]
        spec = keys[key]
        if spec.type == FieldType.MULTI_CHOICE:
            fields[key] = tuple(Labeled(prop.label_of(v)) for v in raw.split(";") if v)
        elif spec.type == FieldType.SINGLE_CHOICE:
            fields[key] = prop.label_of(raw)
        else:
            fields[key] = raw
    optout = get(OPT_OUT).strip().lower()
    subscribed = False if optout == "true" else (True if optout == "false" else None)
    return Record(str(data["id"]), version_of(data, segments, tag), fields, segments, subscribed)


@dataclass
class Translation:
    properties: dict[str, str] = field(default_factory=dict)
    problems: list[Rejected] = field(default_factory=list)
    """Fields left out, one error each (the op still writes the rest)."""


def to_properties(
    fields: Mapping[str, FieldValue], schema: ContactSchema, *, create: bool
) -> Translation:
    out = Translation()
    keys = {f.key: f for f in schema.fields}
    for key, value in fields.items():
        spec = keys.get(key)
        if spec is None:
            if not is_empty_value(value):
                out.problems.append(
                    Rejected(f"HubSpot has no contact property for the field {key!r}.", field=key)
                )
            continue
        if not spec.writable:
            if not is_empty_value(value):
                out.problems.append(
                    Rejected(
                        f"{spec.label} is read-only in HubSpot; it was not written.", field=key
                    )
                )
            continue
        try:
            if key == "emails":
                _emails(value, out)
            elif key == "phones":
                _phones(value, out, create)
            elif key == "addresses":
                _address(value, out, create)
            else:
                _single(key, value, schema, out)
        except Rejected as err:
            out.problems.append(err)
    if create:
        out.properties = {k: v for k, v in out.properties.items() if v != ""}
    return out


def _items(value: FieldValue) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    return [v.value.strip() for v in value if isinstance(v, Labeled) and v.value.strip()]


def _emails(value: FieldValue, out: Translation) -> None:
    emails = _items(value)
    out.properties["email"] = emails[0] if emails else ""
    if len(emails) > 1:
        raise NotFitting(
            "HubSpot holds one email per contact here (its additional emails are managed "
            f"by HubSpot); not written: {', '.join(emails[1:])}.",
            field="emails",
            values=tuple(emails[1:]),
        )


def _phones(value: FieldValue, out: Translation, create: bool) -> None:
    items = (
        [Labeled(value)] if isinstance(value, str) else [v for v in value if isinstance(v, Labeled)]
    )
    items = [v for v in items if v.value.strip()]
    slots: dict[str, str] = {p: "" for p, _ in PHONE_SLOTS}
    left: list[Labeled] = []
    by_label = {
        "mobile": "mobilephone",
        "cell": "mobilephone",
        "iphone": "mobilephone",
        "fax": "fax",
        "work fax": "fax",
        "home fax": "fax",
    }
    for item in items:
        slot = by_label.get(item.label.strip().casefold(), "phone")
        if not slots[slot]:
            slots[slot] = item.value
        else:
            left.append(item)
    rest: list[str] = []
    for item in left:
        free = next((p for p in ("phone", "mobilephone") if not slots[p]), None)
        if free is None:
            rest.append(item.value)
        else:
            slots[free] = item.value
    out.properties.update(slots)
    if rest:
        raise NotFitting(
            "HubSpot has three phone properties (phone, mobile, fax); not written: "
            + ", ".join(rest)
            + ".",
            field="phones",
            values=tuple(rest),
        )


def _address(value: FieldValue, out: Translation, create: bool) -> None:
    if isinstance(value, str):
        addresses = [Address(street=value)] if value.strip() else []
    else:
        addresses = [a for a in value if isinstance(a, Address) and not a.is_empty()]
    first = addresses[0] if addresses else Address()
    street = "\n".join(p for p in (first.street, first.extended, first.pobox) if p.strip())
    parts = {
        "address": street,
        "city": first.locality,
        "state": first.region,
        "zip": first.postcode,
        "country": first.country,
    }
    out.properties.update(parts)
    if len(addresses) > 1:
        left = tuple(", ".join(p for p in a.parts() if p.strip()) for a in addresses[1:])
        raise NotFitting(
            "HubSpot holds one address per contact; not written: " + "; ".join(left) + ".",
            field="addresses",
            values=left,
        )


def _single(key: str, value: FieldValue, schema: ContactSchema, out: Translation) -> None:
    name = schema.single[key]
    prop = schema.properties[name]
    items = _items(value)
    if not items:
        out.properties[name] = ""
        return
    if (prop.type == "enumeration" and prop.field_type == "booleancheckbox") or prop.type == "bool":
        flag = parse_boolean(items[0])
        if flag is None:
            raise ValueNotAllowed(
                f"“{items[0]}” is not a yes/no value for {prop.label} in HubSpot.", field=key
            )
        text = "true" if flag else "false"
        if prop.type == "enumeration":
            text = prop.value_of(text) or text
        out.properties[name] = text
        return
    if prop.type == "enumeration":
        chosen = items if prop.multi_choice else items[:1]
        values: list[str] = []
        for item in chosen:
            option = prop.value_of(item)
            if option is None:
                allowed = ", ".join(o.label for o in prop.options)
                raise ValueNotAllowed(
                    f"The value “{item}” is not an option of {prop.label} in HubSpot "
                    f"(options: {allowed}).",
                    field=key,
                )
            values.append(option)
        out.properties[name] = ";".join(values)
        return
    text = items[0] if isinstance(value, str) else "; ".join(items)
    if prop.type == "date":
        day = parse_date(text)
        if day is None or day.startswith("--"):
            raise Rejected(f"“{text}” is not a date HubSpot can store in {prop.label}.", field=key)
        text = day
    elif prop.type == "datetime":
        stamp = parse_datetime(text)
        if stamp is None:
            raise Rejected(f"“{text}” is not a date and time for {prop.label}.", field=key)
        text = stamp
    out.properties[name] = text
