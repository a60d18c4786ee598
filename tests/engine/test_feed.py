"""Runs that read an app through its change feed (``app.engine.reader``).

Side B is an in-memory app with a faithful feed (``MemoryApp(change_feed=True)``): a cursor
names the state the app was in, ``changes(cursor)`` reports what changed since. Side A is
read through its listing, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from app.engine.reader import FeedPosition
from app.engine.sync import SyncRun
from app.model import Labeled, Side
from app.store.models import Binding, Connection
from tests.engine.harness import Pair


def _em(*emails: str) -> tuple[Labeled, ...]:
    return tuple(Labeled(e) for e in emails)


def people(p: Pair, n: int, side: Side = Side.B) -> list[str]:
    app = p.a if side is Side.A else p.b
    return [
        app.add(
            {"given_name": f"P{i}", "emails": _em(f"p{i}@x.com")}, record_id=f"{side}{i:03d}"
        ).id
        for i in range(n)
    ]


def position(p: Pair, side: Side = Side.B) -> FeedPosition:
    return FeedPosition.parse(p.state.cursor(side.value))


def how(p: Pair, **kwargs: Any) -> tuple[str, Any]:
    """Run once; (how side B was read, the report)."""
    run = SyncRun("c", p.state, {Side.A: p.a, Side.B: p.b}, p.mappings, p.settings, rules=p.rules)
    seen: dict[Side, str] = {}
    original = run.read_side

    def spy(side: Side) -> Any:
        out = original(side)
        seen[side] = out.how
        return out

    run.read_side = spy  # type: ignore[method-assign]
    report = run.run(**kwargs)
    return seen.get(Side.B, ""), report


@pytest.fixture(params=[True, False], ids=["bodies", "versions"])
def p(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pair]:
    """The feed sends whole records, or ids and versions only (the engine fetches)."""
    pair = Pair(tmp_path, feed_b=True, feed_bodies=request.param)
    yield pair
    pair.store.close()


def test_first_run_reads_in_full_then_the_feed_from_the_stored_cursor(p: Pair) -> None:
    people(p, 5)
    mode, report = how(p)
    assert mode == "first" and report.created == {"a": 5, "b": 0}
    assert p.b.feed_calls == [None] and p.b.list_calls == 0
    first = position(p)
    assert first.cursor is not None and first.full_at is not None
    mode, report = how(p)
    assert mode == "feed"
    assert p.b.feed_calls == [None, first.cursor] and p.b.list_calls == 0
    assert report.read == {"a": 0, "b": 0} and p.writes() == 5
    assert position(p).full_at == first.full_at  # a delta is not a full read


def test_an_edit_in_the_feed_flows_and_the_echo_of_our_own_writes_is_no_change(p: Pair) -> None:
    ids = people(p, 3)
    how(p)
    p.b.edit(ids[1], title="CEO")
    mode, report = how(p)
    assert mode == "feed" and report.read["b"] == 1 and report.updated == {"a": 1, "b": 0}
    a_id = next(r.id for r in p.a.records.values() if r.fields.get("given_name") == "P1")
    p.a.edit(a_id, title="CTO")
    _, report = how(p)
    assert report.updated == {"a": 0, "b": 1}
    writes = p.writes()
    mode, report = how(p)  # the feed reports B's record we just wrote: the index has it
    assert mode == "feed" and report.read["b"] == 0 and p.writes() == writes
    assert p.b.records[ids[1]].fields["title"] == "CTO"


def test_a_deletion_the_feed_reports_counts_only_when_a_fetch_confirms_it(p: Pair) -> None:
    ids = people(p, 6)
    how(p)
    p.b.hide_from_listing = {ids[0]}  # the feed says "deleted", but the contact is there
    p.b.edit(ids[0], title="still here")
    _, report = how(p, confirm=True)
    assert report.deleted_other_side == 0
    assert p.b.feed_calls[-1] is not None
    p.b.hide_from_listing = set()
    p.b.delete(ids[1])
    _, report = how(p, confirm=True)
    assert report.deleted_other_side == 1
    with p.store.session() as s:
        states = {b.id_b: b.state for b in s.scalars(select(Binding))}
    assert states[ids[1]] == "deleted_b" and states[ids[0]] == "active"
    assert len(p.a.records) == 6  # nothing is ever deleted


def test_an_expired_cursor_reads_everything_and_still_finds_what_is_gone(p: Pair) -> None:
    ids = people(p, 6)
    how(p)
    p.b.delete(ids[2])
    p.b.edit(ids[3], title="CFO")
    p.b.expire_cursors()
    mode, report = how(p, confirm=True)
    assert mode == "expired"
    assert report.deleted_other_side == 1 and report.updated == {"a": 1, "b": 0}
    assert report.read["b"] == 1  # only what changed counts as read
    assert position(p).full_at is not None
    assert how(p)[0] == "feed"


def test_the_mass_change_guard_sees_deletions_from_the_feed(p: Pair) -> None:
    ids = people(p, 20)
    how(p)
    cursor = position(p).cursor
    for rid in ids[:8]:
        p.b.delete(rid)
    mode, report = how(p)
    assert mode == "feed" and report.status == "guard"
    assert report.guard == {"side": "b", "listed": 12, "known": 20, "gone": 8}
    assert position(p).cursor == cursor  # nothing was committed: the cursor stays
    mode, report = how(p, confirm=True)  # the same changes again, now confirmed
    assert p.b.feed_calls[-1] == cursor
    assert report.status == "ok" and report.deleted_other_side == 8


def test_the_cursor_moves_only_once_the_run_committed(p: Pair) -> None:
    ids = people(p, 4)
    how(p)
    cursor = position(p).cursor
    p.b.edit(ids[0], title="CEO")
    how(p, dry_run=True)
    assert position(p).cursor == cursor  # a dry run stores nothing
    stop = SyncRun(
        "c",
        p.state,
        {Side.A: p.a, Side.B: p.b},
        p.mappings,
        p.settings,
        should_stop=lambda: True,
    ).run()
    assert stop.status == "cancelled"
    assert position(p).cursor == cursor

    class Died(BaseException):
        pass

    def die(op: Any) -> None:
        raise Died

    p.a.before_write = die
    with pytest.raises(Died):
        how(p)
    p.a.before_write = None
    assert position(p).cursor == cursor
    _, report = how(p)  # reads from the old cursor: the edit is not lost
    assert p.b.feed_calls[-1] == cursor
    assert report.updated == {"a": 1, "b": 0}
    assert position(p).cursor != cursor


def test_full_reads_after_a_pause_a_configuration_change_and_once_a_day(p: Pair) -> None:
    people(p, 3)
    how(p)
    assert how(p)[0] == "feed"
    with p.store.session() as s, s.begin():
        s.execute(update(Connection).values(needs_full_read=True))  # resumed after a pause
    assert how(p)[0] == "resumed"
    assert how(p)[0] == "feed"
    p.mappings = [m for m in p.mappings if m.key != "title=title"]
    assert how(p)[0] == "configuration"
    assert how(p)[0] == "feed"
    old = position(p)
    assert old.full_at is not None
    day_ago = FeedPosition(old.cursor, datetime.now(UTC) - timedelta(days=1, minutes=1))
    p.state.set_cursor("b", day_ago.dump())
    assert how(p)[0] == "daily"
    assert how(p)[0] == "feed"
    p.state.set_cursor("b", "not json")
    assert how(p)[0] == "first"


def test_a_listing_app_is_read_as_before(p: Pair) -> None:
    people(p, 3, Side.A)
    how(p)
    how(p)
    assert p.a.list_calls == 2 and p.a.feed_calls == []
    assert p.state.cursor("a") is None
