"""A first sync holds a slice of the address book, not all of it (issue 18).

What the engine keeps while it writes is measured with ``tracemalloc``: the contacts of app A
exist before tracing starts, and app B forgets every contact it is given (a sink), so what
stays traced at the last write is what the run itself holds — its reads, plans, results. It
must not grow with the number of contacts by anything like a planned write per contact
(≈ 2 KB each when the whole plan was held until the end).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from app.connectors.memory import MemoryApp
from app.model import Labeled, WriteOp, WriteResult
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


def held_at_last_write(tmp_path: Path, count: int) -> int:
    """Bytes traced (allocated by the run and still alive) at the run's last write."""
    pair = Pair(tmp_path / f"n{count}", batch_size=100)
    pair.plan_slice = SLICE
    sink = Sink("App B", batch_size=100)
    pair.b = sink
    for i in range(count):
        pair.a.add(
            {
                "full_name": f"Person Number{i}",
                "given_name": "Person",
                "family_name": f"Number{i}",
                "emails": (Labeled(f"person.{i}@example.com", "work"),),
                "phones": (Labeled(f"+44 7700 9{i:05d}", "mobile"),),
                "organization": "Acme",
                "title": "Engineer",
                "notes": f"Note about person {i}, who is a contact worth keeping.",
            }
        )
    peak = 0

    def measure(op: WriteOp) -> None:
        nonlocal peak
        peak = max(peak, tracemalloc.get_traced_memory()[0])

    sink.before_write = measure
    gc.collect()
    tracemalloc.start()
    try:
        report = pair.run()
    finally:
        tracemalloc.stop()
    pair.store.close()
    assert report.status == "ok", report.message
    assert report.created == {"a": 0, "b": count}
    return peak


def test_a_first_sync_holds_a_slice_not_the_address_book(tmp_path: Path) -> None:
    small, big = 300, 1500
    held_small = held_at_last_write(tmp_path, small)
    held_big = held_at_last_write(tmp_path, big)
    per_contact = (held_big - held_small) / (big - small)
    # The reads' id -> record entries and the run's bookkeeping sets cost ≈ 200 bytes a
    # contact; the whole plan held until the last write (fields, base, ids of every create)
    # cost ≈ 2,000.
    assert per_contact < 600, f"{per_contact:.0f} bytes held per contact"
