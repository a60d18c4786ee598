"""Undo (SPEC §11), "use the other value" (SPEC §6) and cancellation, on the harness's two
memory apps with the real store and engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.engine.context import TRASH_SEGMENT
from app.engine.sync import SyncRun
from app.engine.undo import Reverter
from app.errors import ConfigError, RateLimited
from app.model import Labeled, Side
from app.store.models import ConflictEntry, JournalEntry, Run
from tests.engine.harness import Pair


def em(*emails: str) -> tuple[Labeled, ...]:
    return tuple(Labeled(e, "work") for e in emails)


def ph(*phones: str) -> tuple[Labeled, ...]:
    return tuple(Labeled(p, "mobile") for p in phones)


def reverter(p: Pair) -> Reverter:
    return Reverter("c", p.state, {Side.A: p.a, Side.B: p.b}, p.mappings, p.settings, rules=p.rules)


def last_run_id(p: Pair) -> int:
    with p.store.session() as s:
        return int(s.scalar(select(func.max(Run.id))) or 0)


def run_quietly(p: Pair) -> int:
    """Run once and return how many ops were written to either app."""
    before = p.writes()
    report = p.run()
    assert report.status == "ok", report.message
    return p.writes() - before


def test_undo_of_a_first_sync_puts_both_apps_back_and_the_next_run_writes_nothing(
    tmp_path: Path,
) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com"), "phones": ph("+1 202 555 0101")})
    b = p.b.add({"given_name": "Ann", "emails": em("ann@x.com"), "title": "CTO"})
    p.run()
    assert p.a.records[a.id].fields["title"] == "CTO"
    assert p.b.records[b.id].fields["phones"][0].value == "+1 202 555 0101"
    report = reverter(p).undo(last_run_id(p))
    assert report.status == "ok" and report.restored == 2 and not report.skipped
    assert "title" not in p.a.records[a.id].fields  # back to empty in A
    assert "phones" not in p.b.records[b.id].fields  # and in B
    assert run_quietly(p) == 0  # S17: the undo is not synced back
    # An unrelated edit re-plans the pair: the undone fields still stay as they are.
    p.a.edit(a.id, notes="met at the fair")
    assert run_quietly(p) == 1
    assert p.b.records[b.id].fields["notes"] == "met at the fair"
    assert "phones" not in p.b.records[b.id].fields
    assert "title" not in p.a.records[a.id].fields
    # A later edit of an undone field flows as usual.
    p.a.edit(a.id, phones=ph("+1 202 555 0177"))
    run_quietly(p)
    assert p.b.records[b.id].fields["phones"][0].value == "+1 202 555 0177"
    assert run_quietly(p) == 0


def test_undo_of_a_copied_edit_keeps_the_users_edit_and_later_edits_flow(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com"), "title": "CTO"})
    p.run()
    [b_id] = list(p.b.records)
    p.a.edit(a.id, title="CEO")
    p.run()
    assert p.b.records[b_id].fields["title"] == "CEO"
    report = reverter(p).undo(last_run_id(p))
    assert report.status == "ok" and report.updated == {"a": 0, "b": 1}
    assert p.b.records[b_id].fields["title"] == "CTO"
    assert p.a.records[a.id].fields["title"] == "CEO"  # the user's own edit is not ours
    assert run_quietly(p) == 0
    p.b.edit(b_id, title="Founder")
    run_quietly(p)
    assert p.a.records[a.id].fields["title"] == "Founder"
    assert run_quietly(p) == 0


def test_an_edit_made_meanwhile_on_the_other_side_still_flows(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com"), "title": "CTO"})
    p.run()
    [b_id] = list(p.b.records)
    p.a.edit(a.id, title="CEO")
    p.run()
    run_id = last_run_id(p)
    p.a.edit(a.id, title="Chair")  # not synced yet when the undo runs
    reverter(p).undo(run_id)
    assert p.b.records[b_id].fields["title"] == "CTO"
    run_quietly(p)
    assert p.b.records[b_id].fields["title"] == "Chair"


def test_a_field_changed_since_is_left_alone_and_reported(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com"), "title": "CTO"})
    p.run()
    [b_id] = list(p.b.records)
    p.a.edit(a.id, title="CEO", notes="vip")
    p.run()
    run_id = last_run_id(p)
    p.b.edit(b_id, title="Boss")
    report = reverter(p).undo(run_id)
    assert p.b.records[b_id].fields["title"] == "Boss"  # newer edit kept
    assert "notes" not in p.b.records[b_id].fields  # the rest is undone
    assert [(s["field"], s["reason"]) for s in report.skipped] == [
        ("title", "changed since that run")
    ]
    assert report.restored == 1


def test_created_contacts_are_kept_and_put_in_pairsync_trash(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.a.add({"given_name": "Bob", "emails": em("bob@x.com")})
    p.run()
    [bob_b] = list(p.b.records.values())
    report = reverter(p).undo(last_run_id(p))
    assert report.trashed == {"a": 0, "b": 1}
    assert "Pairsync Trash" in report.message
    kept = p.b.records[bob_b.id]
    assert TRASH_SEGMENT in kept.segments
    assert kept.fields["given_name"] == "Bob"  # never deleted, never emptied
    assert run_quietly(p) == 0
    [bob_a] = list(p.a.records.values())
    assert TRASH_SEGMENT not in bob_a.segments  # the review mark stays in B


def test_one_contacts_undo_leaves_the_others(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    ann = p.a.add({"given_name": "Ann", "emails": em("ann@x.com"), "title": "CTO"})
    carl = p.a.add({"given_name": "Carl", "emails": em("carl@x.com"), "title": "Dev"})
    p.run()
    p.a.edit(ann.id, title="CEO")
    p.a.edit(carl.id, title="Lead")
    p.run()
    report = reverter(p).undo(last_run_id(p), record=(Side.A, ann.id))
    assert report.restored == 1
    titles = {r.fields["given_name"]: r.fields["title"] for r in p.b.records.values()}
    assert titles == {"Ann": "CTO", "Carl": "Lead"}
    assert run_quietly(p) == 0


def test_an_undo_is_a_journaled_run_and_can_itself_be_undone(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com"), "title": "CTO"})
    p.run()
    [b_id] = list(p.b.records)
    p.a.edit(a.id, title="CEO")
    p.run()
    undone = last_run_id(p)
    reverter(p).undo(undone)
    undo_id = last_run_id(p)
    with p.store.session() as s:
        run = s.get(Run, undo_id)
        assert run is not None and (run.kind, run.undo_of, run.status) == ("undo", undone, "ok")
        [entry] = s.scalars(select(JournalEntry).where(JournalEntry.run_id == undo_id)).all()
        assert (entry.field, entry.before, entry.after) == ("title", '"CEO"', '"CTO"')
    reverter(p).undo(undo_id)
    assert p.b.records[b_id].fields["title"] == "CEO"
    assert run_quietly(p) == 0


def test_nothing_to_undo_is_refused(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.a.add({"given_name": "Ann", "emails": em("ann@x.com")})
    p.run()
    p.run()
    with pytest.raises(ConfigError, match="nothing to undo"):
        reverter(p).undo(last_run_id(p))
    with pytest.raises(ConfigError, match="no such run"):
        reverter(p).undo(9999)


def test_use_the_other_value_writes_the_losers_value_to_both(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    a = p.a.add({"given_name": "Ann", "emails": em("ann@x.com"), "title": "CTO"})
    p.run()
    [b_id] = list(p.b.records)
    p.a.edit(a.id, title="CEO")
    p.b.edit(b_id, title="Chief")
    report = p.run()
    assert report.conflicts == 1
    assert p.b.records[b_id].fields["title"] == "CEO"  # winner A
    with p.store.session() as s:
        conflict_id = s.scalars(select(ConflictEntry.id)).one()
    result = reverter(p).use_other(conflict_id)
    assert result.status == "ok" and result.kind == "use_other"
    assert p.a.records[a.id].fields["title"] == "Chief"
    assert p.b.records[b_id].fields["title"] == "Chief"
    with p.store.session() as s:
        assert s.get(ConflictEntry, conflict_id).resolved_run_id == last_run_id(p)  # type: ignore[union-attr]
    assert run_quietly(p) == 0
    with pytest.raises(ConfigError, match="already applied"):
        reverter(p).use_other(conflict_id)


def test_cancel_stops_at_a_safe_point_and_the_next_run_completes(tmp_path: Path) -> None:
    p = Pair(tmp_path, batch_size=10)
    for i in range(95):
        p.a.add({"given_name": f"P{i}", "emails": em(f"p{i}@x.com")})
    calls = {"writing": 0}

    def stop() -> bool:
        return calls["writing"] >= 3

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "Writing" and done:
            calls["writing"] += 1

    run = SyncRun(
        "c",
        p.state,
        {Side.A: p.a, Side.B: p.b},
        p.mappings,
        p.settings,
        progress,
        rules=p.rules,
        should_stop=stop,
    )
    report = run.run()
    assert report.status == "cancelled"
    assert report.created["b"] == len(p.b.records) == 30  # three committed batches, no more
    with p.store.session() as s:
        assert s.get(Run, run.run_id).status == "cancelled"  # type: ignore[union-attr]
    report = p.run()
    assert report.status == "ok" and report.created["b"] == 65
    assert len(p.b.records) == 95  # no duplicate, nothing lost
    assert run_quietly(p) == 0


def test_a_cancel_before_writing_writes_nothing(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.a.add({"given_name": "Ann", "emails": em("ann@x.com")})
    run = SyncRun(
        "c",
        p.state,
        {Side.A: p.a, Side.B: p.b},
        p.mappings,
        p.settings,
        rules=p.rules,
        should_stop=lambda: True,
    )
    assert run.run().status == "cancelled"
    assert p.writes() == 0


def test_rate_limited_is_its_own_status_with_the_wait(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.b.outage = RateLimited("Too many requests.", retry_after=120)
    report = p.run()
    assert report.status == "rate_limited" and report.retry_after == 120
