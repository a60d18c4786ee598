"""People API person JSON ↔ :class:`~app.model.Record`.

Reading keeps the first entry of singleton-like values (names, nicknames, organizations,
birthdays, biographies) and every entry of lists, primary first. Writing
(:func:`merged_person`) starts from the person as Google has it, so what we do not map
inside a written person field survives: phonetic names, a second organization's entries,
other nicknames, ``formattedValue`` of an address we did not change, the ``type`` Google
used for a value whose label we kept. Singleton fields are written with one entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.connectors.google.schema import CUSTOM_PREFIX, google_type, label_of, person_field
from app.model import Address, FieldValue, Labeled, Record, is_empty_value

Person = dict[str, Any]

_NAME_PARTS = {
    "given_name": "givenName",
    "family_name": "familyName",
    "middle_name": "middleName",
    "name_prefix": "honorificPrefix",
    "name_suffix": "honorificSuffix",
}
_ORG_PARTS = {"organization": "name", "title": "title", "department": "department"}
_LISTS = {"emails": "emailAddresses", "phones": "phoneNumbers", "urls": "urls"}
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_NO_YEAR = re.compile(r"^--(\d{2})-(\d{2})$")


def source_etag(person: Person) -> str:
    for source in person.get("metadata", {}).get("sources", []):
        if source.get("type") == "CONTACT":
            return str(source.get("etag", ""))
    return ""


def group_names(person: Person) -> list[str]:
    out = []
    for m in person.get("memberships", []):
        name = m.get("contactGroupMembership", {}).get("contactGroupResourceName")
        if name:
            out.append(str(name))
    return out


def _ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Primary first (Google marks it in the metadata), the rest in Google's order."""
    return sorted(items, key=lambda i: 0 if i.get("metadata", {}).get("primary") else 1)


def _first(person: Person, key: str) -> dict[str, Any]:
    items = person.get(key) or []
    return _ordered(items)[0] if items else {}


def _date_text(item: dict[str, Any]) -> str:
    date = item.get("date") or {}
    month, day, year = date.get("month"), date.get("day"), date.get("year")
    if month and day:
        return f"{year:04d}-{month:02d}-{day:02d}" if year else f"--{month:02d}-{day:02d}"
    return str(item.get("text", "")).strip()


def person_fields(person: Person) -> dict[str, FieldValue]:
    """The Pairsync fields of a person (empty ones left out)."""
    out: dict[str, FieldValue] = {}
    name = _first(person, "names")
    full = str(name.get("unstructuredName") or name.get("displayName") or "")
    if full.strip():
        out["full_name"] = full
    for key, part in _NAME_PARTS.items():
        if str(name.get(part, "")).strip():
            out[key] = str(name[part])
    nick = _first(person, "nicknames")
    if str(nick.get("value", "")).strip():
        out["nickname"] = str(nick["value"])
    org = _first(person, "organizations")
    for key, part in _ORG_PARTS.items():
        if str(org.get(part, "")).strip():
            out[key] = str(org[part])
    bio = _first(person, "biographies")
    if str(bio.get("value", "")).strip():
        out["notes"] = str(bio["value"])
    birthday = _date_text(_first(person, "birthdays"))
    if birthday:
        out["birthday"] = birthday
    for key, field in _LISTS.items():
        values = tuple(
            Labeled(str(i.get("value", "")), label_of(field, str(i.get("type", ""))))
            for i in _ordered(person.get(field) or [])
            if str(i.get("value", "")).strip()
        )
        if values:
            out[key] = values
    addresses = tuple(
        a
        for a in (_address(i) for i in _ordered(person.get("addresses") or []))
        if not a.is_empty()
    )
    if addresses:
        out["addresses"] = addresses
    for item in person.get("userDefined") or []:
        key, value = str(item.get("key", "")).strip(), str(item.get("value", ""))
        if key and value.strip() and CUSTOM_PREFIX + key not in out:
            out[CUSTOM_PREFIX + key] = value
    return out


def _address(item: dict[str, Any]) -> Address:
    return Address(
        street=str(item.get("streetAddress", "")),
        locality=str(item.get("city", "")),
        region=str(item.get("region", "")),
        postcode=str(item.get("postalCode", "")),
        country=str(item.get("country", "")),
        pobox=str(item.get("poBox", "")),
        extended=str(item.get("extendedAddress", "")),
        label=label_of("addresses", str(item.get("type", ""))),
    )


def to_record(record_id: str, person: Person, segment_of: Mapping[str, str]) -> Record:
    """``segment_of``: contact group resource name → segment name (groups that are not
    segments, like myContacts, are absent)."""
    segments = frozenset(segment_of[g] for g in group_names(person) if g in segment_of)
    return Record(record_id, str(person.get("etag", "")), person_fields(person), segments)


# --- writing --------------------------------------------------------------------------------


def _strip(item: dict[str, Any]) -> dict[str, Any]:
    """A value as it may be written back (output-only parts dropped)."""
    return {
        k: v
        for k, v in item.items()
        if k not in ("metadata", "formattedType", "canonicalForm", "displayNameLastFirst")
    }


def _labeled_items(
    field: str, values: tuple[Labeled, ...], current: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """New list for ``field``: a value Google already holds with the same label keeps its
    item (type, display name…); others are new items."""
    unused = _ordered(current)
    out = []
    for value in values:
        if not value.value.strip():
            continue
        match = next(
            (
                i
                for i in unused
                if str(i.get("value", "")) == value.value
                and label_of(field, str(i.get("type", ""))) == value.label
            ),
            None,
        )
        if match is not None:
            unused.remove(match)
            out.append(_strip(match))
            continue
        item: dict[str, Any] = {"value": value.value}
        gtype = google_type(field, value.label)
        if gtype:
            item["type"] = gtype
        out.append(item)
    return out


def _address_items(
    values: tuple[Address, ...], current: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    unused = _ordered(current)
    out = []
    for value in values:
        if value.is_empty():
            continue
        match = next((i for i in unused if _address(i) == value), None)
        if match is not None:
            unused.remove(match)
            out.append(_strip(match))
            continue
        item = {
            k: v
            for k, v in (
                ("streetAddress", value.street),
                ("city", value.locality),
                ("region", value.region),
                ("postalCode", value.postcode),
                ("country", value.country),
                ("poBox", value.pobox),
                ("extendedAddress", value.extended),
                ("type", google_type("addresses", value.label)),
            )
            if v
        }
        out.append(item)
    return out


def _date_item(text: str, current: dict[str, Any]) -> dict[str, Any]:
    text = text.strip()
    if m := _ISO.match(text):
        return {"date": {"year": int(m[1]), "month": int(m[2]), "day": int(m[3])}}
    if m := _NO_YEAR.match(text):
        return {"date": {"month": int(m[1]), "day": int(m[2])}}
    return {"text": text}


def _as_text(value: FieldValue) -> str:
    if isinstance(value, str):
        return value
    first = value[0] if value else None
    return first.value if isinstance(first, Labeled) else ""


def merged_person(current: Person, fields: Mapping[str, FieldValue]) -> tuple[Person, set[str]]:
    """The person fields to send for writing ``fields`` onto ``current`` (Google's person,
    or ``{}`` for a new contact), and the update mask (person field names)."""
    mask = {f for f in (person_field(k) for k in fields) if f is not None}
    out: Person = {}
    if "names" in mask:
        name = _strip(_first(current, "names"))
        parts_written = False
        for key, part in _NAME_PARTS.items():
            if key in fields:
                text = _as_text(fields[key]).strip()
                parts_written = True
                if text:
                    name[part] = text
                else:
                    name.pop(part, None)
        if "full_name" in fields:
            text = _as_text(fields["full_name"]).strip()
            if text:
                name["unstructuredName"] = text
            else:
                name.pop("unstructuredName", None)
        elif parts_written:
            name.pop("unstructuredName", None)  # Google forms it again from the parts
        name.pop("displayName", None)
        out["names"] = [name] if any(str(v).strip() for v in name.values()) else []
    if "nicknames" in mask:
        rest = [_strip(i) for i in _ordered(current.get("nicknames") or [])]
        text = _as_text(fields["nickname"]).strip()
        first = dict(rest[0]) if rest else {}
        rest = rest[1:]
        if text:
            first["value"] = text
            out["nicknames"] = [first, *rest]
        else:
            out["nicknames"] = rest
    if "organizations" in mask:
        orgs = [_strip(i) for i in _ordered(current.get("organizations") or [])]
        org = dict(orgs[0]) if orgs else {}
        for key, part in _ORG_PARTS.items():
            if key in fields:
                text = _as_text(fields[key]).strip()
                if text:
                    org[part] = text
                else:
                    org.pop(part, None)
        keep = {k for k in org if k not in ("type", "current")}
        out["organizations"] = ([org] if keep else []) + orgs[1:]
    if "biographies" in mask:
        text = _as_text(fields["notes"])
        out["biographies"] = [{"value": text, "contentType": "TEXT_PLAIN"}] if text.strip() else []
    if "birthdays" in mask:
        text = _as_text(fields["birthday"])
        out["birthdays"] = [_date_item(text, {})] if text.strip() else []
    for key, field in _LISTS.items():
        if key in fields:
            value = fields[key]
            items: tuple[Labeled, ...] = (
                (Labeled(value),)
                if isinstance(value, str)
                else tuple(v for v in value if isinstance(v, Labeled))
            )
            out[field] = _labeled_items(field, items, current.get(field) or [])
    if "addresses" in fields:
        value = fields["addresses"]
        addresses = (
            tuple(v for v in value if isinstance(v, Address)) if not isinstance(value, str) else ()
        )
        out["addresses"] = _address_items(addresses, current.get("addresses") or [])
    if "userDefined" in mask:
        written = {
            k[len(CUSTOM_PREFIX) :]: v for k, v in fields.items() if k.startswith(CUSTOM_PREFIX)
        }
        kept = [
            _strip(i)
            for i in current.get("userDefined") or []
            if str(i.get("key", "")) not in written
        ]
        new = [
            {"key": k, "value": _as_text(v)} for k, v in written.items() if not is_empty_value(v)
        ]
        out["userDefined"] = kept + new
    return out, mask


def same_fields(keys: Mapping[str, FieldValue], a: Record, b: Record) -> bool:
    """True when ``a`` and ``b`` hold the same values for every key of ``keys``."""
    return all(
        (a.fields.get(k) if not is_empty_value(a.fields.get(k)) else None)
        == (b.fields.get(k) if not is_empty_value(b.fields.get(k)) else None)
        for k in keys
    )
