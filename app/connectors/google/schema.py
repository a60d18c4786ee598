"""Google Contacts' fields as Pairsync fields, and Google's labels (``type``) as ours.

Field keys are the ones every contact app here uses (``given_name``, ``emails``…), so the
default mapping pairs them by meaning. Each key lives in one People API person field
(:data:`PERSON_FIELD`); only those person fields are read (``personFields``) and an update
names only the person fields it writes (``updatePersonFields``), so fields we do not map are
never touched. ``userDefined`` entries are custom text fields ``custom:<key>``.

Labels: Google's ``type`` is free text with well-known values (``home``, ``work``,
``mobile``, ``homeFax``…). :func:`label_of` turns it into Pairsync's label vocabulary
(home · work · mobile · fax · pager · other, anything else kept as it is, so custom labels
travel unchanged); :func:`google_type` goes back. When a value keeps its label, the record
writer keeps Google's own type too (a ``homeFax`` stays ``homeFax``, not ``workFax``).
"""

from __future__ import annotations

from app.model import STANDARD_FIELDS, FieldSpec, FieldType, Meaning

CUSTOM_PREFIX = "custom:"

BASE_FIELDS: tuple[FieldSpec, ...] = (
    *STANDARD_FIELDS,
    FieldSpec("middle_name", "Middle name", meaning=Meaning.MIDDLE_NAME),
    FieldSpec("name_prefix", "Name prefix", meaning=Meaning.NAME_PREFIX),
    FieldSpec("name_suffix", "Name suffix", meaning=Meaning.NAME_SUFFIX),
    FieldSpec("nickname", "Nickname", meaning=Meaning.NICKNAME),
    FieldSpec("department", "Department", meaning=Meaning.DEPARTMENT),
    FieldSpec("urls", "Websites", FieldType.URL, multi=True, meaning=Meaning.WEBSITE),
    FieldSpec("birthday", "Birthday", FieldType.DATE, meaning=Meaning.BIRTHDAY),
)

PERSON_FIELD: dict[str, str] = {
    "full_name": "names",
    "given_name": "names",
    "family_name": "names",
    "middle_name": "names",
    "name_prefix": "names",
    "name_suffix": "names",
    "nickname": "nicknames",
    "emails": "emailAddresses",
    "phones": "phoneNumbers",
    "addresses": "addresses",
    "organization": "organizations",
    "title": "organizations",
    "department": "organizations",
    "urls": "urls",
    "birthday": "birthdays",
    "notes": "biographies",
}
"""Pairsync field key → the person field that holds it."""

READ_FIELDS = (
    "names,nicknames,emailAddresses,phoneNumbers,addresses,organizations,birthdays,urls,"
    "biographies,userDefined,memberships,metadata"
)
"""``personFields`` of every read: the mapped fields, groups, and sources (etags)."""


def person_field(key: str) -> str | None:
    if key.startswith(CUSTOM_PREFIX):
        return "userDefined"
    return PERSON_FIELD.get(key)


def custom_field(name: str) -> FieldSpec:
    return FieldSpec(CUSTOM_PREFIX + name, name)


def fields_with(custom: set[str] | frozenset[str]) -> tuple[FieldSpec, ...]:
    return BASE_FIELDS + tuple(custom_field(k) for k in sorted(custom))


# --- labels ------------------------------------------------------------------------------

_READ = {
    "phoneNumbers": {
        "mobile": "mobile",
        "workMobile": "mobile",
        "homeFax": "fax",
        "workFax": "fax",
        "otherFax": "fax",
        "pager": "pager",
        "workPager": "pager",
    },
}
_WRITE = {
    "phoneNumbers": {"mobile": "mobile", "fax": "workFax", "pager": "pager", "cell": "mobile"},
}
_COMMON = ("home", "work", "other")


def label_of(field: str, gtype: str) -> str:
    """Pairsync's label for Google's ``type`` of a value of person field ``field``."""
    found = _READ.get(field, {}).get(gtype)
    if found is not None:
        return found
    if gtype.lower() in _COMMON:
        return gtype.lower()
    return gtype


def google_type(field: str, label: str) -> str:
    """Google's ``type`` for a Pairsync label (free text passes through)."""
    found = _WRITE.get(field, {}).get(label.lower())
    if found is not None:
        return found
    if label.lower() in _COMMON:
        return label.lower()
    return label
