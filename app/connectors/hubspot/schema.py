"""HubSpot contact properties → Pairsync fields.

The standard contact properties become the standard fields every app shares (so default
mappings pair them): first/last name, email, the three phone properties as one phone list,
the five address properties as one address, company, job title, website. Every other
property — HubSpot's own and the portal's custom ones — is a field keyed by its internal
name, typed from its ``type``/``fieldType``:

======================  =========================
HubSpot                 Pairsync field type
======================  =========================
enumeration + checkbox  multiple choice (``;``-separated values)
enumeration + booleancheckbox, bool   yes/no
enumeration (select, radio)           choice
number                  number
date / datetime         date / date and time
phone_number, phonenumber field       phone
string + textarea/html  long text
string                  text
======================  =========================

Choice fields offer the options' *labels* (what the user sees in HubSpot, and what value
tables speak); records carry labels too and the connector writes the option's *value*.
A property is read-only for Pairsync when HubSpot says its value is (``modificationMetadata
.readOnlyValue``), when it is calculated, or when it is a file; such fields are read, never
written. ``hs_email_optout`` is the subscription status, not a field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.model import FieldSpec, FieldType, Meaning

META = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})
OPT_OUT = "hs_email_optout"

PHONE_SLOTS = (("phone", "work"), ("mobilephone", "mobile"), ("fax", "fax"))
ADDRESS_PARTS = (
    ("address", "street"),
    ("city", "locality"),
    ("state", "region"),
    ("zip", "postcode"),
    ("country", "country"),
)
SINGLE_STANDARD = (
    ("firstname", "given_name", "First name", FieldType.TEXT, Meaning.GIVEN_NAME),
    ("lastname", "family_name", "Last name", FieldType.TEXT, Meaning.FAMILY_NAME),
    ("company", "organization", "Company", FieldType.TEXT, Meaning.ORGANIZATION),
    ("jobtitle", "title", "Job title", FieldType.TEXT, Meaning.TITLE),
    ("website", "website", "Website", FieldType.URL, Meaning.WEBSITE),
)


@dataclass(frozen=True, slots=True)
class Option:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Property:
    """What Pairsync needs to know of one contact property."""

    name: str
    label: str
    type: str
    field_type: str
    options: tuple[Option, ...] = ()
    read_only: bool = False
    calculated: bool = False
    hubspot_defined: bool = True
    hidden: bool = False

    @property
    def writable(self) -> bool:
        return not (
            self.read_only
            or self.calculated
            or self.field_type in ("calculation_equation", "file")
            or self.name in META
        )

    @property
    def multi_choice(self) -> bool:
        return self.type == "enumeration" and self.field_type == "checkbox"

    def label_of(self, value: str) -> str:
        for o in self.options:
            if o.value == value:
                return o.label
        return value

    def value_of(self, text: str) -> str | None:
        """The option value for a label (or a value) the user gave; None if no such option."""
        for o in self.options:
            if o.label == text or o.value == text:
                return o.value
        folded = text.strip().casefold()
        for o in self.options:
            if folded in (o.label.casefold(), o.value.casefold()):
                return o.value
        return None


def parse_property(data: dict[str, Any]) -> Property:
    meta = data.get("modificationMetadata") or {}
    return Property(
        name=str(data["name"]),
        label=str(data.get("label") or data["name"]),
        type=str(data.get("type", "string")),
        field_type=str(data.get("fieldType", "text")),
        options=tuple(
            Option(str(o.get("label", o.get("value", ""))), str(o.get("value", "")))
            for o in data.get("options") or ()
            if not o.get("hidden")
        ),
        read_only=bool(meta.get("readOnlyValue")),
        calculated=bool(data.get("calculated")),
        hubspot_defined=bool(data.get("hubspotDefined")),
        hidden=bool(data.get("hidden")),
    )


def field_type(prop: Property) -> FieldType:
    if prop.type == "enumeration":
        if prop.field_type == "checkbox":
            return FieldType.MULTI_CHOICE
        if prop.field_type == "booleancheckbox":
            return FieldType.BOOLEAN
        return FieldType.SINGLE_CHOICE
    if prop.type == "bool":
        return FieldType.BOOLEAN
    if prop.type == "number":
        return FieldType.NUMBER
    if prop.type == "date":
        return FieldType.DATE
    if prop.type == "datetime":
        return FieldType.DATETIME
    if prop.type == "phone_number" or prop.field_type == "phonenumber":
        return FieldType.PHONE
    if prop.field_type in ("textarea", "html"):
        return FieldType.LONG_TEXT
    return FieldType.TEXT


@dataclass(frozen=True, slots=True)
class ContactSchema:
    """The portal's contact properties, and the fields Pairsync shows for them."""

    properties: dict[str, Property]
    fields: tuple[FieldSpec, ...]
    single: dict[str, str]
    """Field key -> property name, for fields backed by exactly one property."""

    def read_properties(
        self, keys: Iterable[str] | None = None, *, status: bool = True
    ) -> list[str]:
        """The properties to ask for: those behind the fields ``keys`` (None: every field),
        ``email`` always (binding a 409, opt-outs, results matched by address) and
        ``hs_email_optout`` when the subscription ``status`` is wanted. HubSpot returns
        ``hs_object_id``, ``createdate`` and ``lastmodifieddate`` whatever is asked."""
        wanted = {f.key for f in self.fields} if keys is None else set(keys)
        names = {self.single[k] for k in wanted if k in self.single}
        names |= {"email"} & set(self.properties)
        if "emails" in wanted:
            names |= {"hs_additional_emails"} & set(self.properties)
        if "phones" in wanted:
            names |= {p for p, _ in PHONE_SLOTS if p in self.properties}
        if "addresses" in wanted:
            names |= {p for p, _ in ADDRESS_PARTS if p in self.properties}
        if status and OPT_OUT in self.properties:
            names.add(OPT_OUT)
        return sorted(names)


def build_schema(raw: Iterable[dict[str, Any]]) -> ContactSchema:
    props = {p.name: p for p in (parse_property(d) for d in raw if not d.get("archived"))}
    fields: list[FieldSpec] = []
    single: dict[str, str] = {}
    used: set[str] = set(META) | {OPT_OUT}
    for name, key, label, ftype, meaning in SINGLE_STANDARD[:2]:
        if name in props:
            fields.append(
                FieldSpec(key, label, ftype, writable=props[name].writable, meaning=meaning)
            )
            single[key] = name
            used.add(name)
    if "email" in props:
        fields.append(
            FieldSpec(
                "emails",
                "Email",
                FieldType.EMAIL,
                multi=True,
                unique=True,
                writable=props["email"].writable,
                meaning=Meaning.EMAIL,
            )
        )
        used |= {"email", "hs_additional_emails"}
    if any(p in props for p, _ in PHONE_SLOTS):
        fields.append(
            FieldSpec("phones", "Phone numbers", FieldType.PHONE, multi=True, meaning=Meaning.PHONE)
        )
        used |= {p for p, _ in PHONE_SLOTS}
    if any(p in props for p, _ in ADDRESS_PARTS):
        fields.append(
            FieldSpec(
                "addresses", "Address", FieldType.ADDRESS, multi=True, meaning=Meaning.ADDRESS
            )
        )
        used |= {p for p, _ in ADDRESS_PARTS}
    for name, key, label, ftype, meaning in SINGLE_STANDARD[2:]:
        if name in props:
            fields.append(
                FieldSpec(key, label, ftype, writable=props[name].writable, meaning=meaning)
            )
            single[key] = name
            used.add(name)
    for prop in sorted(props.values(), key=lambda p: (p.hubspot_defined, p.label.casefold())):
        if prop.name in used or prop.hidden:
            continue
        kind = field_type(prop)
        choices: tuple[str, ...] = ()
        if kind in (FieldType.SINGLE_CHOICE, FieldType.MULTI_CHOICE):
            choices = tuple(o.label for o in prop.options)
        fields.append(
            FieldSpec(
                prop.name,
                prop.label,
                kind,
                writable=prop.writable,
                choices=choices,
                meaning=Meaning.BIRTHDAY if prop.name == "date_of_birth" else None,
            )
        )
        single[prop.name] = prop.name
    return ContactSchema(props, tuple(fields), single)
