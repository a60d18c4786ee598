"""SPEC acceptance scenarios and engine rules, on two in-memory apps and a real store."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from app.connectors.memory import STANDARD_FIELDS
from app.errors import Rejected, Unavailable
from app.mapping.fields import Direction
from app.model import FieldSpec, FieldType, Labeled, Meaning, Side, Unreadable
from app.store.models import Binding, ConflictEntry, Failure, JournalEntry, PendingOp
from tests.engine.harness import Pair


def em(*emails: str) -> tuple[Labeled, ...]:
    return tuple(Labeled(e, "work") for e in emails)


def ph(*phones: str) -> tuple[Labeled, ...]:
    return tuple(Labeled(p, "mobile") for p in phones)


def test_s1_first_sync_binds_winner_and_fills_empties(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com"), "phones": ph("+1 202 555 0101")})
    b = p.b.add(
        {
            "given_name": "Ann",
            "family_name": "Lee",
            "emails": em("ANN@x.com "),
            "phones": ph("+1 202 555 0199"),
        }
    )
    report = p.run()
    assert report.status == "ok"
    assert report.created == {"a": 0, "b": 0}
    assert len(p.a.records) == len(p.b.records) == 1
    assert p.b.records[b.id].fields["phones"][0].value == "+1 202 555 0101"
    assert p.a.records[a.id].fields["family_name"] == "Lee"
    with p.store.session() as s:
        assert s.scalars(select(Binding)).one().id_a == a.id


def test_s1_winner_b(tmp_path: Path) -> None:
    p = Pair(tmp_path, winner=Side.B)
    a = p.a.add({"title": "CEO", "emails": em("ann@x.com")})
    p.b.add({"title": "Boss", "emails": em("ann@x.com")})
    p.run()
    assert p.a.records[a.id].fields["title"] == "Boss"


def test_s2_email_change_updates_counterpart(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com")})
    b = p.b.add({"given_name": "Ann", "emails": em("ann@x.com")})
    p.run()
    p.a.edit(a.id, emails=em("ann@y.com"))
    report = p.run()
    assert report.created == {"a": 0, "b": 0}
    assert p.b.records[b.id].fields["emails"] == em("ann@y.com")
    assert len(p.b.records) == 1


def test_s3_no_email_is_excluded_when_avoiding_duplicates(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.a.add({"given_name": "Bob"})
    report = p.run()
    assert report.excluded == 1
    assert p.writes() == 0
    assert p.b.records == {}
    rows = p.state.ids_with_status(Side.A, "excluded")
    assert len(rows) == 1


def test_avoid_duplicates_off_creates_contacts_without_email(tmp_path: Path) -> None:
    p = Pair(tmp_path, avoid_duplicates=False)
    p.a.add({"given_name": "Bob"})
    p.run()
    assert [r.fields["given_name"] for r in p.b.records.values()] == ["Bob"]
    assert p.run().created == {"a": 0, "b": 0}


def test_s5_one_way_never_writes_the_source(tmp_path: Path) -> None:
    p = Pair(tmp_path, direction=Direction.A_TO_B)
    a = p.a.add({"title": "CEO", "emails": em("ann@x.com")})
    p.b.add({"given_name": "Zed", "emails": em("zed@x.com")})
    p.run()
    before = dict(p.a.records)
    b_id = next(r.id for r in p.b.records.values() if r.fields.get("title") == "CEO")
    p.b.edit(b_id, title="Intern")
    report = p.run()
    assert p.a.records == before
    assert report.created["a"] == 0 and report.updated["a"] == 0
    # A later change in A still flows, and wins over B's edit.
    p.a.edit(a.id, title="Chair")
    p.run()
    assert p.b.records[b_id].fields["title"] == "Chair"
    assert p.a.records[a.id].fields["title"] == "Chair"


def test_s6_both_sides_edited_winner_and_conflict_logged(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"title": "CEO", "emails": em("ann@x.com")})
    b = p.b.add({"title": "CEO", "emails": em("ann@x.com")})
    p.run()
    p.a.edit(a.id, title="Chair")
    p.b.edit(b.id, title="Founder")
    report = p.run()
    assert report.conflicts == 1
    assert p.a.records[a.id].fields["title"] == "Chair"
    assert p.b.records[b.id].fields["title"] == "Chair"
    with p.store.session() as s:
        c = s.scalars(select(ConflictEntry)).one()
        assert (json.loads(c.value_a), json.loads(c.value_b), c.winner) == ("Chair", "Founder", "a")


def test_non_conflicting_edits_merge_field_by_field(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"title": "CEO", "organization": "Acme", "emails": em("ann@x.com")})
    b = p.b.add({"title": "CEO", "organization": "Acme", "emails": em("ann@x.com")})
    p.run()
    p.a.edit(a.id, title="Chair")
    p.b.edit(b.id, organization="Acme Ltd")
    report = p.run()
    assert report.conflicts == 0
    for rec in (p.a.records[a.id], p.b.records[b.id]):
        assert (rec.fields["title"], rec.fields["organization"]) == ("Chair", "Acme Ltd")


def test_deliberate_clear_propagates_but_never_the_match_email(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"title": "CEO", "emails": em("ann@x.com")})
    b = p.b.add({"title": "CEO", "emails": em("ann@x.com")})
    p.run()
    p.a.edit(a.id, title="", emails=())
    p.run()
    assert "title" not in p.b.records[b.id].fields
    assert p.b.records[b.id].fields["emails"] == em("ann@x.com")
    assert p.run().updated == {"a": 0, "b": 0}


def test_clear_not_propagated_when_option_off(tmp_path: Path) -> None:
    p = Pair(tmp_path, propagate_clears=False)
    a = p.a.add({"title": "CEO", "emails": em("ann@x.com")})
    b = p.b.add({"title": "CEO", "emails": em("ann@x.com")})
    p.run()
    p.a.edit(a.id, title="")
    p.run()
    assert p.b.records[b.id].fields["title"] == "CEO"


def test_s7_deleted_record_is_never_recreated(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com")})
    p.a.add({"given_name": "Zoe", "emails": em("zoe@x.com")})
    p.run()
    b_id = next(r.id for r in p.b.records.values() if r.fields["given_name"] == "Ann")
    p.b.delete(b_id)
    report = p.run()
    assert report.deleted_other_side == 1
    for _ in range(2):
        p.a.edit(a.id, title=f"edit {_}")
        p.run()
    assert a.id in p.a.records
    assert all(r.fields["given_name"] != "Ann" for r in p.b.records.values())
    excluded = p.state.ids_with_status(Side.A, "excluded")
    assert excluded == [a.id]


def test_trash_segment_marks_the_kept_counterpart(tmp_path: Path) -> None:
    p = Pair(tmp_path, trash=True)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com")})
    p.a.add({"given_name": "Zoe", "emails": em("zoe@x.com")})
    p.run()
    p.b.delete(next(r.id for r in p.b.records.values() if r.fields["given_name"] == "Ann"))
    p.run()
    assert "Pairsync Trash" in p.a.records[a.id].segments


def test_s10_empty_listing_stops_before_writing(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    for i in range(10):
        p.a.add({"given_name": f"N{i}", "emails": em(f"n{i}@x.com")})
    p.run()
    p.b.hide_from_listing = set(p.b.records)
    for rid in list(p.a.records)[:3]:
        p.a.edit(rid, title="changed")
    writes = p.writes()
    report = p.run()
    assert report.status == "guard"
    assert report.guard["listed"] == 0 and report.guard["known"] == 10
    assert p.writes() == writes
    # Nothing was recorded as deleted either; a normal listing resumes normally.
    p.b.hide_from_listing = set()
    report = p.run()
    assert report.status == "ok" and report.updated["b"] == 3


def test_shrink_over_20_percent_needs_confirmation(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    for i in range(20):
        p.a.add({"given_name": f"N{i}", "emails": em(f"n{i}@x.com")})
    p.run()
    for rid in list(p.b.records)[:6]:
        p.b.delete(rid)
    assert p.run().status == "guard"
    report = p.run(confirm=True)
    assert report.status == "ok" and report.deleted_other_side == 6
    assert len(p.a.records) == 20


def test_too_many_writes_stop_a_later_run(tmp_path: Path) -> None:
    p = Pair(tmp_path, guard_max_writes=5)
    for i in range(10):
        p.a.add({"given_name": f"N{i}", "emails": em(f"n{i}@x.com")})
    assert p.run().status == "ok"  # the first run is not limited
    for rid in p.a.records:
        p.a.edit(rid, title="x")
    report = p.run()
    assert report.status == "guard" and report.guard["updates"] == 10
    assert p.run(confirm=True).status == "ok"


def test_s11_shared_email_goes_to_duplicates(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.a.add({"given_name": "Dave", "emails": em("dave@x.com")})
    p.b.add({"given_name": "Dave", "emails": em("dave@x.com")})
    p.b.add({"given_name": "David", "emails": em("Dave@X.com")})
    report = p.run()
    assert report.duplicates == 3
    assert p.writes() == 0
    with p.store.session() as s:
        assert s.scalars(select(Binding)).all() == []
    # Resolving it in the app (deleting one copy) lets the other bind.
    p.b.delete(next(r.id for r in p.b.records.values() if r.fields["given_name"] == "David"))
    p.run()
    with p.store.session() as s:
        assert len(s.scalars(select(Binding)).all()) == 1


def test_matching_tries_secondary_emails(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.a.add({"given_name": "Ann", "emails": em("ann@home.com", "ann@work.com")})
    p.b.add({"given_name": "Ann", "emails": em("ann@work.com")})
    report = p.run()
    assert report.created == {"a": 0, "b": 0} and report.matched == 1


def test_s13_full_name_split_on_last_space(tmp_path: Path) -> None:
    full_only = (
        FieldSpec("full_name", "Name", meaning=Meaning.FULL_NAME),
        FieldSpec("emails", "Emails", FieldType.EMAIL, multi=True, meaning=Meaning.EMAIL),
    )
    split_only = tuple(f for f in STANDARD_FIELDS if f.key != "full_name")
    p = Pair(tmp_path, fields_a=full_only, fields_b=split_only)
    p.a.add({"full_name": "Maria de la Cruz", "emails": em("maria@x.com")})
    p.a.add({"full_name": "Jan van Dijk", "emails": em("jan@x.com")})
    jan_b = p.b.add({"given_name": "Jan", "family_name": "van Dijk", "emails": em("jan@x.com")})
    p.run()
    maria = next(r for r in p.b.records.values() if r.fields.get("given_name") != "Jan")
    assert (maria.fields["given_name"], maria.fields["family_name"]) == ("Maria de la", "Cruz")
    # An existing split that joins to the same full name is left alone.
    assert p.b.records[jan_b.id].fields["family_name"] == "van Dijk"
    assert p.run().updated == {"a": 0, "b": 0}
    # Only the part that changed is written.
    p.b.edit(maria.id, family_name="Cruz-Lopez")
    p.run()
    a_maria = next(r for r in p.a.records.values() if "Maria" in str(r.fields["full_name"]))
    assert a_maria.fields["full_name"] == "Maria de la Cruz-Lopez"


def test_s14_list_to_single_writes_back_only_its_value(tmp_path: Path) -> None:
    single = (
        *tuple(f for f in STANDARD_FIELDS if f.key != "phones"),
        FieldSpec("phone", "Phone", FieldType.PHONE, meaning=Meaning.PHONE),
    )
    p = Pair(tmp_path, fields_b=single)
    a = p.a.add(
        {
            "given_name": "Ann",
            "emails": em("ann@x.com"),
            "phones": (Labeled("+44 7700 900123", "mobile"), Labeled("+44 20 7946 0958", "work")),
        }
    )
    p.run()
    b = next(iter(p.b.records.values()))
    assert b.fields["phone"] == "+44 7700 900123"
    p.b.edit(b.id, phone="+44 7700 900999")
    p.run()
    assert p.a.records[a.id].fields["phones"] == (
        Labeled("+44 7700 900999", "mobile"),
        Labeled("+44 20 7946 0958", "work"),
    )
    assert p.run().updated == {"a": 0, "b": 0}


def test_s17_second_run_writes_nothing_and_formatting_is_not_a_change(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    for i in range(30):
        p.a.add(
            {"given_name": f"A{i}", "emails": em(f"a{i}@x.com"), "phones": ph("+1 202 555 0101")},
            segments=["Customers"],
        )
        p.b.add({"given_name": f"B{i}", "emails": em(f"b{i}@x.com")})
    p.run()
    writes = p.writes()
    report = p.run()
    assert (report.created, report.updated) == ({"a": 0, "b": 0}, {"a": 0, "b": 0})
    assert p.writes() == writes
    assert report.read == {"a": 0, "b": 0}  # nothing changed, nothing fetched
    rid = next(iter(p.a.records))
    p.a.edit(
        rid,
        phones=ph("+12025550101"),
        emails=em(p.a.records[rid].fields["emails"][0].value.upper()),
    )
    assert p.run().updated == {"a": 0, "b": 0}


def test_segments_merge_element_wise(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"emails": em("ann@x.com")}, segments=["Customers"])
    b = p.b.add({"emails": em("ann@x.com")}, segments=["Leads"])
    p.run()
    assert p.a.records[a.id].segments == p.b.records[b.id].segments == {"Customers", "Leads"}
    p.a.set_segments(a.id, ["Customers", "VIP"])
    p.b.set_segments(b.id, ["Customers"])
    p.run()
    assert p.a.records[a.id].segments == p.b.records[b.id].segments == {"Customers", "VIP"}


def test_one_bad_record_never_blocks_the_others_and_is_retried(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    for i in range(5):
        p.a.add({"given_name": f"N{i}", "emails": em(f"n{i}@x.com")})
    p.b.reject["n2@x.com"] = Rejected("Last name is required.", field="family_name")
    report = p.run()
    assert report.status == "failed" and report.failed == 1
    assert report.created["b"] == 4 and len(p.b.records) == 4
    with p.store.session() as s:
        f = s.scalars(select(Failure)).one()
        assert (f.code, f.field, f.message) == ("rejected", "family_name", "Last name is required.")
    # Retried on the next run; once the app accepts it, the failure is gone.
    del p.b.reject["n2@x.com"]
    report = p.run()
    assert report.status == "ok" and report.created["b"] == 1
    with p.store.session() as s:
        assert s.scalars(select(Failure)).all() == []
    assert p.run().created == {"a": 0, "b": 0}


def test_failures_back_off_then_retry_when_source_changes(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"given_name": "N", "emails": em("n@x.com")})
    p.b.reject["n@x.com"] = Rejected("nope")
    attempts = []
    for _ in range(6):
        p.run()
        with p.store.session() as s:
            attempts.append(s.scalars(select(Failure)).one().attempts)
    # Runs 1, 2 try; run 3 and 4 wait (after 3 runs), run 5 tries; then it waits 10 runs.
    assert attempts == [1, 2, 2, 2, 3, 3]
    # An edit of the source retries at once.
    del p.b.reject["n@x.com"]
    p.a.edit(a.id, title="x")
    assert p.run().created["b"] == 1


def test_failed_update_keeps_base_and_is_retried(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"title": "CEO", "emails": em("ann@x.com")})
    b = p.b.add({"title": "CEO", "emails": em("ann@x.com")})
    p.run()
    p.a.edit(a.id, title="Chair")
    p.b.reject[b.id] = Rejected("Server said no", field="title")
    assert p.run().failed == 1
    del p.b.reject[b.id]
    p.run()
    assert p.b.records[b.id].fields["title"] == "Chair"


def test_unreadable_record_is_reported_and_others_sync(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.a.unreadable["broken"] = Unreadable(
        "broken", "v1", "The file broken.vcf is not a valid vCard."
    )
    p.a.add({"given_name": "Ann", "emails": em("ann@x.com")})
    report = p.run()
    assert report.failed == 1 and report.created["b"] == 1
    with p.store.session() as s:
        assert s.scalars(select(Failure)).one().code == "unreadable"


def test_app_outage_is_a_clear_message_not_a_crash(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.b.outage = Unavailable("The folder /x is missing.")
    report = p.run()
    assert report.status == "unavailable" and "missing" in report.message


def test_dry_run_writes_nothing_and_matches_the_real_run(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.a.add({"title": "CEO", "emails": em("ann@x.com")})
    p.b.add({"title": "Boss", "emails": em("ann@x.com")})
    p.a.add({"emails": em("new@x.com")})
    p.b.add({"given_name": "NoMail"})
    dry = p.run(dry_run=True)
    assert p.writes() == 0
    assert p.state.index_versions(Side.A) == {}
    real = p.run()
    assert (dry.created, dry.updated, dry.excluded, dry.matched) == (
        real.created,
        real.updated,
        real.excluded,
        real.matched,
    )


def test_journal_records_every_field_written(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"title": "CEO", "emails": em("ann@x.com")})
    p.run()
    p.a.edit(a.id, title="Chair")
    p.run()
    with p.store.session() as s:
        rows = s.scalars(select(JournalEntry).order_by(JournalEntry.id)).all()
    creates = [r for r in rows if r.action == "create"]
    updates = [r for r in rows if r.action == "update"]
    assert {r.field for r in creates} == {"title", "emails"}
    assert [
        (u.field, json.loads(u.before or "null"), json.loads(u.after or "null")) for u in updates
    ] == [("title", "CEO", "Chair")]


def test_interrupted_create_is_bound_not_duplicated(tmp_path: Path) -> None:
    """S16 at the worst moment: the app created the contact, we died before recording it."""

    class Crash(BaseException):
        pass

    p = Pair(tmp_path)
    p.a.add({"given_name": "Ann", "emails": em("ann@x.com")})
    real_write = p.b.write

    def write_then_die(ops):  # type: ignore[no-untyped-def]
        real_write(ops)
        raise Crash

    p.b.write = write_then_die  # type: ignore[method-assign]
    with contextlib.suppress(Crash):
        p.run()
    p.b.write = real_write  # type: ignore[method-assign]
    with p.store.session() as s:
        assert len(s.scalars(select(PendingOp)).all()) == 1
    report = p.run()
    assert report.status == "ok" and report.created == {"a": 0, "b": 0}
    assert len(p.b.records) == 1
    with p.store.session() as s:
        assert s.scalars(select(PendingOp)).all() == []
        assert len(s.scalars(select(Binding)).all()) == 1
    assert p.run().updated == {"a": 0, "b": 0}


def test_interrupted_update_loses_no_edit(tmp_path: Path) -> None:
    class Crash(BaseException):
        pass

    p = Pair(tmp_path, batch_size=2)
    ids = [p.a.add({"title": "t0", "emails": em(f"n{i}@x.com")}).id for i in range(6)]
    p.run()
    for rid in ids:
        p.a.edit(rid, title="t1")
    calls = {"n": 0}
    real_write = p.b.write

    def flaky(ops):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash
        return real_write(ops)

    p.b.write = flaky  # type: ignore[method-assign]
    with contextlib.suppress(Crash):
        p.run()
    p.b.write = real_write  # type: ignore[method-assign]
    p.run()
    assert sorted(r.fields["title"] for r in p.b.records.values()) == ["t1"] * 6
    assert p.run().updated == {"a": 0, "b": 0}


def test_email_collision_is_held_back_and_reported(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    ann = p.a.add({"given_name": "Ann", "title": "CEO", "emails": em("ann@x.com")})
    p.a.add({"given_name": "Carl", "emails": em("carl@x.com")})
    p.run()
    p.a.edit(ann.id, emails=em("carl@x.com"), title="Chair")
    report = p.run()
    assert report.failed == 1
    b_ann = next(r for r in p.b.records.values() if r.fields["given_name"] == "Ann")
    assert b_ann.fields["emails"] == em("ann@x.com")
    assert b_ann.fields["title"] == "Chair"  # the rest of the pair still syncs
    with p.store.session() as s:
        f = s.scalars(select(Failure)).one()
        assert f.code == "email_collision" and "carl@x.com" in f.message
    # Once the user fixes the email in A, the failure is gone and the email flows.
    p.a.edit(ann.id, emails=em("ann@new.com"))
    p.run()
    assert b_ann.id in p.b.records and p.b.records[b_ann.id].fields["emails"] == em("ann@new.com")
    with p.store.session() as s:
        assert s.scalars(select(Failure)).all() == []


def test_lists_first_sync_keeps_both_sides_values(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"emails": em("ann@x.com"), "phones": ph("+1 202 555 0101")})
    b = p.b.add({"emails": em("ann@x.com", "ann@home.com"), "phones": ph("+1 202 555 0199")})
    p.run()
    for rec in (p.a.records[a.id], p.b.records[b.id]):
        assert [x.value for x in rec.fields["phones"]] == ["+1 202 555 0101", "+1 202 555 0199"]
        assert [x.value for x in rec.fields["emails"]] == ["ann@x.com", "ann@home.com"]
    assert p.run().updated == {"a": 0, "b": 0}


def test_lists_merge_value_by_value(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"emails": em("ann@x.com"), "phones": ph("+1 202 555 0101", "+1 202 555 0102")})
    b = p.b.add({"emails": em("ann@x.com")})
    p.run()
    # A edits one phone, B adds another and drops the second: all three intents survive.
    p.a.edit(a.id, phones=ph("+1 202 555 0111", "+1 202 555 0102"))
    p.b.edit(b.id, phones=ph("+1 202 555 0101", "+1 202 555 0103"))
    report = p.run()
    assert report.conflicts == 0
    expected = {"+1 202 555 0111", "+1 202 555 0103"}
    for rec in (p.a.records[a.id], p.b.records[b.id]):
        assert {x.value for x in rec.fields["phones"]} == expected
    assert p.run().updated == {"a": 0, "b": 0}


def test_changed_primary_email_stays_first(tmp_path: Path) -> None:
    p = Pair(tmp_path, winner=Side.A)
    p.a.add({"emails": em("ann@x.com", "ann@home.com")})
    b = p.b.add({"emails": em("ann@x.com", "ann@home.com")})
    p.run()
    p.b.edit(b.id, emails=em("ann@home.com", "ann@x.com"))
    p.run()
    a_rec = next(iter(p.a.records.values()))
    assert [x.value for x in a_rec.fields["emails"]] == ["ann@home.com", "ann@x.com"]


def test_full_name_to_parts_with_prefix_suffix_and_middle(tmp_path: Path) -> None:
    full_only = (
        FieldSpec("full_name", "Name", meaning=Meaning.FULL_NAME),
        FieldSpec("emails", "Emails", FieldType.EMAIL, multi=True, meaning=Meaning.EMAIL),
    )
    parts = (
        FieldSpec("name_prefix", "Title", meaning=Meaning.NAME_PREFIX),
        FieldSpec("given_name", "First name", meaning=Meaning.GIVEN_NAME),
        FieldSpec("middle_name", "Middle name", meaning=Meaning.MIDDLE_NAME),
        FieldSpec("family_name", "Last name", meaning=Meaning.FAMILY_NAME),
        FieldSpec("name_suffix", "Suffix", meaning=Meaning.NAME_SUFFIX),
        FieldSpec("emails", "Emails", FieldType.EMAIL, multi=True, meaning=Meaning.EMAIL),
    )
    p = Pair(tmp_path, fields_a=full_only, fields_b=parts)
    p.a.add({"full_name": "Dr. Martin Luther King Jr.", "emails": em("mlk@x.com")})
    p.a.add({"full_name": "Cher", "emails": em("cher@x.com")})
    tolkien = p.b.add(
        {
            "given_name": "John",
            "middle_name": "Ronald Reuel",
            "family_name": "Tolkien",
            "emails": em("jrrt@x.com"),
        }
    )
    p.run()
    by_email = {r.fields["emails"][0].value: r for r in p.b.records.values()}
    mlk = by_email["mlk@x.com"].fields
    assert (mlk["name_prefix"], mlk["given_name"], mlk["family_name"], mlk["name_suffix"]) == (
        "Dr.",
        "Martin Luther",
        "King",
        "Jr.",
    )
    assert by_email["cher@x.com"].fields["given_name"] == "Cher"
    assert "family_name" not in by_email["cher@x.com"].fields
    a_tolkien = next(r for r in p.a.records.values() if r.fields["emails"][0].value == "jrrt@x.com")
    assert a_tolkien.fields["full_name"] == "John Ronald Reuel Tolkien"
    assert p.b.records[tolkien.id].fields["middle_name"] == "Ronald Reuel"  # left alone
    assert p.run().updated == {"a": 0, "b": 0}


def test_list_to_single_with_a_picked_label(tmp_path: Path) -> None:
    from app.mapping.config import CustomMapping, MappingConfig, active_mappings, build_views
    from app.model import Schema

    single = (
        *tuple(f for f in STANDARD_FIELDS if f.key != "phones"),
        FieldSpec("mobile", "Mobile", FieldType.PHONE),
    )
    p = Pair(tmp_path, fields_b=single)
    config = MappingConfig(custom=[CustomMapping("phones", "mobile", pick_label="mobile")])
    views = build_views(Schema(p.a.fields()), Schema(p.b.fields()), config, Direction.TWO_WAY)
    p.mappings = active_mappings(views)
    a = p.a.add(
        {
            "emails": em("ann@x.com"),
            "phones": (Labeled("+44 20 7946 0958", "work"), Labeled("+44 7700 900123", "mobile")),
        }
    )
    p.run()
    b = next(iter(p.b.records.values()))
    assert b.fields["mobile"] == "+44 7700 900123"
    p.b.edit(b.id, mobile="+44 7700 900999")
    p.run()
    assert p.a.records[a.id].fields["phones"] == (
        Labeled("+44 20 7946 0958", "work"),
        Labeled("+44 7700 900999", "mobile"),
    )
    assert p.run().updated == {"a": 0, "b": 0}


def test_turning_a_mapping_on_replans_from_the_index_without_reading(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    all_mappings = p.mappings
    p.mappings = [m for m in all_mappings if m.key != "title=title"]
    a = p.a.add({"title": "CEO", "emails": em("ann@x.com")})
    b = p.b.add({"emails": em("ann@x.com")})
    p.run()
    assert "title" not in p.b.records[b.id].fields
    assert p.run().updated == {"a": 0, "b": 0}
    p.mappings = all_mappings
    report = p.run()
    assert report.read == {"a": 0, "b": 0}  # nothing read again from the apps
    assert report.updated == {"a": 0, "b": 1}
    assert p.b.records[b.id].fields["title"] == p.a.records[a.id].fields["title"] == "CEO"
    assert p.run().updated == {"a": 0, "b": 0}


def test_failure_of_a_contact_deleted_before_its_retry_is_cleared(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"emails": em("p0@x.com")})
    p.a.add({"emails": em("p1@x.com")})
    p.b.reject["p0@x.com"] = Rejected("nope")
    assert p.run().failed == 1
    p.b.reject.clear()
    p.a.delete(a.id)
    assert p.run().status == "ok"
    with p.store.session() as s:
        assert s.scalars(select(Failure)).all() == []


def test_settings_that_change_the_plan_re_plan_without_an_edit(tmp_path: Path) -> None:
    """Issue 12: a setting changed after a sync acts at the next run, with no edit to any
    contact (propagating clears here; Avoid Duplicates in tests/cli/test_cli_integrity)."""
    p = Pair(tmp_path, propagate_clears=False)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com"), "title": "CEO"})
    p.run()
    [b_id] = list(p.b.records)
    p.a.edit(a.id, title="")
    assert p.run().updated == {"a": 0, "b": 0}
    assert p.b.records[b_id].fields.get("title") == "CEO"  # the clear is held back
    p.settings = replace(p.settings, propagate_clears=True)
    report = p.run()
    assert report.updated == {"a": 0, "b": 1}
    assert not p.b.records[b_id].fields.get("title")
    assert p.run().updated == {"a": 0, "b": 0}
