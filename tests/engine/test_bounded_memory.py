"""A first sync holds a slice of the address book, not all of it (issue 18).

What the engine keeps while it writes is measured with ``tracemalloc``: the contacts of app A
exist before tracing starts (packed, as the memory app stores them), and app B forgets every
contact it is given (a sink), so the most traced at any write is what the run itself holds —
its reads, plans, results. It must not grow with the number of contacts by anything like a
record or a planned write per contact.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.connectors.memory import MemoryApp
from app.engine.match import Holders, hold, holders_of, let_go
from app.engine.sync import RunReport
from app.mapping.canonical import canon_phone
from app.model import FieldValue, Labeled, WriteOp, WriteResult
from tests.engine.harness import Pair

SLICE = 200


class Sink(MemoryApp):
    """Accepts every create and keeps nothing of it (its memory is not the engine's)."""

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        results = super().write(ops)
        for res in results:
            if res.record is not None:
                self.records.pop(res.record.id, None)
        return results


def person(i: int) -> dict[str, FieldValue]:
    """Contact number ``i``: each has its own name, email and phone."""
    return {
        "full_name": f"Person Number{i}",
        "given_name": "Person",
        "family_name": f"Number{i}",
        "emails": (Labeled(f"person.{i}@example.com", "work"),),
        "phones": (Labeled(f"+44 7700 9{i:05d}", "mobile"),),
        "organization": "Acme",
        "title": "Engineer",
        "notes": f"Note about person {i}, who is a contact worth keeping.",
    }


def held_at_writes(tmp_path: Path, count: int) -> int:
    """The most bytes traced (allocated by the run and still alive) at any of its writes."""
    pair = Pair(tmp_path / f"n{count}", batch_size=100)
    pair.plan_slice = SLICE
    sink = Sink("App B", batch_size=100)
    pair.b = sink
    for i in range(count):
        pair.a.add(person(i))
    peak, report = run_traced(pair, sink)
    assert report.created == {"a": 0, "b": count}
    return peak


def run_traced(pair: Pair, target: MemoryApp) -> tuple[int, RunReport]:
    """Run ``pair``: the most bytes traced at any write to ``target``, and the report."""
    peak = 0

    def measure(op: WriteOp) -> None:
        nonlocal peak
        # The phone cache is bounded (4,096 phones), not held per contact: left out.
        canon_phone.cache_clear()
        peak = max(peak, tracemalloc.get_traced_memory()[0])

    target.before_write = measure
    gc.collect()
    tracemalloc.start()
    try:
        report = pair.run()
    finally:
        tracemalloc.stop()
    pair.store.close()
    assert report.status == "ok", report.message
    return peak, report


def test_a_first_sync_holds_a_slice_not_the_address_book(tmp_path: Path) -> None:
    held_at_writes(tmp_path, 50)  # what a first run loads once (phone metadata, SQL caches)
    small, big = 300, 1500
    held_small = held_at_writes(tmp_path, small)
    held_big = held_at_writes(tmp_path, big)
    per_contact = (held_big - held_small) / (big - small)
    # Until its slice is planned, each contact read is held packed with its match keys and
    # its place in the matching result: ≈ 600 bytes. The same records held as objects cost
    # ≈ 1,450; the whole plan held until the last write cost ≈ 2,000.
    assert per_contact < 800, f"{per_contact:.0f} bytes held per contact"


def held_in_a_later_run(tmp_path: Path, count: int, *, with_new: bool) -> int:
    """The most bytes traced at any write of a later run where every contact of app A
    changed. Its limit lets it through, but only once it has counted: the guard counts
    every slice before any is applied. ``with_new``: app A also has a new contact, so that
    matching has work (and needs the emails the bound pairs write)."""
    limit = count + 1  # at most 2 writes a pair: the guard must count; it finds count (+1)
    pair = Pair(tmp_path / f"later{count}{with_new}", batch_size=100, guard_max_writes=limit)
    pair.plan_slice = SLICE
    one_phone = (Labeled("+44 7700 900000", "mobile"),)  # the phone cache is bounded (4,096)
    for i in range(count):
        pair.a.add({**person(i), "phones": one_phone})
    assert pair.run(confirm=True).status == "ok"
    for rid in list(pair.a.records):
        pair.a.edit(rid, title="Director")
    if with_new:
        pair.a.add({**person(count), "phones": one_phone})
    peak, report = run_traced(pair, pair.b)
    assert report.updated == {"a": 0, "b": count}
    assert report.created == {"a": 0, "b": 1 if with_new else 0}
    return peak


@pytest.mark.parametrize("with_new", [False, True])
def test_a_later_run_where_every_contact_changed_holds_a_slice(
    tmp_path: Path, with_new: bool
) -> None:
    held_in_a_later_run(tmp_path, 50, with_new=with_new)  # what a first run loads once
    small, big = 300, 1500
    held_small = held_in_a_later_run(tmp_path, small, with_new=with_new)
    held_big = held_in_a_later_run(tmp_path, big, with_new=with_new)
    per_contact = (held_big - held_small) / (big - small)
    # Each contact read is held packed until its slice is planned, with its binding's id
    # and (when matching has work) the keys its pair will have: ≈ 700 bytes. Planned whole,
    # with the bases, the other app's records and the planned writes, it was ≈ 9 KB.
    assert per_contact < 1000, f"{per_contact:.0f} bytes held per contact"


def test_key_holders_keep_a_lone_id_without_a_list() -> None:
    held: Holders = {}
    hold(held, "a@x", "r1")
    hold(held, "a@x", "r1")
    assert held == {"a@x": "r1"} and holders_of(held, "a@x") == ["r1"]
    hold(held, "a@x", "r2")
    assert holders_of(held, "a@x") == ["r1", "r2"] and holders_of(held, "b@x") == []
    let_go(held, "a@x", "r1")
    let_go(held, "a@x", "r3")
    assert holders_of(held, "a@x") == ["r2"]
    let_go(held, "a@x", "r2")
    let_go(held, "b@x", "r2")
    assert held == {}
