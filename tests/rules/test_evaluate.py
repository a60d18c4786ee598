"""Rules at work: filters on records, scope, contradictions, actions, the action log and Undo
(SPEC §3), and Sync Unsubscribes (SPEC §8)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

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
    is_empty_value,
)
from app.rules.evaluate import (
    UNSUBSCRIBES_SEGMENT,
    RuleOutcome,
    RuleSet,
    field_matches,
    filter_matches,
    rule_matches,
    unsubscribe_patches,
)
from app.rules.model import (
    Action,
    ActionKind,
    Filter,
    FilterKind,
    Join,
    Op,
    Rule,
    default_rules,
)

A, B = Side.A, Side.B
TWO_WAY = Direction.TWO_WAY


def rec(
    segments: Sequence[str] = (), subscribed: bool | None = None, **fields: FieldValue
) -> Record:
    return Record("r1", "v1", dict(fields), frozenset(segments), subscribed)


def apply(record: Record, patch: Patch) -> Record:
    """The record as the app holds it after the patch: an empty value removes the field."""
    fields = dict(record.fields)
    for key, value in patch.fields.items():
        if is_empty_value(value):
            fields.pop(key, None)
        else:
            fields[key] = value
    segments = (set(record.segments) - patch.remove_segments) | patch.add_segments
    return Record(record.id, record.version, fields, frozenset(segments), record.subscribed)


def has(segment: str) -> Filter:
    return Filter(FilterKind.SEGMENT, Op.HAS, segment)


def has_not(segment: str) -> Filter:
    return Filter(FilterKind.SEGMENT, Op.HAS_NOT, segment)


def fld(name: str, op: Op, value: str = "") -> Filter:
    return Filter(FilterKind.FIELD, op, value, name)


EXISTS = Filter(FilterKind.EXISTS, Op.EXISTS)


def add(segment: str) -> Action:
    return Action(ActionKind.ADD_SEGMENT, segment)


def remove(segment: str) -> Action:
    return Action(ActionKind.REMOVE_SEGMENT, segment)


def set_field(name: str, value: str) -> Action:
    return Action(ActionKind.SET_FIELD, value, name)


def matches(f: Filter, value: FieldValue | None, kind: FieldType = FieldType.TEXT) -> bool:
    return field_matches(f, value, FieldSpec("x", "X", kind))


def one_sided(a: Record, b: Record | None = None) -> dict[Side, Record]:
    return {A: a, B: b if b is not None else rec()}


def outcome_then_apply(
    rs: RuleSet, recs: dict[Side, Record], log: Sequence[dict[str, Any]]
) -> tuple[RuleOutcome, dict[Side, Record]]:
    out = rs.pair_outcome(recs, log)
    return out, {s: apply(recs[s], out.patches[s]) for s in (A, B)}


# --- field filters: text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "have", "expected"),
    [
        (Op.IS, "Acme", "Acme", True),
        (Op.IS, "acme", "  ACME ", True),
        (Op.IS, "Acme  Inc", "acme inc", True),
        (Op.IS, "Acme", "Acme Inc", False),
        (Op.IS, "Acme", None, False),
        (Op.IS_NOT, "Acme", "ACME", False),
        (Op.IS_NOT, "Acme", "Acme Inc", True),
        (Op.IS_NOT, "Acme", None, True),
        (Op.CONTAINS, "me i", "ACME   INC", True),
        (Op.CONTAINS, "acme", "The Acme Company", True),
        (Op.CONTAINS, "acme", "Globex", False),
        (Op.CONTAINS, "acme", None, False),
        (Op.NOT_CONTAINS, "ACME", "the acme company", False),
        (Op.NOT_CONTAINS, "acme", "Globex", True),
        (Op.NOT_CONTAINS, "acme", None, True),
        (Op.STARTS_WITH, "ac", " Acme", True),
        (Op.STARTS_WITH, "me", "Acme", False),
        (Op.STARTS_WITH, "ac", None, False),
    ],
)
def test_text_ops(op: Op, value: str, have: str | None, expected: bool) -> None:
    assert matches(fld("x", op, value), have) is expected
    # without a field spec the field is read as text
    assert field_matches(fld("x", op, value), have, None) is expected


@pytest.mark.parametrize(
    ("value", "empty"),
    [
        (None, True),
        ("", True),
        ("  \t", True),
        ((), True),
        ((Labeled(" "), Labeled("")), True),
        ((Address(),), True),
        ((Address(label="home"),), True),
        ("x", False),
        ((Labeled("", "work"), Labeled("a@x.com")), False),
        ((Address(locality="Paris"),), False),
    ],
)
def test_empty_and_not_empty(value: FieldValue | None, empty: bool) -> None:
    assert matches(fld("x", Op.EMPTY), value) is empty
    assert matches(fld("x", Op.NOT_EMPTY), value) is not empty


EMAILS = (Labeled("Ann@Work.com", "work"), Labeled("ann@home.org", "home"))


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        (Op.IS, "ann@home.org", True),  # any of the values, not only the primary
        (Op.IS, " ANN@WORK.COM ", True),
        (Op.IS, "ann@", False),
        (Op.IS, "work", False),  # labels are not values
        (Op.IS_NOT, "ann@home.org", False),
        (Op.IS_NOT, "bob@x.com", True),
        (Op.CONTAINS, "@home", True),
        (Op.CONTAINS, "@other", False),
        (Op.NOT_CONTAINS, "@home", False),
        (Op.NOT_CONTAINS, "@other", True),
        (Op.STARTS_WITH, "ann@h", True),
        (Op.STARTS_WITH, "home", False),
    ],
)
def test_multi_value_emails(op: Op, value: str, expected: bool) -> None:
    assert matches(fld("emails", op, value), EMAILS, FieldType.EMAIL) is expected


def test_multi_value_phones_and_addresses() -> None:
    phones = (Labeled("+44 20 7946 0958", "mobile"), Labeled("020 1234", "work"))
    assert matches(fld("phones", Op.STARTS_WITH, "+44"), phones, FieldType.PHONE)
    assert matches(fld("phones", Op.CONTAINS, "1234"), phones, FieldType.PHONE)
    assert not matches(fld("phones", Op.CONTAINS, "5555"), phones, FieldType.PHONE)
    home = Address(street="1 Rue de la Paix", locality="Paris", country="France", label="home")
    work = Address(street="2 High St", locality="London", postcode="N1 1AA", country="UK")
    addresses = (home, work)
    assert matches(fld("addresses", Op.CONTAINS, "paris"), addresses, FieldType.ADDRESS)
    assert matches(fld("addresses", Op.CONTAINS, "london, n1 1aa"), addresses, FieldType.ADDRESS)
    assert matches(fld("addresses", Op.STARTS_WITH, "2 high"), addresses, FieldType.ADDRESS)
    assert not matches(fld("addresses", Op.CONTAINS, "home"), addresses, FieldType.ADDRESS)
    assert matches(fld("addresses", Op.NOT_CONTAINS, "Berlin"), addresses, FieldType.ADDRESS)
    assert not matches(fld("addresses", Op.NOT_CONTAINS, "uk"), addresses, FieldType.ADDRESS)


# --- numbers, dates, booleans --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "have", "expected"),
    [
        (Op.GREATER, "10", "9", False),  # numbers, not text ("9" > "10" as text)
        (Op.LESS, "10", "9", True),
        (Op.GREATER, "1000", "1,234.50", True),
        (Op.GREATER, "1000", "1.234,50", True),
        (Op.LESS, "1000", "€ 999", True),
        (Op.GREATER, "-1", "-3", False),
        (Op.GREATER, "5", "5", False),
        (Op.LESS, "5", "5", False),
        (Op.GREATER, "5", "", False),
        (Op.GREATER, "5", "lots", False),
        (Op.GREATER, "many", "7", False),
        (Op.IS, "1234.5", "1,234.50", True),
        (Op.IS, "1000", "1,000", True),
        (Op.IS, "1000", "1001", False),
        (Op.IS_NOT, "1000", "1,000", False),
        (Op.IS_NOT, "1000", "1001", True),
    ],
)
def test_numbers(op: Op, value: str, have: str, expected: bool) -> None:
    assert matches(fld("score", op, value), have, FieldType.NUMBER) is expected


@pytest.mark.parametrize(
    ("op", "value", "have", "expected"),
    [
        (Op.LESS, "1990-01-01", "1/31/1980", True),
        (Op.LESS, "1990-01-01", "19800131", True),
        (Op.GREATER, "1990-01-01", "31.12.1995", True),
        (Op.GREATER, "1990-01-01", "1980-01-31", False),
        (Op.GREATER, "1/1/1990", "1990-01-02", True),
        (Op.GREATER, "1990-01-01", "not a date", False),
        (Op.GREATER, "1990-01-01", "", False),
        (Op.IS, "1980-01-31", "1/31/1980", True),
        (Op.IS, "1980-01-31", "1980-01-30", False),
        (Op.IS_NOT, "1980-01-31", "1/31/1980", False),
        # a birthday without a year is neither before nor after a full date
        (Op.LESS, "1990-01-01", "--05-04", False),
        (Op.GREATER, "1900-01-01", "--05-04", False),
        (Op.LESS, "--06-01", "--05-04", True),
    ],
)
def test_dates(op: Op, value: str, have: str, expected: bool) -> None:
    assert matches(fld("birthday", op, value), have, FieldType.DATE) is expected


def test_datetimes() -> None:
    f_after = fld("met", Op.GREATER, "2024-01-01T12:00:00Z")
    assert matches(f_after, "2024-01-01T13:00:00Z", FieldType.DATETIME)
    assert matches(f_after, "2024-01-01T14:00:00+01:00", FieldType.DATETIME)  # 13:00 UTC
    assert not matches(f_after, "2024-01-01T12:30:00+01:00", FieldType.DATETIME)  # 11:30 UTC
    assert matches(fld("met", Op.LESS, "2024-01-02"), "2024-01-01T23:00:00Z", FieldType.DATETIME)


def test_greater_and_less_without_a_spec_guess_numbers_then_dates() -> None:
    assert field_matches(fld("x", Op.GREATER, "9"), "10", None)
    assert field_matches(fld("x", Op.LESS, "2000-01-01"), "1999-12-31", None)
    # a number is never compared with a date
    assert not field_matches(fld("x", Op.LESS, "2000-01-01"), "5", None)
    assert not field_matches(fld("x", Op.GREATER, "5"), "2000-01-01", None)


def test_greater_on_a_multi_value_field_is_any_value() -> None:
    scores = (Labeled("3"), Labeled("12"))
    assert matches(fld("s", Op.GREATER, "10"), scores, FieldType.NUMBER)
    assert matches(fld("s", Op.LESS, "5"), scores, FieldType.NUMBER)
    assert not matches(fld("s", Op.GREATER, "20"), scores, FieldType.NUMBER)


@pytest.mark.parametrize(
    ("have", "true", "false"),
    [
        ("true", True, False),
        ("Yes", True, False),
        (" 1 ", True, False),
        ("X", True, False),
        ("FALSE", False, True),
        ("no", False, True),
        ("0", False, True),
        ("", False, False),
        (None, False, False),
        ("maybe", False, False),
    ],
)
def test_booleans(have: str | None, true: bool, false: bool) -> None:
    assert matches(fld("vip", Op.TRUE), have, FieldType.BOOLEAN) is true
    assert matches(fld("vip", Op.FALSE), have, FieldType.BOOLEAN) is false


# --- segment, subscription, exists filters; joins --------------------------------------------


def test_segment_filters_ignore_case_and_spaces() -> None:
    r = rec(["Top  Customers", "VIP"])
    assert filter_matches(has("top customers"), r, False, {})
    assert filter_matches(has(" vip "), r, False, {})
    assert not filter_matches(has("Customers"), r, False, {})
    assert not filter_matches(has_not("TOP CUSTOMERS"), r, False, {})
    assert filter_matches(has_not("Customers"), r, False, {})
    assert filter_matches(has_not("VIP"), rec(), False, {})


@pytest.mark.parametrize(
    ("status", "subscribed", "unsubscribed"),
    [(True, True, False), (False, False, True), (None, False, False)],
)
def test_subscription_filters(status: bool | None, subscribed: bool, unsubscribed: bool) -> None:
    r = rec(subscribed=status)
    f_sub = Filter(FilterKind.SUBSCRIPTION, Op.SUBSCRIBED)
    f_unsub = Filter(FilterKind.SUBSCRIPTION, Op.UNSUBSCRIBED)
    assert filter_matches(f_sub, r, False, {}) is subscribed
    assert filter_matches(f_unsub, r, False, {}) is unsubscribed


def test_exists_filter_reads_only_whether_a_counterpart_exists() -> None:
    assert filter_matches(EXISTS, rec(), True, {})
    assert not filter_matches(EXISTS, rec(["X"], organization="Acme"), False, {})


def test_field_filter_uses_the_spec_of_its_own_field() -> None:
    specs = {"score": FieldSpec("score", "Score", FieldType.NUMBER)}
    r = rec(score="9", code="9")
    assert not filter_matches(fld("score", Op.GREATER, "10"), r, False, specs)
    assert filter_matches(fld("score", Op.LESS, "10"), r, False, specs)
    assert not filter_matches(fld("missing", Op.IS, "9"), r, False, specs)


@pytest.mark.parametrize(
    ("join", "segments", "expected"),
    [
        (Join.ALL, ["X", "Y"], True),
        (Join.ALL, ["X"], False),
        (Join.ALL, [], False),
        (Join.ANY, ["X"], True),
        (Join.ANY, ["Y"], True),
        (Join.ANY, [], False),
    ],
)
def test_all_and_any_joins(join: Join, segments: list[str], expected: bool) -> None:
    rule = Rule("r", A, (has("X"), has("Y")), join=join)
    assert rule_matches(rule, rec(segments), False, {}) is expected


def test_a_rule_without_filters_matches_everything() -> None:
    for join in Join:
        assert rule_matches(Rule("r", A, join=join), rec(), False, {})
        assert rule_matches(Rule("r", A, join=join), rec(["X"], organization="Acme"), True, {})


# --- the rule set: which rules are in force ------------------------------------------------------


def test_disabled_rules_are_ignored_with_a_reason() -> None:
    rs = RuleSet([Rule("r1", A, enabled=False), Rule("r2", A)], TWO_WAY)
    assert [r.id for r in rs.active] == ["r2"]
    assert rs.ignored == {"r1": "turned off"}
    assert rs.matching(A, rec(), exists=True) == [Rule("r2", A)]


@pytest.mark.parametrize(
    ("direction", "active", "ignored"),
    [
        (Direction.TWO_WAY, ["ra", "rb"], []),
        (Direction.A_TO_B, ["ra"], ["rb"]),
        (Direction.B_TO_A, ["rb"], ["ra"]),
    ],
)
def test_one_way_ignores_rules_whose_target_is_not_written(
    direction: Direction, active: list[str], ignored: list[str]
) -> None:
    rs = RuleSet(default_rules(), direction)
    assert [r.id for r in rs.active] == active
    assert sorted(rs.ignored) == ignored
    for rid in ignored:
        assert "one-way" in rs.ignored[rid]
    assert rs.undo_on is (direction is Direction.TWO_WAY)


def test_mirror_stands_right_after_its_rule() -> None:
    r1 = Rule("r1", A, (has("Customers"),), (add("Clients"),), other_way=True)
    r2 = Rule("r2", B, (has("Leads"),), (add("Prospects"),))
    rs = RuleSet([r1, r2], TWO_WAY)
    assert [r.id for r in rs.active] == ["r1", "r1~", "r2"]
    assert rs.by_id["r1~"].source is B and rs.by_id["r1~"].mirror_of == "r1"
    assert rs.label(rs.by_id["r1"]) == "1"
    assert rs.label(rs.by_id["r1~"]) == "1, other way"
    assert rs.label(rs.by_id["r2"]) == "2"
    assert [r.id for r in rs.matching(B, rec(["clients"]), exists=True)] == ["r1~"]


def test_one_way_keeps_only_the_half_of_a_mirrored_rule_it_can_write() -> None:
    r1 = Rule("r1", A, (has("Customers"),), (add("Clients"),), other_way=True)
    assert [r.id for r in RuleSet([r1], Direction.A_TO_B).active] == ["r1"]
    assert [r.id for r in RuleSet([r1], Direction.B_TO_A).active] == ["r1~"]


def test_can_create_is_false_for_update_only_rules() -> None:
    rs = RuleSet(
        [Rule("r1", A, (EXISTS,)), Rule("r2", A, (EXISTS, has("X")), join=Join.ANY)], TWO_WAY
    )
    assert not rs.can_create(A, rec())
    assert rs.matching(A, rec(), exists=True)
    assert rs.can_create(A, rec(["x"]))
    assert [r.id for r in rs.matching(A, rec(["x"]), exists=False)] == ["r2"]
    assert not rs.can_create(B, rec(["x"]))  # no rule sourced on B


def test_managed_segments_and_action_fields() -> None:
    rules = [
        Rule("r1", A, (has("Customers"),), (add("Clients"), set_field("title", "Customer"))),
        Rule("r2", B, (has("Read only"),)),  # no actions: its segment syncs as usual
        Rule("r3", B, (has("Leads"),), (remove(" Cold  leads "),)),
        Rule("r4", A, (has("Partners"),), (add("Partner"),), other_way=True),
        Rule("r5", A, (has("Off"),), (add("Off too"),), enabled=False),
    ]
    managed = {"Customers", "Clients", "Leads", "Cold leads", "Partners", "Partner"}
    rs = RuleSet(rules, TWO_WAY)
    # a rule turned off keeps its segments away from the Segments mapping too
    assert rs.managed_segments() == {*managed, "Off", "Off too"}
    assert rs.action_fields() == {A: set(), B: {"title"}}
    assert RuleSet(rules[:4], Direction.A_TO_B).managed_segments() == managed
    assert RuleSet(rules[1:2], TWO_WAY).managed_segments() == frozenset()
    # only active rules set fields
    assert RuleSet(rules, Direction.B_TO_A).action_fields() == {A: set(), B: set()}


def test_fingerprint_changes_with_the_rules_and_the_direction() -> None:
    r = Rule("r1", A, (has("X"),))
    base = RuleSet([r], TWO_WAY).fingerprint()
    assert base == RuleSet([Rule("r1", A, (has("X"),))], TWO_WAY).fingerprint()
    assert base != RuleSet([Rule("r1", A, (has("Y"),))], TWO_WAY).fingerprint()
    assert base != RuleSet([r], Direction.A_TO_B).fingerprint()
    assert base != RuleSet([Rule("r1", A, (has("X"),), enabled=False)], TWO_WAY).fingerprint()


# --- contradictions ------------------------------------------------------------------------------


def test_add_versus_remove_the_top_rule_wins() -> None:
    r1 = Rule("r1", A, (), (add("VIP"),))
    r2 = Rule("r2", A, (), (remove("vip"), add("Customers")))
    rs = RuleSet([r1, r2], TWO_WAY)
    actions, conflicts = rs.resolve(rs.active)
    assert actions == [(r1, add("VIP")), (r2, add("Customers"))]
    (c,) = conflicts
    assert (c.target, c.what, c.winner, c.loser) == (B, "segment:vip", "r1", "r2")
    assert c.message == (
        "Rules 1 and 2 disagree: add to segment “VIP” (rule 1) was applied, "
        "remove from segment “vip” (rule 2) was not."
    )
    # the other order: the other rule wins
    rs = RuleSet([r2, r1], TWO_WAY)
    actions, conflicts = rs.resolve(rs.active)
    assert actions == [(r2, remove("vip")), (r2, add("Customers"))]
    assert [(c.winner, c.loser) for c in conflicts] == [("r2", "r1")]


def test_two_values_for_one_field_the_top_rule_wins() -> None:
    r1 = Rule("r1", B, (), (set_field("title", "Customer"),))
    r2 = Rule("r2", B, (), (set_field("title", "Partner"),))
    rs = RuleSet([r1, r2], TWO_WAY)
    actions, conflicts = rs.resolve(rs.active)
    assert actions == [(r1, set_field("title", "Customer"))]
    (c,) = conflicts
    assert (c.target, c.what, c.winner, c.loser) == (A, "field:title", "r1", "r2")


def test_identical_actions_merge_without_conflict() -> None:
    r1 = Rule("r1", A, (), (add("VIP"), set_field("title", "Customer")))
    r2 = Rule("r2", A, (), (add(" vip "), set_field("title", " Customer ")))
    rs = RuleSet([r1, r2], TWO_WAY)
    actions, conflicts = rs.resolve(rs.active)
    assert actions == [(r1, add("VIP")), (r1, set_field("title", "Customer"))]
    assert conflicts == []


def test_set_field_values_differing_in_case_are_two_values() -> None:
    rs = RuleSet(
        [
            Rule("r1", A, (), (set_field("t", "gold"),)),
            Rule("r2", A, (), (set_field("t", "Gold"),)),
        ],
        TWO_WAY,
    )
    assert len(rs.resolve(rs.active)[1]) == 1


def test_pair_outcome_reports_conflicts_and_applies_the_winner() -> None:
    r1 = Rule("r1", A, (has("Gold"),), (add("VIP"),))
    r2 = Rule("r2", A, (), (remove("VIP"),))
    rs = RuleSet([r1, r2], TWO_WAY)
    out = rs.pair_outcome(one_sided(rec(["Gold"]), rec(["VIP"])), [])
    assert [c.loser for c in out.conflicts] == ["r2"]
    assert not out.patches[B] and out.log == []
    out = rs.pair_outcome(one_sided(rec([]), rec(["VIP"])), [])
    assert out.conflicts == []
    assert out.patches[B].remove_segments == {"VIP"}


# --- actions and the log -------------------------------------------------------------------------


CUSTOMERS = Rule("r1", A, (has("Customers"),), (add("Customers"),))


def test_pair_outcome_scope_and_matched_rules() -> None:
    rs = RuleSet([CUSTOMERS, Rule("r2", B, (has("Leads"),))], TWO_WAY)
    out = rs.pair_outcome(one_sided(rec(), rec()), [])
    assert not out.in_scope and out.matched == {A: [], B: []}
    out = rs.pair_outcome(one_sided(rec(), rec(["leads"])), [])
    assert out.in_scope and out.matched == {A: [], B: ["r2"]}
    out = rs.pair_outcome(one_sided(rec(["Customers"]), rec(["Leads"])), [])
    assert out.in_scope and out.matched == {A: ["r1"], B: ["r2"]}


def test_action_applied_and_logged_only_when_the_target_lacks_it() -> None:
    rs = RuleSet([CUSTOMERS], TWO_WAY)
    out = rs.pair_outcome(one_sided(rec(["Customers"]), rec(["Leads"])), [])
    assert out.patches[B] == Patch(add_segments={"Customers"})
    assert not out.patches[A]
    assert out.log == [
        {
            "rule": "r1",
            "side": "b",
            "kind": "add_segment",
            "what": "segment:customers",
            "value": "Customers",
        }
    ]
    # the counterpart already has it (any case): nothing to do, nothing to log
    out = rs.pair_outcome(one_sided(rec(["Customers"]), rec(["CUSTOMERS"])), [])
    assert not out.patches[B] and out.log == []


def test_remove_segment_action_uses_the_targets_spelling() -> None:
    rs = RuleSet([Rule("r1", A, (has("Lost"),), (remove("Customers"),))], TWO_WAY)
    out = rs.pair_outcome(one_sided(rec(["Lost"]), rec(["customers ", "Other"])), [])
    assert out.patches[B] == Patch(remove_segments={"customers "})
    assert out.log == [
        {
            "rule": "r1",
            "side": "b",
            "kind": "remove_segment",
            "what": "segment:customers",
            "value": "Customers",
        }
    ]
    out = rs.pair_outcome(one_sided(rec(["Lost"]), rec(["Other"])), [])
    assert not out.patches[B] and out.log == []


def test_set_field_action_logs_the_value_before() -> None:
    rs = RuleSet([Rule("r1", A, (has("Customers"),), (set_field("title", "Customer"),))], TWO_WAY)
    out = rs.pair_outcome(one_sided(rec(["Customers"]), rec(title="Lead")), [])
    assert out.patches[B].fields == {"title": "Customer"}
    assert out.log == [
        {
            "rule": "r1",
            "side": "b",
            "kind": "set_field",
            "what": "field:title",
            "value": "Customer",
            "field": "title",
            "before": "Lead",
        }
    ]
    # the same value with other spacing is no change
    out = rs.pair_outcome(one_sided(rec(["Customers"]), rec(title=" Customer ")), [])
    assert not out.patches[B] and out.log == []
    out = rs.pair_outcome(one_sided(rec(["Customers"]), rec()), [])
    assert out.log[0]["before"] == ""


def test_undo_removes_what_the_log_says_and_nothing_else() -> None:
    rs = RuleSet([CUSTOMERS], TWO_WAY)
    recs = one_sided(rec(["Customers"]), rec(["Leads"]))
    out, recs = outcome_then_apply(rs, recs, [])
    assert recs[B].segments == {"Leads", "Customers"}
    # Carol leaves Customers in A (S4): her counterpart loses it, keeps the rest
    recs[A] = rec([])
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert not out.in_scope
    assert out.undone == 1
    assert out.patches[B] == Patch(remove_segments={"Customers"})
    assert out.log == []
    assert recs[B].segments == {"Leads"}


def test_undo_never_takes_away_a_segment_the_user_had_put_there() -> None:
    rs = RuleSet([CUSTOMERS], TWO_WAY)
    recs = one_sided(rec(["Customers"]), rec(["customers"]))  # by hand, before any rule
    out, recs = outcome_then_apply(rs, recs, [])
    assert out.log == []
    recs[A] = rec([])
    out = rs.pair_outcome(recs, out.log)
    assert not out.patches[B] and out.undone == 0


def test_undo_of_a_segment_the_user_already_removed_is_a_no_op() -> None:
    rs = RuleSet([CUSTOMERS], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Customers"])), [])
    recs = one_sided(rec(), rec())
    out = rs.pair_outcome(recs, out.log)
    assert not out.patches[B] and out.undone == 0 and out.log == []


def test_undo_removes_the_segment_in_the_targets_spelling() -> None:
    rs = RuleSet([CUSTOMERS], TWO_WAY)
    log = [
        {
            "rule": "r1",
            "side": "b",
            "kind": "add_segment",
            "what": "segment:customers",
            "value": "Customers",
        }
    ]
    out = rs.pair_outcome(one_sided(rec(), rec(["CUSTOMERS"])), log)
    assert out.patches[B].remove_segments == {"CUSTOMERS"}


def test_undo_of_a_remove_puts_the_segment_back() -> None:
    rs = RuleSet([Rule("r1", A, (has("Lost"),), (remove("Customers"),))], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Lost"]), rec(["Customers"])), [])
    assert recs[B].segments == frozenset()
    recs[A] = rec()
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert out.undone == 1 and recs[B].segments == {"Customers"}


def test_undo_off_reverts_nothing_and_drops_the_entry() -> None:
    rs = RuleSet([Rule("r1", A, (has("Customers"),), (add("Customers"),), undo=False)], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Customers"])), [])
    assert len(out.log) == 1
    recs[A] = rec()
    out = rs.pair_outcome(recs, out.log)
    assert not out.patches[B] and out.undone == 0 and out.log == []


def test_one_way_never_undoes() -> None:
    rs = RuleSet([CUSTOMERS], Direction.A_TO_B)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Customers"])), [])
    assert recs[B].segments == {"Customers"} and len(out.log) == 1
    recs[A] = rec()
    out = rs.pair_outcome(recs, out.log)
    assert not out.patches[B] and out.undone == 0 and out.log == []


def test_one_way_never_writes_the_read_only_side() -> None:
    rs = RuleSet([Rule("r1", B, (), (add("X"),)), Rule("r2", A, (), (add("Y"),))], Direction.A_TO_B)
    out = rs.pair_outcome(one_sided(rec(), rec()), [])
    assert not out.patches[A]
    assert out.patches[B].add_segments == {"Y"}


def test_two_rules_adding_one_segment_hand_it_over() -> None:
    r1 = Rule("r1", A, (has("Gold"),), (add("VIP"),))
    r2 = Rule("r2", A, (has("Big"),), (add("VIP"),))
    rs = RuleSet([r1, r2], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Gold", "Big"])), [])
    assert [e["rule"] for e in out.log] == ["r1"]
    # r1 lets go, r2 still asserts it: nothing undone, r2 now owns the entry
    recs[A] = rec(["Big"])
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert not out.patches[B] and out.undone == 0
    assert [e["rule"] for e in out.log] == ["r2"]
    assert recs[B].segments == {"VIP"}
    # r2 lets go too: now it is undone
    recs[A] = rec([])
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert out.undone == 1 and recs[B].segments == frozenset() and out.log == []


def test_hand_over_works_across_spellings_of_the_segment() -> None:
    r1 = Rule("r1", A, (has("Gold"),), (add("VIP"),))
    r2 = Rule("r2", A, (has("Big"),), (add("vip"),))
    rs = RuleSet([r1, r2], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Gold", "Big"])), [])
    assert out.conflicts == []
    recs[A] = rec(["Big"])
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert [e["rule"] for e in out.log] == ["r2"]
    recs[A] = rec([])
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert recs[B].segments == frozenset(), "the segment r1 added is undone in the end"


def test_a_removed_rules_entries_are_dropped_without_undo() -> None:
    out, recs = outcome_then_apply(RuleSet([CUSTOMERS], TWO_WAY), one_sided(rec(["Customers"])), [])
    rs = RuleSet([Rule("r9", A)], TWO_WAY)  # r1 deleted by the user
    recs[A] = rec()
    out = rs.pair_outcome(recs, out.log)
    assert not out.patches[B] and out.undone == 0 and out.log == []


def test_a_disabled_rules_entries_are_kept_and_undone_once_it_is_back() -> None:
    out, recs = outcome_then_apply(RuleSet([CUSTOMERS], TWO_WAY), one_sided(rec(["Customers"])), [])
    log = out.log
    off = RuleSet(
        [Rule("r1", A, (has("Customers"),), (add("Customers"),), enabled=False), Rule("r9", A)],
        TWO_WAY,
    )
    recs[A] = rec()
    out = off.pair_outcome(recs, log)
    assert not out.patches[B] and out.undone == 0
    assert out.log == log
    # turned on again while Carol is no longer a customer: now it is undone
    out = RuleSet([CUSTOMERS], TWO_WAY).pair_outcome(recs, out.log)
    assert out.patches[B].remove_segments == {"Customers"} and out.undone == 1


def test_entries_of_a_rule_ignored_by_one_way_are_kept() -> None:
    rule = Rule("r1", B, (has("X"),), (add("Y"),))
    log = [{"rule": "r1", "side": "a", "kind": "add_segment", "what": "segment:y", "value": "Y"}]
    out = RuleSet([rule], Direction.A_TO_B).pair_outcome(one_sided(rec(["Y"]), rec()), log)
    assert out.log == log and not out.patches[A]


def test_a_changed_action_undoes_the_old_one() -> None:
    out, recs = outcome_then_apply(RuleSet([CUSTOMERS], TWO_WAY), one_sided(rec(["Customers"])), [])
    edited = RuleSet([Rule("r1", A, (has("Customers"),), (add("Clients"),))], TWO_WAY)
    out, recs = outcome_then_apply(edited, recs, out.log)
    assert recs[B].segments == {"Clients"}
    assert [e["value"] for e in out.log] == ["Clients"]


def test_entries_of_the_other_side_are_left_to_that_side() -> None:
    ra = Rule("ra", A, (has("X"),), (add("FromA"),))
    rb = Rule("rb", B, (has("Y"),), (add("FromB"),))
    rs = RuleSet([ra, rb], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["X"]), rec(["Y"])), [])
    assert recs[A].segments == {"X", "FromB"} and recs[B].segments == {"Y", "FromA"}
    assert sorted(e["side"] for e in out.log) == ["a", "b"]
    recs[A] = rec(["FromB"])  # A leaves X; B still has Y
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert recs[A].segments == {"FromB"} and recs[B].segments == {"Y"}
    assert [e["rule"] for e in out.log] == ["rb"]


# --- set-field undo ----------------------------------------------------------------------------

TITLE = Rule("r1", A, (has("Customers"),), (set_field("title", "Customer"),))


def test_set_field_undo_restores_the_value_before() -> None:
    rs = RuleSet([TITLE], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Customers"]), rec(title="Lead")), [])
    assert recs[B].fields["title"] == "Customer"
    recs[A] = rec()
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert out.undone == 1 and recs[B].fields["title"] == "Lead"


def test_set_field_undo_clears_a_field_that_was_empty() -> None:
    rs = RuleSet([TITLE], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Customers"]), rec()), [])
    recs[A] = rec()
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert out.patches[B].fields == {"title": ""} and "title" not in recs[B].fields


def test_set_field_undo_keeps_what_the_user_typed_since() -> None:
    rs = RuleSet([TITLE], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Customers"]), rec(title="Lead")), [])
    recs = one_sided(rec(), rec(title="Partner"))
    out = rs.pair_outcome(recs, out.log)
    assert not out.patches[B] and out.undone == 0 and out.log == []


def test_set_field_undo_ignores_spacing_of_our_own_value() -> None:
    rs = RuleSet([TITLE], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Customers"]), rec(title="Lead")), [])
    recs = one_sided(rec(), rec(title="  Customer "))  # the app trimmed/padded it
    assert rs.pair_outcome(recs, out.log).patches[B].fields == {"title": "Lead"}


def test_a_rule_still_in_force_reasserts_and_keeps_one_entry() -> None:
    rs = RuleSet([TITLE], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Customers"]), rec(title="Lead")), [])
    recs[B] = rec(title="Partner")  # edited while Carol is still a customer
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert out.patches[B].fields == {"title": "Customer"}, "the rule's action is applied again"
    assert [(e["rule"], e["before"]) for e in out.log] == [("r1", "Lead")]
    recs[A] = rec()
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert recs[B].fields["title"] == "Lead"


def test_overriding_value_keeps_the_first_value_before() -> None:
    r1 = Rule("r1", A, (has("Customers"),), (set_field("title", "Customer"),))
    r0 = Rule("r0", A, (has("Partners"),), (set_field("title", "Partner"),))
    rs = RuleSet([r0, r1], TWO_WAY)
    out, recs = outcome_then_apply(rs, one_sided(rec(["Customers"]), rec(title="Lead")), [])
    recs[A] = rec(["Customers", "Partners"])  # the top rule now sets another value
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert recs[B].fields["title"] == "Partner"
    assert [(e["rule"], e["before"]) for e in out.log] == [("r0", "Lead")]
    recs[A] = rec()
    out, recs = outcome_then_apply(rs, recs, out.log)
    assert recs[B].fields["title"] == "Lead", "the value from before Pairsync comes back"


# --- create ------------------------------------------------------------------------------------


def test_create_patch_applies_the_actions_and_logs_them() -> None:
    rules = [
        Rule(
            "r1",
            A,
            (has("Customers"),),
            (add("Clients"), remove("Leads"), set_field("title", "Customer")),
        ),
        Rule("r2", A, (has("Other"),), (add("Other"),)),
        Rule("r3", A, (EXISTS,), (add("Never"),)),
    ]
    rs = RuleSet(rules, TWO_WAY)
    patch, log = rs.create_patch(A, rec(["Customers"]), unsubscribes=True)
    assert patch == Patch(fields={"title": "Customer"}, add_segments={"Clients"})
    assert log == [
        {
            "rule": "r1",
            "side": "b",
            "kind": "add_segment",
            "what": "segment:clients",
            "value": "Clients",
        },
        {
            "rule": "r1",
            "side": "b",
            "kind": "set_field",
            "what": "field:title",
            "value": "Customer",
            "field": "title",
            "before": None,
        },
    ]
    # the log works for Undo later: leaving Customers clears the title and the segment
    # (and now that the pair exists, the update-only rule r3 acts)
    created = apply(rec(), patch)
    out = rs.pair_outcome(one_sided(rec(), created), log)
    assert out.patches[B] == Patch(
        fields={"title": ""}, add_segments={"Never"}, remove_segments={"Clients"}
    )


def test_create_patch_with_unsubscribes() -> None:
    rs = RuleSet(default_rules(), TWO_WAY)
    patch, log = rs.create_patch(B, rec(subscribed=False), unsubscribes=True)
    assert patch == Patch(add_segments={UNSUBSCRIBES_SEGMENT}) and log == []
    patch, _ = rs.create_patch(B, rec(subscribed=False), unsubscribes=False)
    assert not patch
    for status in (True, None):
        patch, _ = rs.create_patch(B, rec(subscribed=status), unsubscribes=True)
        assert not patch


def test_create_patch_of_a_contradiction_takes_the_top_rule() -> None:
    rules = [Rule("r1", A, (), (set_field("t", "1"),)), Rule("r2", A, (), (set_field("t", "2"),))]
    patch, log = RuleSet(rules, TWO_WAY).create_patch(A, rec(), unsubscribes=False)
    assert patch.fields == {"t": "1"} and [e["rule"] for e in log] == ["r1"]


# --- other way around -------------------------------------------------------------------------

MIRRORED = Rule("r1", A, (has("Customers"),), (add("Clients"),), other_way=True)


def settle(
    rs: RuleSet, recs: dict[Side, Record], log: list[dict[str, Any]], runs: int = 4
) -> tuple[dict[Side, Record], list[dict[str, Any]], int]:
    """Run until nothing is written; returns the records, the log and how many runs wrote."""
    for n in range(runs):
        out, recs = outcome_then_apply(rs, recs, log)
        log = out.log
        if not (out.patches[A] or out.patches[B]):
            return recs, log, n
    raise AssertionError(f"still writing after {runs} runs: {out.patches}")


def test_other_way_moves_segments_both_ways() -> None:
    rs = RuleSet([MIRRORED], TWO_WAY)
    recs, _, _ = settle(rs, one_sided(rec(["Customers"])), [])
    assert recs[B].segments == {"Clients"}
    recs, _, _ = settle(rs, one_sided(rec(), rec(["Clients"])), [])
    assert recs[A].segments == {"Customers"}


def test_other_way_leaving_the_source_segment_leaves_the_target_one() -> None:
    rs = RuleSet([MIRRORED], TWO_WAY)
    recs, log, _ = settle(rs, one_sided(rec(["Customers"])), [])
    recs[A] = rec()  # the user takes Customers away in A
    recs, log, wrote = settle(rs, recs, log)
    assert wrote == 1
    assert recs[A].segments == frozenset(), "the user's removal stands"
    assert recs[B].segments == frozenset(), "in unison: Clients goes too"
    assert log == []


def test_other_way_leaving_the_mirrored_segment_leaves_the_source_one() -> None:
    rs = RuleSet([MIRRORED], TWO_WAY)
    recs, log, _ = settle(rs, one_sided(rec(), rec(["Clients"])), [])
    recs[B] = rec()  # the user takes Clients away in B
    recs, log, wrote = settle(rs, recs, log)
    assert wrote == 1
    assert recs[A].segments == frozenset() and recs[B].segments == frozenset()


def test_other_way_with_set_field() -> None:
    rule = Rule(
        "r1", A, (fld("tier", Op.IS, "Gold"),), (set_field("level", "VIP"),), other_way=True
    )
    rs = RuleSet([rule], TWO_WAY)
    recs, log, _ = settle(rs, one_sided(rec(tier="Gold"), rec(level="Member")), [])
    assert recs[B].fields["level"] == "VIP"
    recs[A] = rec(tier="Silver")
    recs, log, _ = settle(rs, recs, log)
    assert recs[A].fields["tier"] == "Silver"
    assert recs[B].fields["level"] == "Member"
    recs, _, _ = settle(rs, one_sided(rec(), rec(level="vip")), [])
    assert recs[A].fields["tier"] == "Gold"


# --- unsubscribes -------------------------------------------------------------------------------

BOTH = {A: True, B: True}
NO_OPT_OUT = {A: False, B: False}


def test_becoming_unsubscribed_tags_the_counterpart_once() -> None:
    recs = {A: rec(subscribed=False), B: rec(["Clients"], subscribed=True)}
    patches, seen = unsubscribe_patches(recs, {"a": True, "b": True}, BOTH, NO_OPT_OUT)
    assert patches[B] == Patch(add_segments={UNSUBSCRIBES_SEGMENT})
    assert not patches[A]
    assert seen == {"a": False, "b": True}
    # next run: already seen unsubscribed, nothing (even if the user took the segment away)
    patches, seen = unsubscribe_patches(recs, seen, BOTH, NO_OPT_OUT)
    assert not patches[A] and not patches[B]
    assert seen == {"a": False, "b": True}


def test_a_status_first_seen_unsubscribed_counts_as_a_change() -> None:
    patches, seen = unsubscribe_patches({A: rec(), B: rec(subscribed=False)}, {}, BOTH, NO_OPT_OUT)
    assert patches[A].add_segments == {UNSUBSCRIBES_SEGMENT} and not patches[B]
    assert seen == {"a": None, "b": False}


def test_counterpart_already_in_the_segment_gets_nothing() -> None:
    recs = {A: rec(subscribed=False), B: rec([" pairsync  UNSUBSCRIBES"])}
    patches, _ = unsubscribe_patches(recs, {}, BOTH, NO_OPT_OUT)
    assert not patches[B]


def test_resubscribing_does_nothing() -> None:
    recs = {A: rec(subscribed=True), B: rec([UNSUBSCRIBES_SEGMENT], subscribed=False)}
    patches, seen = unsubscribe_patches(recs, {"a": False, "b": False}, BOTH, {A: True, B: True})
    assert not patches[A] and not patches[B]
    assert seen == {"a": True, "b": False}


def test_opt_out_field_only_when_asked() -> None:
    recs = {A: rec(subscribed=False), B: rec(subscribed=True)}
    patches, _ = unsubscribe_patches(recs, {"a": True}, BOTH, {A: False, B: True})
    assert patches[B] == Patch(fields={OPT_OUT_FIELD: "false"}, add_segments={UNSUBSCRIBES_SEGMENT})
    patches, _ = unsubscribe_patches(recs, {"a": True}, BOTH, {A: True, B: False})
    assert OPT_OUT_FIELD not in patches[B].fields
    # the counterpart is already opted out: its flag is left alone
    recs[B] = rec(subscribed=False)
    patches, _ = unsubscribe_patches(recs, {"a": True, "b": False}, BOTH, {A: True, B: True})
    assert patches[B] == Patch(add_segments={UNSUBSCRIBES_SEGMENT})


def test_target_not_writable_gets_nothing() -> None:
    recs = {A: rec(subscribed=False), B: rec(subscribed=True)}
    patches, seen = unsubscribe_patches(recs, {}, {A: True, B: False}, {A: True, B: True})
    assert not patches[A] and not patches[B]
    # Not marked as seen: once B may be written (two-way again), the tag still comes.
    assert seen == {"a": None, "b": True}


def test_both_sides_unsubscribing_tag_each_other() -> None:
    recs = {A: rec(subscribed=False), B: rec(subscribed=False)}
    patches, _ = unsubscribe_patches(recs, {"a": True, "b": True}, BOTH, NO_OPT_OUT)
    assert patches[A].add_segments == patches[B].add_segments == {UNSUBSCRIBES_SEGMENT}


# --- properties --------------------------------------------------------------------------------

SEGMENTS = ["X", "Y", "Z"]
SEGMENT = st.sampled_from(SEGMENTS)
SPELLED = st.sampled_from([*SEGMENTS, "x", " y "])
VALUES = st.sampled_from(["", "1", "2", " 2 "])


@st.composite
def one_sided_rules(draw: st.DrawFn) -> list[Rule]:
    """Rules sourced on A only (a rule sourced on B would read what A's rules write)."""
    out = []
    for i in range(draw(st.integers(0, 4))):
        filters = draw(
            st.lists(
                st.one_of(
                    st.builds(has, SEGMENT),
                    st.builds(has_not, SEGMENT),
                    st.builds(
                        fld, st.just("f"), st.sampled_from([Op.IS, Op.EMPTY]), VALUES.filter(bool)
                    ),
                    st.just(EXISTS),
                ),
                max_size=2,
            )
        )
        actions = draw(
            st.lists(
                st.one_of(
                    st.builds(add, SPELLED),
                    st.builds(remove, SPELLED),
                    st.builds(set_field, st.sampled_from(["t", "u"]), VALUES),
                ),
                max_size=3,
            )
        )
        out.append(
            Rule(
                f"r{i}",
                A,
                tuple(filters),
                tuple(actions),
                draw(st.sampled_from(list(Join))),
                undo=draw(st.booleans()),
                enabled=draw(st.booleans()),
            )
        )
    return out


def records() -> st.SearchStrategy[Record]:
    return st.builds(
        lambda segs, f, t, u: Record(
            "r",
            "v",
            {k: v for k, v in (("f", f), ("t", t), ("u", u)) if v},
            frozenset(segs),
        ),
        st.sets(SPELLED, max_size=3),
        VALUES,
        VALUES,
        VALUES,
    )


@given(
    one_sided_rules(),
    st.sampled_from([Direction.TWO_WAY, Direction.A_TO_B]),
    st.lists(st.tuples(records(), st.none() | records()), min_size=1, max_size=4),
)
def test_applying_the_outcome_then_running_again_writes_nothing(
    rules: list[Rule], direction: Direction, edits: list[tuple[Record, Record | None]]
) -> None:
    """S17 for rules: after the user's edits (None: B left as the last run made it), one run
    writes, the next writes nothing; the log only names rules that exist."""
    rs = RuleSet(rules, direction)
    log: list[dict[str, Any]] = []
    recs = one_sided(rec())
    for a, b in edits:
        recs = {A: a, B: recs[B] if b is None else b}
        out, recs = outcome_then_apply(rs, recs, log)
        assert not out.patches[A]
        log = out.log
        again = rs.pair_outcome(recs, log)
        assert not again.patches[A] and not again.patches[B], again.patches
        assert again.log == log
        assert {e["rule"] for e in log} <= {r.id for r in rules}


@st.composite
def mirrored_rules(draw: st.DrawFn) -> Rule:
    """One rule with "other way around": segment and field-is filters, any actions."""
    filters = st.one_of(
        st.builds(has, SEGMENT),
        st.builds(has_not, SEGMENT),
        st.builds(fld, st.just("f"), st.just(Op.IS), VALUES.filter(bool)),
    )
    actions = st.one_of(
        st.builds(add, SPELLED),
        st.builds(remove, SPELLED),
        st.builds(set_field, st.sampled_from(["t", "f"]), VALUES.filter(bool)),
    )
    return Rule(
        "r1",
        draw(st.sampled_from([A, B])),
        tuple(draw(st.lists(filters, min_size=1, max_size=2))),
        tuple(draw(st.lists(actions, min_size=1, max_size=2))),
        undo=draw(st.booleans()),
        other_way=True,
    )


@given(
    st.one_of(
        st.just(MIRRORED),
        st.just(Rule("r1", A, (fld("f", Op.IS, "1"),), (set_field("t", "2"),), other_way=True)),
        mirrored_rules(),
    ),
    st.lists(st.tuples(st.none() | records(), st.none() | records()), min_size=1, max_size=4),
)
@example(MIRRORED, [(rec(["Customers"]), None), (rec(), None)])
@example(MIRRORED, [(None, rec(["Clients"])), (None, rec())])
def test_mirrored_rules_never_ping_pong(
    rule: Rule, edits: list[tuple[Record | None, Record | None]]
) -> None:
    """Whatever the user edits on either side (None: left as it was), the pair settles: a
    mirror never puts back what Undo takes away (no ping-pong, SPEC §6)."""
    rs = RuleSet([rule], TWO_WAY)
    log: list[dict[str, Any]] = []
    recs = one_sided(rec())
    for a, b in edits:
        recs = {A: recs[A] if a is None else a, B: recs[B] if b is None else b}
        recs, log, _ = settle(rs, recs, log, runs=3)
