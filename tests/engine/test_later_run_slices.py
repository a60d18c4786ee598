"""A later run plans its bound pairs a slice at a time, and the guard counts before it writes.

A run where every contact changed (a bulk edit, a mapping change) used to plan every bound
pair up front, and the mass-change guard then held the whole plan: 1.1 GB at 100,000
contacts (issue 18). Bound pairs are now loaded and planned a slice at a time; the guard
counts every slice, then each is planned again as it is applied. What the user sees must not
depend on the slicing: the same counts, the same stop with nothing written, the same writes.
"""

from __future__ import annotations

import gc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from app.engine.plan import PairPlan, PlannedCreate
from app.engine.sync import SyncRun
from app.model import Record, Side
from tests.engine.harness import Pair
from tests.engine.test_dry_run import COUNTS, em

WHOLE = 10**6


def bound_pairs(folder: Path, count: int, **settings: Any) -> Pair:
    """``count`` contacts synced both ways, then each edited in app A; app A's X, bound to
    app B's X', gets a new email, which frees app B's Y' from Duplicates (it shared X's)."""
    p = Pair(folder, **settings)
    for i in range(count):
        p.a.add({"full_name": f"Pat {i}", "family_name": f"P{i}", "emails": em(f"pat{i}@x.com")})
    x = p.a.add({"full_name": "X", "family_name": "X", "emails": em("x@x.com")})
    p.b.add({"full_name": "X", "family_name": "X", "emails": em("x@x.com")})
    assert p.run(confirm=True).status == "ok"
    p.b.add({"full_name": "Y", "family_name": "Y", "emails": em("x@x.com")})
    assert p.run().duplicates == 1
    for rid in list(p.a.records):
        p.a.edit(rid, title="Director")
    p.a.edit(x.id, emails=em("x2@x.com"))
    return p


def book(records: dict[str, Record]) -> list[str]:
    """An app's contacts, as a user would compare them (ids left out)."""
    return sorted(repr(sorted(r.fields.items())) for r in records.values())


def test_a_later_run_writes_the_same_whatever_its_slices(tmp_path: Path) -> None:
    runs = {}
    for size in (3, WHOLE):
        p = bound_pairs(tmp_path / str(size), 10, guard_max_writes=10**6)
        p.plan_slice = size
        report = p.run()
        assert report.status == "ok", report.message
        runs[size] = (report.as_json(), book(p.a.records), book(p.b.records))
        p.store.close()
    sliced, whole = runs[3], runs[WHOLE]
    for key in COUNTS:
        assert sliced[0][key] == whole[0][key], key
    assert sliced[1:] == whole[1:]
    # Every Pat and X got the new title; Y was freed by X's new email and copied into A.
    assert sliced[0]["updated"] == {"a": 0, "b": 11} and sliced[0]["created"] == {"a": 1, "b": 0}
    assert sliced[0]["duplicates"] == 0
    assert sum("'Y'" in c for c in sliced[1]) == 1


def test_the_guard_counts_every_slice_and_writes_nothing(tmp_path: Path) -> None:
    stops = {}
    for size in (3, WHOLE):
        p = bound_pairs(tmp_path / str(size), 10, guard_max_writes=5)
        p.plan_slice = size
        before = (book(p.a.records), book(p.b.records))
        written = p.writes()
        report = p.run()
        assert report.status == "guard"
        assert p.writes() == written and (book(p.a.records), book(p.b.records)) == before
        stops[size] = report.guard
        # Confirmed, it writes what it counted.
        confirmed = p.run(confirm=True)
        assert confirmed.updated == {"a": 0, "b": 11} and confirmed.created == {"a": 1, "b": 0}
        p.store.close()
    assert stops[3] == stops[WHOLE] == {"creates": 1, "updates": 11, "limit": 5}


def test_a_preview_of_a_later_run_counts_what_it_then_does(tmp_path: Path) -> None:
    p = bound_pairs(tmp_path, 10, guard_max_writes=10**6)
    written = p.writes()
    dry = p.run(dry_run=True).as_json()
    assert p.writes() == written
    real = p.run().as_json()
    for key in COUNTS:
        assert dry[key] == real[key], key


class CountingRun(SyncRun):
    """Counts how often each bound pair is planned."""

    planned: Counter[int]

    def plan_pair(self, binding_id: int, *args: Any, **kwargs: Any) -> PairPlan:
        self.planned[binding_id] += 1
        return super().plan_pair(binding_id, *args, **kwargs)


@pytest.mark.parametrize(("limit", "passes"), [(10**6, 1), (15, 2)])
def test_each_pair_is_planned_once_unless_the_guard_must_count_first(
    tmp_path: Path, limit: int, passes: int
) -> None:
    """Limit 10**6: the run cannot write that much, so nothing is counted ahead. Limit 15:
    it could (11 pairs may write both ways: 22, and a create), so the guard counts every
    slice (12 writes: under the limit), then each is planned again as it is applied."""
    p = bound_pairs(tmp_path, 10, guard_max_writes=limit)
    run = CountingRun("c", p.state, {Side.A: p.a, Side.B: p.b}, p.mappings, p.settings)
    run.PLAN_SLICE = 3
    run.planned = Counter()
    report = run.run()
    assert report.status == "ok" and report.created == {"a": 1, "b": 0}
    assert report.updated == {"a": 0, "b": 11}
    x_pair = p.state.pairs_for(Side.B, [r.id for r in p.b.records.values() if "X" in str(r.fields)])
    (x_id,) = [b.id for b in x_pair.values()]
    # X's pair, whose email changed, is also planned once ahead, for matching (it frees Y);
    # a pair whose title alone changed is never planned ahead.
    assert run.planned.pop(x_id) == passes + 1
    assert set(run.planned.values()) == {passes} and len(run.planned) == 10


class LiveCountingRun(SyncRun):
    """Notes the most planned pairs and creates alive while a pair is being planned."""

    most_alive = 0

    def plan_pair(self, binding_id: int, *args: Any, **kwargs: Any) -> PairPlan:
        gc.collect()
        alive = sum(isinstance(o, PairPlan | PlannedCreate) for o in gc.get_objects())
        self.most_alive = max(self.most_alive, alive)
        return super().plan_pair(binding_id, *args, **kwargs)


@pytest.mark.parametrize("limit", [10**6, 15])
def test_a_slice_is_let_go_before_the_next_is_planned(tmp_path: Path, limit: int) -> None:
    """While a slice is planned, nothing of the slice applied before it is held (by the
    loop that applied it, or the one that counted it): a run holds one slice, not two."""
    p = bound_pairs(tmp_path, 12, guard_max_writes=limit)
    run = LiveCountingRun("c", p.state, {Side.A: p.a, Side.B: p.b}, p.mappings, p.settings)
    run.PLAN_SLICE = 4
    report = run.run()
    assert report.status == "ok" and report.updated == {"a": 0, "b": 13}
    # At most the pairs planned so far in this slice (3 of 4) are alive, never the 4 before.
    assert 0 < run.most_alive < 4
