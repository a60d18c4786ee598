"""An address book kept in one CSV file: one header row, one row per contact.

Formats
-------
The header decides how columns are read (names compared trimmed and case-insensitively):

* **Outlook CSV export** (``E-mail Address`` plus one of ``E-mail 2 Address``, ``Business
  Phone``, ``Business Street``, ``Home Street``): fixed columns; emails are unlabelled, phones
  are labelled by their column (Mobile Phone → mobile, Business Phone → work, …), addresses by
  their prefix (Business → work, Home → home, Other → other); ``Categories`` split on ``;``;
  ``Title`` is the name prefix; the empty birthday ``0/0/00`` reads as empty.
* **Google Contacts CSV export**, current (``E-mail 1 - Label``, ``Labels``) and older
  (``E-mail 1 - Type``, ``Group Membership``): numbered slots with a label cell; a cell may
  hold several values separated by `` ::: ``; ``* `` system labels (``* myContacts``,
  ``* starred``) are not segments but are kept on write.
* **Generic**: anything else, mapped by common column names. Label words in a header
  (``Work Email``, ``Home Phone``, ``Mobile``, ``Fax``, ``Home Street``…) give the label.
  Exactly one email column → single-valued key ``email``; exactly one phone column →
  single-valued key ``phone``; more → multi ``emails``/``phones``.

Columns that are not recognised become text fields ``col:<header>`` and are always kept.

Ids and versions
----------------
The id lives in a ``Pairsync ID`` column. A row without one is read under a derived id,
``row-<sha1 of its cells>-<n>``, stable while the row is unchanged. Nothing is stamped by
reading: a run that does not write this file (its read-only side, a dry run, a run stopped
by the guard, a run with nothing to write) leaves it byte for byte. A real ``write()`` adds
the column when missing and stamps every readable row's id as it was read (``prepare()``
does the same on its own), so the ids the engine planned with stay valid and are permanent
from then on. A later copy of an id already seen (a pasted row) is reported ``Unreadable``
under a derived id and written back untouched, never re-stamped: the user decides whether it
is a duplicate or a new person. The version is a short hash of the row's cells without the
id cell. (When a derived id changes because a row of a file Pairsync never writes was
edited, the engine follows the contact by its email: ``SyncRun.find_moved``.)

Concurrent edits
----------------
The file is read, the ops applied in memory, and the file replaced at once. Just before the
replacement, the file is checked against what was read (size, mtime, inode; its content's
digest while the mtime is too recent to tell writes apart): rows another program appended
meanwhile are appended to the new version byte for byte (checked again until the file holds
still); any other change means the file is read again and the ops applied to it again (an
update of a row edited meanwhile becomes a ``Conflict``, retried next run). A read-only file
(mode 444) is never replaced: each op fails with ``ReadOnlyFile``.

Reading and writing
-------------------
Encoding (UTF-8 with or without BOM, UTF-16/32 with BOM, else a ``charset_normalizer`` guess
preferring cp1252 whenever that is plausible, cp1252 as last resort), delimiter (``,`` ``;``
tab, or an Excel ``sep=`` line), line terminator and quote-all vs minimal quoting are
detected and reused on write. Untouched rows (and the header) are written back with exactly
the text read; rows that cannot be read (more non-empty cells than the header, bytes invalid
in the encoding, broken quoting) are reported ``Unreadable`` for that row alone and kept as
they are. All ops of one ``write()`` are applied in memory, then the file is replaced once,
atomically (temp file in the same folder, fsync, ``os.replace``).

Values that do not fit
----------------------
Outlook and generic files have a fixed number of columns. A multi value is placed by label
(exact label first, then an ``other``/unlabelled column, then any free column; the label read
back is the column's). Values with no free column are not written and the op's result carries
a ``NotFitting`` error naming the field and the values left out — *and* the record as now
stored (everything else of the op was applied), so the new version is known; the engine
keeps the pair in sync with what each app holds and Health lists the values once. Google files
never overflow: extra values share a slot with `` ::: ``. Address parts without a column
(e.g. PO box in a file without one) are appended as extra street lines. A field key with no
column, segments on a file without a segment column, or a character the file's encoding cannot
hold also give ``Rejected``; for the encoding case the whole op is left unapplied.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from app.connectors.base import ChangeSet
from app.connectors.file_writes import (
    is_read_only,
    read_only_message,
    remove_stale_temps,
    replace_file,
)
from app.errors import Conflict, NotFitting, NotFound, ReadOnlyFile, Rejected, Unavailable
from app.model import (
    OPT_OUT_FIELD,
    Address,
    AppInfo,
    Capabilities,
    Create,
    FieldSpec,
    FieldType,
    FieldValue,
    Labeled,
    Meaning,
    Record,
    Schema,
    Unreadable,
    Update,
    WriteOp,
    WriteResult,
    email_key,
    parse_subscription,
    record_emails,
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
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # bytes kept by surrogateescape
_REAL_NON_ASCII = re.compile("[\u0080-\udc7f\udd00-\U0010ffff]")
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


# --- the file as text -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Encoding:
    codec: str
    bom: bytes = b""

    @property
    def byte_preserving(self) -> bool:
        """Undecodable bytes survive a round trip through ``surrogateescape``."""
        return not self.codec.startswith("utf-16") and not self.codec.startswith("utf-32")

    def decode(self, data: bytes | memoryview) -> str:
        errors = "surrogateescape" if self.byte_preserving else "replace"
        return str(data, self.codec, errors)

    @property
    def errors(self) -> str:
        """The error handler for encoding."""
        return "surrogateescape" if self.byte_preserving else "strict"

    def encode(self, text: str) -> bytes:
        return self.bom + text.encode(self.codec, self.errors)

    def describe(self) -> str:
        name = {"utf-8": "UTF-8", "utf-16-le": "UTF-16", "utf-16-be": "UTF-16"}.get(
            self.codec, self.codec
        )
        return name


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def _decode(data: bytes) -> tuple[_Encoding, str]:
    """The file's encoding and its text (without the BOM)."""
    encoding, text = _detect_encoding(data)
    if text is None:
        # A view: no copy of the bytes after the BOM.
        text = encoding.decode(memoryview(data)[len(encoding.bom) :])
    return encoding, text


def _detect_encoding(data: bytes) -> tuple[_Encoding, str | None]:
    """The file's encoding, and its text when detecting it already decoded it all."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _Encoding(codec, bom), None
    if len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] != 0:
        return _Encoding("utf-16-le"), None
    if len(data) >= 4 and data[0] == 0 and data[2] == 0 and data[1] != 0:
        return _Encoding("utf-16-be"), None
    try:
        # Valid UTF-8: the very text ``_Encoding("utf-8").decode`` gives (no byte to escape).
        return _Encoding("utf-8"), data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    loose = data.decode("utf-8", "surrogateescape")
    if _REAL_NON_ASCII.search(loose):
        # Real multi-byte UTF-8 text with a few broken bytes: those rows become unreadable.
        return _Encoding("utf-8"), loose
    try:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(data))
    except Exception:  # pragma: no cover - the detector is a best effort
        matches = []
    candidates = [m.encoding for m in matches]
    western = {"cp1252", "latin_1", "iso8859_15", "iso8859_1"}
    if not candidates or western & set(candidates):
        return _Encoding("cp1252"), None
    return _Encoding(candidates[0]), None


_NEWLINE = re.compile(r"\r\n|\n|\r")
# One line with its terminator (\r\n, \n or \r), or the last line without one.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+")
_NON_SPACE = re.compile(r"\S")


def _lines(text: str, start: int = 0) -> Iterator[str]:
    """The lines of ``text[start:]``, as ``io.StringIO(text[start:], newline="")`` gives them,
    without copying the text (StringIO holds 4 bytes per character)."""
    for m in _LINE.finditer(text, start):
        yield m.group()


class _LineFeeder:
    """Feeds lines to ``csv.reader`` and remembers the raw text of each record."""

    def __init__(self, text: str, start: int = 0) -> None:
        self._it = _lines(text, start)
        self.taken: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.taken.append(line)
        return line


class _Row:
    """One record of the file: its cells, and the text it was read from.

    A row read from the file keeps only its text once indexed (``release``): its cells are
    parsed again from that text when asked for (``cells``), which gives the very same cells
    (the same reader on the same lines) and keeps one string per row in memory instead of
    a list of strings. Rows without text (changed, new) and rows that could not be read
    keep their cells.
    """

    __slots__ = ("_cells", "delimiter", "problem", "raw")

    def __init__(
        self,
        cells: list[str],
        raw: str | None,  # the text as read (with its line terminator); None once changed
        problem: str | None = None,  # set for rows that cannot be read
        delimiter: str = ",",
    ) -> None:
        self._cells: list[str] | None = cells
        self.raw = raw
        self.problem = problem
        self.delimiter = delimiter

    @property
    def cells(self) -> list[str]:
        if self._cells is not None:
            return self._cells
        assert self.raw is not None
        reader = csv.reader(
            io.StringIO(self.raw, newline=""), delimiter=self.delimiter, quotechar='"', strict=False
        )
        return next(reader, [])

    def release(self) -> None:
        """Forget the cells of a row read from the file (parsed again from ``raw``)."""
        if self.raw is not None and self.problem is None:
            self._cells = None


@dataclass(slots=True)
class _Entry:
    pos: int  # index in Table.rows
    version: str
    problem: str | None = None  # Unreadable message
    id_in_cell: bool = False  # the row's id cell holds this id (as indexed)


@dataclass(slots=True)
class _Table:
    header: list[str] | None
    header_raw: str | None
    rows: list[_Row]
    encoding: _Encoding
    delimiter: str
    newline: str
    quote_all: bool
    preamble: str = ""
    layout: _Layout | None = None
    entries: dict[str, _Entry] = field(default_factory=dict)
    ids_by_pos: dict[int, str] = field(default_factory=dict)
    records: dict[int, Record] = field(default_factory=dict)

    def copy(self) -> _Table:
        return _Table(
            header=None if self.header is None else list(self.header),
            header_raw=self.header_raw,
            rows=list(self.rows),
            encoding=self.encoding,
            delimiter=self.delimiter,
            newline=self.newline,
            quote_all=self.quote_all,
            preamble=self.preamble,
            layout=self.layout,
            entries=dict(self.entries),
            ids_by_pos=dict(self.ids_by_pos),
            records=dict(self.records),
        )


def _sniff_delimiter(line: str) -> str:
    counts = {d: 0 for d in (",", ";", "\t")}
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _format_row(cells: Sequence[str], delimiter: str, quote_all: bool) -> str:
    out = []
    for cell in cells:
        if quote_all or (
            cell
            and (
                delimiter in cell
                or '"' in cell
                or "\n" in cell
                or "\r" in cell
                or cell[0] in " \t"
                or cell[-1] in " \t"
            )
        ):
            out.append('"' + cell.replace('"', '""') + '"')
        else:
            out.append(cell)
    if len(cells) == 1 and not quote_all and not cells[0]:
        return '""'
    return delimiter.join(out)


def _hash(parts: Iterable[str]) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


_SAMPLE = 65536
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook or another zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook"),
    (b"%PDF-", "a PDF document"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


class _NotACsv(Exception):
    """The file is not text at all (what it seems to be is the message)."""


def _binary_kind(data: bytes) -> str | None:
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            return what
    return None


def _parse(data: bytes) -> _Table:
    """Read the file's text into an indexed table (see ``_index``).

    Each row is indexed as soon as it is read, and then keeps only its text: the cells of
    all rows are never in memory at once. The result is the same as indexing all rows after
    reading them (``_index``): the same ``_Indexer`` sees the same rows in the same order.
    """
    what = _binary_kind(data)
    if what:
        raise _NotACsv(what)
    encoding, text = _decode(data)
    del data  # the text is all that is needed now (the caller keeps no reference either)
    head = text[:_SAMPLE]
    if len(_CONTROL.findall(head)) > max(8, len(head) // 100):
        raise _NotACsv("binary data")
    del head
    m = _NEWLINE.search(text)
    newline = m.group(0) if m else "\r\n"
    preamble = ""
    start = 0  # where the header starts in text (no copy of the text without its preamble)
    sep = re.match(r"^sep=(.)[ \t]*(\r\n|\n|\r|$)", text)
    delimiter: str | None = None
    if sep:
        preamble = sep.group(0)
        delimiter = sep.group(1)
        start = len(preamble)
    while start < len(text) and text[start] in "\r\n":  # blank lines before the header
        blank = _NEWLINE.match(text, start)
        assert blank
        preamble += blank.group(0)
        start = blank.end()
    table = _Table(None, None, [], encoding, delimiter or ",", newline, False, preamble)
    if not _NON_SPACE.search(text, start):  # only whitespace (text[start:].strip() == "")
        return table
    if delimiter is None:
        end = _NEWLINE.search(text, start)
        table.delimiter = _sniff_delimiter(text[start : end.start() if end else len(text)])
    feeder = _LineFeeder(text, start)
    reader = csv.reader(feeder, delimiter=table.delimiter, quotechar='"', strict=False)
    indexer: _Indexer | None = None
    sample: tuple[str, list[str]] | None = None  # the first readable row with cells
    while True:
        feeder.taken = []
        problem: str | None = None
        try:
            cells = next(reader)
        except StopIteration:
            if feeder.taken:  # an unterminated quote swallowed the end of the file
                row = _Row([], "".join(feeder.taken), "broken quoting", table.delimiter)
                table.rows.append(row)
                if indexer is not None:
                    indexer.add(len(table.rows) - 1, row)
            break
        except csv.Error as err:
            cells, problem = [], f"broken CSV ({err})"
        raw = "".join(feeder.taken)
        if table.header is None and problem is None:
            table.header = cells
            table.header_raw = raw
            # Rows before the header (unreadable ones) are indexed now, in order.
            indexer = _Indexer(table)
            for pos, row in enumerate(table.rows):
                indexer.add(pos, row)
            continue
        if sample is None and cells and problem is None:
            sample = (raw, cells)
        row = _Row(cells, raw, problem, table.delimiter)
        table.rows.append(row)
        if indexer is not None:
            indexer.add(len(table.rows) - 1, row)
    if table.header is None:
        return table  # no readable row at all: no contacts (as _index gives)
    probe, probe_cells = sample if sample is not None else (table.header_raw, table.header)
    if probe is not None:
        stripped = probe.rstrip("\r\n")
        table.quote_all = stripped == _format_row(probe_cells, table.delimiter, True)
    return table


def _index(table: _Table) -> None:
    """Give every row its id and version; mark unreadable and duplicate rows."""
    if table.header is None:
        table.entries = {}
        table.ids_by_pos = {}
        table.records = {}
        table.layout = None
        return
    indexer = _Indexer(table)
    for pos, row in enumerate(table.rows):
        indexer.add(pos, row)


class _Indexer:
    """Indexes the rows of a table one at a time, in file order (from the first row on).

    Each row gets its id and version (or is marked unreadable or a duplicate) from its own
    cells and what earlier rows gave; once indexed it keeps only its text (``_Row.release``).
    """

    def __init__(self, table: _Table) -> None:
        assert table.header is not None
        table.entries = {}
        table.ids_by_pos = {}
        table.records = {}
        table.layout = _build_layout(table.header)
        self.table = table
        self.occurrences: dict[str, int] = {}
        self.first_row: dict[str, int] = {}
        self.width = len(table.header)
        self.id_col = table.layout.id_col

    def add(self, pos: int, row: _Row) -> None:
        self._index_row(pos, row)
        row.release()  # indexed: the text is enough (see _Row)

    def _index_row(self, pos: int, row: _Row) -> None:
        table, width, id_col = self.table, self.width, self.id_col
        number = pos + 2
        problem = row.problem
        cells = row.cells
        if problem is None and not any(c.strip() for c in cells):
            return  # blank line: kept, but no contact
        if problem is None and len(cells) > width and any(c.strip() for c in cells[width:]):
            problem = f"has {len(cells)} cells but the header has {width}"
        text = row.raw or "".join(cells)
        if problem is None and _ESCAPED_BYTE.search(text):
            problem = f"contains bytes that are not valid {table.encoding.describe()} text"
        if problem is None and "\x00" in text:
            # A NUL is binary data: no contact app takes it (a vCard with one is broken).
            problem = "contains a NUL character (binary data), which no contact app accepts"
        if problem is None and row.raw is not None and '"' in row.raw:
            problem = _strict_problem(row.raw, table.delimiter)
        rid = ""
        if id_col is not None and id_col < len(cells):
            rid = cells[id_col].strip()
        if problem is not None:
            if not _ID_RE.match(rid):
                hex_ids = {c.strip() for c in cells if _ID_RE.match(c.strip())}
                rid = hex_ids.pop() if len(hex_ids) == 1 else ""
            digest = _hash([row.raw or ""])
            if not rid or rid in table.entries:
                rid = _derived_id(digest, self.occurrences)
            _add(table, rid, pos, digest[:16], f"Row {number} {problem}.")
            return
        version = _row_version(cells, width, id_col)
        if rid and rid in table.entries:
            other = self.first_row.get(rid)
            where = f"row {other}" if other else "another row"
            message = (
                f"Row {number} repeats the Pairsync ID of {where} ({rid}); it looks like a "
                "copied row. Clear its Pairsync ID cell to make it a new contact, or delete it."
            )
            _add(table, _derived_id(_hash([version, rid]), self.occurrences), pos, version, message)
            return
        in_cell = bool(rid)
        if not rid:
            rid = _derived_id(_hash(_padded(cells, width, id_col)), self.occurrences)
        self.first_row[rid] = number
        _add(table, rid, pos, version, None, in_cell)


def _split_terminator(raw: str) -> tuple[str, str]:
    """A row's text and its line terminator ("" for a last line without one)."""
    for end in ("\r\n", "\n", "\r"):
        if raw.endswith(end):
            return raw[: -len(end)], end
    return raw, ""


def _with_cell_appended(row: _Row, value: str, col: int, table: _Table) -> _Row:
    """``row`` with ``value`` as its cell number ``col`` (past its last cell), written at
    the end of its own text."""
    cells = row.cells
    body, newline = _split_terminator(row.raw or "")
    pad = table.delimiter * (col - len(cells))
    cell = _format_row([value], table.delimiter, table.quote_all)
    new = _Row(
        [*cells, *([""] * (col - len(cells))), value],
        body + pad + table.delimiter + cell + newline,
        None,
        table.delimiter,
    )
    new.release()
    return new


_WELL_QUOTED: dict[str, re.Pattern[str]] = {}


def _well_quoted(delimiter: str) -> re.Pattern[str]:
    """A record whose quoted cells are all closed right before a delimiter or the end:
    what the strict reader accepts (a quote inside an unquoted cell is fine)."""
    pattern = _WELL_QUOTED.get(delimiter)
    if pattern is None:
        d = re.escape(delimiter)
        cell = f'(?:"(?:[^"]|"")*"|(?:[^"{d}\\r\\n][^{d}\\r\\n]*)?)'
        pattern = re.compile(f"{cell}(?:{d}{cell})*(?:\\r\\n|\\n|\\r)?")
        _WELL_QUOTED[delimiter] = pattern
    return pattern


def _strict_problem(raw: str, delimiter: str) -> str | None:
    """A row the lenient reader accepted but whose quoting is broken (text after a closing
    quote, as in ``Eve,"Broken,eve@x.com,1,"x``): unreadable, so it is kept byte for byte
    rather than read as something the user did not write and written back that way."""
    if _well_quoted(delimiter).fullmatch(raw):
        return None  # the common case, without a second parse
    reader = csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter, strict=True)
    try:
        for _cells in reader:
            pass
    except csv.Error as err:
        return f"has broken quoting ({err})"
    return None


def _printable(raw: str) -> str:
    """A row's text as it can be shown and stored: bytes that were not valid in the file's
    encoding (kept as surrogate escapes) are shown as Windows-1252, the usual culprit (a
    row pasted from an older export)."""
    return _ESCAPED_BYTE.sub(
        lambda m: bytes([ord(m.group()) - 0xDC00]).decode("cp1252", "replace"), raw
    )


def _add(
    table: _Table,
    rid: str,
    pos: int,
    version: str,
    problem: str | None,
    id_in_cell: bool = False,
) -> None:
    table.entries[rid] = _Entry(pos, version, problem, id_in_cell)
    table.ids_by_pos[pos] = rid


def _derived_id(digest: str, occurrences: dict[str, int]) -> str:
    n = occurrences.get(digest, 0)
    occurrences[digest] = n + 1
    return f"row-{digest[:20]}-{n}"


def _padded(cells: Sequence[str], width: int, id_col: int | None) -> list[str]:
    vals = list(cells[:width])
    if len(vals) < width:
        vals.extend([""] * (width - len(vals)))
    if id_col is not None:
        del vals[id_col]
    return vals


def _row_version(cells: Sequence[str], width: int, id_col: int | None) -> str:
    return _hash(_padded(cells, width, id_col))[:16]


def _render(table: _Table) -> str:
    return "".join(_render_parts(table))


def _render_parts(table: _Table) -> Iterator[str]:
    """The file's text, a piece at a time (``_save`` encodes and writes it as it goes)."""
    assert table.header is not None
    nl = table.newline
    yield table.preamble
    if table.header_raw is not None:
        last = table.header_raw
    else:
        last = _format_row(table.header, table.delimiter, table.quote_all) + nl
    for row in table.rows:
        if last and last[-1] not in "\r\n":
            last += nl  # the file ended without a line break and we append after it
        yield last
        if row.raw is not None:
            last = row.raw
        else:
            last = _format_row(row.cells, table.delimiter, table.quote_all) + nl
    yield last


def _write_text(handle: BinaryIO | _Hashing, table: _Table) -> None:
    """Encode and write the table's text in pieces: the same bytes as
    ``encoding.encode(_render(table))``, without the whole text and its bytes in memory."""
    enc = table.encoding
    encoder = codecs.getincrementalencoder(enc.codec)(enc.errors)
    handle.write(enc.bom)
    pending: list[str] = []
    for part in _render_parts(table):
        pending.append(part)
        if len(pending) >= 1000:
            handle.write(encoder.encode("".join(pending)))
            pending = []
    handle.write(encoder.encode("".join(pending), final=True))


# --- values <-> cells -------------------------------------------------------------------


def _split_packed(cell: str) -> list[str]:
    return [v.strip() for v in cell.split(":::")]


def _google_label_in(text: str) -> str:
    label = text.strip()
    if label.startswith("*"):
        label = label[1:].strip()
    return _GOOGLE_LABELS_IN.get(label.lower(), label)


def _google_label_out(label: str, current: str) -> str:
    if _google_label_in(current) == label:
        return current
    return _GOOGLE_LABELS_OUT.get(label, label)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _as_items(value: FieldValue) -> list[Labeled]:
    if isinstance(value, str):
        return [Labeled(value.strip())] if value.strip() else []
    out: list[Labeled] = []
    for item in value:
        if isinstance(item, Labeled):
            if item.value.strip():
                out.append(Labeled(item.value.strip(), item.label))
        elif not item.is_empty():
            out.append(Labeled(", ".join(p for p in item.parts() if p.strip()), item.label))
    return out


def _as_text(value: FieldValue) -> str:
    if isinstance(value, str):
        return value
    items = _as_items(value)
    return items[0].value if items else ""


def _as_addresses(value: FieldValue) -> list[Address]:
    if isinstance(value, str):
        return [Address(street=value)] if value.strip() else []
    out: list[Address] = []
    for item in value:
        if isinstance(item, Address):
            if not item.is_empty():
                out.append(item)
        elif item.value.strip():
            out.append(Address(street=item.value, label=item.label))
    return out


def _place(labels: Sequence[str], wanted: Sequence[str]) -> tuple[dict[int, int], list[int]]:
    """Assign items (by label) to slots (by label): item index -> slot index, and leftovers.

    When there are more items than slots, the first items (the primary value first) are the
    ones kept; labels only decide which slot each kept item goes to.
    """
    free = list(range(len(labels)))
    placed: dict[int, int] = {}
    pending: list[int] = []
    kept = len(labels)
    for i, label in enumerate(wanted[:kept]):
        # Only a real label claims its slot ahead of order; unlabelled items fill in order.
        slot = next((s for s in free if label and labels[s] == label), None)
        if slot is None:
            pending.append(i)
        else:
            free.remove(slot)
            placed[i] = slot
    leftovers: list[int] = list(range(kept, len(wanted)))
    for i in pending:
        slot = next((s for s in free if labels[s] in ("other", "")), None)
        if slot is None and free:
            slot = free[0]
        if slot is None:
            leftovers.append(i)
        else:
            free.remove(slot)
            placed[i] = slot
    return placed, leftovers


def _group_for_slots(labels: Sequence[str], n_slots: int) -> list[list[int]]:
    """Google: split items into at most ``n_slots`` groups that each share one slot."""
    n = len(labels)
    if n <= n_slots:
        return [[i] for i in range(n)]
    groups: list[list[int]] = []
    for i, label in enumerate(labels):
        if groups and labels[groups[-1][0]] == label:
            groups[-1].append(i)
        else:
            groups.append([i])
    if len(groups) > n_slots:
        head = groups[: n_slots - 1]
        tail = [i for g in groups[n_slots - 1 :] for i in g]
        groups = [*head, tail]
    return groups


def _format_address(addr: Address) -> str:
    city_line = " ".join(p for p in (addr.locality, addr.region, addr.postcode) if p.strip())
    lines = [addr.street, addr.extended, addr.pobox, city_line, addr.country]
    return "\n".join(line for line in lines if line.strip())


class _Codec:
    """Reads a row's cells into fields and writes fields into cells, for one layout."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.left_out: dict[str, list[str]] = {}
        """Per field key, the values a write found no room for (not fitting)."""

    # reading ----------------------------------------------------------------------------

    def read(self, rid: str, version: str, cells: Sequence[str]) -> Record:
        layout = self.layout

        def cell(col: int | None) -> str:
            return cells[col] if col is not None and col < len(cells) else ""

        fields: dict[str, FieldValue] = {}
        for key, col in layout.singles.items():
            value = cell(col)
            if key != "notes":
                value = value.strip()
            if key == "birthday" and layout.fmt == OUTLOOK and value in _OUTLOOK_EMPTY_DATES:
                value = ""
            if value.strip():
                fields[key] = value
        for key, slots in layout.multis.items():
            items = self._read_multi(slots, cell)
            if items:
                fields[key] = tuple(items)
        addresses = self._read_addresses(cell)
        if addresses:
            fields["addresses"] = tuple(addresses)
        for key, col in layout.custom.items():
            value = cell(col)
            if value.strip():
                fields[key] = value
        _system, segments = self._read_segments(cell(layout.segment_col))
        return Record(rid, version, fields, frozenset(segments))

    def _read_multi(
        self, slots: Sequence[_Slot], cell: Callable[[int | None], str]
    ) -> list[Labeled]:
        items: list[Labeled] = []
        for slot in slots:
            text = cell(slot.col)
            if not text.strip():
                continue
            values = _split_packed(text) if slot.packed else [text.strip()]
            if slot.label_col is not None:
                label_text = cell(slot.label_col)
                labels = _split_packed(label_text) if slot.packed else [label_text]
                if len(labels) != len(values):
                    labels = [label_text] * len(values)
                labels = [_google_label_in(lb) for lb in labels]
            else:
                labels = [slot.label] * len(values)
            items.extend(Labeled(v, lb) for v, lb in zip(values, labels, strict=True) if v)
        return items

    def _read_addresses(self, cell: Callable[[int | None], str]) -> list[Address]:
        out: list[Address] = []
        for slot in self.layout.addresses:
            columns: dict[str, list[str]] = {}
            count = 1
            for part, cols in slot.parts.items():
                texts = [cell(c) for c in cols]
                if slot.packed:
                    split = _split_packed(texts[0]) if texts[0].strip() else [""]
                    columns[part] = split
                    count = max(count, len(split))
                else:
                    columns[part] = ["\n".join(t.strip() for t in texts if t.strip())]
            formatted = cell(slot.formatted_col).strip()
            label_text = cell(slot.label_col) if slot.label_col is not None else ""
            labels = _split_packed(label_text) if slot.packed else [label_text]
            for n in range(count):
                parts = {
                    p: (vals[n] if n < len(vals) else "").strip() for p, vals in columns.items()
                }
                if slot.label_col is not None:
                    lbl = labels[n] if n < len(labels) else labels[0]
                    label = _google_label_in(lbl)
                else:
                    label = slot.label
                addr = Address(label=label, **{p: parts.get(p, "") for p in _ADDRESS_PARTS})
                if addr.is_empty() and n == 0 and formatted and count == 1:
                    addr = Address(street=formatted, label=label)
                if not addr.is_empty():
                    out.append(addr)
        return out

    def _read_segments(self, text: str) -> tuple[list[str], list[str]]:
        if not text.strip():
            return [], []
        fmt = self.layout.fmt
        if fmt == GOOGLE:
            names = _split_packed(text)
        elif fmt == OUTLOOK:
            names = [n.strip() for n in text.split(";")]
        elif ":::" in text:
            names = _split_packed(text)
        elif ";" in text:
            names = [n.strip() for n in text.split(";")]
        else:
            names = [n.strip() for n in text.split(",")]
        system = [n for n in names if n.startswith("* ")] if fmt == GOOGLE else []
        segments = [n for n in names if n and n not in system]
        return system, segments

    # writing ----------------------------------------------------------------------------

    def write_field(
        self, cells: list[str], key: str, value: FieldValue, current: Record
    ) -> str | None:
        """Write one field into ``cells``; return a problem sentence when not all of it fit."""
        layout = self.layout
        if key in layout.singles:
            text = _as_text(value)
            extra = _as_items(value)[1:] if not isinstance(value, str) else []
            problem = None
            if extra:
                what = ", ".join(i.value for i in extra)
                problem = f"{layout.title} holds one {key}; {what} was not written."
                self.left_out.setdefault(key, []).extend(i.value for i in extra)
            if key != "notes":
                text = text.strip()
            if text != (current.fields.get(key) or ""):
                cells[layout.singles[key]] = text
            return problem
        if key in layout.custom:
            text = _as_text(value)
            if text != (current.fields.get(key) or ""):
                cells[layout.custom[key]] = text
            return None
        if key in layout.multis:
            items = _as_items(value)
            if tuple(items) == (current.fields.get(key) or ()):
                return None
            return self._write_multi(cells, key, layout.multis[key], items)
        if key == "addresses" and layout.addresses:
            addrs = _as_addresses(value)
            if tuple(addrs) == (current.fields.get(key) or ()):
                return None
            return self._write_addresses(cells, addrs)
        return f"{layout.title} has no column for {key.replace('_', ' ')}; it was not written."

    def _overflow(self, key: str, limit: int, items: Sequence[str], indexes: list[int]) -> str:
        noun = _NOUNS.get(key, key)
        self.left_out.setdefault(key, []).extend(items[i] for i in indexes)
        what = ", ".join(f"the {_ordinal(i + 1)} ({items[i]})" for i in indexes)
        verb = "was" if len(indexes) == 1 else "were"
        return f"{self.layout.title} holds at most {limit} {noun}; {what} {verb} not written."

    def _write_multi(
        self, cells: list[str], key: str, slots: Sequence[_Slot], items: Sequence[Labeled]
    ) -> str | None:
        if slots and slots[0].packed:
            groups = _group_for_slots([i.label for i in items], len(slots))
            for n, slot in enumerate(slots):
                group = [items[i] for i in groups[n]] if n < len(groups) else []
                cells[slot.col] = _PACK_SEP.join(i.value for i in group)
                if slot.label_col is not None:
                    current = cells[slot.label_col]
                    cells[slot.label_col] = (
                        _google_label_out(group[0].label, current) if group else ""
                    )
            return None
        placed, leftovers = _place([s.label for s in slots], [i.label for i in items])
        for slot in slots:
            cells[slot.col] = ""
        for i, s in placed.items():
            cells[slots[s].col] = items[i].value
        if leftovers:
            return self._overflow(key, len(slots), [i.value for i in items], leftovers)
        return None

    def _write_addresses(self, cells: list[str], addrs: Sequence[Address]) -> str | None:
        slots = self.layout.addresses
        if slots and slots[0].packed:
            groups = _group_for_slots([a.label for a in addrs], len(slots))
            for n, slot in enumerate(slots):
                group = [addrs[i] for i in groups[n]] if n < len(groups) else []
                self._fill_address(cells, slot, group)
            return None
        placed, leftovers = _place([s.label for s in slots], [a.label for a in addrs])
        for slot in slots:
            self._fill_address(cells, slot, [])
        problems: list[str] = []
        for i, s in placed.items():
            problem = self._fill_address(cells, slots[s], [addrs[i]])
            if problem:
                problems.append(problem)
        if leftovers:
            texts = [", ".join(p for p in a.parts() if p.strip()) for a in addrs]
            problems.append(self._overflow("addresses", len(slots), texts, leftovers))
        return " ".join(problems) or None

    def _fill_address(self, cells: list[str], slot: _AddrSlot, group: list[Address]) -> str | None:
        if slot.label_col is not None:
            current = cells[slot.label_col]
            labels = [_google_label_out(a.label, current) for a in group]
            if len(set(labels)) == 1:
                cells[slot.label_col] = labels[0]
            else:
                cells[slot.label_col] = _PACK_SEP.join(labels)
        if slot.formatted_col is not None:
            cells[slot.formatted_col] = _PACK_SEP.join(_format_address(a) for a in group)
        if slot.packed:
            for part, cols in slot.parts.items():
                values = [getattr(a, part) for a in group]
                cells[cols[0]] = _PACK_SEP.join(values) if any(v.strip() for v in values) else ""
            return None
        for cols in slot.parts.values():
            for c in cols:
                cells[c] = ""
        if not group:
            return None
        addr = group[0]
        street_lines = [line for line in addr.street.split("\n") if line.strip()]
        for part in ("extended", "pobox", "locality", "region", "postcode", "country"):
            value = getattr(addr, part).strip()
            if value and part not in slot.parts:
                street_lines.append(f"PO Box {value}" if part == "pobox" else value)
        for part, cols in slot.parts.items():
            if part == "street":
                continue
            cells[cols[0]] = getattr(addr, part).strip()
        street_cols = slot.parts.get("street", [])
        if not street_cols:
            if street_lines:
                self.left_out.setdefault("addresses", []).append(", ".join(street_lines))
                return (
                    f"{self.layout.title} has no street column for the {addr.label or 'other'} "
                    f"address; {', '.join(street_lines)} was not written."
                )
            return None
        for n, c in enumerate(street_cols):
            if n == len(street_cols) - 1:
                cells[c] = "\n".join(street_lines[n:])
            elif n < len(street_lines):
                cells[c] = street_lines[n]
        return None

    def write_segments(
        self, cells: list[str], add: frozenset[str], remove: frozenset[str]
    ) -> str | None:
        col = self.layout.segment_col
        if col is None:
            if add:
                names = ", ".join(sorted(add))
                return (
                    f"{self.layout.title} has no Categories column; the segments {names} "
                    "were not written."
                )
            return None
        system, current = self._read_segments(cells[col])
        kept = [s for s in current if s not in remove]
        new = kept + sorted(s for s in add if s not in kept)
        if new == current:
            return None
        fmt = self.layout.fmt
        if fmt == GOOGLE:
            # Keep the cell's order, system labels (``* myContacts``) included.
            old = [n for n in _split_packed(cells[col]) if n]
            ordered = [n for n in old if n in system or n in kept]
            cells[col] = _PACK_SEP.join(ordered + [s for s in new if s not in old])
        elif fmt == OUTLOOK:
            cells[col] = ";".join(new)
        else:
            cells[col] = "; ".join(new)
        return None


# --- the connector ----------------------------------------------------------------------


class CsvApp:
    """Connector over one CSV file (see the module docstring for formats and behaviour)."""

    def __init__(self, path: str | os.PathLike[str], subscription: str = "") -> None:
        """``subscription``: the header of a column holding each contact's subscription
        status (``subscribed``/``unsubscribed``, yes/no, …), as the user designates it."""
        self.path = Path(path)
        self.subscription = subscription.strip()
        self.info = AppInfo(
            kind="csv",
            name="CSV file",
            aliases=("spreadsheet", "excel", "outlook csv", "google csv"),
            capabilities=Capabilities(
                segments=True,
                chooses_ids=True,
                batch_size=5000,
                subscription=bool(self.subscription),
            ),
        )
        self._cache: _Table | None = None
        self._cache_key: tuple[int, int, int] | None = None
        self._cache_digest: bytes | None = None

    # --- loading -------------------------------------------------------------------------

    def _check_folder(self) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            raise Unavailable(
                f"The folder {folder} does not exist, so the CSV file {self.path.name} "
                "cannot be read or created. Create the folder or choose another file."
            )
        if self.path.is_dir():
            raise Unavailable(f"{self.path} is a folder, not a CSV file.")

    def _load(self) -> _Table:
        self._check_folder()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._empty_table()
        except OSError as err:
            raise Unavailable(f"The CSV file {self.path} cannot be read: {err.strerror}.") from err
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._cache is not None and self._cache_key == key:
            return self._cache
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self._empty_table()
        except OSError as err:
            raise Unavailable(f"The CSV file {self.path} cannot be read: {err.strerror}.") from err
        digest = _digest(data)
        key = (st.st_mtime_ns, len(data), st.st_ino)  # what was read, not what was stat'ed
        # The bytes are passed on, not kept here: _parse lets go of them once decoded.
        try:
            table = _parse(data)  # indexed as it is read
        except _NotACsv as err:
            raise Unavailable(
                f"The file {self.path} is not a CSV file: it holds {err}, not lines of text. "
                "Choose the CSV file, or export the contacts as CSV (comma-separated values)."
            ) from None
        del data
        self._cache, self._cache_key, self._cache_digest = table, key, digest
        return table

    def _empty_table(self) -> _Table:
        self._cache, self._cache_key, self._cache_digest = None, None, None
        return _Table(None, None, [], _Encoding("utf-8", b"\xef\xbb\xbf"), ",", "\r\n", False)

    def _read_as(self) -> tuple[tuple[int, int, int] | None, bytes | None]:
        """What the table last loaded was read from: its stat key and content digest."""
        return self._cache_key, self._cache_digest

    def _check_unchanged(self, read_as: tuple[tuple[int, int, int] | None, bytes | None]) -> None:
        """Raise ``_FileChanged`` when the file is no longer what the table was read from:
        another program wrote it meanwhile (a spreadsheet saving, a script appending rows).
        Size, mtime and inode first; when the mtime is too recent to tell two writes apart
        on a coarse clock, the content's digest too."""
        key, digest = read_as
        if key is not None and time.time_ns() - key[0] < _COARSE_CLOCK_NS:
            try:
                again = _digest(self.path.read_bytes())
            except FileNotFoundError:
                raise _FileChanged from None
            except OSError:
                raise _FileChanged from None
            if again != digest:
                raise _FileChanged
        # The status last: the file is replaced right after this check, so the moment
        # another program's write could still slip in between is as short as it can be.
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if key is not None:
                raise _FileChanged from None
            return
        if (st.st_mtime_ns, st.st_size, st.st_ino) != key:
            raise _FileChanged

    def _layout(self, table: _Table) -> _Layout:
        if table.layout is None:
            return _build_layout(DEFAULT_HEADER)
        return table.layout

    def _record(self, table: _Table, rid: str) -> Record | Unreadable | None:
        entry = table.entries.get(rid)
        if entry is None:
            return None
        row = table.rows[entry.pos]
        if entry.problem is not None:
            return Unreadable(rid, entry.version, entry.problem, _printable(row.raw or ""))
        rec = table.records.get(entry.pos)
        if rec is None or rec.id != rid:
            assert table.layout is not None
            cells = row.cells
            rec = _Codec(table.layout).read(rid, entry.version, cells)
            rec.subscribed = self._status(table, cells)
            table.records[entry.pos] = rec
        return rec

    def _status_col(self, table: _Table) -> int | None:
        if not self.subscription or table.header is None:
            return None
        wanted = self.subscription.casefold()
        for n, name in enumerate(table.header):
            if name.strip().casefold() == wanted:
                return n
        return None

    def _status(self, table: _Table, cells: list[str]) -> bool | None:
        col = self._status_col(table)
        if col is None or col >= len(cells):
            return None
        return parse_subscription(cells[col])

    # --- protocol ------------------------------------------------------------------------

    def fields(self) -> tuple[FieldSpec, ...]:
        return self._layout(self._load()).specs

    def schema(self) -> Schema:
        table = self._load()
        layout = self._layout(table)
        segments: set[str] = set()
        if table.layout is not None and layout.segment_col is not None:
            for rid in table.entries:
                rec = self._record(table, rid)
                if isinstance(rec, Record):
                    segments |= rec.segments
        return Schema(layout.specs, tuple(sorted(segments)))

    def prepare(self) -> None:
        """Make the ids ``list_versions`` reports permanent: the ``Pairsync ID`` column is
        added when missing and every readable row without an id gets the one it is read
        under (one atomic rewrite; nothing is written when every row has its id). The engine
        does not call this: ``write`` stamps ids as part of a real write."""
        table = self._load()
        if table.header is None:
            return
        read_as = self._read_as()
        work = table.copy()
        if self._stamp(work):
            with contextlib.suppress(_FileChanged):  # edited meanwhile: stamped next time
                self._save(work, read_as)

    def _stamp(self, work: _Table) -> bool:
        """Write every readable row's id into its id cell (adding the column when missing);
        True when a row or the header changed."""
        assert work.header is not None and work.layout is not None
        changed = work.layout.id_col is None
        id_col = self._ensure_id_column(work)
        width = len(work.header)
        id_last = id_col == width - 1
        for rid, entry in list(work.entries.items()):
            if entry.problem is not None or entry.id_in_cell:
                continue  # its id cell already holds its id (no need to parse the row)
            row = work.rows[entry.pos]
            if id_last and row.raw is not None and len(row.cells) <= id_col:
                # The id goes at the end of the row's own text: every byte the user wrote
                # stays as it was (quoting, spacing), only the id cell is added.
                work.rows[entry.pos] = _with_cell_appended(row, rid, id_col, work)
                work.entries[rid] = _Entry(entry.pos, entry.version, None, True)
                changed = True
                continue
            cells = list(row.cells[:width]) + [""] * max(0, width - len(row.cells))
            if cells[id_col].strip() == rid:
                continue
            cells[id_col] = rid
            work.rows[entry.pos] = _Row(cells, None)
            work.entries[rid] = _Entry(entry.pos, entry.version, None, True)
            changed = True
        return changed

    def list_versions(self) -> dict[str, str]:
        # What a write killed half-way left beside the file (our own temporary files only).
        remove_stale_temps(self.path)
        table = self._load()
        return {rid: entry.version for rid, entry in table.entries.items()}

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        table = self._load()
        out: list[Record | Unreadable] = []
        for rid in ids:
            rec = self._record(table, rid)
            if rec is not None:
                out.append(rec)
        return out

    def find_by_email(self, emails: Iterable[str]) -> list[Record]:
        keys = {email_key(e) for e in emails}
        table = self._load()
        found: list[Record] = []
        for rid in table.entries:
            rec = self._record(table, rid)
            if isinstance(rec, Record) and keys & {email_key(e) for e in record_emails(rec)}:
                found.append(rec)
        return found

    def changes(self, cursor: str | None) -> ChangeSet | None:
        return None

    def close(self) -> None:
        pass

    # --- writing -------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply ``ops`` to the file as it is now, and replace it once. When another program
        changed the file between reading and replacing it (rows appended, the file saved
        from a spreadsheet), nothing of theirs is lost: the file is read again and the ops
        applied to it again (an update of a row they edited is then a ``Conflict``, retried
        next run); after ``_WRITE_ATTEMPTS`` tries every op is a ``Conflict``."""
        if len(ops) > self.info.capabilities.batch_size:
            raise ValueError(f"batch of {len(ops)} exceeds {self.info.capabilities.batch_size}")
        for _attempt in range(_WRITE_ATTEMPTS):
            table = self._load()
            if is_read_only(self.path):
                error = ReadOnlyFile(read_only_message(self.path))
                return [WriteResult(op.op_id, error=error) for op in ops]
            read_as = self._read_as()
            results, work, changed = self._apply_all(table, ops)
            if not changed:
                return results
            # A real write: every row's id becomes permanent, as the rows it touches' are.
            self._stamp(work)
            try:
                self._save(work, read_as)
            except _FileChanged:
                continue
            return results
        conflict = Conflict(
            "The CSV file kept changing while syncing (another program is writing it); "
            "nothing was written, it is retried."
        )
        return [r if not r.ok else WriteResult(r.op_id, error=conflict) for r in results]

    def _apply_all(
        self, table: _Table, ops: Sequence[WriteOp]
    ) -> tuple[list[WriteResult], _Table, bool]:
        work = table.copy()
        if work.header is None:
            work.header = list(DEFAULT_HEADER)
            work.header_raw = None
            work.layout = _build_layout(work.header)
        results: list[WriteResult] = []
        changed = False
        for op in ops:
            try:
                record, problem, did_change = self._apply(work, op)
            except (Rejected, Conflict, NotFound) as err:
                results.append(WriteResult(op.op_id, error=err))
                continue
            changed = changed or did_change
            error: Rejected | None = None
            if problem is not None:
                message, key, left = problem
                if left:
                    error = NotFitting(message, field=key, values=tuple(left))
                else:
                    error = Rejected(message, field=key)
            results.append(WriteResult(op.op_id, record=record, error=error))
        return results, work, changed

    def _ensure_id_column(self, work: _Table) -> int:
        assert work.header is not None and work.layout is not None
        if work.layout.id_col is not None:
            return work.layout.id_col
        # Rows that are not touched stay short; short rows read as if padded with "".
        if work.header_raw is not None:
            body, newline = _split_terminator(work.header_raw)
            cell = _format_row([ID_HEADER], work.delimiter, work.quote_all)
            work.header_raw = body + work.delimiter + cell + (newline or work.newline)
        work.header.append(ID_HEADER)
        work.layout = _build_layout(work.header)
        work.records = {}
        assert work.layout.id_col is not None
        return work.layout.id_col

    def _apply(
        self, work: _Table, op: WriteOp
    ) -> tuple[Record, tuple[str, str, list[str]] | None, bool]:
        """Apply one op to ``work``: the record as now stored, the first problem (sentence,
        field key, the values that did not fit — empty when the problem is not about room)
        and whether the row changed."""
        id_col = self._ensure_id_column(work)
        assert work.header is not None and work.layout is not None
        layout = work.layout
        codec = _Codec(layout)
        width = len(work.header)
        if isinstance(op, Create):
            rid = op.new_id or uuid.uuid4().hex
            if rid in work.entries:
                raise Conflict(f"A contact with id {rid} already exists in the CSV file.")
            cells = [""] * width
            cells[id_col] = rid
            current = Record(rid, "", {})
            fields = dict(op.fields)
            add, remove = op.segments, frozenset[str]()
            pos: int | None = None
            old_cells: list[str] = []
        else:
            assert isinstance(op, Update)
            rid = op.record_id
            entry = work.entries.get(rid)
            if entry is None:
                raise NotFound("The contact is no longer in the CSV file.")
            if entry.problem is not None:
                raise Rejected(f"{entry.problem} Fix the row in the file; it was not changed.")
            if op.expected_version is not None and entry.version != op.expected_version:
                raise Conflict("The contact changed in the CSV file while syncing; it is retried.")
            found = self._record(work, rid)
            assert isinstance(found, Record)
            current = found
            pos = entry.pos
            old_cells = work.rows[pos].cells
            cells = list(old_cells[:width]) + [""] * max(0, width - len(old_cells))
            cells[id_col] = rid
            fields = dict(op.fields)
            add, remove = op.add_segments, op.remove_segments
        problem: tuple[str, str, list[str]] | None = None
        if OPT_OUT_FIELD in fields:
            opt = str(fields.pop(OPT_OUT_FIELD))
            col = self._status_col(work)
            if col is None:
                problem = (
                    f"The CSV file has no column {self.subscription or 'for subscriptions'!r}; "
                    "the opt-out was not recorded.",
                    OPT_OUT_FIELD,
                    [],
                )
            elif parse_subscription(cells[col]) is not parse_subscription(opt):
                cells[col] = "unsubscribed" if parse_subscription(opt) is False else "subscribed"
        for key, value in fields.items():
            message = codec.write_field(cells, key, value, current)
            if message and problem is None:
                problem = (message, key, codec.left_out.get(key, []))
        message = codec.write_segments(cells, add, remove)
        if message and problem is None:
            problem = (message, "segments", [])
        self._check_encoding(work, cells, old_cells)
        version = _row_version(cells, width, id_col)
        if pos is not None and cells == old_cells:
            record = current
            return record, problem, False
        row = _Row(cells, None)
        if pos is None:
            pos = len(work.rows)
            work.rows.append(row)
        else:
            work.rows[pos] = row
        old_id = work.ids_by_pos.get(pos)
        if old_id is not None and old_id != rid:
            work.entries.pop(old_id, None)
        _add(work, rid, pos, version, None, True)
        record = codec.read(rid, version, cells)
        record.subscribed = self._status(work, cells)
        # Not cached: the engine keeps what it needs of a written record; a later read of
        # this row decodes its cells again.
        work.records.pop(pos, None)
        return record, problem, True

    def _check_encoding(self, work: _Table, cells: list[str], old: list[str]) -> None:
        codec = work.encoding.codec
        if codec.startswith("utf"):
            return
        for n, cell in enumerate(cells):
            if n < len(old) and old[n] == cell:
                continue
            try:
                cell.encode(codec)
            except UnicodeEncodeError as err:
                bad = cell[err.start : err.end]
                name = work.header[n] if work.header and n < len(work.header) else "a cell"
                raise Rejected(
                    f"The CSV file is saved as {work.encoding.describe()}, which cannot hold "
                    f"{bad!r} (in {name.strip()}); the contact was not changed.",
                    field=name,
                ) from err

    def _save(
        self, work: _Table, read_as: tuple[tuple[int, int, int] | None, bytes | None]
    ) -> None:
        """Replace the file with ``work``. When another program changed the file since it
        was read as ``read_as``: rows it only appended are appended to the new version too,
        byte for byte (checked again until the file holds still); any other change raises
        ``_FileChanged`` and the file is left as the other program wrote it."""
        self._check_folder()
        digest = hashlib.blake2b(digest_size=16)
        caught_up = False

        def catch_up(tmp_name: str) -> None:
            nonlocal read_as, caught_up
            for _ in range(_CATCH_UP_ROUNDS):
                try:
                    self._check_unchanged(read_as)
                    return
                except _FileChanged:
                    tail, read_as = self._appended_since(read_as)
                with open(tmp_name, "ab") as handle:
                    handle.write(tail)
                    handle.flush()
                    os.fsync(handle.fileno())
                caught_up = True
            raise _FileChanged

        try:
            # A value the file's encoding cannot hold raises UnicodeError: nothing changed.
            st = replace_file(
                self.path,
                lambda handle: _write_text(_Hashing(handle, digest), work),
                catch_up=catch_up,
            )
        except OSError as err:
            raise Unavailable(
                f"The CSV file {self.path} could not be written: {err.strerror or err}."
            ) from err
        for row in work.rows:
            if row.raw is None and row.problem is None:
                # Written as this text: keep the text, not the cells (see _Row).
                row.raw = _format_row(row.cells, work.delimiter, work.quote_all) + work.newline
                row.delimiter = work.delimiter
                row.release()
        if caught_up:
            # The file holds rows ``work`` does not: read it again next time.
            self._cache, self._cache_key, self._cache_digest = None, None, None
            return
        self._cache, self._cache_key = work, (st.st_mtime_ns, st.st_size, st.st_ino)
        self._cache_digest = digest.digest()

    def _appended_since(
        self, read_as: tuple[tuple[int, int, int] | None, bytes | None]
    ) -> tuple[bytes, tuple[tuple[int, int, int] | None, bytes | None]]:
        """What another program appended to the file since it was read as ``read_as``, and
        how the file reads now; ``_FileChanged`` when it changed in any other way."""
        key, digest = read_as
        if key is None:
            raise _FileChanged  # created meanwhile: not ours to merge
        try:
            st = os.stat(self.path)
            data = self.path.read_bytes()
        except OSError:
            raise _FileChanged from None
        size = key[1]
        if len(data) < size or _digest(data[:size]) != digest:
            raise _FileChanged
        # The size is what was read (rows appended after the stat are in ``data``): the
        # next check sees any difference from the file as it then is.
        return data[size:], ((st.st_mtime_ns, len(data), st.st_ino), _digest(data))


_WRITE_ATTEMPTS = 5
_CATCH_UP_ROUNDS = 50
_COARSE_CLOCK_NS = 3_000_000_000
"""Within this long of a file's mtime a second write may leave the same mtime (FAT: 2 s)."""


class _FileChanged(Exception):
    """The file changed since it was read: it is not replaced."""


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class _Hashing:
    """A binary file that also feeds what is written to a digest (the digest of the new
    file's bytes, without reading it back)."""

    def __init__(self, handle: BinaryIO, digest: Any) -> None:
        self.handle = handle
        self.digest = digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.handle.write(data)
