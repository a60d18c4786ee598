"""Plain values shared by every layer: records, field specs, write operations.

Nothing here knows about a particular app, the engine's tables or Qt. Connectors turn
an app's data into these values; the engine and mappings only ever see these.

Field values are deliberately few and immutable:

* a single-valued field holds a ``str`` ("" means empty; absent means empty too);
* a multi-valued field (emails, phones, urls) holds a ``tuple[Labeled, ...]`` whose first
  element is the primary one;
* an address field holds a ``tuple[Address, ...]``.

Typed conversions (numbers, dates, choices) belong to the mapping layer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from app.errors import ConfigError


class Side(StrEnum):
    A = "a"
    B = "b"

    @property
    def other(self) -> Side:
        return Side.B if self is Side.A else Side.A


class Direction(StrEnum):
    """Which way a connection (or one mapping) lets values flow."""

    TWO_WAY = "two-way"
    A_TO_B = "a-to-b"
    B_TO_A = "b-to-a"

    def writes(self, side: Side) -> bool:
        """May values flow *into* this side?"""
        if self is Direction.TWO_WAY:
            return True
        return (self is Direction.A_TO_B) == (side is Side.B)

    @classmethod
    def parse(cls, text: str | Direction) -> Direction:
        """The direction a user typed (CLI, export file), or a sentence saying what is wrong."""
        try:
            return cls(text)
        except ValueError:
            raise ConfigError(
                f"Direction must be two-way, a-to-b or b-to-a, not {text!r}."
            ) from None


DEFAULT_INTERVAL = 5
"""Minutes between two syncs of a connection while the desktop app runs."""
MIN_INTERVAL = 1
MAX_INTERVAL = 60


MAX_GUARD = 1_000_000_000
"""The largest mass-change threshold (a number the database holds; more means "no guard")."""


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """How a connection syncs: the one type the CLI, the window, export/import, the store and
    the engine share. Built from user input (strings such as ``"a-to-b"``, ``"on"`` or
    ``"300"`` are parsed here, once) and checked on construction, so every holder of one has
    a valid value and every wrong one is a ``ConfigError`` sentence the fronts print."""

    direction: Direction = Direction.TWO_WAY
    winner: Side = Side.A
    avoid_duplicates: bool = True
    unsubscribes: bool = False
    unsubscribe_opt_out: bool = False
    trash: bool = False
    propagate_clears: bool = True
    guard_max_writes: int = 500
    phone_region: str = ""
    interval_minutes: int = DEFAULT_INTERVAL
    guard_shrink_percent: int = 20
    """Not a user setting (no option sets it): the guard's share of a side that may vanish."""
    guard_min_gone: int = 5

    USER_KEYS: ClassVar[tuple[str, ...]] = (
        "direction",
        "winner",
        "avoid_duplicates",
        "unsubscribes",
        "unsubscribe_opt_out",
        "trash",
        "propagate_clears",
        "guard_max_writes",
        "phone_region",
        "interval_minutes",
    )
    """The settings a user changes (CLI options, the Settings tab, an export file)."""

    TOGGLES: ClassVar[dict[str, str]] = {
        "avoid_duplicates": "Avoid duplicates",
        "unsubscribes": "Sync unsubscribes",
        "unsubscribe_opt_out": "Set the other app's opt-out",
        "trash": "Trash segment for deletions",
        "propagate_clears": "Clear a field in the other app when it is cleared",
    }
    """The on/off settings, with the name the window gives them (for sentences)."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "direction", Direction.parse(self.direction))
        if self.winner not in ("a", "b"):
            raise ConfigError(f"The winning app must be a or b, not {self.winner!r}.")
        set_(self, "winner", Side(self.winner))
        for key, label in self.TOGGLES.items():
            set_(self, key, _on_off(getattr(self, key), f"{label} ({key})"))
        set_(self, "guard_max_writes", _whole(self.guard_max_writes, "The mass-change threshold"))
        set_(self, "interval_minutes", _whole(self.interval_minutes, "The interval", " of minutes"))
        for key in ("guard_shrink_percent", "guard_min_gone"):
            set_(self, key, _whole(getattr(self, key), key))
        if self.guard_max_writes < 1:
            raise ConfigError("The mass-change threshold must be at least 1.")
        if self.guard_max_writes > MAX_GUARD:
            raise ConfigError(f"The mass-change threshold is at most {MAX_GUARD:,} contacts.")
        region = str(self.phone_region or "").strip()
        if region and (len(region) != 2 or not region.isalpha()):
            raise ConfigError("The phone region is a two-letter country code, like GB or US.")
        set_(self, "phone_region", region.upper())
        if not MIN_INTERVAL <= self.interval_minutes <= MAX_INTERVAL:
            raise ConfigError(f"The interval is between {MIN_INTERVAL} and {MAX_INTERVAL} minutes.")

    def changed(self, **changes: Any) -> ConnectionSettings:
        """A copy with some user settings changed (checked like a new one)."""
        unknown = set(changes) - set(self.USER_KEYS)
        if unknown:
            raise ConfigError(f"Unknown connection setting: {', '.join(sorted(unknown))}.")
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The user settings as plain JSON values (``connection show``, export files)."""
        return {k: str(v) if isinstance(v, StrEnum) else v for k, v in self._user().items()}

    def _user(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.USER_KEYS}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConnectionSettings:
        """The settings of an export file; a missing key takes its default."""
        default = cls()
        return cls(**{key: data.get(key, getattr(default, key)) for key in cls.USER_KEYS})


_ON = ("on", "true", "yes", "1")
_OFF = ("off", "false", "no", "0")


def _on_off(value: object, what: str) -> bool:
    """An on/off setting as typed (``on``/``off``, ``true``/``false``, ``yes``/``no``) or
    given as a bool; anything else is refused with a sentence (``bool("off")`` is True)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _ON + _OFF:
        return value.strip().lower() in _ON
    raise ConfigError(f"{what} is on or off, not {value!r}.")


def _whole(value: object, what: str, unit: str = "") -> int:
    """A whole-number setting as typed (digits) or given as a number; a bool, a fraction
    or other text is refused with a sentence."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,30}", value.strip()):
        return int(value.strip())
    raise ConfigError(f"{what} is a whole number{unit}, not {value!r}.")


class FieldType(StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    SINGLE_CHOICE = "single_choice"
    MULTI_CHOICE = "multi_choice"
    ADDRESS = "address"


class Meaning(StrEnum):
    """The standard meaning of a field, used to pair fields of two apps by default."""

    FULL_NAME = "full_name"
    GIVEN_NAME = "given_name"
    FAMILY_NAME = "family_name"
    MIDDLE_NAME = "middle_name"
    NAME_PREFIX = "name_prefix"
    NAME_SUFFIX = "name_suffix"
    NICKNAME = "nickname"
    EMAIL = "email"
    PHONE = "phone"
    ADDRESS = "address"
    ORGANIZATION = "organization"
    DEPARTMENT = "department"
    TITLE = "title"
    WEBSITE = "website"
    BIRTHDAY = "birthday"
    NOTES = "notes"


@dataclass(frozen=True, slots=True)
class Labeled:
    """One value of a multi-valued field, with its label (mobile, work, home, fax, other…)."""

    value: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class Address:
    street: str = ""
    locality: str = ""
    region: str = ""
    postcode: str = ""
    country: str = ""
    pobox: str = ""
    extended: str = ""
    label: str = ""

    def parts(self) -> tuple[str, str, str, str, str, str, str]:
        return (
            self.street,
            self.locality,
            self.region,
            self.postcode,
            self.country,
            self.pobox,
            self.extended,
        )

    def is_empty(self) -> bool:
        return not any(p.strip() for p in self.parts())


FieldValue = str | tuple[Labeled, ...] | tuple[Address, ...]


def is_empty_value(value: FieldValue | None) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return all((v.is_empty() if isinstance(v, Address) else not v.value.strip()) for v in value)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """How an app describes one of its fields."""

    key: str
    label: str
    type: FieldType = FieldType.TEXT
    multi: bool = False
    required: bool = False
    writable: bool = True
    unique: bool = False
    choices: tuple[str, ...] = ()
    meaning: Meaning | None = None


@dataclass(frozen=True, slots=True)
class Schema:
    fields: tuple[FieldSpec, ...]
    segments: tuple[str, ...] = ()

    def get(self, key: str) -> FieldSpec | None:
        for spec in self.fields:
            if spec.key == key:
                return spec
        return None

    def by_meaning(self, meaning: Meaning) -> FieldSpec | None:
        for spec in self.fields:
            if spec.meaning == meaning:
                return spec
        return None


# The standard fields every app that has them names the same way (apps may add more).
STANDARD_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("full_name", "Full name", meaning=Meaning.FULL_NAME),
    FieldSpec("given_name", "First name", meaning=Meaning.GIVEN_NAME),
    FieldSpec("family_name", "Last name", meaning=Meaning.FAMILY_NAME),
    FieldSpec("emails", "Emails", FieldType.EMAIL, multi=True, meaning=Meaning.EMAIL),
    FieldSpec("phones", "Phones", FieldType.PHONE, multi=True, meaning=Meaning.PHONE),
    FieldSpec("addresses", "Addresses", FieldType.ADDRESS, multi=True, meaning=Meaning.ADDRESS),
    FieldSpec("organization", "Company", meaning=Meaning.ORGANIZATION),
    FieldSpec("title", "Job title", meaning=Meaning.TITLE),
    FieldSpec("notes", "Notes", FieldType.LONG_TEXT, meaning=Meaning.NOTES),
)


OPT_OUT_FIELD = "subscribed"
"""A write whose fields carry ``"subscribed": "false"`` sets the app's own opt-out flag (only
for apps whose ``capabilities.subscription`` is true; others never receive it)."""


_UNSUBSCRIBED_WORDS = frozenset(
    {"unsubscribed", "no", "false", "0", "n", "opted out", "opt-out", "opt out", "cleaned"}
)
_SUBSCRIBED_WORDS = frozenset(
    {"subscribed", "yes", "true", "1", "y", "opted in", "opt-in", "opt in", "pending"}
)


def parse_subscription(text: str) -> bool | None:
    """A subscription status written in words (a CSV cell, a vCard property): True, False,
    or None when empty or not understood."""
    word = " ".join(text.split()).casefold()
    if word in _UNSUBSCRIBED_WORDS:
        return False
    if word in _SUBSCRIBED_WORDS:
        return True
    return None


@dataclass(frozen=True, slots=True)
class Capabilities:
    segments: bool = True
    change_feed: bool = False
    chooses_ids: bool = False
    """The app accepts an id picked by us on create (lets crash recovery fetch by id)."""
    batch_size: int = 100
    subscription: bool = False
    """The app reports a subscription status (``Record.subscribed``) and takes an opt-out."""


@dataclass(frozen=True, slots=True)
class AppInfo:
    kind: str
    name: str
    aliases: tuple[str, ...] = ()
    auth: str = "none"  # none | password | token | oauth
    capabilities: Capabilities = field(default_factory=Capabilities)


@dataclass(slots=True)
class Record:
    """One contact as an app has it now."""

    id: str
    version: str
    fields: dict[str, FieldValue] = field(default_factory=dict)
    segments: frozenset[str] = frozenset()
    subscribed: bool | None = None

    def get(self, key: str) -> FieldValue | None:
        return self.fields.get(key)

    def display_name(self) -> str:
        for key in ("full_name",):
            value = self.fields.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        parts = [self.fields.get(k) for k in ("given_name", "family_name") if self.fields.get(k)]
        name = " ".join(p for p in parts if isinstance(p, str)).strip()
        if name:
            return name
        for value in self.fields.values():
            first = value[0] if isinstance(value, tuple) and value else None
            if isinstance(first, Labeled) and "@" in first.value:
                return first.value
        for value in self.fields.values():
            if isinstance(value, str) and "@" in value:
                return value.strip()
        return self.id


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record the app holds but we could not read (broken vCard, garbage from an API).

    It is reported in Health for that record only; it never stops a run.
    """

    id: str
    version: str
    message: str
    raw: str = ""


@dataclass(frozen=True, slots=True)
class Create:
    op_id: str
    fields: Mapping[str, FieldValue]
    segments: frozenset[str] = frozenset()
    new_id: str | None = None
    """Id to give the new record when the app lets us choose (Capabilities.chooses_ids)."""


@dataclass(frozen=True, slots=True)
class Update:
    op_id: str
    record_id: str
    fields: Mapping[str, FieldValue]
    """Only the fields to change; an empty value clears the field."""
    add_segments: frozenset[str] = frozenset()
    remove_segments: frozenset[str] = frozenset()
    expected_version: str | None = None
    """When given, the app must refuse the write if the record changed since (Conflict)."""


WriteOp = Create | Update


@dataclass(slots=True)
class WriteResult:
    op_id: str
    record: Record | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.record is not None


# --- JSON for snapshots, journal and export -------------------------------------------


def value_to_json(value: FieldValue | None) -> Any:
    if value is None or isinstance(value, str):
        return value
    out: list[Any] = []
    for v in value:
        if isinstance(v, Address):
            out.append({"a": list(v.parts()), "l": v.label})
        else:
            out.append({"v": v.value, "l": v.label})
    return out


def value_from_json(data: Any) -> FieldValue | None:
    if data is None or isinstance(data, str):
        return data
    items: list[Any] = []
    for item in data:
        if "a" in item:
            street, locality, region, postcode, country, pobox, extended = item["a"]
            items.append(
                Address(
                    street, locality, region, postcode, country, pobox, extended, item.get("l", "")
                )
            )
        else:
            items.append(Labeled(item["v"], item.get("l", "")))
    return tuple(items)


_SNAPSHOT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""One encoder for every snapshot (``json.dumps`` with options builds one per call)."""


def record_to_json(record: Record) -> str:
    return _SNAPSHOT(
        {
            "f": {k: value_to_json(v) for k, v in record.fields.items()},
            "s": sorted(record.segments),
            "u": record.subscribed,
        }
    )


def record_from_json(record_id: str, version: str, text: str) -> Record:
    data = json.loads(text)
    fields: dict[str, FieldValue] = {}
    for key, raw in data.get("f", {}).items():
        value = value_from_json(raw)
        if value is not None:
            fields[key] = value
    return Record(
        id=record_id,
        version=version,
        fields=fields,
        segments=frozenset(data.get("s", ())),
        subscribed=data.get("u"),
    )


def email_key(email: str) -> str:
    """The matching key of an email: trimmed and case-folded (no dot or +tag stripping)."""
    return email.strip().casefold()


def with_emails(records: Iterable[Record], emails: Iterable[str]) -> list[Record]:
    """The records holding any of ``emails`` (compared by ``email_key``): a connector's
    ``find_by_email`` over the records it has at hand."""
    keys = {email_key(e) for e in emails}
    keys.discard("")
    if not keys:
        return []
    return [r for r in records if keys & {email_key(e) for e in record_emails(r)}]


def record_emails(record: Record) -> list[str]:
    """All email addresses of a record, primary first, from every email-typed field value.

    Connectors name their email fields ``emails`` (multi) or ``email`` (single); both count.
    """
    out: list[str] = []
    for key in ("emails", "email"):
        value = record.fields.get(key)
        if isinstance(value, str):
            if value.strip():
                out.append(value.strip())
        elif value:
            for item in value:
                if isinstance(item, Labeled) and item.value.strip():
                    out.append(item.value.strip())
    return out


# --- Health and Activity rows (read from the store, shown by the fronts) --------------------


@dataclass(frozen=True, slots=True)
class ContactRow:
    side: str
    record_id: str
    name: str
    email: str
    status: str
    reason: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.side, self.record_id)


@dataclass(frozen=True, slots=True)
class NotFittingRow:
    """Values an app had no room for (Health's "Not fitting"): the rest of the contact is
    in sync."""

    side: str
    record_id: str
    name: str
    field: str
    values: tuple[str, ...]
    reason: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.name.casefold(), self.side, self.record_id, self.field)


@dataclass(frozen=True, slots=True)
class FailureRow:
    id: int
    side: str
    record_id: str
    target_side: str
    name: str
    code: str
    message: str
    field: str
    attempts: int
    last_at: datetime
    ignored: bool

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.id)


@dataclass(frozen=True, slots=True)
class ConflictRow:
    id: int
    run_id: int
    binding_id: int
    name: str
    field: str
    value_a: Any
    value_b: Any
    winner: str
    at: datetime
    resolved_run_id: int | None

    @property
    def is_rule(self) -> bool:
        return self.field.startswith("rule:")


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    run_no: int
    kind: str
    undo_of: int | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    message: str

    def total(self, key: str) -> int:
        """A count of the run ("created", "updated", "failed"…), both apps together."""
        value = self.counts.get(key, 0)
        if isinstance(value, dict):
            return sum(int(v or 0) for v in value.values())
        return int(value or 0)


@dataclass(frozen=True, slots=True)
class JournalRowView:
    id: int
    side: str
    record_id: str
    name: str
    action: str
    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class HealthCounts:
    """The numbers on the Health tabs."""

    in_sync: int
    excluded: int
    duplicates: int
    failed: int
    ignored: int
    conflicts: int
    not_fitting: int = 0
