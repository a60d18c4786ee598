"""IF/THEN rules as the user writes them (SPEC §3): a source side, filters, actions, toggles.

Stored in the connection's JSON config under ``"rules"`` (a list, top rule first)::

    {"id": "r1a2b3", "source": "a", "join": "all", "enabled": true,
     "undo": true, "other_way": false,
     "if": [{"kind": "segment", "op": "has", "value": "Customers"},
            {"kind": "field", "field": "organization", "op": "contains", "value": "Acme"}],
     "then": [{"kind": "add_segment", "value": "Customers"},
              {"kind": "set_field", "field": "title", "value": "Customer"}]}

A connection without a ``"rules"`` entry has the two default rules: one per side, no filters,
no actions ("all-to-all").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from app.errors import ConfigError
from app.model import Side


class FilterKind(StrEnum):
    FIELD = "field"
    SEGMENT = "segment"
    SUBSCRIPTION = "subscription"
    EXISTS = "exists"
    """"Already exists in the other app": the rule only updates, it never creates."""


class Op(StrEnum):
    IS = "is"
    IS_NOT = "is not"
    CONTAINS = "contains"
    NOT_CONTAINS = "does not contain"
    STARTS_WITH = "starts with"
    EMPTY = "is empty"
    NOT_EMPTY = "is not empty"
    GREATER = "greater than"
    LESS = "less than"
    TRUE = "is true"
    FALSE = "is false"
    HAS = "has"
    HAS_NOT = "has not"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    EXISTS = "exists"


FIELD_OPS = (
    Op.IS,
    Op.IS_NOT,
    Op.CONTAINS,
    Op.NOT_CONTAINS,
    Op.STARTS_WITH,
    Op.EMPTY,
    Op.NOT_EMPTY,
    Op.GREATER,
    Op.LESS,
    Op.TRUE,
    Op.FALSE,
)
NO_VALUE_OPS = frozenset(
    {Op.EMPTY, Op.NOT_EMPTY, Op.TRUE, Op.FALSE, Op.EXISTS, Op.SUBSCRIBED, Op.UNSUBSCRIBED}
)
OP_SPELLINGS: dict[str, Op] = {
    **{op.value: op for op in FIELD_OPS},
    ">": Op.GREATER,
    "<": Op.LESS,
    "=": Op.IS,
    "!=": Op.IS_NOT,
    "not contains": Op.NOT_CONTAINS,
}


class Join(StrEnum):
    ALL = "all"
    ANY = "any"


class ActionKind(StrEnum):
    ADD_SEGMENT = "add_segment"
    REMOVE_SEGMENT = "remove_segment"
    SET_FIELD = "set_field"


@dataclass(frozen=True, slots=True)
class Filter:
    kind: FilterKind
    op: Op
    value: str = ""
    field: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "op": self.op.value}
        if self.field:
            data["field"] = self.field
        if self.value or self.op not in NO_VALUE_OPS:
            data["value"] = self.value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Filter:
        kind = FilterKind(data["kind"])
        op = Op(data.get("op", "exists" if kind is FilterKind.EXISTS else ""))
        return _checked_filter(
            cls(kind, op, str(data.get("value", "")), str(data.get("field", "")))
        )

    def sentence(self, app: str) -> str:
        if self.kind is FilterKind.EXISTS:
            return "already exists in the other app"
        if self.kind is FilterKind.SEGMENT:
            verb = "is in" if self.op is Op.HAS else "is not in"
            return f"{verb} segment “{self.value}”"
        if self.kind is FilterKind.SUBSCRIPTION:
            return f"is {self.op.value}"
        if self.op in NO_VALUE_OPS:
            return f"{self.field} {self.op.value}"
        return f"{self.field} {self.op.value} “{self.value}”"


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    value: str = ""
    """The segment name, or the value to set."""
    field: str = ""

    @property
    def target(self) -> str:
        """What the action writes: ``segment:<name>`` or ``field:<key>`` (for contradictions)."""
        if self.kind is ActionKind.SET_FIELD:
            return f"field:{self.field}"
        return f"segment:{' '.join(self.value.split()).casefold()}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "value": self.value}
        if self.field:
            data["field"] = self.field
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Action:
        return _checked_action(
            cls(ActionKind(data["kind"]), str(data.get("value", "")), str(data.get("field", "")))
        )

    def sentence(self) -> str:
        if self.kind is ActionKind.ADD_SEGMENT:
            return f"add to segment “{self.value}”"
        if self.kind is ActionKind.REMOVE_SEGMENT:
            return f"remove from segment “{self.value}”"
        return f"set {self.field} to “{self.value}”"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    source: Side
    filters: tuple[Filter, ...] = ()
    actions: tuple[Action, ...] = ()
    join: Join = Join.ALL
    undo: bool = True
    other_way: bool = False
    enabled: bool = True
    mirror_of: str = ""
    """Set on the mirror rule the "other way around" toggle implies (never stored)."""

    @property
    def target(self) -> Side:
        return self.source.other

    @property
    def creates(self) -> bool:
        """False for an update-only rule (its only way to match needs an existing counterpart)."""
        exists = [f for f in self.filters if f.kind is FilterKind.EXISTS]
        if not exists:
            return True
        return self.join is Join.ANY and len(exists) < len(self.filters)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source.value,
            "join": self.join.value,
            "enabled": self.enabled,
            "undo": self.undo,
            "other_way": self.other_way,
            "if": [f.to_json() for f in self.filters],
            "then": [a.to_json() for a in self.actions],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rule:
        rule = cls(
            id=str(data["id"]),
            source=Side(data["source"]),
            filters=tuple(Filter.from_json(f) for f in data.get("if", [])),
            actions=tuple(Action.from_json(a) for a in data.get("then", [])),
            join=Join(data.get("join", "all")),
            undo=bool(data.get("undo", True)),
            other_way=bool(data.get("other_way", False)),
            enabled=bool(data.get("enabled", True)),
        )
        why = mirror_problem(rule) if rule.other_way and rule.enabled else ""
        if why:  # refuse a mirror in force that cannot be built (a rule off is checked when on)
            raise ValueError(f"rule {rule.id}: “other way around” is not possible: {why}")
        return rule

    def sentence(self, app_source: str, app_target: str) -> str:
        """The rule as the editor reads it: IF … THEN …"""
        glue = " and " if self.join is Join.ALL else " or "
        cond = glue.join(f.sentence(app_source) for f in self.filters)
        head = f"IF a contact in {app_source}" + (f" {cond}" if cond else "")
        tail = f"THEN create or update it in {app_target}"
        if not self.creates:
            tail = f"THEN update it in {app_target}"
        if self.actions:
            tail += " and " + ", ".join(a.sentence() for a in self.actions)
        return f"{head} {tail}"


def new_rule_id() -> str:
    return "r" + uuid.uuid4().hex[:8]


def default_rules() -> list[Rule]:
    """Two rules, one per side, no filters, no actions: every contact syncs both ways."""
    return [Rule("ra", Side.A), Rule("rb", Side.B)]


def rules_from_config(config: Mapping[str, Any]) -> list[Rule]:
    raw = config.get("rules")
    if raw is None:
        return default_rules()
    try:
        rules = [Rule.from_json(r) for r in raw]
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"The connection's rules are malformed ({err}).") from None
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise ConfigError("The connection's rules are malformed (two rules share an id).")
    return rules


def rules_to_config(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    return [r.to_json() for r in rules]


# --- checks ----------------------------------------------------------------------------------


def _checked_filter(f: Filter) -> Filter:
    ok = {
        FilterKind.FIELD: set(FIELD_OPS),
        FilterKind.SEGMENT: {Op.HAS, Op.HAS_NOT},
        FilterKind.SUBSCRIPTION: {Op.SUBSCRIBED, Op.UNSUBSCRIBED},
        FilterKind.EXISTS: {Op.EXISTS},
    }[f.kind]
    if f.op not in ok:
        raise ValueError(f"a {f.kind.value} filter cannot use {f.op.value!r}")
    if f.kind is FilterKind.FIELD and not f.field:
        raise ValueError("a field filter needs a field")
    if f.kind is FilterKind.SEGMENT and not f.value.strip():
        raise ValueError("a segment filter needs a segment name")
    if f.kind is FilterKind.FIELD and f.op not in NO_VALUE_OPS and f.value == "":
        raise ValueError(f"the filter “{f.field} {f.op.value}” needs a value")
    return f


def _checked_action(a: Action) -> Action:
    if a.kind is ActionKind.SET_FIELD and not a.field:
        raise ValueError("a set-field action needs a field")
    if a.kind is not ActionKind.SET_FIELD and not a.value.strip():
        raise ValueError("a segment action needs a segment name")
    return a


def mirror_problem(rule: Rule) -> str:
    """Why this rule has no mirror ("" when it has one). Raises nothing."""
    if rule.join is Join.ANY and len(rule.filters) > 1:
        return "a rule joined by ANY cannot be mirrored (its mirror would need every segment)"
    if not rule.filters and not rule.actions:
        return ""
    for f in rule.filters:
        if f.kind is FilterKind.SEGMENT:
            continue
        if f.kind is FilterKind.FIELD and f.op is Op.IS:
            continue
        return f"the filter “{f.sentence('')}” has no opposite action"
    if not rule.actions:
        return "a rule without actions has nothing to mirror"
    return ""


def mirror(rule: Rule) -> Rule:
    """The rule the "other way around" toggle implies: IF target has what the actions give
    THEN give what the filters ask for on the source (SPEC §3)."""
    filters: list[Filter] = []
    for a in rule.actions:
        if a.kind is ActionKind.ADD_SEGMENT:
            filters.append(Filter(FilterKind.SEGMENT, Op.HAS, a.value))
        elif a.kind is ActionKind.REMOVE_SEGMENT:
            filters.append(Filter(FilterKind.SEGMENT, Op.HAS_NOT, a.value))
        else:
            filters.append(Filter(FilterKind.FIELD, Op.IS, a.value, a.field))
    actions: list[Action] = []
    for f in rule.filters:
        if f.kind is FilterKind.SEGMENT:
            kind = ActionKind.ADD_SEGMENT if f.op is Op.HAS else ActionKind.REMOVE_SEGMENT
            actions.append(Action(kind, f.value))
        elif f.kind is FilterKind.FIELD and f.op is Op.IS:
            actions.append(Action(ActionKind.SET_FIELD, f.value, f.field))
    return replace(
        rule,
        id=rule.id + "~",
        source=rule.target,
        filters=tuple(filters),
        actions=tuple(actions),
        join=Join.ALL,
        other_way=False,
        mirror_of=rule.id,
    )


# --- the CLI's words ---------------------------------------------------------------------------

_OPS_PATTERN = "|".join(
    re.escape(s) for s in sorted([*OP_SPELLINGS, "has not", "has"], key=len, reverse=True)
)
_FILTER_RE = re.compile(rf"^\s*(?P<field>.+?)\s+(?P<op>{_OPS_PATTERN})(?:\s+(?P<value>.*))?\s*$")
SEGMENT_WORDS = frozenset({"segment", "segments", "tag", "tags", "list", "lists", "group", "label"})
SUBSCRIPTION_WORDS = frozenset({"subscription", "subscribed", "status"})


def parse_filter(text: str) -> Filter:
    """``"organization contains Acme"``, ``"birthday > 1990-01-01"``, ``"notes is empty"``,
    ``"segment has Customers"``, ``"subscription is unsubscribed"``."""
    match = _FILTER_RE.match(text)
    if not match:
        raise ConfigError(
            f"Cannot read the filter {text!r}: write FIELD OP VALUE, with OP one of "
            + ", ".join(op.value for op in FIELD_OPS)
            + " (or > and <)."
        )
    name = match["field"].strip()
    spelled = match["op"]
    value = (match["value"] or "").strip()
    quoted = len(value) >= 2 and {'"': '"', "'": "'", "“": "”"}.get(value[0]) == value[-1]
    if quoted:
        value = value[1:-1]  # a quoted value is literal: “empty” is the word, not Op.EMPTY
    try:
        if name.casefold() in SEGMENT_WORDS and spelled in ("has", "has not", "is", "is not"):
            op = Op.HAS if spelled in ("has", "is") else Op.HAS_NOT
            return _checked_filter(Filter(FilterKind.SEGMENT, op, value))
        word = value.casefold()
        if name.casefold() in SUBSCRIPTION_WORDS and spelled == "is" and not quoted:
            if word in ("subscribed", "unsubscribed"):
                return _checked_filter(Filter(FilterKind.SUBSCRIPTION, Op(word)))
            if name.casefold() != "status":  # "status is Lead": a field called Status
                raise ValueError("the subscription is either subscribed or unsubscribed")
        if spelled in ("has", "has not"):
            raise ValueError("'has' is for segments: write “segment has NAME”")
        op = OP_SPELLINGS[spelled]
        if quoted:
            return _checked_filter(Filter(FilterKind.FIELD, op, value, name))
        if op is Op.IS and value.casefold() in ("empty", "true", "false"):
            op = {"empty": Op.EMPTY, "true": Op.TRUE, "false": Op.FALSE}[value.casefold()]
            value = ""
        if op is Op.IS_NOT and value.casefold() == "empty":
            op, value = Op.NOT_EMPTY, ""
        return _checked_filter(Filter(FilterKind.FIELD, op, value, name))
    except ValueError as err:
        raise ConfigError(f"Cannot read the filter {text!r}: {err}.") from None


def parse_set(text: str) -> Action:
    """``"title=Customer"`` → set title to Customer."""
    if "=" not in text:
        raise ConfigError(f"Write --then-set FIELD=VALUE, not {text!r}.")
    name, value = (x.strip() for x in text.split("=", 1))
    if not name:
        raise ConfigError(f"--then-set needs a field name: {text!r}.")
    return Action(ActionKind.SET_FIELD, value, name)


@dataclass(slots=True)
class RuleDraft:
    """A rule being built from the CLI's or the editor's parts."""

    source: Side
    join: Join = Join.ALL
    filters: list[Filter] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    undo: bool = True
    other_way: bool = False

    def build(self, rule_id: str | None = None) -> Rule:
        for a in self.actions:
            try:
                _checked_action(a)
            except ValueError as err:
                raise ConfigError(f"Cannot add the rule: {err}.") from None
        rule = Rule(
            rule_id or new_rule_id(),
            self.source,
            tuple(self.filters),
            tuple(self.actions),
            self.join,
            self.undo,
            self.other_way,
        )
        if rule.other_way:
            why = mirror_problem(rule)
            if why:
                raise ConfigError(f"“Other way around” is not possible here: {why}.")
        return rule
