"""On-demand benchmark of rules (not collected by pytest):

    python -m tests.perf.bench_rules [--sizes 1000,10000]

Two memory apps through the ``Pair`` harness (real SQLite store, real engine). Side A holds N
contacts, half of them in the segment "Customers"; the rules are "A in Customers → add B
Customers" and "everything in B". Measured, each with its wall time:

* first sync (creates N/2 in B, tagged);
* no-change re-sync;
* rule counts from the local index (``count_matches`` over ``Catalog.index_records``);
* a rule edit (a second rule, "A in VIP → add B Key account", 10 % of A is VIP) re-planned from
  the index: records read from the apps (must be 0), contacts written;
* 1 % of the customers leave "Customers" (Undo removes the tag from their counterparts).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from app.model import Labeled, Side
from app.rules.edit import count_matches
from app.rules.evaluate import RuleSet
from app.rules.model import Action, ActionKind, Filter, FilterKind, Op, Rule
from app.store.connections import ConnectionStore
from tests.engine.harness import Pair


def rule(rid: str, segment: str) -> Rule:
    return Rule(
        rid,
        Side.A,
        (Filter(FilterKind.SEGMENT, Op.HAS, segment),),
        (Action(ActionKind.ADD_SEGMENT, segment),),
    )


def vip_rule() -> Rule:
    """A in VIP → add B "Key account" (a segment B does not have yet)."""
    return Rule(
        "vip",
        Side.A,
        (Filter(FilterKind.SEGMENT, Op.HAS, "VIP"),),
        (Action(ActionKind.ADD_SEGMENT, "Key account"),),
    )


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    print(f"  {label:<44} {time.perf_counter() - start:8.3f} s")
    return out


def bench(n: int) -> None:
    print(f"N = {n}")
    with tempfile.TemporaryDirectory() as tmp:
        p = Pair(Path(tmp), batch_size=500)
        p.rules = [rule("cust", "Customers"), Rule("rb", Side.B)]
        ids = []
        for i in range(n):
            segs = ["Customers"] if i % 2 == 0 else []
            if i % 10 == 0:
                segs.append("VIP")
            rec = p.a.add(
                {"given_name": f"P{i}", "family_name": "Test", "emails": (Labeled(f"p{i}@x.com"),)},
                segs,
            )
            ids.append(rec.id)
        r = timed("first sync", p.run)
        print(f"    created in B: {r.created['b']}, excluded: {r.excluded}")
        r = timed("no-change re-sync", p.run)
        assert p.run().updated == {"a": 0, "b": 0}
        catalog = ConnectionStore(p.store)
        ruleset = RuleSet(p.rules, p.settings.direction)
        counts = timed(
            "rule counts from the index",
            lambda: count_matches(
                ruleset, {s: catalog.index_records(p.cid, s.value) for s in (Side.A, Side.B)}
            ),
        )
        print(f"    counts: {counts}")
        p.rules = [rule("cust", "Customers"), vip_rule(), Rule("rb", Side.B)]
        before = p.writes()
        r = timed("rule added: re-plan from the index", lambda: p.run(confirm=True))
        print(
            f"    read from apps: {r.read}, writes: {p.writes() - before} "
            f"(created {r.created}, updated {r.updated})"
        )
        leaving = [rid for i, rid in enumerate(ids) if i % 2 == 0][: max(1, n // 100)]
        for rid in leaving:
            rec = p.a.records[rid]
            p.a.set_segments(rid, rec.segments - {"Customers"})
        before = p.writes()
        r = timed("1 % leave Customers (undo)", lambda: p.run(confirm=True))
        print(f"    read: {r.read}, writes: {p.writes() - before}, updated: {r.updated}")
        p.store.close()
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    for n in (int(x) for x in args.sizes.split(",")):
        bench(n)


if __name__ == "__main__":
    main()
