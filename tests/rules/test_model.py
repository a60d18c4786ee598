"""Rules as the user writes them (SPEC §3): JSON, defaults, the CLI's words, sentences, mirrors."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import ConfigError
from app.model import Side
from app.rules.model import (
    FIELD_OPS,
    Action,
    ActionKind,
    Filter,
    FilterKind,
    Join,
    Op,
    Rule,
    RuleDraft,
    default_rules,
    mirror,
    mirror_problem,
    new_rule_id,
    parse_filter,
    parse_set,
    rules_from_config,
    rules_to_config,
)

K = FilterKind
A = ActionKind


def has(segment: str) -> Filter:
    return Filter(K.SEGMENT, Op.HAS, segment)


def has_not(segment: str) -> Filter:
    return Filter(K.SEGMENT, Op.HAS_NOT, segment)


def fld(name: str, op: Op, value: str = "") -> Filter:
    return Filter(K.FIELD, op, value, name)


EXISTS = Filter(K.EXISTS, Op.EXISTS)
UNSUBSCRIBED = Filter(K.SUBSCRIPTION, Op.UNSUBSCRIBED)


def add(segment: str) -> Action:
    return Action(A.ADD_SEGMENT, segment)


def remove(segment: str) -> Action:
    return Action(A.REMOVE_SEGMENT, segment)


def set_field(name: str, value: str) -> Action:
    return Action(A.SET_FIELD, value, name)


def config(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"rules": list(rules)}


def raw_rule(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": "r1", "source": "a", "if": [], "then": []}
    data.update(over)
    return data


# --- JSON --------------------------------------------------------------------------------------

NO_VALUE = (Op.EMPTY, Op.NOT_EMPTY, Op.TRUE, Op.FALSE)
"""The field ops that take no value."""

EVERY_FILTER = (
    *(fld("organization", op, "Acme") for op in FIELD_OPS if op not in NO_VALUE),
    *(fld("notes", op) for op in NO_VALUE),
    has("Customers"),
    has_not("VIP"),
    Filter(K.SUBSCRIPTION, Op.SUBSCRIBED),
    UNSUBSCRIBED,
    EXISTS,
)
EVERY_ACTION = (add("Customers"), remove("Leads"), set_field("title", "Customer"))


def test_every_filter_and_action_kind_survives_json() -> None:
    rule = Rule(
        "r1",
        Side.B,
        EVERY_FILTER,
        EVERY_ACTION,
        join=Join.ANY,
        undo=False,
        enabled=False,
    )
    text = json.dumps(rules_to_config([rule]))
    assert rules_from_config({"rules": json.loads(text)}) == [rule]


def test_json_shape_is_the_documented_one() -> None:
    rule = Rule(
        "r1a2b3",
        Side.A,
        (has("Customers"), fld("organization", Op.CONTAINS, "Acme"), fld("notes", Op.EMPTY)),
        (add("Customers"), set_field("title", "Customer")),
    )
    assert rule.to_json() == {
        "id": "r1a2b3",
        "source": "a",
        "join": "all",
        "enabled": True,
        "undo": True,
        "other_way": False,
        "if": [
            {"kind": "segment", "op": "has", "value": "Customers"},
            {"kind": "field", "field": "organization", "op": "contains", "value": "Acme"},
            {"kind": "field", "field": "notes", "op": "is empty"},
        ],
        "then": [
            {"kind": "add_segment", "value": "Customers"},
            {"kind": "set_field", "field": "title", "value": "Customer"},
        ],
    }


def test_minimal_json_takes_the_defaults() -> None:
    (rule,) = rules_from_config(config({"id": "x", "source": "b"}))
    assert rule == Rule("x", Side.B)
    assert (rule.join, rule.undo, rule.other_way, rule.enabled) == (Join.ALL, True, False, True)
    # an "exists" filter may leave out its op
    (rule,) = rules_from_config(config(raw_rule(**{"if": [{"kind": "exists"}]})))
    assert rule.filters == (EXISTS,)


def test_stored_other_way_rule_keeps_its_toggle() -> None:
    rule = Rule("r1", Side.A, (has("Customers"),), (add("Clients"),), other_way=True)
    assert rules_from_config({"rules": rules_to_config([rule])}) == [rule]


def test_default_rules_when_the_config_has_no_rules_key() -> None:
    assert rules_from_config({}) == default_rules()
    assert rules_from_config({"rules": None}) == default_rules()
    rules = default_rules()
    assert [r.source for r in rules] == [Side.A, Side.B]
    assert all(not r.filters and not r.actions and r.enabled and r.undo for r in rules)
    assert len({r.id for r in rules}) == 2


def test_an_empty_rule_list_is_kept_empty() -> None:
    assert rules_from_config({"rules": []}) == []


@pytest.mark.parametrize(
    "raw",
    [
        {"rules": [{"source": "a"}]},  # no id
        {"rules": [{"id": "r1"}]},  # no source
        {"rules": [raw_rule(source="c")]},
        {"rules": [raw_rule(join="some")]},
        {"rules": ["r1"]},
        {"rules": "r1"},
        {"rules": 3},
        {"rules": {"id": "r1", "source": "a"}},
        {"rules": [raw_rule(**{"if": None})]},
        {"rules": [raw_rule(**{"if": [{"op": "has", "value": "X"}]})]},  # no kind
        {"rules": [raw_rule(**{"if": [{"kind": "colour", "op": "is", "value": "X"}]})]},
        {"rules": [raw_rule(**{"if": [{"kind": "field", "field": "x", "op": "resembles"}]})]},
        {"rules": [raw_rule(**{"if": [{"kind": "field", "field": "x", "op": "is"}]})]},  # value
        {"rules": [raw_rule(**{"if": [{"kind": "field", "op": "is", "value": "X"}]})]},  # field
        {"rules": [raw_rule(**{"if": [{"kind": "segment", "op": "contains", "value": "X"}]})]},
        {"rules": [raw_rule(**{"if": [{"kind": "segment", "op": "has", "value": "  "}]})]},
        {"rules": [raw_rule(**{"if": [{"kind": "segment", "op": "is empty"}]})]},
        {"rules": [raw_rule(**{"if": [{"kind": "subscription", "op": "is"}]})]},
        {"rules": [raw_rule(**{"if": [{"kind": "subscription"}]})]},
        {"rules": [raw_rule(**{"if": [{"kind": "exists", "op": "has"}]})]},
        {
            "rules": [
                raw_rule(**{"if": [{"kind": "field", "field": "x", "op": "has", "value": "Y"}]})
            ]
        },
        {"rules": [raw_rule(then=[{"value": "X"}])]},  # no kind
        {"rules": [raw_rule(then=[{"kind": "delete", "value": "X"}])]},
        {"rules": [raw_rule(then=[{"kind": "add_segment", "value": " "}])]},
        {"rules": [raw_rule(then=[{"kind": "remove_segment"}])]},
        {"rules": [raw_rule(then=[{"kind": "set_field", "value": "X"}])]},
    ],
)
def test_malformed_rules_are_a_config_error(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="rules are malformed"):
        rules_from_config(raw)


def test_malformed_message_says_what_is_wrong() -> None:
    bad = raw_rule(**{"if": [{"kind": "field", "field": "org", "op": "contains"}]})
    with pytest.raises(ConfigError, match=r"org contains.*needs a value"):
        rules_from_config(config(bad))


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ConfigError, match="share an id"):
        rules_from_config(config(raw_rule(), raw_rule(source="b")))


def test_stored_other_way_that_cannot_be_mirrored_is_refused() -> None:
    bad = raw_rule(
        other_way=True,
        **{
            "if": [{"kind": "field", "field": "organization", "op": "contains", "value": "Acme"}],
            "then": [{"kind": "add_segment", "value": "Customers"}],
        },
    )
    with pytest.raises(ConfigError, match="other way"):
        rules_from_config(config(bad))


def test_a_turned_off_rule_with_an_impossible_other_way_still_loads() -> None:
    """Turning a rule off never locks the user out of the connection's rules; the check runs
    again when the rule is turned on (``edit.check_rule``)."""
    rule = Rule("r1", Side.A, (fld("org", Op.CONTAINS, "Acme"),), (add("X"),), other_way=True)
    off = Rule("r1", Side.A, rule.filters, rule.actions, other_way=True, enabled=False)
    assert rules_from_config({"rules": rules_to_config([off])}) == [off]
    with pytest.raises(ConfigError, match="other way"):
        rules_from_config({"rules": rules_to_config([rule])})


# random rules for the round trip ------------------------------------------------------------

NAME = st.text(string.ascii_letters + string.digits + " :-éß", min_size=1, max_size=12).filter(
    lambda s: bool(s.strip())
)
TEXT = st.text(max_size=12)


@st.composite
def filters(draw: st.DrawFn) -> Filter:
    kind = draw(st.sampled_from(list(FilterKind)))
    if kind is K.FIELD:
        op = draw(st.sampled_from(FIELD_OPS))
        value = draw(TEXT if op in NO_VALUE else TEXT.filter(bool))
        return Filter(kind, op, value, draw(NAME))
    if kind is K.SEGMENT:
        return Filter(kind, draw(st.sampled_from([Op.HAS, Op.HAS_NOT])), draw(NAME))
    if kind is K.SUBSCRIPTION:
        return Filter(kind, draw(st.sampled_from([Op.SUBSCRIBED, Op.UNSUBSCRIBED])))
    return EXISTS


@st.composite
def actions(draw: st.DrawFn) -> Action:
    kind = draw(st.sampled_from(list(ActionKind)))
    if kind is A.SET_FIELD:
        return Action(kind, draw(TEXT), draw(NAME))
    return Action(kind, draw(NAME))


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    rule = Rule(
        draw(st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)),
        draw(st.sampled_from(list(Side))),
        tuple(draw(st.lists(filters(), max_size=4))),
        tuple(draw(st.lists(actions(), max_size=3))),
        draw(st.sampled_from(list(Join))),
        draw(st.booleans()),
        False,
        draw(st.booleans()),
    )
    if draw(st.booleans()) and not mirror_problem(rule):
        rule = Rule(
            rule.id,
            rule.source,
            rule.filters,
            rule.actions,
            rule.join,
            rule.undo,
            True,
            rule.enabled,
        )
    return rule


@given(st.lists(rules(), max_size=4, unique_by=lambda r: r.id))
def test_random_rules_survive_a_json_round_trip(rs: list[Rule]) -> None:
    text = json.dumps(rules_to_config(rs), ensure_ascii=False)
    assert rules_from_config({"rules": json.loads(text)}) == rs


# --- creates, sentences ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "join", "creates"),
    [
        ((), Join.ALL, True),
        ((has("X"),), Join.ALL, True),
        ((EXISTS,), Join.ALL, False),
        ((EXISTS,), Join.ANY, False),
        ((has("X"), EXISTS), Join.ALL, False),
        ((has("X"), EXISTS), Join.ANY, True),  # "has X" alone is enough to create
        ((EXISTS, EXISTS), Join.ANY, False),
    ],
)
def test_update_only_rules_do_not_create(
    filters: tuple[Filter, ...], join: Join, creates: bool
) -> None:
    assert Rule("r", Side.A, filters, join=join).creates is creates


def test_rule_sentence_reads_like_the_editor() -> None:
    rule = Rule(
        "r1",
        Side.A,
        (has("Customers"), fld("organization", Op.CONTAINS, "Acme"), fld("notes", Op.NOT_EMPTY)),
        (add("Customers"), remove("Leads"), set_field("title", "Customer")),
    )
    assert rule.sentence("Google", "HubSpot") == (
        "IF a contact in Google is in segment “Customers” and organization contains “Acme” "
        "and notes is not empty THEN create or update it in HubSpot and add to segment "
        "“Customers”, remove from segment “Leads”, set title to “Customer”"
    )


def test_sentence_of_an_any_rule_and_of_an_update_only_rule() -> None:
    rule = Rule("r1", Side.B, (has_not("VIP"), UNSUBSCRIBED, EXISTS), join=Join.ANY)
    assert rule.sentence("Mailchimp", "Google") == (
        "IF a contact in Mailchimp is not in segment “VIP” or is unsubscribed or already "
        "exists in the other app THEN create or update it in Google"
    )
    only = Rule("r2", Side.B, (EXISTS,))
    assert only.sentence("Mailchimp", "Google") == (
        "IF a contact in Mailchimp already exists in the other app THEN update it in Google"
    )
    assert (
        Rule("r3", Side.A).sentence("A", "B") == "IF a contact in A THEN create or update it in B"
    )


def test_rule_target_and_new_ids() -> None:
    assert Rule("r", Side.A).target is Side.B
    assert Rule("r", Side.B).target is Side.A
    ids = {new_rule_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("r") and "~" not in i for i in ids)


def test_segment_action_target_ignores_case_and_spaces() -> None:
    assert add("  Top  Customers").target == remove("top customers").target
    assert add("VIP").target == "segment:vip"
    assert set_field("title", "X").target == set_field("title", "Y").target == "field:title"
    assert set_field("title", "X").target != set_field("jobtitle", "X").target


# --- the CLI's words -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("organization contains Acme", fld("organization", Op.CONTAINS, "Acme")),
        ("organization does not contain Acme", fld("organization", Op.NOT_CONTAINS, "Acme")),
        ("organization not contains Acme", fld("organization", Op.NOT_CONTAINS, "Acme")),
        ("organization starts with Ac", fld("organization", Op.STARTS_WITH, "Ac")),
        ("col:Member Status is Gold", fld("col:Member Status", Op.IS, "Gold")),
        ("col:Member Status is not Gold", fld("col:Member Status", Op.IS_NOT, "Gold")),
        ("title is Head of Sales", fld("title", Op.IS, "Head of Sales")),
        ("title is nothing", fld("title", Op.IS, "nothing")),
        ("title = CEO", fld("title", Op.IS, "CEO")),
        ("title != CEO", fld("title", Op.IS_NOT, "CEO")),
        ("birthday > 1990-01-01", fld("birthday", Op.GREATER, "1990-01-01")),
        ("birthday < 1990-01-01", fld("birthday", Op.LESS, "1990-01-01")),
        ("score greater than 10", fld("score", Op.GREATER, "10")),
        ("score less than 10", fld("score", Op.LESS, "10")),
        ("notes is empty", fld("notes", Op.EMPTY)),
        ("notes is not empty", fld("notes", Op.NOT_EMPTY)),
        ("notes is Empty", fld("notes", Op.EMPTY)),
        ("notes = empty", fld("notes", Op.EMPTY)),
        ("notes != empty", fld("notes", Op.NOT_EMPTY)),
        ("vip is true", fld("vip", Op.TRUE)),
        ("vip is false", fld("vip", Op.FALSE)),
        ("vip is TRUE", fld("vip", Op.TRUE)),
        ("  organization   contains   Acme  ", fld("organization", Op.CONTAINS, "Acme")),
        ('organization contains "Acme Inc"', fld("organization", Op.CONTAINS, "Acme Inc")),
        ("organization is 'Acme'", fld("organization", Op.IS, "Acme")),
        ("segment has Customers", has("Customers")),
        ("segment has Top Customers", has("Top Customers")),
        ("segments has Customers", has("Customers")),
        ("Segment is Customers", has("Customers")),
        ("segment has not Customers", has_not("Customers")),
        ("segment is not Customers", has_not("Customers")),
        ("tag has not VIP", has_not("VIP")),
        ("tags has VIP", has("VIP")),
        ("list has Newsletter", has("Newsletter")),
        ("group has Friends", has("Friends")),
        ("label has Work", has("Work")),
        ('tag has "VIP"', has("VIP")),
        ("subscription is unsubscribed", UNSUBSCRIBED),
        ("subscription is Subscribed", Filter(K.SUBSCRIPTION, Op.SUBSCRIBED)),
        ("status is unsubscribed", UNSUBSCRIBED),
        # A quoted value is literal; "status" with another value is a field called Status.
        ('notes is "empty"', fld("notes", Op.IS, "empty")),
        ("notes is not 'empty'", fld("notes", Op.IS_NOT, "empty")),
        ('vip is "true"', fld("vip", Op.IS, "true")),
        ("status is Lead", fld("status", Op.IS, "Lead")),
        ("Status is “unsubscribed”", fld("Status", Op.IS, "unsubscribed")),
        ("status contains Lead", fld("status", Op.CONTAINS, "Lead")),
    ],
)
def test_parse_filter_spellings(text: str, expected: Filter) -> None:
    assert parse_filter(text) == expected


def test_parse_filter_curly_quotes_as_the_sentence_writes_them() -> None:
    # Filter.sentence() quotes values “like this”: pasting one back gives the same filter.
    f = fld("organization", Op.IS, "Acme Inc")
    value = f.sentence("Google").split(" is ", 1)[1]
    assert value == "“Acme Inc”"
    assert parse_filter(f"organization is {value}") == f


def test_parse_filter_keeps_unbalanced_quotes() -> None:
    assert parse_filter('organization is "Acme').value == '"Acme'


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "write FIELD OP VALUE"),
        ("organization", "write FIELD OP VALUE"),
        ("organization resembles Acme", "write FIELD OP VALUE"),
        ("contains Acme", "write FIELD OP VALUE"),
        ("age>30", "write FIELD OP VALUE"),
        ("organization contains", "needs a value"),
        ('organization contains ""', "needs a value"),
        ("birthday >", "needs a value"),
        ("segment has", "needs a segment name"),
        ("tag has not", "needs a segment name"),
        ("subscription is maybe", "either subscribed or unsubscribed"),
        ("subscription is", "either subscribed or unsubscribed"),
        ("organization has Acme", "'has' is for segments"),
        ("organization has not Acme", "'has' is for segments"),
    ],
)
def test_parse_filter_refuses_bad_input_readably(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match="Cannot read the filter") as err:
        parse_filter(text)
    assert says in str(err.value)
    assert repr(text) in str(err.value)


def test_parse_filter_error_lists_the_ops() -> None:
    with pytest.raises(ConfigError) as err:
        parse_filter("organization resembles Acme")
    for op in FIELD_OPS:
        assert op.value in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title=Customer", set_field("title", "Customer")),
        (" title = Customer ", set_field("title", "Customer")),
        ("col:Member Status=Gold", set_field("col:Member Status", "Gold")),
        ("note=a=b", set_field("note", "a=b")),
        ("title=", set_field("title", "")),
    ],
)
def test_parse_set(text: str, expected: Action) -> None:
    assert parse_set(text) == expected


@pytest.mark.parametrize(("text", "says"), [("title", "FIELD=VALUE"), ("=x", "needs a field")])
def test_parse_set_refuses(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_set(text)


# --- mirrors ------------------------------------------------------------------------------


def test_mirror_of_segment_to_segment() -> None:
    rule = Rule("r1", Side.A, (has("Customers"),), (add("Clients"),), undo=False, other_way=True)
    m = mirror(rule)
    assert m == Rule(
        "r1~",
        Side.B,
        (has("Clients"),),
        (add("Customers"),),
        undo=False,
        other_way=False,
        mirror_of="r1",
    )
    assert mirror_problem(rule) == ""


def test_mirror_of_field_is_to_set_field_and_back() -> None:
    rule = Rule(
        "r1",
        Side.B,
        (fld("tier", Op.IS, "Gold"), has_not("Leads")),
        (set_field("level", "VIP"), remove("Prospects")),
        other_way=True,
    )
    m = mirror(rule)
    assert m.source is Side.A and m.target is Side.B
    assert m.filters == (fld("level", Op.IS, "VIP"), has_not("Prospects"))
    assert m.actions == (set_field("tier", "Gold"), remove("Leads"))
    assert m.join is Join.ALL and not m.other_way and m.mirror_of == "r1"


def test_mirror_of_a_single_filter_any_rule_is_allowed() -> None:
    rule = Rule("r1", Side.A, (has("X"),), (add("Y"),), join=Join.ANY)
    assert mirror_problem(rule) == ""
    assert mirror(rule).join is Join.ALL


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        (
            Rule("r", Side.A, (has("X"), has("Y")), (add("Z"),), join=Join.ANY),
            "joined by ANY",
        ),
        (
            Rule("r", Side.A, (fld("organization", Op.CONTAINS, "Acme"),), (add("Z"),)),
            "the filter “organization contains “Acme”” has no opposite action",
        ),
        (Rule("r", Side.A, (fld("notes", Op.EMPTY),), (add("Z"),)), "notes is empty"),
        (Rule("r", Side.A, (UNSUBSCRIBED,), (add("Z"),)), "is unsubscribed"),
        (Rule("r", Side.A, (EXISTS,), (add("Z"),)), "already exists"),
        (Rule("r", Side.A, (has("X"),)), "nothing to mirror"),
    ],
)
def test_mirror_problem_explains_why(rule: Rule, why: str) -> None:
    assert why in mirror_problem(rule)


def test_mirror_problem_of_an_empty_rule_is_none() -> None:
    rule = Rule("r", Side.A)
    assert mirror_problem(rule) == ""
    assert mirror(rule) == Rule("r~", Side.B, mirror_of="r")


def test_rule_draft_builds_a_rule() -> None:
    draft = RuleDraft(Side.B, Join.ANY, [has("X"), has("Y")], [add("Z")], undo=False)
    rule = draft.build("r9")
    assert rule == Rule("r9", Side.B, (has("X"), has("Y")), (add("Z"),), Join.ANY, undo=False)
    assert RuleDraft(Side.A).build().id.startswith("r")


def test_rule_draft_refuses_other_way_when_impossible() -> None:
    draft = RuleDraft(Side.A, Join.ANY, [has("X"), has("Y")], [add("Z")], other_way=True)
    with pytest.raises(ConfigError, match=r"Other way around.*not possible.*ANY"):
        draft.build("r1")
    contains = RuleDraft(
        Side.A, filters=[fld("org", Op.CONTAINS, "Acme")], actions=[add("Z")], other_way=True
    )
    with pytest.raises(ConfigError, match="has no opposite action"):
        contains.build("r1")
    ok = RuleDraft(Side.A, filters=[has("X")], actions=[add("Z")], other_way=True)
    assert ok.build("r1").other_way


def test_rule_draft_refuses_a_bad_action() -> None:
    with pytest.raises(ConfigError, match="Cannot add the rule: a segment action needs"):
        RuleDraft(Side.A, actions=[add("  ")]).build()
    with pytest.raises(ConfigError, match="a set-field action needs a field"):
        RuleDraft(Side.A, actions=[Action(A.SET_FIELD, "x")]).build()
