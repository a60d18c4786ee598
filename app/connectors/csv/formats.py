"""Formats and column sets: which column of a CSV means which field (Outlook's and Google's
exports, or any sheet guessed from its headers), and the app's fields for a header."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.model import (
    FieldSpec,
    FieldType,
    Meaning,
)

ID_HEADER = "Pairsync ID"

DEFAULT_HEADER: tuple[str, ...] = (
    ID_HEADER,
    "First Name",
    "Last Name",
    "Work Email",
    "Home Email",
    "Other Email",
    "Mobile Phone",
    "Work Phone",
    "Home Phone",
    "Other Phone",
    "Company",
    "Job Title",
    "Notes",
    "Categories",
    "Work Street",
    "Work City",
    "Work State",
    "Work Postal Code",
    "Work Country",
    "Home Street",
    "Home City",
    "Home State",
    "Home Postal Code",
    "Home Country",
)

OUTLOOK = "outlook"
GOOGLE = "google"
GENERIC = "generic"
_FORMAT_TITLES = {OUTLOOK: "Outlook CSV", GOOGLE: "Google CSV", GENERIC: "This CSV file"}

_PACK_SEP = " ::: "
_ID_RE = re.compile(r"^(?:[0-9a-f]{32}|row-[0-9a-f]{20}-\d+)$")
_OUTLOOK_EMPTY_DATES = {"0/0/00", "0/0/0000", "00/00/00", "00/00/0000", "1/1/4501"}

csv.field_size_limit(1 << 30)

# --- field descriptions ----------------------------------------------------------------

_MEANINGS: dict[str, Meaning] = {
    "full_name": Meaning.FULL_NAME,
    "given_name": Meaning.GIVEN_NAME,
    "family_name": Meaning.FAMILY_NAME,
    "middle_name": Meaning.MIDDLE_NAME,
    "name_prefix": Meaning.NAME_PREFIX,
    "name_suffix": Meaning.NAME_SUFFIX,
    "nickname": Meaning.NICKNAME,
    "organization": Meaning.ORGANIZATION,
    "department": Meaning.DEPARTMENT,
    "title": Meaning.TITLE,
    "notes": Meaning.NOTES,
    "birthday": Meaning.BIRTHDAY,
    "email": Meaning.EMAIL,
    "phone": Meaning.PHONE,
    "emails": Meaning.EMAIL,
    "phones": Meaning.PHONE,
    "urls": Meaning.WEBSITE,
    "addresses": Meaning.ADDRESS,
}
_TYPES: dict[str, FieldType] = {
    "notes": FieldType.LONG_TEXT,
    "birthday": FieldType.DATE,
    "email": FieldType.EMAIL,
    "phone": FieldType.PHONE,
    "emails": FieldType.EMAIL,
    "phones": FieldType.PHONE,
    "urls": FieldType.URL,
    "addresses": FieldType.ADDRESS,
}
_MULTI_LABELS = {"emails": "Emails", "phones": "Phones", "urls": "Websites"}
_NOUNS = {"emails": "emails", "phones": "phones", "urls": "websites", "addresses": "addresses"}
_SINGLE_ORDER = (
    "full_name",
    "name_prefix",
    "given_name",
    "middle_name",
    "family_name",
    "name_suffix",
    "nickname",
    "email",
    "phone",
)
_SINGLE_ORDER_TAIL = ("organization", "department", "title", "birthday", "notes")

_ADDRESS_PARTS = ("street", "locality", "region", "postcode", "country", "pobox", "extended")

# Outlook ---------------------------------------------------------------------------------

_OUTLOOK_SINGLES = {
    "first name": "given_name",
    "middle name": "middle_name",
    "last name": "family_name",
    "title": "name_prefix",
    "suffix": "name_suffix",
    "nickname": "nickname",
    "company": "organization",
    "department": "department",
    "job title": "title",
    "notes": "notes",
    "birthday": "birthday",
}
_OUTLOOK_EMAILS = ("e-mail address", "e-mail 2 address", "e-mail 3 address")
_OUTLOOK_PHONES = (
    ("mobile phone", "mobile"),
    ("business phone", "work"),
    ("business phone 2", "work"),
    ("home phone", "home"),
    ("home phone 2", "home"),
    ("other phone", "other"),
    ("business fax", "fax"),
    ("home fax", "fax"),
    ("other fax", "fax"),
)
_OUTLOOK_URLS = ("web page",)
_OUTLOOK_ADDRESS_PREFIXES = (("business", "work"), ("home", "home"), ("other", "other"))
_OUTLOOK_ADDRESS_PARTS = {
    "street": ("street", "street 2", "street 3"),
    "locality": ("city",),
    "region": ("state",),
    "postcode": ("postal code",),
    "country": ("country/region", "country"),
    "pobox": ("po box", "address po box"),
}

# Google ----------------------------------------------------------------------------------

_GOOGLE_SINGLES = {
    "name": "full_name",
    "first name": "given_name",
    "given name": "given_name",
    "middle name": "middle_name",
    "additional name": "middle_name",
    "last name": "family_name",
    "family name": "family_name",
    "name prefix": "name_prefix",
    "name suffix": "name_suffix",
    "nickname": "nickname",
    "notes": "notes",
    "birthday": "birthday",
    "organization name": "organization",
    "organization title": "title",
    "organization department": "department",
    "organization 1 - name": "organization",
    "organization 1 - title": "title",
    "organization 1 - department": "department",
}
_GOOGLE_SLOT_RE = re.compile(r"^(e-mail|phone|website|address) (\d+) - (.+)$")
_GOOGLE_KIND = {"e-mail": "emails", "phone": "phones", "website": "urls"}
_GOOGLE_ADDRESS_PARTS = {
    "street": "street",
    "city": "locality",
    "region": "region",
    "postal code": "postcode",
    "country": "country",
    "po box": "pobox",
    "extended address": "extended",
}
_GOOGLE_LABELS_IN = {
    "work": "work",
    "home": "home",
    "mobile": "mobile",
    "other": "other",
    "fax": "fax",
    "work fax": "fax",
    "home fax": "fax",
    "main": "main",
    "pager": "pager",
}
_GOOGLE_LABELS_OUT = {
    "work": "Work",
    "home": "Home",
    "mobile": "Mobile",
    "other": "Other",
    "fax": "Work Fax",
    "main": "Main",
    "pager": "Pager",
}

# Generic ---------------------------------------------------------------------------------

_GENERIC_SINGLES = {
    "full_name": ("name", "full name", "display name", "contact name", "contact"),
    "given_name": ("first name", "given name", "firstname", "first", "forename"),
    "family_name": ("last name", "surname", "family name", "lastname", "last"),
    "middle_name": ("middle name", "middle", "additional name"),
    "name_prefix": ("prefix", "name prefix", "salutation"),
    "name_suffix": ("suffix", "name suffix"),
    "nickname": ("nickname", "nick name"),
    "organization": (
        "company",
        "organization",
        "organisation",
        "company name",
        "organization name",
        "organisation name",
        "employer",
    ),
    "department": ("department", "dept"),
    "title": ("title", "job title", "position", "job", "role"),
    "notes": ("notes", "note", "comments", "comment"),
    "birthday": ("birthday", "date of birth", "birth date", "birthdate", "dob"),
}
_GENERIC_SINGLE_BY_NAME = {n: k for k, names in _GENERIC_SINGLES.items() for n in names}
_GENERIC_SEGMENTS = (
    "categories",
    "category",
    "tags",
    "tag",
    "groups",
    "group",
    "labels",
    "label",
    "group membership",
)
_GENERIC_URLS = ("website", "web site", "web page", "webpage", "url", "homepage", "home page")
_LABEL_WORDS = {
    "work": "work",
    "business": "work",
    "office": "work",
    "home": "home",
    "personal": "home",
    "private": "home",
    "mobile": "mobile",
    "cell": "mobile",
    "other": "other",
    "fax": "fax",
    "primary": "",
    "main": "",
}
_EMAIL_RE = re.compile(
    r"^(?:(\w+)\s+)?e-?mail(?:\s+address)?(?:\s*(\d+))?(?:\s+address)?(?:\s*\((\w+)\))?$"
)
_PHONE_RE = re.compile(
    r"^(?:(\w+)\s+)?(?:phone|telephone|tel|phone number|telephone number)"
    r"(?:\s*(\d+))?(?:\s*\((\w+)\))?$"
)
_PHONE_ALONE = {
    "mobile": "mobile",
    "mobile number": "mobile",
    "cell": "mobile",
    "cellphone": "mobile",
    "cell phone": "mobile",
    "fax": "fax",
    "fax number": "fax",
}
_ADDRESS_RE = re.compile(
    r"^(?:(\w+)\s+)?(street|street address|address|address line 1|address 1|address line 2|"
    r"address 2|street 2|street 3|city|town|state|region|province|zip|zip code|postal code|"
    r"postcode|post code|country|country/region|po box)$"
)
_GENERIC_ADDRESS_PARTS = {
    "street": "street",
    "street address": "street",
    "address": "street",
    "address line 1": "street",
    "address 1": "street",
    "address line 2": "street",
    "address 2": "street",
    "street 2": "street",
    "street 3": "street",
    "city": "locality",
    "town": "locality",
    "state": "region",
    "region": "region",
    "province": "region",
    "zip": "postcode",
    "zip code": "postcode",
    "postal code": "postcode",
    "postcode": "postcode",
    "post code": "postcode",
    "country": "country",
    "country/region": "country",
    "po box": "pobox",
}


def _norm(name: str) -> str:
    return " ".join(name.strip().lower().split())


def _label_word(word: str | None) -> str | None:
    """The label a header word gives ("" when none); None when the word is not a label."""
    if not word:
        return ""
    return _LABEL_WORDS.get(word)


# --- layout: which column means what ----------------------------------------------------


@dataclass(slots=True)
class _Slot:
    """One value column of a multi field (emails, phones, urls)."""

    col: int
    label: str = ""
    label_col: int | None = None  # Google: a cell holding the label
    packed: bool = False  # Google: the cell may hold several values joined by " ::: "


@dataclass(slots=True)
class _AddrSlot:
    parts: dict[str, list[int]] = field(default_factory=dict)
    label: str = ""
    label_col: int | None = None
    formatted_col: int | None = None
    packed: bool = False


@dataclass(slots=True)
class _Layout:
    fmt: str
    width: int
    id_col: int | None = None
    singles: dict[str, int] = field(default_factory=dict)
    multis: dict[str, list[_Slot]] = field(default_factory=dict)
    addresses: list[_AddrSlot] = field(default_factory=list)
    segment_col: int | None = None
    custom: dict[str, int] = field(default_factory=dict)
    specs: tuple[FieldSpec, ...] = ()

    @property
    def title(self) -> str:
        return _FORMAT_TITLES[self.fmt]


def _detect_format(names: list[str]) -> str:
    present = set(names)
    if any(_GOOGLE_SLOT_RE.match(n) for n in names) and (
        present & {"labels", "group membership", "first name", "given name", "name"}
    ):
        return GOOGLE
    if "e-mail address" in present and present & {
        "e-mail 2 address",
        "business phone",
        "business street",
        "home street",
    }:
        return OUTLOOK
    return GENERIC


def _build_layout(header: Sequence[str]) -> _Layout:
    names = [_norm(h) for h in header]
    fmt = _detect_format(names)
    layout = _Layout(fmt=fmt, width=len(header))
    used: set[int] = set()

    def take(col: int) -> int:
        used.add(col)
        return col

    for i, n in enumerate(names):
        if n == "pairsync id":
            layout.id_col = take(i)
            break

    first: dict[str, int] = {}
    for i, n in enumerate(names):
        if i not in used:
            first.setdefault(n, i)

    if fmt == OUTLOOK:
        _outlook_layout(layout, first, take)
    elif fmt == GOOGLE:
        _google_layout(layout, names, used, take)
    else:
        _generic_layout(layout, names, used, take)

    custom_seen: set[str] = set()
    for i, h in enumerate(header):
        if i in used:
            continue
        base = h.strip() or f"Column {i + 1}"
        key = f"col:{base}"
        dup = 2
        while key in custom_seen:
            key = f"col:{base} ({dup})"
            dup += 1
        custom_seen.add(key)
        layout.custom[key] = i

    layout.specs = _specs(layout, header)
    return layout


def _outlook_layout(layout: _Layout, first: dict[str, int], take: Callable[[int], int]) -> None:
    for name, key in _OUTLOOK_SINGLES.items():
        if name in first and key not in layout.singles:
            layout.singles[key] = take(first[name])
    emails = [_Slot(take(first[n])) for n in _OUTLOOK_EMAILS if n in first]
    phones = [_Slot(take(first[n]), label) for n, label in _OUTLOOK_PHONES if n in first]
    urls = [_Slot(take(first[n])) for n in _OUTLOOK_URLS if n in first]
    for key, slots in (("emails", emails), ("phones", phones), ("urls", urls)):
        if slots:
            layout.multis[key] = slots
    for prefix, label in _OUTLOOK_ADDRESS_PREFIXES:
        slot = _AddrSlot(label=label)
        for part, suffixes in _OUTLOOK_ADDRESS_PARTS.items():
            for suffix in suffixes:
                name = f"{prefix} {suffix}"
                if name in first:
                    slot.parts.setdefault(part, []).append(take(first[name]))
                    if part == "country":
                        break
        if slot.parts:
            layout.addresses.append(slot)
    if "categories" in first:
        layout.segment_col = take(first["categories"])


def _google_layout(
    layout: _Layout, names: list[str], used: set[int], take: Callable[[int], int]
) -> None:
    slots: dict[tuple[str, int], dict[str, int]] = {}
    order: list[tuple[str, int]] = []
    for i, n in enumerate(names):
        if i in used:
            continue
        key = _GOOGLE_SINGLES.get(n)
        if key is not None and key not in layout.singles:
            layout.singles[key] = take(i)
            continue
        if n in ("labels", "group membership") and layout.segment_col is None:
            layout.segment_col = take(i)
            continue
        m = _GOOGLE_SLOT_RE.match(n)
        if m:
            kind, num, what = m.group(1), int(m.group(2)), m.group(3)
            what = "label" if what == "type" else what
            cols = slots.setdefault((kind, num), {})
            if (kind, num) not in order:
                order.append((kind, num))
            cols.setdefault(what, i)
    for kind, num in sorted(order, key=lambda kn: (kn[0], kn[1])):
        cols = slots[(kind, num)]
        if kind == "address":
            aslot = _AddrSlot(packed=True)
            for what, part in _GOOGLE_ADDRESS_PARTS.items():
                if what in cols:
                    aslot.parts[part] = [take(cols[what])]
            if not aslot.parts:
                continue
            if "label" in cols:
                aslot.label_col = take(cols["label"])
            if "formatted" in cols:
                aslot.formatted_col = take(cols["formatted"])
            layout.addresses.append(aslot)
        elif "value" in cols:
            slot = _Slot(take(cols["value"]), packed=True)
            if "label" in cols:
                slot.label_col = take(cols["label"])
            layout.multis.setdefault(_GOOGLE_KIND[kind], []).append(slot)


def _generic_layout(
    layout: _Layout, names: list[str], used: set[int], take: Callable[[int], int]
) -> None:
    emails: list[_Slot] = []
    phones: list[_Slot] = []
    urls: list[_Slot] = []
    addr_by_label: dict[str, _AddrSlot] = {}
    for i, n in enumerate(names):
        if i in used:
            continue
        key = _GENERIC_SINGLE_BY_NAME.get(n)
        if key is not None and key not in layout.singles:
            layout.singles[key] = take(i)
            continue
        if n in _GENERIC_SEGMENTS and layout.segment_col is None:
            layout.segment_col = take(i)
            continue
        if n in _GENERIC_URLS:
            urls.append(_Slot(take(i)))
            continue
        m = _EMAIL_RE.match(n)
        if m:
            label = _label_word(m.group(1))
            suffix = _label_word(m.group(3))
            if label is not None and suffix is not None:
                emails.append(_Slot(take(i), label or suffix))
                continue
        if n in _PHONE_ALONE:
            phones.append(_Slot(take(i), _PHONE_ALONE[n]))
            continue
        m = _PHONE_RE.match(n)
        if m:
            label = _label_word(m.group(1))
            suffix = _label_word(m.group(3))
            if label is not None and suffix is not None:
                phones.append(_Slot(take(i), label or suffix))
                continue
        m = _ADDRESS_RE.match(n)
        if m:
            label = _label_word(m.group(1))
            if label is not None:
                aslot = addr_by_label.setdefault(label, _AddrSlot(label=label))
                part = _GENERIC_ADDRESS_PARTS[m.group(2)]
                cols = aslot.parts.setdefault(part, [])
                if part == "street" or not cols:
                    cols.append(take(i))
                continue
    if len(emails) == 1:
        layout.singles["email"] = emails[0].col
    elif emails:
        layout.multis["emails"] = emails
    if len(phones) == 1:
        layout.singles["phone"] = phones[0].col
    elif phones:
        layout.multis["phones"] = phones
    if urls:
        layout.multis["urls"] = urls
    layout.addresses.extend(addr_by_label.values())


def _specs(layout: _Layout, header: Sequence[str]) -> tuple[FieldSpec, ...]:
    specs: list[FieldSpec] = []

    def single(key: str) -> None:
        if key in layout.singles:
            specs.append(
                FieldSpec(
                    key,
                    header[layout.singles[key]].strip(),
                    _TYPES.get(key, FieldType.TEXT),
                    meaning=_MEANINGS[key],
                )
            )

    for key in _SINGLE_ORDER:
        single(key)
    for key in ("emails", "phones"):
        if key in layout.multis:
            specs.append(
                FieldSpec(key, _MULTI_LABELS[key], _TYPES[key], multi=True, meaning=_MEANINGS[key])
            )
    if layout.addresses:
        specs.append(
            FieldSpec(
                "addresses", "Addresses", FieldType.ADDRESS, multi=True, meaning=Meaning.ADDRESS
            )
        )
    for key in _SINGLE_ORDER_TAIL:
        single(key)
    if "urls" in layout.multis:
        specs.append(
            FieldSpec("urls", "Websites", FieldType.URL, multi=True, meaning=Meaning.WEBSITE)
        )
    for key, col in layout.custom.items():
        specs.append(FieldSpec(key, header[col].strip() or key[4:]))
    return tuple(specs)
