"""The typed values the facade hands the fronts (never ORM rows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

from app.model import ConnectionSettings, FieldSpec
from app.rules.model import Rule
from app.sign_in import SignInForm


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """A stored account as the fronts show it (its secret stays in the keyring)."""

    name: str
    kind: str
    app: str
    """The app's name ("CardDAV", "CSV file")."""
    settings: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    """The settings an account of this kind must have (the sign-in form asks for them)."""
    needs_secret: bool = False
    has_secret: bool = False
    form: SignInForm = field(default_factory=SignInForm)
    """The app's sign-in form (what "sign in again" asks for, and how)."""

    def as_json(self) -> dict[str, Any]:
        """As ``account list --json`` prints it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "settings": dict(self.settings),
            "has_secret": self.has_secret,
        }


@dataclass(frozen=True, slots=True)
class AccountRef:
    """One side of a connection: which account, of which kind."""

    account: str
    kind: str
    subscription: str | None = None
    """The CSV column or vCard property holding the subscription status ("" when none is
    named); None when the app has no such setting (its status comes from the app)."""
    subscription_label: str = ""
    """How the window asks for it ("Subscription column"), from the app's registry entry."""
    subscription_placeholder: str = ""


@dataclass(frozen=True, slots=True)
class LastRun:
    status: str
    started_at: datetime
    message: str


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """A connection as the fronts show it: its two accounts, settings and state."""

    name: str
    a: AccountRef
    b: AccountRef
    settings: ConnectionSettings
    paused: bool
    last_run: LastRun | None = None

    def as_json(self) -> dict[str, Any]:
        """As ``connection show --json`` prints it (settings flat, beside the accounts)."""
        return {
            "name": self.name,
            "a": {"account": self.a.account, "kind": self.a.kind},
            "b": {"account": self.b.account, "kind": self.b.kind},
            **self.settings.to_json(),
            "paused": self.paused,
            "last_run": None
            if self.last_run is None
            else {
                "status": self.last_run.status,
                "started_at": self.last_run.started_at.isoformat(),
                "message": self.last_run.message,
            },
        }


# --- fields and mappings ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One field of an app, as the mapping and rule editors offer it."""

    key: str
    label: str
    type: str
    """The field type's value ("text", "email", "single_choice"…)."""
    multi: bool = False
    writable: bool = True
    required: bool = False
    choices: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec: FieldSpec) -> FieldInfo:
        return cls(
            spec.key,
            spec.label,
            spec.type.value,
            spec.multi,
            spec.writable,
            spec.required,
            tuple(spec.choices),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "type": self.type,
            "multi": self.multi,
            "writable": self.writable,
            "required": self.required,
            "choices": list(self.choices),
        }


@dataclass(frozen=True, slots=True)
class AppFields:
    """One side's app: its name, fields and segments."""

    app: str
    fields: tuple[FieldInfo, ...] = ()
    segments: tuple[str, ...] = ()

    def field(self, key: str) -> FieldInfo | None:
        return next((f for f in self.fields if f.key == key), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "fields": [f.as_json() for f in self.fields],
            "segments": list(self.segments),
        }


@dataclass(frozen=True, slots=True)
class ConnectionFields:
    """Both apps' fields (``connection fields``), for picking custom mappings and rules."""

    a: AppFields
    b: AppFields

    def side(self, side: str) -> AppFields:
        """The fields of side "a" or "b"."""
        return self.a if side == "a" else self.b

    def as_json(self) -> dict[str, Any]:
        return {"a": self.a.as_json(), "b": self.b.as_json()}


@dataclass(frozen=True, slots=True)
class MappingInfo:
    """One field mapping as it applies to the two apps now (``connection mappings``)."""

    key: str
    kind: str
    """ "default" or "custom"."""
    label: str
    a: tuple[str, ...]
    b: tuple[str, ...]
    direction: str
    """The mapping's own direction ("two-way", "a-to-b", "b-to-a")."""
    effective: str | None
    """The direction it really flows in, None when it cannot flow (see ``reason``)."""
    enabled: bool
    active: bool
    reason: str = ""
    values: dict[str, dict[str, str | None]] = field(default_factory=dict)
    """The value tables ("a_to_b", "b_to_a"), empty when the mapping has none."""

    @property
    def has_values(self) -> bool:
        return bool(self.values.get("a_to_b") or self.values.get("b_to_a"))

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "a": list(self.a),
            "b": list(self.b),
            "direction": self.direction,
            "effective": self.effective,
            "enabled": self.enabled,
            "active": self.active,
            "reason": self.reason,
            **({"values": self.values} if self.values else {}),
        }


@dataclass(frozen=True, slots=True)
class FieldChoice:
    """A field of the other app, and whether it can be mapped to the picked one now."""

    field: FieldInfo
    possible: bool
    a_to_b: bool
    b_to_a: bool
    reason: str = ""
    needs_values: bool = False

    @property
    def key(self) -> str:
        return self.field.key

    def as_json(self) -> dict[str, Any]:
        return {
            **self.field.as_json(),
            "possible": self.possible,
            "a_to_b": self.a_to_b,
            "b_to_a": self.b_to_a,
            "reason": self.reason,
            "needs_values": self.needs_values,
        }


@dataclass(frozen=True, slots=True)
class MappingChoices:
    """For "Add custom mapping": the field picked on one side, and every field of the other."""

    side: str
    field: FieldInfo
    other: tuple[FieldChoice, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "field": self.field.as_json(),
            "other": [c.as_json() for c in self.other],
        }


# --- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleMirror:
    """The mirror rule "Other way around" adds."""

    sentence: str
    active: bool
    count: int | None


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One IF/THEN rule as the fronts show it: the sentence, its toggles, what it matches."""

    rule: Rule
    position: int
    sentence: str
    active: bool
    ignored: str
    """Why the rule is ignored ("" when it is not)."""
    undo_effective: bool
    count: int | None
    """Contacts it matches now (from the local index); None before the first sync."""
    mirror: RuleMirror | None = None
    undo_note: str = ""

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def enabled(self) -> bool:
        return self.rule.enabled

    @property
    def undo(self) -> bool:
        return self.rule.undo

    @property
    def other_way(self) -> bool:
        return self.rule.other_way

    def as_json(self) -> dict[str, Any]:
        """As ``connection rules --json`` prints it; also how it crosses the sync worker's
        pipe (``from_json`` reads it back)."""
        data = self.rule.to_json()
        data.update(
            {
                "position": self.position,
                "sentence": self.sentence,
                "active": self.active,
                "ignored": self.ignored,
                "undo_effective": self.undo_effective,
                "count": self.count,
            }
        )
        if self.mirror is not None:
            data["mirror"] = {
                "sentence": self.mirror.sentence,
                "active": self.mirror.active,
                "count": self.mirror.count,
            }
        if self.undo_note:
            data["undo_note"] = self.undo_note
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuleInfo:
        mirror = data.get("mirror")
        return cls(
            rule=Rule.from_json(data),
            position=int(data["position"]),
            sentence=str(data["sentence"]),
            active=bool(data["active"]),
            ignored=str(data.get("ignored", "")),
            undo_effective=bool(data["undo_effective"]),
            count=None if data.get("count") is None else int(data["count"]),
            mirror=None
            if mirror is None
            else RuleMirror(
                str(mirror["sentence"]),
                bool(mirror["active"]),
                None if mirror.get("count") is None else int(mirror["count"]),
            ),
            undo_note=str(data.get("undo_note", "")),
        )


# --- the health report (``pairsync health``) -------------------------------------------------


def _report_json(row: Any) -> dict[str, Any]:
    """A report row as ``--json`` shows it: its fields in order, tuples as lists."""
    return {
        f.name: list(v) if isinstance(v := getattr(row, f.name), tuple) else v
        for f in dataclass_fields(row)
    }


@dataclass(frozen=True, slots=True)
class ReportCounts:
    in_sync: int
    excluded: int
    duplicates: int
    failed: int
    ignored: int
    deleted_other_side: int
    rule_conflicts: int
    not_fitting: int

    to_json = _report_json


@dataclass(frozen=True, slots=True)
class ReportFailure:
    """A contact that failed (not ignored)."""

    id: int
    side: str
    record_id: str
    name: str
    app_side: str | None
    code: str
    reason: str
    fields: tuple[str, ...]
    attempts: int
    raw: str | None

    to_json = _report_json


@dataclass(frozen=True, slots=True)
class ReportContact:
    """An excluded or duplicate contact, with the reason."""

    side: str
    record_id: str
    name: str
    reason: str

    to_json = _report_json


@dataclass(frozen=True, slots=True)
class ReportNotFitting:
    """Values one app had no room for."""

    side: str
    record_id: str
    name: str
    field: str
    values: tuple[str, ...]
    reason: str

    to_json = _report_json


@dataclass(frozen=True, slots=True)
class ReportConflict:
    """A field both apps changed, and which side won."""

    id: int
    field: str
    value_a: Any
    value_b: Any
    winner: str
    at: str
    """ISO time."""
    binding: int | None

    to_json = _report_json


@dataclass(frozen=True, slots=True)
class ReportRuleConflict:
    """Two rules (or a rule and a mapping) that disagreed about one contact."""

    about: str
    message: Any
    side: str
    at: str
    binding: int | None

    to_json = _report_json


@dataclass(frozen=True, slots=True)
class ReportRun:
    run: int
    dry_run: bool
    status: str
    started_at: str
    """ISO time."""
    counts: dict[str, Any]
    message: str

    to_json = _report_json


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Everything ``pairsync health`` shows about one connection; ``to_json`` is its
    ``--json`` output."""

    connection: str
    paused: bool
    counts: ReportCounts
    failed: tuple[ReportFailure, ...] = ()
    not_fitting: tuple[ReportNotFitting, ...] = ()
    excluded: tuple[ReportContact, ...] = ()
    duplicates: tuple[ReportContact, ...] = ()
    deleted_other_side: tuple[ReportContact, ...] = ()
    conflicts: tuple[ReportConflict, ...] = ()
    rule_conflicts: tuple[ReportRuleConflict, ...] = ()
    journal_entries: int = 0
    runs: tuple[ReportRun, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HealthReport:
        def contacts(key: str) -> tuple[ReportContact, ...]:
            return tuple(
                ReportContact(e["side"], e["record_id"], e["name"], e["reason"]) for e in data[key]
            )

        return cls(
            connection=data["connection"],
            paused=data["paused"],
            counts=ReportCounts(**data["counts"]),
            failed=tuple(
                ReportFailure(**{**f, "fields": tuple(f["fields"])}) for f in data["failed"]
            ),
            not_fitting=tuple(
                ReportNotFitting(**{**n, "values": tuple(n["values"])}) for n in data["not_fitting"]
            ),
            excluded=contacts("excluded"),
            duplicates=contacts("duplicates"),
            deleted_other_side=contacts("deleted_other_side"),
            conflicts=tuple(ReportConflict(**c) for c in data["conflicts"]),
            rule_conflicts=tuple(ReportRuleConflict(**c) for c in data["rule_conflicts"]),
            journal_entries=data["journal_entries"],
            runs=tuple(ReportRun(**r) for r in data["runs"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "paused": self.paused,
            "counts": self.counts.to_json(),
            "failed": [f.to_json() for f in self.failed],
            "not_fitting": [n.to_json() for n in self.not_fitting],
            "excluded": [e.to_json() for e in self.excluded],
            "duplicates": [e.to_json() for e in self.duplicates],
            "deleted_other_side": [e.to_json() for e in self.deleted_other_side],
            "conflicts": [c.to_json() for c in self.conflicts],
            "rule_conflicts": [c.to_json() for c in self.rule_conflicts],
            "journal_entries": self.journal_entries,
            "runs": [r.to_json() for r in self.runs],
        }
