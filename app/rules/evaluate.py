"""Rules at work: which contacts are in scope, which actions their counterparts get, and
which earlier actions are undone (SPEC §3). Pure functions over records: no store, no apps.

The engine keeps, per binding, an **action log**: every action Pairsync itself applied to the
counterpart (which rule, what it changed, the value before). Undo reverses exactly those
entries and nothing else, so a segment the user had put there by hand is never taken away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.mapping.canonical import canon_text
from app.mapping.convert import parse_boolean, parse_date, parse_datetime, parse_number
from app.mapping.fields import Direction, Patch
from app.model import (
    OPT_OUT_FIELD,
    Address,
    FieldSpec,
    FieldType,
    FieldValue,
    Labeled,
    Record,
    Side,
)
from app.rules.model import (
    Action,
    ActionKind,
    Filter,
    FilterKind,
    Join,
    Op,
    Rule,
    mirror,
)

UNSUBSCRIBES_SEGMENT = "Pairsync Unsubscribes"


# --- filters ---------------------------------------------------------------------------------


def _texts(value: FieldValue | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    out: list[str] = []
    for item in value:
        if isinstance(item, Labeled):
            text = item.value
        elif isinstance(item, Address):
            text = ", ".join(p for p in item.parts() if p)
        else:
            text = str(item)
        if text.strip():
            out.append(text)
    return out


def _ordered(kind: FieldType, text: str) -> Decimal | str | None:
    """A value as something ``<``/``>`` can compare, or None when it is not of the kind."""
    if kind is FieldType.NUMBER:
        return parse_number(text)
    if kind is FieldType.DATE:
        return parse_date(text)
    if kind is FieldType.DATETIME:
        return parse_datetime(text) or parse_date(text)
    number = parse_number(text)
    if number is not None:
        return number
    return parse_date(text)


def _compare(kind: FieldType, have: str, want: str, op: Op) -> bool:
    a, b = _ordered(kind, have), _ordered(kind, want)
    if a is None or b is None or type(a) is not type(b):
        return False
    if isinstance(a, str) and a.startswith("--") != str(b).startswith("--"):
        return False  # a date without a year is neither before nor after a full date
    return bool(a > b) if op is Op.GREATER else bool(a < b)  # type: ignore[operator]


def field_matches(f: Filter, value: FieldValue | None, spec: FieldSpec | None) -> bool:
    texts = _texts(value)
    folded = [canon_text(t).casefold() for t in texts]
    want = canon_text(f.value).casefold()
    kind = spec.type if spec is not None else FieldType.TEXT
    if f.op is Op.EMPTY:
        return not texts
    if f.op is Op.NOT_EMPTY:
        return bool(texts)
    if f.op in (Op.IS, Op.IS_NOT):
        same = want in folded or (
            kind in (FieldType.NUMBER, FieldType.DATE, FieldType.DATETIME)
            and any(_ordered(kind, t) == _ordered(kind, f.value) is not None for t in texts)
        )
        return same if f.op is Op.IS else not same
    if f.op is Op.CONTAINS:
        return any(want in t for t in folded)
    if f.op is Op.NOT_CONTAINS:
        return not any(want in t for t in folded)
    if f.op is Op.STARTS_WITH:
        return any(t.startswith(want) for t in folded)
    if f.op in (Op.GREATER, Op.LESS):
        return any(_compare(kind, t, f.value, f.op) for t in texts)
    if f.op in (Op.TRUE, Op.FALSE):
        flags = [parse_boolean(t) for t in texts]
        return (f.op is Op.TRUE) in flags
    return False


def filter_matches(f: Filter, record: Record, exists: bool, specs: Mapping[str, FieldSpec]) -> bool:
    if f.kind is FilterKind.EXISTS:
        return exists
    if f.kind is FilterKind.SEGMENT:
        has = canon_text(f.value).casefold() in {canon_text(s).casefold() for s in record.segments}
        return has if f.op is Op.HAS else not has
    if f.kind is FilterKind.SUBSCRIPTION:
        if f.op is Op.UNSUBSCRIBED:
            return record.subscribed is False
        return record.subscribed is True
    return field_matches(f, record.fields.get(f.field), specs.get(f.field))


def rule_matches(rule: Rule, record: Record, exists: bool, specs: Mapping[str, FieldSpec]) -> bool:
    if not rule.filters:
        return True
    results = (filter_matches(f, record, exists, specs) for f in rule.filters)
    return all(results) if rule.join is Join.ALL else any(results)


# --- the rules in force ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleConflict:
    target: Side
    what: str
    """``segment:<name>`` or ``field:<key>``"""
    winner: str
    loser: str
    message: str


@dataclass(slots=True)
class RuleOutcome:
    """What the rules say about one bound pair this run."""

    in_scope: bool
    matched: dict[Side, list[str]]
    """Per source side, the ids of the rules that match (mirror ids end with ``~``)."""
    patches: dict[Side, Patch]
    log: list[dict[str, Any]]
    conflicts: list[RuleConflict] = field(default_factory=list)
    undone: int = 0


class RuleSet:
    """The enabled rules of a connection, as the direction allows them, in the user's order
    (a mirror rule stands right after the rule it mirrors)."""

    def __init__(
        self,
        rules: Sequence[Rule],
        direction: Direction,
        specs: Mapping[Side, Mapping[str, FieldSpec]] | None = None,
    ) -> None:
        self.all = list(rules)
        self.direction = direction
        self.specs: Mapping[Side, Mapping[str, FieldSpec]] = specs or {Side.A: {}, Side.B: {}}
        self.active: list[Rule] = []
        self.ignored: dict[str, str] = {}
        for rule in rules:
            if not rule.enabled:
                self.ignored[rule.id] = "turned off"
                continue
            for r in (rule, mirror(rule)) if rule.other_way else (rule,):
                if direction.writes(r.target):
                    self.active.append(r)
                elif r is rule:
                    self.ignored[rule.id] = (
                        "one-way connection: contacts of this side are never written across"
                    )
        self.by_id = {r.id: r for r in self.active}
        self.known = {r.id for r in rules} | {r.id + "~" for r in rules if r.other_way}
        self.undo_on = direction is Direction.TWO_WAY

    def label(self, rule: Rule) -> str:
        """How Health names a rule: its number in the list (mirrors: "2, other way")."""
        base = rule.mirror_of or rule.id
        number = next((i for i, r in enumerate(self.all, 1) if r.id == base), 0)
        return f"{number}, other way" if rule.mirror_of else str(number)

    def fingerprint(self) -> str:
        return repr([r.to_json() for r in self.all]) + self.direction.value

    def managed_segments(self) -> frozenset[str]:
        """Segments that rules write (or, for rules with actions, read): the Segments mapping
        leaves them to the rules. Turned-off rules count too, so switching a rule off never
        lets its segments spread through the mapping; removing a rule hands them back."""
        out: set[str] = set()
        every = [*self.all, *(mirror(r) for r in self.all if r.other_way)]
        for r in every:
            out.update(canon_text(a.value) for a in r.actions if a.kind is not ActionKind.SET_FIELD)
            if r.actions or r.other_way:
                out.update(canon_text(f.value) for f in r.filters if f.kind is FilterKind.SEGMENT)
        return frozenset(out)

    def action_fields(self) -> dict[Side, set[str]]:
        """Per target side, the fields rules set (no mapping may write them as well)."""
        out: dict[Side, set[str]] = {Side.A: set(), Side.B: set()}
        for r in self.active:
            out[r.target].update(a.field for a in r.actions if a.kind is ActionKind.SET_FIELD)
        return out

    def matching(self, side: Side, record: Record, exists: bool) -> list[Rule]:
        specs = self.specs.get(side, {})
        return [
            r for r in self.active if r.source is side and rule_matches(r, record, exists, specs)
        ]

    def can_create(self, side: Side, record: Record) -> bool:
        """A contact with no counterpart: does any rule ask for it to be created across?"""
        return bool(self.matching(side, record, exists=False))

    # --- actions and undo ---------------------------------------------------------------------

    def resolve(
        self, matched: Iterable[Rule]
    ) -> tuple[list[tuple[Rule, Action]], list[RuleConflict]]:
        """The actions to apply, top rule first; a later action that contradicts an earlier
        one (add vs remove the same segment, two values for one field) is skipped."""
        chosen: dict[str, tuple[Rule, Action]] = {}
        conflicts: list[RuleConflict] = []
        order: list[str] = []
        for rule in matched:
            for action in rule.actions:
                key = action.target
                have = chosen.get(key)
                if have is None:
                    chosen[key] = (rule, action)
                    order.append(key)
                    continue
                first_rule, first = have
                same = _same_action(first.to_json(), action)
                if not same:
                    conflicts.append(
                        RuleConflict(
                            rule.target,
                            key,
                            first_rule.id,
                            rule.id,
                            f"Rules {self.label(first_rule)} and {self.label(rule)} disagree: "
                            f"{first.sentence()} (rule {self.label(first_rule)}) was applied, "
                            f"{action.sentence()} (rule {self.label(rule)}) was not.",
                        )
                    )
        return [chosen[k] for k in order], conflicts

    def create_patch(
        self, source: Side, record: Record, unsubscribes: bool
    ) -> tuple[Patch, list[dict[str, Any]]]:
        """Actions for a contact about to be created on the other side, and their log."""
        patch = Patch()
        log: list[dict[str, Any]] = []
        target = source.other
        actions, _ = self.resolve(self.matching(source, record, exists=False))
        for rule, action in actions:
            if action.kind is ActionKind.ADD_SEGMENT:
                patch.add_segments.add(action.value)
                log.append(_entry(rule, target, action, None))
            elif action.kind is ActionKind.SET_FIELD:
                patch.fields[action.field] = action.value
                log.append(_entry(rule, target, action, None))
        if unsubscribes and record.subscribed is False:
            patch.add_segments.add(UNSUBSCRIBES_SEGMENT)
        return patch, log

    def pair_outcome(
        self, records: Mapping[Side, Record], log: Sequence[Mapping[str, Any]]
    ) -> RuleOutcome:
        outcome, undo = self._pair_outcome(records, records, log)
        if outcome.undone:
            # What Undo takes back this run is not there for the rules to match on: else a
            # mirror rule would put back, from the very segment being taken away, the one the
            # user removed, and the pair would flip every run ("other way around" ping-pong).
            after = {s: _after(records[s], undo[s]) for s in (Side.A, Side.B)}
            outcome, _ = self._pair_outcome(after, records, log)
        return outcome

    def _pair_outcome(
        self,
        view: Mapping[Side, Record],
        records: Mapping[Side, Record],
        log: Sequence[Mapping[str, Any]],
    ) -> tuple[RuleOutcome, dict[Side, Patch]]:
        """The outcome with the rules matched on ``view``; the undo part of the patches too."""
        matched = {s: self.matching(s, view[s], exists=True) for s in (Side.A, Side.B)}
        undo = {Side.A: Patch(), Side.B: Patch()}
        outcome = RuleOutcome(
            in_scope=bool(matched[Side.A] or matched[Side.B]),
            matched={s: [r.id for r in matched[s]] for s in (Side.A, Side.B)},
            patches={Side.A: Patch(), Side.B: Patch()},
            log=[],
        )
        for target in (Side.A, Side.B):
            source = target.other
            actions, conflicts = self.resolve(matched[source])
            outcome.conflicts.extend(conflicts)
            mine = [dict(e) for e in log if e.get("side") == target.value]
            asserted = {a.target: (r, a) for r, a in actions}
            kept: list[dict[str, Any]] = []
            carried_before: dict[str, Any] = {}
            for e in mine:
                what = e["what"]
                if what in asserted and _same_action(e, asserted[what][1]):
                    # Still asserted (by its rule, or by another that takes the entry over, so
                    # the change is undone when that rule lets go too).
                    kept.append({**e, "rule": asserted[what][0].id})
                    continue
                if what in asserted:
                    carried_before[what] = e.get("before")
                    continue  # a different current action overrides it
                if self._should_undo(e["rule"]):
                    if self._undo(e, records[target], undo[target]):
                        outcome.undone += 1
                    continue
                if e["rule"] in self.known and e["rule"] not in self.by_id:
                    kept.append(e)  # rule turned off: keep the entry, undo nothing
            owned = {e["what"] for e in kept}
            for rule, action in actions:
                before = self._apply(action, records[target], outcome.patches[target])
                if before is _UNCHANGED or action.target in owned:
                    continue
                if action.target in carried_before:
                    before = carried_before[action.target]
                kept.append(_entry(rule, target, action, before))
            outcome.patches[target].merge(undo[target])
            outcome.log.extend(kept)
        return outcome, undo

    def _should_undo(self, rule_id: str) -> bool:
        rule = self.by_id.get(rule_id)
        return self.undo_on and rule is not None and rule.undo

    @staticmethod
    def _apply(action: Action, target: Record, patch: Patch) -> Any:
        """Add the action to the patch if the target does not have it yet; returns the value
        before (``_UNCHANGED`` when nothing had to change)."""
        names = {canon_text(s).casefold(): s for s in target.segments}
        key = canon_text(action.value).casefold()
        if action.kind is ActionKind.ADD_SEGMENT:
            if key in names:
                return _UNCHANGED
            patch.add_segments.add(action.value)
            return None
        if action.kind is ActionKind.REMOVE_SEGMENT:
            if key not in names:
                return _UNCHANGED
            patch.remove_segments.update(
                s for s in target.segments if canon_text(s).casefold() == key
            )
            return None
        current = target.fields.get(action.field)
        if canon_text(" ".join(_texts(current))) == canon_text(action.value):
            return _UNCHANGED
        patch.fields[action.field] = action.value
        return current if isinstance(current, str) else " ".join(_texts(current))

    @staticmethod
    def _undo(entry: Mapping[str, Any], target: Record, patch: Patch) -> bool:
        names = {canon_text(s).casefold(): s for s in target.segments}
        kind = ActionKind(entry["kind"])
        key = canon_text(entry["value"]).casefold()
        if kind is ActionKind.ADD_SEGMENT:
            if key in names:
                patch.remove_segments.add(names[key])
                return True
            return False
        if kind is ActionKind.REMOVE_SEGMENT:
            if key not in names:
                patch.add_segments.add(entry["value"])
                return True
            return False
        current = target.fields.get(entry["field"])
        if canon_text(" ".join(_texts(current))) != canon_text(entry["value"]):
            return False  # changed since we set it: the user's value stays
        patch.fields[entry["field"]] = entry.get("before") or ""
        return True


_UNCHANGED = object()


def _after(record: Record, patch: Patch) -> Record:
    """The record as it will be once the patch is written."""
    segments = (set(record.segments) - patch.remove_segments) | patch.add_segments
    return Record(
        record.id,
        record.version,
        {**record.fields, **patch.fields},
        frozenset(segments),
        record.subscribed,
    )


def _same_action(entry: Mapping[str, Any], action: Action) -> bool:
    """Same kind, same value (a segment name in any case; a field value as it is spelled)."""
    if entry["kind"] != action.kind.value:
        return False
    have, want = canon_text(entry["value"]), canon_text(action.value)
    if action.kind is ActionKind.SET_FIELD:
        return have == want
    return have.casefold() == want.casefold()


def _entry(rule: Rule, target: Side, action: Action, before: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "rule": rule.id,
        "side": target.value,
        "kind": action.kind.value,
        "what": action.target,
        "value": action.value,
    }
    if action.kind is ActionKind.SET_FIELD:
        data["field"] = action.field
        data["before"] = before
    return data


def unsubscribe_patches(
    records: Mapping[Side, Record],
    seen: Mapping[str, Any],
    writable: Mapping[Side, bool],
    opt_out: Mapping[Side, bool],
) -> tuple[dict[Side, Patch], dict[str, Any]]:
    """SPEC §8: a contact that *becomes* unsubscribed on one side puts its counterpart in
    "Pairsync Unsubscribes" (and sets that app's own opt-out when asked and possible).

    ``seen`` is the status each side had when the pair was last synced; a status first seen
    now counts as a change. Subscribing again does nothing: nobody is re-subscribed.
    """
    patches = {Side.A: Patch(), Side.B: Patch()}
    now: dict[str, Any] = {}
    for side in (Side.A, Side.B):
        status = records[side].subscribed
        now[side.value] = status
        if status is not False or seen.get(side.value) is False:
            continue
        target = side.other
        if not writable[target]:
            # Not seen yet as far as the other app is concerned: tagged once it may be written.
            now[side.value] = seen.get(side.value)
            continue
        other = records[target]
        if canon_text(UNSUBSCRIBES_SEGMENT).casefold() not in {
            canon_text(s).casefold() for s in other.segments
        }:
            patches[target].add_segments.add(UNSUBSCRIBES_SEGMENT)
        if opt_out[target] and other.subscribed is not False:
            patches[target].fields[OPT_OUT_FIELD] = "false"
    return patches, now
