"""Editing a connection's rules: checks against the apps and the mappings, list operations,
and the view the CLI and the editor show (sentence, state, live count)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from app.errors import ConfigError
from app.mapping.config import MappingView
from app.mapping.fields import Direction
from app.model import Capabilities, Record, Schema, Side
from app.rules.evaluate import RuleSet, rule_matches
from app.rules.model import ActionKind, FilterKind, Rule, mirror, mirror_problem


def check_rule(
    rule: Rule,
    schemas: Mapping[Side, Schema],
    caps: Mapping[Side, Capabilities],
    views: Sequence[MappingView],
    names: Mapping[Side, str],
) -> None:
    """Refuse (ConfigError) a rule the apps cannot run, or whose action fights a mapping."""
    source, target = rule.source, rule.target
    for f in rule.filters:
        if f.kind is FilterKind.FIELD and schemas[source].get(f.field) is None:
            keys = ", ".join(s.key for s in schemas[source].fields)
            raise ConfigError(f"{names[source]} has no field {f.field!r}; its fields are: {keys}.")
        if f.kind is FilterKind.SEGMENT and not caps[source].segments:
            raise ConfigError(f"{names[source]} has no segments to filter on.")
        if f.kind is FilterKind.SUBSCRIPTION and not caps[source].subscription:
            raise ConfigError(
                f"{names[source]} has no subscription status. For a CSV file or a vCard folder, "
                "name the column or property that holds it in the account "
                "(--set subscription=NAME)."
            )
    for a in rule.actions:
        if a.kind is not ActionKind.SET_FIELD:
            if not caps[target].segments:
                raise ConfigError(f"{names[target]} has no segments to add contacts to.")
            continue
        spec = schemas[target].get(a.field)
        if spec is None:
            keys = ", ".join(s.key for s in schemas[target].fields if s.writable and not s.multi)
            raise ConfigError(
                f"{names[target]} has no field {a.field!r}; fields a rule can set: {keys}."
            )
        if not spec.writable:
            raise ConfigError(f"{spec.label} is read-only in {names[target]}.")
        if spec.multi:
            raise ConfigError(
                f"{spec.label} holds a list in {names[target]}; a rule sets single fields only."
            )
        if spec.choices and a.value not in spec.choices:
            raise ConfigError(
                f"{spec.label} in {names[target]} takes one of: {', '.join(spec.choices)}."
            )
        clash = mapping_writing(views, target, a.field)
        if clash is not None:
            raise ConfigError(
                f"The mapping {clash.label} ({clash.key}) already writes {spec.label} in "
                f"{names[target]}; a rule may not write it too (they would fight). Turn the "
                f"mapping off first: pairsync connection toggle NAME {clash.key} off."
            )
    if rule.other_way:
        why = mirror_problem(rule)
        if why:
            raise ConfigError(f"“Other way around” is not possible here: {why}.")
        check_rule(replace(mirror(rule), other_way=False), schemas, caps, views, names)


def mapping_writing(views: Sequence[MappingView], side: Side, field: str) -> MappingView | None:
    """The active mapping that writes ``field`` into ``side``, if any."""
    for v in views:
        if not v.active or v.effective is None:
            continue
        if field in (v.fields_a if side is Side.A else v.fields_b) and v.effective.writes(side):
            return v
    return None


def rule_clash(rules: Sequence[Rule], views: Sequence[MappingView], direction: Direction) -> str:
    """Why this set of mappings fights an enabled rule ("" when it does not)."""
    active = RuleSet(rules, direction)
    for target, fields in active.action_fields().items():
        for key in sorted(fields):
            view = mapping_writing(views, target, key)
            if view is not None:
                return (
                    f"A rule sets {key} in side {target.value.upper()}; the mapping {view.key} "
                    "may not write it too. Change or remove the rule first."
                )
    return ""


def find(rules: Sequence[Rule], ref: str) -> int:
    """A rule by its number in the list (1 = top) or its id."""
    ref = ref.strip()
    if ref.isdigit():
        n = int(ref)
        if 1 <= n <= len(rules):
            return n - 1
    for i, r in enumerate(rules):
        if r.id == ref:
            return i
    listed = ", ".join(f"{i}={r.id}" for i, r in enumerate(rules, 1)) or "none"
    raise ConfigError(f"No rule {ref!r}; this connection's rules are: {listed}.")


def moved(rules: Sequence[Rule], ref: str, position: int) -> list[Rule]:
    if not 1 <= position <= len(rules):
        raise ConfigError(f"A position is between 1 and {len(rules)}.")
    out = list(rules)
    rule = out.pop(find(rules, ref))
    out.insert(position - 1, rule)
    return out


def count_matches(
    ruleset: RuleSet, index: Mapping[Side, Iterable[list[tuple[Record, bool]]]]
) -> dict[str, int]:
    """How many indexed contacts each rule (and mirror) matches now (exists = bound)."""
    counts = {r.id: 0 for r in ruleset.all}
    counts.update({r.id: 0 for r in ruleset.active})
    rules_of = {s: [r for r in ruleset.active if r.source is s] for s in (Side.A, Side.B)}
    disabled = [r for r in ruleset.all if r.id not in ruleset.by_id]
    for side in (Side.A, Side.B):
        mine = rules_of[side] + [r for r in disabled if r.source is side]
        if not mine:
            continue
        specs = ruleset.specs.get(side, {})
        for chunk in index[side]:
            for record, bound in chunk:
                for r in mine:
                    if rule_matches(r, record, bound, specs):
                        counts[r.id] += 1
    return counts
