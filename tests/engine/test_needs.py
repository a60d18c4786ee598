"""What a sync reads of each app (``read_hint``): mapped fields, rule fields, identity."""

from __future__ import annotations

from app.engine.needs import IDENTITY, read_hint
from app.mapping.defaults import default_mappings
from app.model import STANDARD_FIELDS, ConnectionSettings, FieldSpec, Schema, Side
from app.rules.model import Action, ActionKind, Filter, FilterKind, Op, Rule


def test_mapped_rule_and_identity_fields_and_the_subscription_when_used() -> None:
    a = Schema((*STANDARD_FIELDS, FieldSpec("tier", "Tier")))
    b = Schema(tuple(f for f in STANDARD_FIELDS if f.key != "notes"))
    mappings = default_mappings(a, b)
    rules = [
        Rule(
            "r1",
            Side.A,
            (Filter(FilterKind.FIELD, Op.IS, "Gold", "tier"),),
            (Action(ActionKind.SET_FIELD, "VIP", "title"),),
            other_way=False,
        ),
        Rule("off", Side.B, (Filter(FilterKind.FIELD, Op.IS, "x", "secret"),), enabled=False),
    ]
    off = ConnectionSettings()
    hint_a = read_hint(Side.A, mappings, rules, off)
    hint_b = read_hint(Side.B, mappings, rules, off)
    assert "tier" in hint_a.fields and "tier" not in hint_b.fields  # the rule's source only
    assert "title" in hint_b.fields and "secret" not in hint_b.fields
    assert hint_a.fields >= IDENTITY and "notes" not in hint_b.fields
    assert not hint_a.subscription and not hint_b.subscription
    assert read_hint(Side.B, mappings, [], ConnectionSettings(unsubscribes=True)).subscription
    sub = Rule("s", Side.B, (Filter(FilterKind.SUBSCRIPTION, Op.UNSUBSCRIBED),))
    assert read_hint(Side.B, mappings, [sub], off).subscription
    assert not read_hint(Side.A, mappings, [sub], off).subscription
    assert hint_a.tag != read_hint(Side.A, mappings, [], off).tag
    assert hint_a.tag == read_hint(Side.A, mappings, rules, off).tag
