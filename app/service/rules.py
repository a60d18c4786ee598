"""A connection's IF/THEN rules: read as sentences with live counts, add, remove, move, set.

Counts come from the local index (no app is read); adding or enabling a rule opens the apps
to check it against their fields and the enabled mappings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from app.errors import ConfigError, PairsyncError
from app.model import Direction, Schema, Side
from app.rules import edit as rule_edit
from app.rules.evaluate import RuleSet
from app.rules.model import Rule, RuleDraft, mirror, mirror_problem, rules_to_config
from app.service.core import Apps, _rules
from app.service.mappings import Mappings
from app.service.types import RuleInfo, RuleMirror
from app.store.rows import ConnectionRow


class Rules(Mappings):
    """Which contacts sync, and what happens to their counterparts (SPEC §3)."""

    def rules(self, name: str, *, counts: bool = True) -> list[RuleInfo]:
        """The rules, top first, as sentences, with what each one matches now (counted from
        the local index: no app is read). Before the first sync nothing is indexed, so
        nothing is counted: the counts are None ("—"), not a misleading 0."""
        conn = self._connections.connection(name)
        rules = _rules(conn)
        names, specs = self._rule_context(conn)
        ruleset = RuleSet(rules, Direction.parse(conn.direction), specs)
        found = None
        if counts and self._has_synced(conn):
            found = rule_edit.count_matches(
                ruleset,
                {
                    side: self._connections.index_records(conn.id, side.value)
                    for side in (Side.A, Side.B)
                },
            )
        return [_rule_info(r, i, ruleset, names, found) for i, r in enumerate(rules, 1)]

    def has_synced(self, name: str) -> bool:
        """Whether the connection has run once (so its contacts are indexed and counted)."""
        return self._has_synced(self._connections.connection(name))

    def _has_synced(self, conn: ConnectionRow) -> bool:
        return self._connections.last_run(conn.id) is not None

    def _rule_context(
        self, conn: ConnectionRow
    ) -> tuple[dict[Side, str], dict[Side, dict[str, Any]]]:
        """App names and field specs for sentences and typed filters; account names stand in
        when an app cannot be opened right now (e.g. it needs signing in again)."""
        names: dict[Side, str] = {}
        specs: dict[Side, dict[str, Any]] = {}
        for side, account_id in ((Side.A, conn.account_a_id), (Side.B, conn.account_b_id)):
            acc = self._connections.account_by_id(account_id)
            names[side], specs[side] = acc.name, {}
            try:
                app = self._connector(acc)
                try:
                    specs[side] = {f.key: f for f in app.fields()}
                finally:
                    app.close()
            except PairsyncError:
                pass
        return names, specs

    def add_rule(self, name: str, draft: RuleDraft, position: int | None = None) -> RuleInfo:
        conn = self._connections.connection(name)
        rule = draft.build()
        with self.opened(conn) as apps:
            self._check_rule(conn, apps, rule)
        rules = _rules(conn)
        at = len(rules) if position is None else position - 1
        if not 0 <= at <= len(rules):
            raise ConfigError(f"A position is between 1 and {len(rules) + 1}.")
        rules.insert(at, rule)
        self._save_rules(conn, rules)
        return self.rules(name)[at]

    def _check_rule(self, conn: ConnectionRow, apps: Apps, rule: Rule) -> None:
        rule_edit.check_rule(
            rule,
            {s: Schema(a.fields()) for s, a in apps.items()},
            {s: a.info.capabilities for s, a in apps.items()},
            self._views(conn, apps),
            {s: a.info.name for s, a in apps.items()},
        )

    def remove_rule(self, name: str, ref: str) -> None:
        conn = self._connections.connection(name)
        rules = _rules(conn)
        del rules[rule_edit.find(rules, ref)]
        self._save_rules(conn, rules)

    def move_rule(self, name: str, ref: str, position: int) -> None:
        conn = self._connections.connection(name)
        self._save_rules(conn, rule_edit.moved(_rules(conn), ref, position))

    def set_rule(
        self,
        name: str,
        ref: str,
        *,
        enabled: bool | None = None,
        undo: bool | None = None,
        other_way: bool | None = None,
    ) -> RuleInfo:
        """Turn a rule on or off, or flip its Undo / Other-way-around toggles."""
        conn = self._connections.connection(name)
        rules = _rules(conn)
        i = rule_edit.find(rules, ref)
        old = rules[i]
        rule = replace(
            old,
            enabled=old.enabled if enabled is None else enabled,
            undo=old.undo if undo is None else undo,
            other_way=old.other_way if other_way is None else other_way,
        )
        if rule.other_way and not old.other_way:
            why = mirror_problem(rule)
            if why:
                raise ConfigError(f"“Other way around” is not possible here: {why}.")
        if rule.enabled and (not old.enabled or rule.other_way):
            with self.opened(conn) as apps:
                self._check_rule(conn, apps, rule)
        rules[i] = rule
        self._save_rules(conn, rules)
        return self.rules(name, counts=False)[i]

    def _save_rules(self, conn: ConnectionRow, rules: list[Rule]) -> None:
        data = json.loads(conn.config or "{}")
        data["rules"] = rules_to_config(rules)
        self._connections.update_connection(conn.name, config=json.dumps(data, ensure_ascii=False))


def _rule_info(
    rule: Rule,
    position: int,
    ruleset: RuleSet,
    names: Mapping[Side, str],
    counts: Mapping[str, int] | None,
) -> RuleInfo:
    """A rule as the fronts show it: its sentence, whether it is in force, what it matches."""
    mirror_info = None
    if rule.other_way:
        m = ruleset.by_id.get(rule.id + "~") or mirror(rule)
        mirror_info = RuleMirror(
            m.sentence(names[m.source], names[m.target]),
            m.id in ruleset.by_id,
            None if counts is None else counts.get(m.id, 0),
        )
    return RuleInfo(
        rule=rule,
        position=position,
        sentence=rule.sentence(names[rule.source], names[rule.target]),
        active=rule.id in ruleset.by_id,
        ignored=ruleset.ignored.get(rule.id, ""),
        undo_effective=rule.undo and ruleset.undo_on,
        count=None if counts is None else counts.get(rule.id, 0),
        mirror=mirror_info,
        undo_note=""
        if ruleset.undo_on or not rule.undo
        else "Undo works in two-way connections only.",
    )
