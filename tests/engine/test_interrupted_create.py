"""An interrupted create whose source is deleted before any run completes (found by the rules
state machine: a binding stayed active with an id the app no longer had).

A crash after the create but before its batch committed leaves an intent; the next run binds
the copy (``resolve_intent``) and may crash again before indexing the source. When the user then
deletes the source, the source was never in the local index, so a listing's "known but not
listed" check could not see it go: the binding pointed at nothing for ever.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from sqlalchemy import select

from app.engine.sync import SyncRun
from app.model import Labeled, Side
from app.store.models import Binding
from tests.engine.harness import Pair
from tests.engine.test_state_machine import Crash, CrashingState


def crashed(p: Pair, at: int) -> None:
    with contextlib.suppress(Crash):
        SyncRun(
            "c",
            CrashingState(p.state, at, after=False),
            {Side.A: p.a, Side.B: p.b},
            p.mappings,
            p.settings,
            rules=p.rules,
        ).run(confirm=True)


def bindings(p: Pair) -> list[tuple[str, str, str]]:
    with p.store.session() as s:
        rows = s.scalars(select(Binding).where(Binding.connection_id == p.cid)).all()
        return [(b.id_a, b.id_b, b.state) for b in rows]


@pytest.mark.parametrize("feed", [False, True], ids=["listing", "change-feed"])
def test_a_deleted_source_of_an_interrupted_create_is_seen_as_deleted(
    tmp_path: Path, feed: bool
) -> None:
    p = Pair(tmp_path, feed_a=feed, feed_b=feed)
    p.a.add({"given_name": "Ann", "emails": (Labeled("ann@x.com", "work"),)}, set(), "ann")
    crashed(p, 2)  # the intent is durable, the copy created, the batch never committed
    assert len(p.b.records) == 1
    crashed(p, 1)  # the copy is bound, then the run dies before the source is indexed
    [(id_a, id_b, state)] = bindings(p)
    assert (id_a, state) == ("ann", "active")
    p.a.delete("ann")
    report = p.run()
    assert report.status == "ok", report.as_json()
    assert bindings(p) == [("ann", id_b, "deleted_a")]
    assert id_b in p.b.records  # never deleted
    again = p.run()
    assert again.created == {"a": 0, "b": 0} and again.updated == {"a": 0, "b": 0}
