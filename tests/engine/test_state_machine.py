"""Property-based test of the sync engine: random edits, faults and crashes between syncs.

A ``RuleBasedStateMachine`` plays a user on two in-memory apps (the ``Pair`` harness: real
SQLite store, real engine) and interleaves syncs that are clean, that hit per-record write
failures, that see a flaky listing, or that die at a random point (a ``BaseException`` escapes
the engine's error handling the way a killed process would). Either app may read through a
change feed (``MemoryApp(change_feed=True)``), whose cursors may expire between syncs, and a
connection may be paused and resumed (a full read). After every clean sync it checks the
product's promises:

* nothing is ever deleted (SPEC §7), and a binding is only tombstoned when the test deleted one
  of its records;
* no duplicates: bindings are 1:1 and every contact Pairsync created has exactly one binding
  (SPEC §4, S16);
* idempotence: a second clean sync writes nothing (SPEC S17);
* convergence: every active binding's mapped values agree, except the match email's clear
  (SPEC §6);
* the winner: for ``title``, the value both sides hold after a sync is the three-way merge of
  the base agreed at the previous clean sync and the two sides' current values (SPEC §6, S6);
* completeness: a contact with an email that is not bound is in Duplicates for a reason that
  still holds (its email is shared on its side, or matches several or an already-bound
  contact on the other side).

Held back email collisions (SPEC §4) are accepted as failures and as a difference in emails.
Bugs this machine found are pinned as small regression tests at the end of the file. Hunt with
``HYPOTHESIS_PROFILE=deep pytest tests/engine/test_state_machine.py -o timeout=0``.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import select, update

from app.engine import context as run_context
from app.engine.match import keys_of
from app.engine.state import BatchOutcome
from app.engine.sync import RunReport, SyncRun
from app.errors import Rejected
from app.mapping.canonical import canon_text
from app.model import Labeled, Record, Side, Update
from app.store.models import Binding, Connection, Failure, IndexedRecord
from app.store.state import SyncState
from tests.engine.harness import Pair

EMAILS = [f"p{i}@x.com" for i in range(6)]
GIVEN = ["Ann", "Bob", "Cy", "Dee", "Émile"]
FAMILY = ["Smith", "Jones", "de la Cruz", "Ng"]
PHONES = [
    "+44 20 7946 0958",
    "+442079460958",
    "+44 (0)20 7946 0958",
    "+1 415 555 0100",
    "+14155550100",
    "+33 1 23 45 67 89",
]
TITLES = ["CEO", " CEO ", "ceo", "CTO", "Dev", "Chair"]
ORGS = ["Acme", "Globex", "Initech"]
SEGMENTS = ["Friends", "Work", "VIP"]
SIDES = st.sampled_from([Side.A, Side.B])
# Failures that a clean sync legitimately keeps: the user has to resolve them.
ALLOWED_FAILURES = {"email_collision"}


class _DeterministicIds:
    """Stands in for the ``uuid`` module inside the engine so that replays are identical."""

    def __init__(self) -> None:
        self.n = 0

    def uuid4(self) -> uuid.UUID:
        self.n += 1
        return uuid.UUID(int=self.n)


class Crash(BaseException):
    """A killed process: escapes every ``except Exception`` in the engine."""


class CrashingState(SyncState):
    """The engine's store, dying before or after its ``at``-th durable step."""

    def __init__(self, base: SyncState, at: int, after: bool) -> None:
        super().__init__(base.db, base.cid)
        self.left = at
        self.after = after

    def _tick(self) -> None:
        if self.left == 0:
            raise Crash
        self.left -= 1

    def _step(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.after:
            self._tick()
        out = fn(*args, **kwargs)
        if self.after:
            self._tick()
        return out

    def commit(self, outcome: BatchOutcome) -> None:
        self._step(super().commit, outcome)

    def add_intents(self, intents: Any) -> None:
        self._step(super().add_intents, intents)

    def resolve_intent(self, *args: Any) -> None:
        self._step(super().resolve_intent, *args)


def email_variant(email: str) -> st.SearchStrategy[str]:
    return st.sampled_from([email, email.upper(), f"  {email} ", email.capitalize()])


@st.composite
def emails_value(draw: st.DrawFn) -> tuple[Labeled, ...]:
    keys = draw(st.lists(st.sampled_from(EMAILS), min_size=1, max_size=2, unique=True))
    return tuple(
        Labeled(draw(email_variant(k)), draw(st.sampled_from(["", "work", "home"]))) for k in keys
    )


@st.composite
def phones_value(draw: st.DrawFn) -> tuple[Labeled, ...]:
    nums = draw(st.lists(st.sampled_from(PHONES), min_size=1, max_size=2))
    return tuple(Labeled(n, draw(st.sampled_from(["", "mobile", "work"]))) for n in nums)


@st.composite
def contact(draw: st.DrawFn) -> tuple[dict[str, Any], frozenset[str]]:
    fields: dict[str, Any] = {}
    if draw(st.integers(0, 5)):  # mostly with an email
        fields["emails"] = draw(emails_value())
    if draw(st.booleans()):
        fields["given_name"] = draw(st.sampled_from(GIVEN))
    if draw(st.booleans()):
        fields["family_name"] = draw(st.sampled_from(FAMILY))
    if draw(st.booleans()):
        fields["phones"] = draw(phones_value())
    if draw(st.booleans()):
        fields["title"] = draw(st.sampled_from(TITLES))
    if draw(st.booleans()):
        fields["organization"] = draw(st.sampled_from(ORGS))
    segs = frozenset(draw(st.lists(st.sampled_from(SEGMENTS), max_size=2)))
    return fields, segs


def title_of(rec: Record) -> str:
    value = rec.fields.get("title", "")
    return canon_text(value) if isinstance(value, str) else ""


def expected_merge(base: str, a: str, b: str, winner: Side) -> str:
    """SPEC §6 for one text field of a bound pair, clears propagated."""
    if a == b:
        return a
    changed_a, changed_b = a != base, b != base
    if changed_a and changed_b:
        if not a:
            return b
        if not b:
            return a
        return a if winner is Side.A else b
    return a if changed_a else b


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="pairsync-sm-"))
        self.pair: Pair | None = None
        self.user_added: dict[Side, set[str]] = {Side.A: set(), Side.B: set()}
        self.deleted: dict[Side, set[str]] = {Side.A: set(), Side.B: set()}
        self.seen: dict[Side, set[str]] = {Side.A: set(), Side.B: set()}
        # title agreed at the last clean sync, per binding (id_a, id_b); None: not valid now.
        self.title_base: dict[tuple[str, str], str] | None = None
        self.next_id = 0
        self.ids_patch = mock.patch.object(run_context, "uuid", _DeterministicIds())
        self.ids_patch.start()

    def teardown(self) -> None:
        self.ids_patch.stop()
        if self.pair is not None:
            self.pair.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- set-up -------------------------------------------------------------------------------

    @initialize(
        batch_size=st.sampled_from([1, 2, 3, 100]),
        avoid_duplicates=st.booleans(),
        winner=SIDES,
        feeds=st.sampled_from(["", "b", "ab"]),
        feed_bodies=st.booleans(),
    )
    def setup(
        self, batch_size: int, avoid_duplicates: bool, winner: Side, feeds: str, feed_bodies: bool
    ) -> None:
        self.pair = Pair(
            self.tmp,
            batch_size=batch_size,
            avoid_duplicates=avoid_duplicates,
            winner=winner,
            feed_a="a" in feeds,
            feed_b="b" in feeds,
            feed_bodies=feed_bodies,
        )

    @property
    def p(self) -> Pair:
        assert self.pair is not None
        return self.pair

    def app(self, side: Side) -> Any:
        return self.p.a if side is Side.A else self.p.b

    def run_sync(self, state: SyncState | None = None, **kwargs: Any) -> RunReport:
        p = self.p
        run = SyncRun("c", state or p.state, {Side.A: p.a, Side.B: p.b}, p.mappings, p.settings)
        run.PLAN_SLICE = 2  # a first sync (or --yes) is planned and applied in slices
        return run.run(**kwargs)

    # --- the user -----------------------------------------------------------------------------

    @rule(side=SIDES, data=st.data())
    def add_contact(self, side: Side, data: st.DataObject) -> None:
        fields, segs = data.draw(contact())
        self.next_id += 1
        rec = self.app(side).add(fields, segs, record_id=f"user-{side}-{self.next_id:03d}")
        self.user_added[side].add(rec.id)

    @precondition(lambda self: self.pair is not None and (self.p.a.records or self.p.b.records))
    @rule(data=st.data())
    def edit_contact(self, data: st.DataObject) -> None:
        side = data.draw(st.sampled_from([s for s in (Side.A, Side.B) if self.app(s).records]))
        app = self.app(side)
        rid = data.draw(st.sampled_from(list(app.records)))
        rec = app.records[rid]
        what = data.draw(
            st.sampled_from(
                [
                    "title",
                    "title",
                    "clear_title",
                    "given_name",
                    "family_name",
                    "organization",
                    "new_email",
                    "email_case",
                    "clear_email",
                    "add_email",
                    "phones",
                    "reformat_phone",
                    "clear_phones",
                    "segments",
                ]
            )
        )
        if what == "title":
            app.edit(rid, title=data.draw(st.sampled_from(TITLES)))
        elif what == "clear_title":
            app.edit(rid, title="")
        elif what == "given_name":
            app.edit(rid, given_name=data.draw(st.sampled_from(["", *GIVEN])))
        elif what == "family_name":
            app.edit(rid, family_name=data.draw(st.sampled_from(["", *FAMILY])))
        elif what == "organization":
            app.edit(rid, organization=data.draw(st.sampled_from(["", *ORGS])))
        elif what == "new_email":
            app.edit(rid, emails=data.draw(emails_value()))
        elif what == "email_case":
            old = rec.fields.get("emails") or ()
            app.edit(
                rid,
                emails=tuple(
                    Labeled(data.draw(email_variant(e.value.strip().casefold())), e.label)
                    for e in old
                ),
            )
        elif what == "clear_email":
            app.edit(rid, emails=())
        elif what == "add_email":
            old = tuple(rec.fields.get("emails") or ())
            app.edit(rid, emails=(*old, Labeled(data.draw(st.sampled_from(EMAILS)), "other")))
        elif what == "phones":
            app.edit(rid, phones=data.draw(phones_value()))
        elif what == "reformat_phone":
            old = rec.fields.get("phones") or ()
            swap = {
                "+44 20 7946 0958": "+442079460958",
                "+442079460958": "+44 (0)20 7946 0958",
                "+44 (0)20 7946 0958": "+44 20 7946 0958",
                "+1 415 555 0100": "+14155550100",
                "+14155550100": "+1 415 555 0100",
            }
            app.edit(rid, phones=tuple(Labeled(swap.get(p.value, p.value), p.label) for p in old))
        elif what == "clear_phones":
            app.edit(rid, phones=())
        else:
            app.set_segments(rid, data.draw(st.lists(st.sampled_from(SEGMENTS), max_size=3)))

    @precondition(lambda self: self.pair is not None and (self.p.a.records or self.p.b.records))
    @rule(data=st.data())
    def delete_contact(self, data: st.DataObject) -> None:
        side = data.draw(st.sampled_from([s for s in (Side.A, Side.B) if self.app(s).records]))
        rid = data.draw(st.sampled_from(list(self.app(side).records)))
        self.app(side).delete(rid)
        self.deleted[side].add(rid)

    @precondition(lambda self: self.pair is not None)
    @rule()
    def toggle_winner(self) -> None:
        self.p.settings = replace(self.p.settings, winner=self.p.settings.winner.other)

    @precondition(lambda self: self.pair is not None)
    @rule(side=SIDES)
    def cursors_expire(self, side: Side) -> None:
        """The app forgets every cursor it handed out (the next feed read is complete)."""
        self.app(side).expire_cursors()

    @precondition(lambda self: self.pair is not None)
    @rule()
    def pause_and_resume(self) -> None:
        with self.p.store.session() as s, s.begin():
            s.execute(
                update(Connection).where(Connection.id == self.p.cid).values(needs_full_read=True)
            )

    # --- syncs with faults --------------------------------------------------------------------

    @precondition(lambda self: self.pair is not None)
    @rule()
    def plain_sync(self) -> None:
        """A sync without --yes: either it runs, or the guard stops it before any write."""
        before = self.p.writes()
        report = self.run_sync()
        if report.status == "guard":
            assert self.p.writes() == before, "the guard stopped the run after writing"
        else:
            assert report.status in ("ok", "failed"), report.as_json()
        self.title_base = None
        self.check_nothing_deleted()

    @precondition(lambda self: self.pair is not None)
    @rule(data=st.data())
    def sync_with_rejections(self, data: st.DataObject) -> None:
        ids = [(s, rid) for s in (Side.A, Side.B) for rid in list(self.app(s).records)]
        picked = data.draw(st.lists(st.sampled_from(ids), max_size=4) if ids else st.just([]))
        keys = data.draw(st.lists(st.sampled_from(EMAILS), max_size=2))
        key_side = data.draw(SIDES)
        for side, rid in picked:
            self.app(side).reject[rid] = Rejected(f"refused {rid}")
        for k in keys:
            self.app(key_side).reject[k] = Rejected(f"refused {k}")
        try:
            report = self.run_sync(confirm=True)
        finally:
            self.p.a.reject.clear()
            self.p.b.reject.clear()
        assert report.status in ("ok", "failed"), report.as_json()
        self.title_base = None
        self.check_nothing_deleted()

    @precondition(lambda self: self.pair is not None)
    @rule(data=st.data())
    def sync_with_flaky_listing(self, data: st.DataObject) -> None:
        """The listing loses records that still exist: nothing is tombstoned or recreated."""
        side = data.draw(SIDES)
        ids = list(self.app(side).records)
        hidden = set(data.draw(st.lists(st.sampled_from(ids), max_size=3) if ids else st.just([])))
        self.app(side).hide_from_listing = hidden
        try:
            report = self.run_sync(confirm=True)
        finally:
            self.app(side).hide_from_listing = set()
        assert report.status in ("ok", "failed"), report.as_json()
        self.title_base = None
        self.check_nothing_deleted()

    @precondition(lambda self: self.pair is not None)
    @rule(
        mode=st.sampled_from(["before_op", "after_write", "before_commit", "after_commit"]),
        at=st.integers(0, 14),
    )
    def crashed_sync(self, mode: str, at: int) -> None:
        p = self.p
        state: SyncState | None = None
        counter = {"ops": 0}
        if mode == "before_op":

            def hook(op: Any) -> None:
                if counter["ops"] == at:
                    raise Crash
                counter["ops"] += 1

            p.a.before_write = p.b.before_write = hook
        elif mode == "after_write":
            for app in (p.a, p.b):
                real = app.write

                def dying(ops: Any, real: Any = real) -> Any:
                    out = real(ops)
                    counter["ops"] += len(ops)
                    if counter["ops"] > at:
                        raise Crash
                    return out

                app.write = dying  # type: ignore[method-assign]
        else:
            state = CrashingState(p.state, at, after=mode == "after_commit")
        try:
            self.run_sync(state, confirm=True)
        except Crash:
            pass
        finally:
            p.a.before_write = p.b.before_write = None
            for app in (p.a, p.b):
                if "write" in vars(app):
                    del app.write
        self.title_base = None
        self.check_nothing_deleted()

    @precondition(lambda self: self.pair is not None)
    @rule(
        side=SIDES,
        what=st.sampled_from(["organization", "title", "given_name", "phones", "segments"]),
        data=st.data(),
    )
    def raced_sync(self, side: Side, what: str, data: st.DataObject) -> None:
        """Another client edits the contact Pairsync is writing, between our read and our
        write (CardDAV's 412): the app merges our patch into the fresh record when the
        fields we write were not touched (``merge_stale``), else refuses it (retried). The
        next clean sync must converge: the other client's edit reaches the other app."""
        app = self.app(side)
        if what == "segments":
            value: Any = data.draw(st.lists(st.sampled_from(SEGMENTS), max_size=3))
        elif what == "phones":
            value = data.draw(phones_value())
        else:
            value = data.draw(
                st.sampled_from({"title": TITLES, "given_name": GIVEN}.get(what, ORGS))
            )

        # A user's edit on the other side, so that Pairsync writes a bound contact here.
        pairs = [
            (b.id_a, b.id_b)
            for b in self.active_bindings()
            if b.id_a in self.p.a.records and b.id_b in self.p.b.records
        ]
        if pairs:
            id_a, id_b = data.draw(st.sampled_from(pairs))
            source = self.app(side.other)
            rid = id_b if side is Side.A else id_a
            current = title_of(source.records[rid])
            source.edit(rid, title=data.draw(st.sampled_from([t for t in TITLES if t != current])))

        def other_client(op: Any) -> None:
            if isinstance(op, Update) and op.record_id in app.records:
                app.before_write = None
                if what == "segments":
                    app.set_segments(op.record_id, value)
                else:
                    app.edit(op.record_id, **{what: value})

        app.merge_stale = True
        app.before_write = other_client
        try:
            report = self.run_sync(confirm=True)
        finally:
            app.before_write = None
            app.merge_stale = False
        assert report.status in ("ok", "failed"), report.as_json()
        self.title_base = None
        self.check_nothing_deleted()

    # --- the clean sync and its promises ------------------------------------------------------

    @precondition(lambda self: self.pair is not None)
    @rule()
    def clean_sync(self) -> None:
        p = self.p
        expected = self.expected_titles()
        r1 = self.run_sync(confirm=True)
        self.check_nothing_deleted()
        assert r1.status in ("ok", "failed"), r1.as_json()
        for (id_a, id_b), want in expected.items():
            got = (title_of(p.a.records[id_a]), title_of(p.b.records[id_b]))
            assert got == (want, want), (
                f"title of pair {id_a}/{id_b}: expected {want!r} on both "
                f"(winner {p.settings.winner}), got {got!r}"
            )
        if self.failure_rows():
            # Failures wait for their back-off (SPEC §9): play "Retry now" for all of them.
            self.retry_now()
            r = self.run_sync(confirm=True)
            self.check_nothing_deleted()
            assert r.status in ("ok", "failed"), r.as_json()
        leftover = [f for f in self.failure_rows() if f[2] not in ALLOWED_FAILURES]
        assert not leftover, f"failures left after a clean retry: {leftover}"
        writes = p.writes()
        r2 = self.run_sync(confirm=True)
        assert r2.status in ("ok", "failed"), r2.as_json()
        assert r2.created == {"a": 0, "b": 0} and r2.updated == {"a": 0, "b": 0}, (
            f"S17: a second clean sync planned writes: {r2.as_json()}"
        )
        assert p.writes() == writes, "S17: a second clean sync wrote to an app"
        self.check_bindings()
        self.check_convergence()
        self.check_complete()
        self.title_base = {
            (b.id_a, b.id_b): title_of(p.a.records[b.id_a]) for b in self.active_bindings()
        }

    # --- checks -------------------------------------------------------------------------------

    @invariant()
    def no_open_hooks(self) -> None:
        if self.pair is not None:
            assert self.p.a.before_write is None and self.p.b.before_write is None

    def check_nothing_deleted(self) -> None:
        for side in (Side.A, Side.B):
            now = set(self.app(side).records)
            lost = self.seen[side] - now - self.deleted[side]
            assert not lost, f"Pairsync deleted {sorted(lost)} on side {side}"
            self.seen[side] |= now

    def bindings(self) -> list[Binding]:
        with self.p.store.session() as s:
            rows = s.scalars(select(Binding).where(Binding.connection_id == self.p.cid)).all()
            s.expunge_all()
            return list(rows)

    def active_bindings(self) -> list[Binding]:
        return [b for b in self.bindings() if b.state == "active"]

    def ids_with_status(self, status: str) -> set[tuple[Side, str]]:
        with self.p.store.session() as s:
            return {
                (Side(r.side), r.record_id)
                for r in s.scalars(
                    select(IndexedRecord).where(
                        IndexedRecord.connection_id == self.p.cid, IndexedRecord.status == status
                    )
                )
            }

    def bound_ids(self) -> set[tuple[Side, str]]:
        rows = self.bindings()
        return {(Side.A, b.id_a) for b in rows} | {(Side.B, b.id_b) for b in rows}

    def failure_rows(self) -> list[tuple[str, str, str, int, int | None]]:
        with self.p.store.session() as s:
            return [
                (f.side, f.record_id, f.code, f.attempts, f.binding_id)
                for f in s.scalars(select(Failure).where(Failure.connection_id == self.p.cid))
            ]

    def retry_now(self) -> None:
        with self.p.store.session() as s, s.begin():
            s.execute(
                update(Failure)
                .where(Failure.connection_id == self.p.cid)
                .values(next_run_no=0, next_at=None)
            )

    def expected_titles(self) -> dict[tuple[str, str], str]:
        if self.title_base is None:
            return {}
        active = {(b.id_a, b.id_b) for b in self.active_bindings()}
        out = {}
        for (id_a, id_b), base in self.title_base.items():
            if (id_a, id_b) not in active:
                continue
            ra, rb = self.p.a.records.get(id_a), self.p.b.records.get(id_b)
            if ra is None or rb is None:
                continue  # deleted: the pair is tombstoned by this run
            out[(id_a, id_b)] = expected_merge(base, title_of(ra), title_of(rb), self.winner())
        return out

    def winner(self) -> Side:
        return self.p.settings.winner

    def check_bindings(self) -> None:
        rows = self.bindings()
        for side, col in ((Side.A, "id_a"), (Side.B, "id_b")):
            counts = Counter(getattr(b, col) for b in rows)
            twice = {rid: n for rid, n in counts.items() if n > 1}
            assert not twice, f"records bound more than once on side {side}: {twice}"
            created = set(self.app(side).records) - self.user_added[side]
            unbound = {rid for rid in created if counts[rid] != 1}
            assert not unbound, f"contacts Pairsync created on {side} without a binding: {unbound}"
        for b in rows:
            gone_a = b.id_a not in self.p.a.records
            gone_b = b.id_b not in self.p.b.records
            if b.state == "active":
                assert not (gone_a or gone_b), f"active binding {b.id} with a missing record"
            else:
                assert (b.id_a in self.deleted[Side.A]) or (b.id_b in self.deleted[Side.B]), (
                    f"binding {b.id} tombstoned ({b.state}) though the test deleted neither record"
                )

    def check_convergence(self) -> None:
        p = self.p
        for b in self.active_bindings():
            ra, rb = p.a.records[b.id_a], p.b.records[b.id_b]
            for m in p.mappings:
                ca, cb = m.canon(m.value(Side.A, ra)), m.canon(m.value(Side.B, rb))
                if m.match_key and (not ca or not cb):
                    continue  # a cleared match email is never cleared on the other side
                if m.match_key and ca != cb and self.email_collides(ra, rb):
                    continue  # held back: copying it would make two contacts share an email
                assert ca == cb, (
                    f"binding {b.id}: {m.key} differs after a clean sync: A={ca!r} B={cb!r}\n"
                    f"A={ra}\nB={rb}"
                )

    def email_collides(self, ra: Record, rb: Record) -> bool:
        """A key one side has and the other lacks is held by another contact there."""
        for side, rec, other in ((Side.A, ra, rb), (Side.B, rb, ra)):
            theirs = set(keys_of(other))
            for k in keys_of(rec):
                if k in theirs:
                    continue
                holders = {
                    rid
                    for rid, r in self.app(side.other).records.items()
                    if rid != other.id and k in keys_of(r)
                }
                if holders:
                    return True
        return False

    def check_complete(self) -> None:
        """Every unbound contact is unbound for a reason that holds now."""
        p = self.p
        rows = self.bindings()
        bound = {Side.A: {b.id_a for b in rows}, Side.B: {b.id_b for b in rows}}
        keys = {
            s: {rid: keys_of(r) for rid, r in self.app(s).records.items()} for s in (Side.A, Side.B)
        }
        holders: dict[Side, dict[str, set[str]]] = {Side.A: {}, Side.B: {}}
        for s in (Side.A, Side.B):
            for rid, ks in keys[s].items():
                for k in ks:
                    holders[s].setdefault(k, set()).add(rid)

        def shared_on_own_side(side: Side, rid: str) -> bool:
            return any(len(holders[side][k]) > 1 for k in keys[side][rid])

        with p.store.session() as s:
            status = {
                (row.side, row.record_id): row.status
                for row in s.scalars(
                    select(IndexedRecord).where(IndexedRecord.connection_id == p.cid)
                )
            }
        for side in (Side.A, Side.B):
            other = side.other
            for rid, ks in keys[side].items():
                if rid in bound[side]:
                    continue
                st_now = status.get((side.value, rid))
                if not ks:
                    assert p.settings.avoid_duplicates, (
                        f"{side} {rid}: no email, Avoid Duplicates off, yet not synced ({st_now})"
                    )
                    assert st_now == "excluded", f"{side} {rid}: no email but status {st_now}"
                    continue
                why = ""
                if shared_on_own_side(side, rid):
                    why = "shared on its side"
                else:
                    for k in ks:
                        hs = holders[other].get(k)
                        if not hs:
                            continue
                        if len(hs) > 1:
                            why = "matches several"
                        else:
                            (y,) = hs
                            if y in bound[other]:
                                why = "its match is bound to another contact"
                            elif shared_on_own_side(other, y):
                                why = "its match has duplicates"
                        break
                assert why, (
                    f"{side} {rid} (emails {ks}) is neither synced nor a real duplicate; "
                    f"index status {st_now!r}"
                )
                assert st_now == "duplicate", f"{side} {rid} ({why}) has status {st_now!r}"


SyncMachine.TestCase.settings = settings(
    settings.default,
    stateful_step_count=25,
    max_examples=max(10, settings.default.max_examples),
)
test_sync_state_machine = SyncMachine.TestCase


# --- bugs the machine found (fixed in 3ae1761), as the smallest failing cases ------------


def _em(*emails: str) -> tuple[Labeled, ...]:
    return tuple(Labeled(e) for e in emails)


def test_duplicate_is_released_when_the_shared_email_moves_away(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    x = p.a.add({"given_name": "X", "emails": _em("p0@x.com")})
    p.run()
    x2 = p.a.add({"given_name": "X2", "emails": _em("p0@x.com")})
    assert p.run().duplicates == 1  # shares p0 with x: held back, right
    p.a.edit(x.id, emails=_em("p1@x.com"))  # the user resolves it: p0 is now x2's alone
    p.run()
    p.run()
    assert sorted(k for r in p.b.records.values() for k in keys_of(r)) == ["p0@x.com", "p1@x.com"]
    assert x2.id in {b.id_a for b in _bindings(p)}


class _Die(BaseException):
    pass


def test_pair_matched_in_a_killed_run_is_merged_by_the_next_run(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    x1 = p.a.add({"given_name": "X", "phones": _em("+14155550100"), "emails": _em("p0@x.com")})
    x2 = p.a.add({"given_name": "X2", "emails": _em("p0@x.com")})
    y = p.b.add({"title": "CEO", "emails": _em("p0@x.com")})
    p.run()  # x1, x2 and y all in Duplicates
    p.a.delete(x2.id)  # resolved: x1 and y now match

    def die_on_b(op: Any) -> None:
        raise _Die  # the process is killed before B's update of the new pair

    p.b.before_write = die_on_b
    with pytest.raises(_Die):
        p.run(confirm=True)
    p.b.before_write = None
    assert p.a.records[x1.id].fields["title"] == "CEO"  # A's half was written
    p.run()
    p.run()
    assert p.b.records[y.id].fields.get("given_name") == "X"
    assert p.b.records[y.id].fields.get("phones") == _em("+14155550100")


def test_source_deleted_after_a_killed_create_tombstones_the_recovered_pair(
    tmp_path: Path,
) -> None:
    p = Pair(tmp_path)
    p.a.add({"given_name": "Ann", "emails": _em("ann@x.com")})
    p.run()
    bob = p.a.add({"given_name": "Bob", "emails": _em("bob@x.com")})
    real_write = p.b.write

    def write_then_die(ops: Any) -> Any:
        real_write(ops)
        raise _Die  # killed after B created Bob, before the run recorded it

    p.b.write = write_then_die  # type: ignore[method-assign]
    with pytest.raises(_Die):
        p.run()
    del p.b.write
    p.a.delete(bob.id)  # the user deletes Bob in A before the next run
    report = p.run()
    assert len(p.b.records) == 2  # Bob's copy in B is kept (SPEC §7)
    assert report.deleted_other_side == 1  # ...and reported "deleted on the other side"
    assert {b.state for b in _bindings(p) if b.id_a == bob.id} == {"deleted_a"}


def test_deleted_contact_is_not_synced_by_a_due_retry(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    ann = p.a.add({"given_name": "Ann", "emails": _em("ann@x.com")})
    p.a.add({"given_name": "Bob", "emails": _em("bob@x.com")})
    p.run()
    ann_b = next(rid for rid, r in p.b.records.items() if keys_of(r) == ["ann@x.com"])
    p.a.edit(ann.id, title="CEO")
    p.b.reject[ann_b] = Rejected("refused")
    assert p.run().failed == 1  # retried next run (SPEC §9)
    p.b.reject.clear()
    p.a.delete(ann.id)
    report = p.run(confirm=True)
    assert report.deleted_other_side == 1
    assert report.updated == {"a": 0, "b": 0}, "wrote to the counterpart of a deleted contact"
    with p.store.session() as s:
        status = s.scalar(select(IndexedRecord.status).where(IndexedRecord.record_id == ann_b))
    assert status == "excluded"  # Health: "deleted on the other side"


def test_failure_of_a_tombstoned_pair_is_cleared(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    ann = p.a.add({"given_name": "Ann", "emails": _em("ann@x.com")})
    p.a.add({"given_name": "Bob", "emails": _em("bob@x.com")})
    p.run()
    ann_b = next(rid for rid, r in p.b.records.items() if keys_of(r) == ["ann@x.com"])
    p.b.reject[ann_b] = Rejected("refused")
    for title in ("CEO", "CTO"):  # two failures: the next retry waits 3 runs
        p.a.edit(ann.id, title=title)
        assert p.run().failed == 1
    p.b.reject.clear()
    p.a.delete(ann.id)
    for _ in range(4):
        p.run(confirm=True)
    with p.store.session() as s:
        left = [(f.record_id, f.code) for f in s.scalars(select(Failure))]
    assert left == []


def _bindings(p: Pair) -> list[Binding]:
    with p.store.session() as s:
        return list(s.scalars(select(Binding)).all())


def test_second_run_after_an_email_change_that_frees_a_duplicate_writes_nothing(
    tmp_path: Path,
) -> None:
    p = Pair(tmp_path)
    ann = p.a.add({"given_name": "Ann", "emails": _em("p2@x.com")})
    p.run()
    p.a.add({"family_name": "Smith", "emails": _em("p2@x.com")})  # same email as Ann
    p.a.edit(ann.id, emails=_em("p3@x.com"))  # ...which Ann gives up in the same breath
    p.run()
    second = p.run()
    assert second.created == {"a": 0, "b": 0} and second.updated == {"a": 0, "b": 0}
