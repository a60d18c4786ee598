"""A dry run (and the preview built on it) plans in slices and keeps none (issue 18).

What a user is shown before a sync must be what the sync then does: the same counts, the
same contacts left out and why, the same failures. A dry run used to hold its whole plan
(every record and planned write: 476 MB at 100,000 contacts); it now counts and breaks down
each slice as it is planned and lets it go. These tests hold it to both halves: what it
shows does not depend on the slicing and matches the real run, and what it holds does not
grow by a planned write per contact.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections import Counter
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from app.connectors.memory import STANDARD_FIELDS
from app.model import Labeled, Side
from app.preview import Preview, PreviewRun
from app.store.models import Failure
from tests.engine.harness import Pair
from tests.engine.test_bounded_memory import person

COUNTS = ("created", "updated", "matched", "excluded", "duplicates", "conflicts")
COUNTS += ("deleted_other_side", "rule_conflicts")
SLICE = 100
B_FIELDS = tuple(
    replace(f, required=True) if f.key == "family_name" else f for f in STANDARD_FIELDS
)
"""App B insists on a last name: creates without one fail, and the preview says so."""


def em(*emails: str) -> tuple[Labeled, ...]:
    return tuple(Labeled(e, "work") for e in emails)


def busy_pair(folder: Path) -> Pair:
    """Books that give a first sync of every kind of outcome, over many slices of 3."""
    p = Pair(folder, fields_b=B_FIELDS)
    for i in range(10):  # matched, each side adds something
        p.a.add({"full_name": f"Pat {i}", "family_name": f"P{i}", "emails": em(f"pat{i}@x.com")})
        p.b.add({"title": f"T{i}", "family_name": f"P{i}", "emails": em(f"pat{i}@x.com")})
    for i in range(8):  # created in B; every other one has no last name: fails there
        last = {"family_name": f"A{i}"} if i % 2 else {}
        p.a.add({"full_name": f"Ann {i}", **last, "emails": em(f"ann{i}@x.com")})
    for i in range(5):  # created in A
        p.b.add({"full_name": f"Bob {i}", "family_name": f"B{i}", "emails": em(f"bob{i}@x.com")})
    for i in range(3):  # no email: left out
        p.a.add({"full_name": f"Nomail {i}"})
    p.b.add({"full_name": "Dup 1", "family_name": "D", "emails": em("dup@x.com")})
    p.b.add({"full_name": "Dup 2", "family_name": "D", "emails": em("dup@x.com")})
    p.a.add({"full_name": "Dup A", "family_name": "D", "emails": em("dup@x.com")})
    # A matched pair whose second email B's Zed already has: not copied (email collision).
    p.a.add({"full_name": "Cy", "family_name": "C", "emails": em("cy@x.com", "zed@x.com")})
    p.b.add({"full_name": "Cy", "family_name": "C", "emails": em("cy@x.com")})
    p.b.add({"full_name": "Zed", "family_name": "Z", "emails": em("zed@x.com")})
    return p


def preview(p: Pair, plan_slice: int) -> Preview:
    run = PreviewRun(
        "c", p.state, {Side.A: p.a, Side.B: p.b}, p.mappings, p.settings, rules=p.rules
    )
    run.PLAN_SLICE = plan_slice
    return run.preview()


def failures(p: Pair) -> Counter[tuple[str, str]]:
    with p.store.session() as s:
        rows = s.scalars(select(Failure).where(Failure.ignored.is_(False))).all()
        return Counter((f.target_side, f.name) for f in rows)


def shown(pre: Preview) -> Counter[tuple[str, str]]:
    return Counter((f.side, f.name) for f in pre.failures)


def test_slices_change_nothing_the_preview_shows(tmp_path: Path) -> None:
    p = busy_pair(tmp_path)
    sliced, whole = preview(p, 3), preview(p, 10**6)
    assert sliced.as_json() == whole.as_json()
    assert p.writes() == 0
    assert sliced.excluded_by_reason == {"no email": 3}
    assert sliced.report["duplicates"] == 3 + 1  # Dup 1, 2 and A; Zed shares Cy's email
    assert sliced.failure_count == 4 + 1  # four without a last name, Cy's second email
    assert sliced.failure_reasons["Required field last name is missing in App B."] == 4


def test_the_preview_shows_what_the_run_then_does(tmp_path: Path) -> None:
    p = busy_pair(tmp_path)
    first = preview(p, p.plan_slice)
    dry = p.run(dry_run=True).as_json()
    real = p.run().as_json()
    for key in COUNTS:
        assert first.report[key] == dry[key], key
        if key != "created":
            assert dry[key] == real[key], key
    # What would be created, less the creates the preview says will fail, was created.
    assert dry["created"] == {"a": 5, "b": 8} and real["created"] == {"a": 5, "b": 8 - 4}
    assert first.failure_count == real["failed"] == 5
    assert shown(first) == failures(p)  # the same contacts, in the same app

    # A later run: the last names are filled in, and Zed's email is given to Pat 3.
    for rec in list(p.a.records.values()):
        if rec.fields.get("full_name", "").startswith("Ann "):
            p.a.edit(rec.id, family_name="Lee")
        elif rec.fields.get("full_name") == "Pat 3":
            p.a.edit(rec.id, emails=em("pat3@x.com", "zed@x.com"), title="Boss")
    later = preview(p, p.plan_slice)
    real = p.run().as_json()
    for key in COUNTS:
        assert later.report[key] == real[key], key
    assert later.report["created"] == {"a": 0, "b": 4}
    assert later.report["updated"] == {"a": 0, "b": 1 + 4}  # Pat 3's title; Ann's last names
    assert later.failure_count == real["failed"] == 1 + 1  # Cy's and Pat 3's second emails
    assert [f.reason for f in later.failures if f.name == "Pat 3"] == [
        "The email zed@x.com is already used by another contact in App B; it was not copied there."
    ]


def held_in_dry_run(tmp_path: Path, count: int) -> int:
    """The most bytes traced (allocated by a preview's dry run and alive) at any point."""
    p = Pair(tmp_path / f"n{count}", batch_size=100)
    one_phone = (Labeled("+44 7700 900000", "mobile"),)  # the phone cache is bounded (4,096)
    for i in range(count):
        p.a.add({**person(i), "phones": one_phone})
    gc.collect()
    tracemalloc.start()
    try:
        pre = preview(p, SLICE)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    p.store.close()
    assert pre.status == "ok" and pre.report["created"] == {"a": 0, "b": count}
    return peak


def test_a_dry_run_holds_its_reads_not_its_plan(tmp_path: Path) -> None:
    held_in_dry_run(tmp_path, 50)  # what a first run loads once (SQL caches)
    small, big = 400, 1600  # whole slices: each holds two slices at its peak
    per_contact = (held_in_dry_run(tmp_path, big) - held_in_dry_run(tmp_path, small)) / (
        big - small
    )
    # Each contact read is held packed with its match keys and its place in the matching
    # result until the run ends (≈ 550 bytes); a planned create costs ≈ 3,000 more while
    # its slice is alive. The whole plan, held to the end, cost ≈ 3,000 per contact.
    assert per_contact < 800, f"{per_contact:.0f} bytes held per contact"
