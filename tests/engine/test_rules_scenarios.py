"""Rules, Undo, Other-way, Sync Unsubscribes and the Trash segment, end to end through the
engine (SPEC §3, §7, §8; scenarios S4 and S8), on two in-memory apps and a real store."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from app.mapping.fields import Direction
from app.model import Labeled, Side
from app.rules.evaluate import UNSUBSCRIBES_SEGMENT
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
from app.store.models import ConflictEntry, IndexedRecord
from tests.engine.harness import Pair


def em(*emails: str) -> tuple[Labeled, ...]:
    return tuple(Labeled(e, "work") for e in emails)


def has(segment: str) -> Filter:
    return Filter(FilterKind.SEGMENT, Op.HAS, segment)


def add(segment: str) -> Action:
    return Action(ActionKind.ADD_SEGMENT, segment)


def remove(segment: str) -> Action:
    return Action(ActionKind.REMOVE_SEGMENT, segment)


def customers_rule(**kw: object) -> Rule:
    return Rule("r1", Side.A, (has("Customers"),), (add("Customers"),), **kw)  # type: ignore[arg-type]


def status(p: Pair, side: Side, rid: str) -> tuple[str, str]:
    with p.store.session() as s:
        row = s.scalars(
            select(IndexedRecord).where(
                IndexedRecord.side == side.value, IndexedRecord.record_id == rid
            )
        ).one()
        return row.status, row.reason


def only_b(p: Pair, email: str) -> str:
    hits = [
        r.id
        for r in p.b.records.values()
        if any(e.value == email for e in r.fields.get("emails", ()))  # type: ignore[union-attr]
    ]
    assert len(hits) == 1, hits
    return hits[0]


def second_run_is_quiet(p: Pair) -> None:
    before = p.writes()
    report = p.run()
    assert report.status == "ok", report.message
    assert p.writes() == before, "S17: a run with no edits writes nothing"


def test_s4_leaving_the_rule_undoes_its_action_and_excludes(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.rules = [customers_rule()]
    carol = p.a.add({"given_name": "Carol", "emails": em("carol@x.com")}, ["Customers"])
    other = p.a.add({"given_name": "Olga", "emails": em("olga@x.com")})
    report = p.run()
    assert report.created == {"a": 0, "b": 1}
    carol_b = only_b(p, "carol@x.com")
    assert p.b.records[carol_b].segments == {"Customers"}
    assert status(p, Side.A, other.id) == ("excluded", "no rule matches")
    second_run_is_quiet(p)

    p.a.set_segments(carol.id, [])
    p.run()
    assert carol_b in p.b.records, "nothing deleted"
    assert p.b.records[carol_b].segments == frozenset()
    assert carol.id in p.a.records
    assert status(p, Side.A, carol.id) == ("excluded", "no rule matches")
    assert status(p, Side.B, carol_b) == ("excluded", "no rule matches")
    second_run_is_quiet(p)


def test_undo_never_reverses_what_pairsync_did_not_do(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.rules = [customers_rule()]
    dan = p.a.add({"given_name": "Dan", "emails": em("dan@x.com")}, ["Customers"])
    dan_b = p.b.add({"given_name": "Dan", "emails": em("dan@x.com")}, ["Customers"])
    p.run()
    p.a.set_segments(dan.id, [])
    p.run()
    assert p.b.records[dan_b.id].segments == {"Customers"}, "the user put it there, not us"


def test_undo_off_leaves_the_action_in_place(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.rules = [customers_rule(undo=False)]
    carol = p.a.add({"given_name": "Carol", "emails": em("carol@x.com")}, ["Customers"])
    p.run()
    carol_b = only_b(p, "carol@x.com")
    p.a.set_segments(carol.id, [])
    p.run()
    assert p.b.records[carol_b].segments == {"Customers"}
    assert status(p, Side.A, carol.id) == ("excluded", "no rule matches")


def test_union_of_rules_and_out_of_scope_contacts_are_neither_created_nor_touched(
    tmp_path: Path,
) -> None:
    p = Pair(tmp_path)
    p.rules = [
        Rule("r1", Side.A, (has("Customers"),), (add("Customers"),)),
        Rule("r2", Side.A, (has("Partners"),), (add("Partners"),)),
    ]
    both = p.a.add({"given_name": "Bo", "emails": em("bo@x.com")}, ["Customers", "Partners"])
    p.a.add({"given_name": "Cy", "emails": em("cy@x.com")}, ["Partners"])
    nobody = p.a.add({"given_name": "No", "emails": em("no@x.com")}, ["Leads"])
    b_only = p.b.add({"given_name": "Bea", "emails": em("bea@x.com")})
    p.run()
    assert len(p.b.records) == 3
    assert p.b.records[only_b(p, "bo@x.com")].segments == {"Customers", "Partners"}
    assert p.b.records[only_b(p, "cy@x.com")].segments == {"Partners"}
    assert len(p.a.records) == 3, "no rule is sourced on B: nothing created in A"
    assert status(p, Side.A, nobody.id) == ("excluded", "no rule matches")
    assert status(p, Side.B, b_only.id) == ("excluded", "no rule matches")
    # Leaving one rule of two: only that rule's action is undone; the pair stays in scope.
    p.a.set_segments(both.id, ["Partners"])
    p.run()
    assert p.b.records[only_b(p, "bo@x.com")].segments == {"Partners"}
    assert status(p, Side.A, both.id) == ("bound", "")


def test_out_of_scope_contact_is_matched_not_duplicated(tmp_path: Path) -> None:
    """SPEC §4: the first scan reads everyone, so a contact outside the rules is matched."""
    p = Pair(tmp_path)
    p.rules = [customers_rule()]
    p.a.add({"given_name": "Eve", "family_name": "Ng", "emails": em("eve@x.com")}, ["Customers"])
    eve_b = p.b.add({"given_name": "Eve", "emails": em("eve@x.com")})
    p.run()
    assert len(p.b.records) == 1
    assert p.b.records[eve_b.id].segments == {"Customers"}
    assert p.b.records[eve_b.id].fields["family_name"] == "Ng"


def test_contradicting_actions_top_rule_wins_and_health_notes_it(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.rules = [
        Rule("vip", Side.A, (has("VIP"),), (add("Newsletter"),)),
        Rule("cust", Side.A, (has("Customers"),), (remove("Newsletter"),)),
    ]
    p.a.add({"given_name": "Vi", "emails": em("vi@x.com")}, ["VIP", "Customers"])
    p.b.add({"given_name": "Vi", "emails": em("vi@x.com")})
    report = p.run()
    assert report.rule_conflicts == 1
    assert p.b.records[only_b(p, "vi@x.com")].segments == {"Newsletter"}
    with p.store.session() as s:
        rows = s.scalars(select(ConflictEntry)).all()
    assert [r.field for r in rows] == ["rule:segment:newsletter"]
    message = json.loads(rows[0].value_a)
    assert message.startswith("Rules 1 and 2 disagree")
    assert "(rule 1) was applied" in message
    assert json.loads(rows[0].value_b) == "cust"


def test_dormant_pair_reattaches_with_a_three_way_merge(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.rules = [customers_rule()]
    carol = p.a.add(
        {"given_name": "Carol", "title": "CTO", "emails": em("carol@x.com")}, ["Customers"]
    )
    p.run()
    carol_b = only_b(p, "carol@x.com")
    p.a.set_segments(carol.id, [])
    p.run()
    p.a.edit(carol.id, title="CEO")
    p.b.edit(carol_b, family_name="Ray")
    p.run()
    assert p.b.records[carol_b].fields["title"] == "CTO", "dormant: no fields flow"
    assert "family_name" not in p.a.records[carol.id].fields
    p.a.set_segments(carol.id, ["Customers"])
    p.run()
    assert len(p.b.records) == 1, "re-attached, not re-created"
    assert p.b.records[carol_b].fields["title"] == "CEO"
    assert p.a.records[carol.id].fields["family_name"] == "Ray"
    assert p.b.records[carol_b].segments == {"Customers"}
    assert status(p, Side.A, carol.id) == ("bound", "")
    second_run_is_quiet(p)


def test_one_way_ignores_rules_sourced_on_the_read_only_side(tmp_path: Path) -> None:
    p = Pair(tmp_path, direction=Direction.A_TO_B)
    p.rules = default_rules()
    p.a.add({"given_name": "Al", "emails": em("al@x.com")})
    bee = p.b.add({"given_name": "Bee", "emails": em("bee@x.com")})
    p.run()
    assert len(p.a.records) == 1
    assert len(p.b.records) == 2
    assert status(p, Side.B, bee.id)[0] == "excluded"


def test_update_only_rule_never_creates(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    exists = Filter(FilterKind.EXISTS, Op.EXISTS)
    p.rules = [Rule("r1", Side.A, (exists,), (add("Known"),))]
    lone = p.a.add({"given_name": "Lone", "emails": em("lone@x.com")})
    p.a.add({"given_name": "Kim", "title": "Chef", "emails": em("kim@x.com")})
    kim_b = p.b.add({"given_name": "Kim", "emails": em("kim@x.com")})
    p.run()
    assert len(p.b.records) == 1
    assert p.b.records[kim_b.id].segments == {"Known"}
    assert p.b.records[kim_b.id].fields["title"] == "Chef"
    st, reason = status(p, Side.A, lone.id)
    assert st == "excluded" and "only updates" in reason
    second_run_is_quiet(p)


def test_other_way_around_moves_segments_in_unison(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.rules = [Rule("r1", Side.A, (has("Customers"),), (add("Clients"),), other_way=True)]
    ann = p.a.add({"given_name": "Ann", "emails": em("ann@x.com")}, ["Customers"])
    bob_b = p.b.add({"given_name": "Bob", "emails": em("bob@x.com")}, ["Clients"])
    p.run()
    assert p.b.records[only_b(p, "ann@x.com")].segments == {"Clients"}
    bob_a = next(r for r in p.a.records.values() if r.id != ann.id)
    assert bob_a.segments == {"Customers"}, "mirror: B's Clients → A's Customers"
    # Removing the segment in B undoes what the mirror did in A.
    p.b.set_segments(bob_b.id, [])
    p.run()
    assert p.a.records[bob_a.id].segments == frozenset()
    second_run_is_quiet(p)


def test_set_field_action_and_its_undo(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    set_title = Action(ActionKind.SET_FIELD, "Customer", "title")
    p.rules = [Rule("r1", Side.A, (has("Customers"),), (set_title,)), Rule("rb", Side.B)]
    p.mappings = [m for m in p.mappings if m.key != "title=title"]
    carol = p.a.add({"given_name": "Carol", "emails": em("carol@x.com")}, ["Customers"])
    carol_b = p.b.add({"given_name": "Carol", "title": "Lead", "emails": em("carol@x.com")})
    p.run()
    assert p.b.records[carol_b.id].fields["title"] == "Customer"
    second_run_is_quiet(p)
    p.a.set_segments(carol.id, [])
    p.run()
    assert p.b.records[carol_b.id].fields["title"] == "Lead", "undo restores the old value"
    # Undo does not clobber what the user typed since.
    p.a.set_segments(carol.id, ["Customers"])
    p.run()
    p.b.edit(carol_b.id, title="Partner")
    p.a.set_segments(carol.id, [])
    p.run()
    assert p.b.records[carol_b.id].fields["title"] == "Partner"


def test_rule_filters_on_fields_and_any_join(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.rules = [
        Rule(
            "r1",
            Side.A,
            (
                Filter(FilterKind.FIELD, Op.CONTAINS, "acme", "organization"),
                Filter(FilterKind.FIELD, Op.STARTS_WITH, "Dir", "title"),
            ),
            (add("Acme"),),
            join=Join.ANY,
        )
    ]
    p.a.add({"given_name": "A", "organization": "ACME Ltd", "emails": em("a@x.com")})
    p.a.add({"given_name": "B", "title": "Director", "emails": em("b@x.com")})
    p.a.add({"given_name": "C", "organization": "Other", "emails": em("c@x.com")})
    p.run()
    assert sorted(r.fields["given_name"] for r in p.b.records.values()) == ["A", "B"]  # type: ignore[type-var]


def test_changing_rules_replans_from_the_index_without_reading(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.rules = [customers_rule()]
    p.a.add({"given_name": "Carol", "emails": em("carol@x.com")}, ["Customers"])
    p.a.add({"given_name": "Dora", "emails": em("dora@x.com")}, ["Partners"])
    p.run()
    assert len(p.b.records) == 1
    p.rules = [customers_rule(), Rule("r2", Side.A, (has("Partners"),), (add("Partners"),))]
    writes = p.writes()
    report = p.run()
    assert report.read == {"a": 0, "b": 0}, "nothing re-read from the apps"
    assert report.created == {"a": 0, "b": 1}
    assert p.writes() == writes + 1, "only what the change implies"
    assert p.b.records[only_b(p, "dora@x.com")].segments == {"Partners"}
    second_run_is_quiet(p)


def test_segments_mapping_leaves_rule_segments_to_the_rules(tmp_path: Path) -> None:
    """With the default Segments mapping on, "Customers" is managed by the rule only: it is
    not copied back to A when the rule puts it in B, and other segments still sync."""
    p = Pair(tmp_path)
    p.rules = [Rule("r1", Side.A, (has("VIP"),), (add("Customers"),)), Rule("rb", Side.B)]
    vi = p.a.add({"given_name": "Vi", "emails": em("vi@x.com")}, ["VIP", "Friends"])
    p.run()
    vi_b = only_b(p, "vi@x.com")
    assert p.b.records[vi_b].segments == {"Customers", "Friends"}
    second_run_is_quiet(p)
    assert p.a.records[vi.id].segments == {"VIP", "Friends"}


def test_s8_unsubscribe_tags_the_counterpart_and_never_resubscribes(tmp_path: Path) -> None:
    p = Pair(tmp_path, subscription=True, unsubscribes=True)
    mia = p.a.add({"given_name": "Mia", "emails": em("mia@x.com")}, subscribed=True)
    mia_b = p.b.add({"given_name": "Mia", "emails": em("mia@x.com")}, subscribed=True)
    p.run()
    assert p.b.records[mia_b.id].segments == frozenset()
    p.a.set_subscribed(mia.id, False)
    p.run()
    assert p.b.records[mia_b.id].segments == {UNSUBSCRIBES_SEGMENT}
    assert p.b.records[mia_b.id].subscribed is True, "opt-out only when the user asks"
    assert p.a.records[mia.id].segments == frozenset(), "the review segment stays in B"
    second_run_is_quiet(p)
    # The user reviews and removes the tag; it is not put back while nothing changes.
    p.b.set_segments(mia_b.id, [])
    p.run()
    assert p.b.records[mia_b.id].segments == frozenset()
    # Re-subscribing in A re-subscribes nobody in B.
    p.a.set_subscribed(mia.id, True)
    p.b.set_subscribed(mia_b.id, False)
    p.run()
    assert p.a.records[mia.id].subscribed is True
    assert p.b.records[mia_b.id].subscribed is False
    assert p.a.records[mia.id].segments == {UNSUBSCRIBES_SEGMENT}, "B's unsubscribe tags A"


def test_unsubscribe_with_opt_out_sets_the_other_apps_flag(tmp_path: Path) -> None:
    p = Pair(tmp_path, subscription=True, unsubscribes=True, unsubscribe_opt_out=True)
    mia = p.a.add({"given_name": "Mia", "emails": em("mia@x.com")}, subscribed=True)
    mia_b = p.b.add({"given_name": "Mia", "emails": em("mia@x.com")}, subscribed=True)
    gone = p.a.add({"given_name": "Gus", "emails": em("gus@x.com")}, subscribed=False)
    p.run()
    gus_b = only_b(p, "gus@x.com")
    assert p.b.records[gus_b].subscribed is False
    assert p.b.records[gus_b].segments == {UNSUBSCRIBES_SEGMENT}
    p.a.set_subscribed(mia.id, False)
    p.run()
    assert p.b.records[mia_b.id].subscribed is False
    assert p.b.records[mia_b.id].segments == {UNSUBSCRIBES_SEGMENT}
    assert gone.id in p.a.records
    second_run_is_quiet(p)


def test_unsubscribes_off_does_nothing(tmp_path: Path) -> None:
    p = Pair(tmp_path, subscription=True)
    mia = p.a.add({"given_name": "Mia", "emails": em("mia@x.com")}, subscribed=True)
    mia_b = p.b.add({"given_name": "Mia", "emails": em("mia@x.com")}, subscribed=True)
    p.run()
    p.a.set_subscribed(mia.id, False)
    p.run()
    assert p.b.records[mia_b.id].segments == frozenset()
    assert p.b.records[mia_b.id].subscribed is True


def test_trash_segment_does_not_spread_back(tmp_path: Path) -> None:
    p = Pair(tmp_path, trash=True)
    ann = p.a.add({"given_name": "Ann", "emails": em("ann@x.com")})
    p.b.add({"given_name": "Ann", "emails": em("ann@x.com")})
    other = p.b.add({"given_name": "Ola", "emails": em("ola@x.com")})
    p.run()
    ola_a = next(r.id for r in p.a.records.values() if r.id != ann.id)
    p.b.delete(other.id)
    p.run()
    assert p.a.records[ola_a].segments == {"Pairsync Trash"}
    assert len(p.b.records) == 1
    second_run_is_quiet(p)
