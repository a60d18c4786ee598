"""Planning a run: which contacts match, and what each app must be told (nothing written)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any, TypeGuard

from app.engine.context import (
    Progress,
    RunContext,
    SideRead,
    _noop_progress,
    _same,
    value_to_json_any,
)
from app.engine.match import Matcher, hold, holders_of, keys_of
from app.engine.merge import merge_lists, merge_sets, merge_value
from app.engine.plan import (
    Note,
    PairPlan,
    PlannedCreate,
    PlannedTombstone,
    PlannedUpdate,
    Problem,
    SyncPlan,
)
from app.engine.state import NOT_FITTING, BindingRow, PairRef
from app.engine.work import BoundPairs, PlanWork, Step, slices
from app.errors import NotFitting, Rejected
from app.mapping.fields import FieldMapping, ListField, Patch
from app.model import (
    OPT_OUT_FIELD,
    Record,
    Side,
)
from app.packed import PackedRecords
from app.rules.evaluate import unsubscribe_patches

RULES_KEY = "~rules"
"""Stands for the rules' actions (and unsubscribe tags) among the keys an update carries."""
NO_RULE = "no rule matches"
NONE: frozenset[str] = frozenset()
"""The one empty set a plan's items share (each ``frozenset()`` built is 200 bytes more:
three a planned update, 3 MB a slice of 5,000 pairs)."""
PROGRESS_EVERY = 500
"""Planning reports progress (and offers a safe point to stop) every this many contacts."""
HELD = "~held"
"""A base entry ``{HELD: [canon A, canon B]}``: the two apps were left holding different
values on purpose (an undo put back what each had). Nothing flows while both keep those
values; once one side changes, the merge runs as if the other side's value were the base,
so that change flows. See ``app.engine.undo``."""


class Planner(RunContext):
    """Match and plan: decide every write of a run, before any is made (dry run = this)."""

    PLAN_SLICE = 0
    """Contacts planned (and, on a run the write guard does not stop, applied) at a time;
    0: ``slice_size()`` decides."""

    def slice_size(self) -> int:
        """At least 2,000 contacts, and at least half the biggest write batch of either app.

        A slice is planned and applied whole, so it is what a run holds: about 8 KB a pair
        while it is planned (both records, both bases, the writes). An app that rewrites a
        whole file per batch (CSV: 5,000) is then written at most twice as often as its
        batches allow: at 100,000 rows a rewrite costs 0.3 s (6 s more in a 230-s run where
        every contact changed), and the slice holds 20 MB instead of 40 (issue 18)."""
        if self.PLAN_SLICE:
            return self.PLAN_SLICE
        sizes = [app.info.capabilities.batch_size for app in self.apps.values()]
        return max(2000, max(sizes) // 2)

    def plan_head(self, reads: dict[Side, SideRead]) -> tuple[SyncPlan, PlanWork]:
        """Tombstones, and the bound pairs' merges when they fit in one slice; the rest, to
        be planned a slice at a time (``plan_parts``): bound pairs by binding id, then what
        matching found.

        Nothing here holds a base, a record or a plan per changed contact beyond one slice:
        a later run where every contact changed plans in the memory of a first sync."""
        self.progress("Matching", 0, 0)
        plan = SyncPlan()
        # Bindings of everything that changed or disappeared (without their bases).
        refs: dict[Side, dict[str, PairRef]] = {
            side: self.state.pairs_for(side, [*reads[side].changed, *reads[side].gone])
            for side in (Side.A, Side.B)
        }
        # A contact back under a new id (see SyncRun.find_moved): its binding, with the id
        # it has now, stands for it everywhere in this plan.
        moved: dict[int, tuple[Side, str]] = {}
        for side in (Side.A, Side.B):
            if not reads[side].moved:
                continue
            old_refs = self.state.pairs_for(side, [o for o, _ in reads[side].moved.values()])
            for new_id, (old_id, _bid) in reads[side].moved.items():
                b = old_refs.get(old_id)
                if b is None:
                    continue
                b = replace(b, id_a=new_id) if side is Side.A else replace(b, id_b=new_id)
                refs[side][new_id] = b
                moved[b.id] = (side, new_id)
        for side in (Side.A, Side.B):
            for rid in reads[side].gone:
                b = refs[side].get(rid)
                if b is not None and b.state == "active":
                    plan.tombstones.append(
                        PlannedTombstone(
                            b.id, f"deleted_{side.value}", side.other, b.id_on(side.other)
                        )
                    )
        tomb_ids = {t.binding_id for t in plan.tombstones}
        # Pairs to merge: changed bound records, pairs needing merge, due retries.
        pair_ids: dict[int, None] = {}
        for side in (Side.A, Side.B):
            for rid in reads[side].changed:
                b = refs[side].get(rid)
                if b is not None and b.state == "active" and b.id not in tomb_ids:
                    pair_ids[b.id] = None
        for b in self.state.pairs_needing_merge():
            if b.state == "active" and b.id not in tomb_ids:
                pair_ids[b.id] = None
        due = self.state.due_failures(self.run_no) if self.run_no else []
        retry_ids = [f.binding_id for f in due if f.binding_id is not None]
        for row in self.state.bindings_by_id(retry_ids):
            if row.state == "active" and row.id not in tomb_ids:
                pair_ids[row.id] = None
        # Unbound records to match (ids: the records stay packed until their slice).
        unbound: dict[Side, dict[str, None]] = {
            side: dict.fromkeys(rid for rid in reads[side].changed if rid not in refs[side])
            for side in (Side.A, Side.B)
        }
        del refs
        found: dict[Side, PackedRecords] = {Side.A: PackedRecords(), Side.B: PackedRecords()}
        retry_creates: dict[Side, list[str]] = {Side.A: [], Side.B: []}
        for f in due:
            if f.binding_id is None:
                retry_creates[f.side].append(f.record_id)
        config_changed = self.mappings_changed()
        if config_changed:
            # Mappings or rules changed since the bases were agreed: every pair is planned
            # again, from the local index (no app is read again); only what the change
            # implies is written.
            for chunk in self.state.active_pair_ids():
                for bid in chunk:
                    if bid not in tomb_ids and bid not in pair_ids:
                        pair_ids[bid] = None
                        self.replan_only.add(bid)
        # Bound pairs first: the emails they are about to write are what matching must see
        # (a contact freed from Duplicates by an email change syncs in this same run).
        bound = BoundPairs(list(pair_ids), moved, set(retry_ids))
        del pair_ids
        future: dict[Side, dict[str, list[str]]] = {Side.A: {}, Side.B: {}}
        if len(bound.ids) <= self.slice_size():
            self.plan_bound_pairs(plan, self.bound_rows(bound, bound.ids), reads)
            self.hold_back_email_collisions(plan, reads)
            future = self.planned_keys(plan)
            bound.ids = []
        elif self.matching_wanted(unbound, retry_creates, config_changed):
            future = self.keys_ahead(bound, reads, config_changed)
        matcher = Matcher(
            self.state,
            reads,
            unbound,
            found,
            {s: self.app_name(s) for s in (Side.A, Side.B)},
            future=future,
        )
        for side in (Side.A, Side.B):
            extra = [rid for rid in retry_creates[side] if rid not in unbound[side]]
            extra += matcher.duplicates_to_recheck(side)
            if config_changed:
                # A rule edit may bring excluded contacts into scope: matched again, from
                # the index.
                extra += [
                    rid
                    for rid in self.state.ids_with_status(side, "excluded")
                    if rid not in matcher.skip[side]
                ]
            if extra:
                loaded = self.state.load_records(side, extra)
                still_bound = self.state.pairs_for(side, list(loaded))
                for rid, (rec, _status) in loaded.items():
                    if rid not in still_bound and rid not in reads[side].gone:
                        unbound[side][rid] = None
                        found[side][rid] = rec
        return plan, PlanWork(bound, matcher.match(self.settings.avoid_duplicates))

    def matching_wanted(
        self,
        unbound: dict[Side, dict[str, None]],
        retry_creates: dict[Side, list[str]],
        config_changed: bool,
    ) -> bool:
        """Has matching anything to match? (If not, the keys bound pairs will write do not
        matter, and are not worked out ahead of their slices.)"""
        statuses = ("duplicate", "excluded") if config_changed else ("duplicate",)
        return (
            any(unbound.values())
            or any(retry_creates.values())
            or any(self.state.ids_with_status(s, status) for s in Side for status in statuses)
        )

    def keys_ahead(
        self, bound: BoundPairs, reads: dict[Side, SideRead], config_changed: bool
    ) -> dict[Side, dict[str, list[str]]]:
        """The match keys bound pairs will write, for matching, when they are too many to
        plan at once: planned slice by slice for these alone (and planned again when their
        slice is applied). Only the pairs that may write an email are: one whose emails
        changed on either side since the index saw them, one merged for the first time or
        retried, or any after a mapping change; a run where every contact got a new title
        plans nothing ahead."""
        future: dict[Side, dict[str, list[str]]] = {Side.A: {}, Side.B: {}}
        for ids in slices(bound.ids, self.slice_size(), keep=True):
            rows = self.bound_rows(bound, ids)
            if not config_changed:
                moved = self.emails_moved(rows, reads)
                rows = [b for b in rows if b.needs_merge or b.id in bound.retried or b.id in moved]
            part = SyncPlan()
            self.plan_bound_pairs(part, rows, reads)
            self.hold_back_email_collisions(part, reads)
            for side, keys in self.planned_keys(part).items():
                future[side].update(keys)
        return future

    def emails_moved(self, rows: list[BindingRow], reads: dict[Side, SideRead]) -> set[int]:
        """Pairs with a record read whose match keys are not those the index has for it."""
        out: set[int] = set()
        for side in (Side.A, Side.B):
            read = reads[side].changed.match_keys
            mine = {b.id_on(side): b.id for b in rows if b.id_on(side) in read}
            indexed = self.state.keys_of(side, mine)
            out.update(bid for rid, bid in mine.items() if read[rid] != indexed.get(rid, []))
        return out

    def bound_rows(self, bound: BoundPairs, ids: list[int]) -> list[BindingRow]:
        """The bindings of ``ids``, in that order, each with the id a moved contact has now."""
        rows = {row.id: row for row in self.state.bindings_by_id(ids)}
        out: list[BindingRow] = []
        for bid in ids:
            row = rows.get(bid)
            if row is None:
                continue
            if bid in bound.moved:
                side, new_id = bound.moved[bid]
                row = replace(row, id_a=new_id) if side is Side.A else replace(row, id_b=new_id)
            out.append(row)
        return out

    def bound_parts(
        self, bound: BoundPairs, reads: dict[Side, SideRead], keep: bool = False, step: Step = None
    ) -> Iterator[SyncPlan]:
        """The bound pairs' merges, a slice at a time (``keep``: without using them up)."""
        for ids in slices(bound.ids, self.slice_size(), keep):
            part = SyncPlan()
            self.plan_bound_pairs(part, self.bound_rows(bound, ids), reads, step)
            self.hold_back_email_collisions(part, reads)
            yield part

    def plan_parts(
        self, work: PlanWork, reads: dict[Side, SideRead], quiet: bool = False, keep: bool = False
    ) -> Iterator[SyncPlan]:
        """The plan of what is left: the bound pairs, then what matching found, a slice of
        ``slice_size()`` contacts at a time.

        A slice of what matching found holds the new pairs (merged as first-sync pairs), the
        notes and the creates of up to ``slice_size()`` contacts. ``work`` is consumed as
        the slices are made: once a slice is applied and dropped, nothing of it is held any
        more, so a first sync of 100,000 contacts never holds 100,000 planned writes (issue
        18). ``keep``: ``work`` is left whole, to be planned again (the write guard counts
        every slice before the first is applied). Slices are independent: a pair's or a
        create's plan depends only on its own records, the index and this run's reads.
        ``quiet``: no "Planning" progress (the slices are applied as they come, and the run
        reports "Writing").
        """
        total = work.left() + len(work.matched.notes)
        done = 0
        say = _noop_progress if quiet else self.progress

        def step() -> None:
            nonlocal done
            done += 1
            self.planning_step(say, done, total)

        say("Planning", 0, total)
        yield from self.bound_parts(work.bound, reads, keep, step)
        found = work.matched
        take = found.peek if keep else found.take
        size = self.slice_size()
        for pairs, notes, creates in found.slices(size, keep):
            part = SyncPlan()
            matched: list[PairPlan] = []
            for id_a, id_b in pairs:
                rec_a, rec_b = take(Side.A, id_a), take(Side.B, id_b)
                step()
                if not (
                    self.rules.matching(Side.A, rec_a, exists=True)
                    or self.rules.matching(Side.B, rec_b, exists=True)
                ):
                    # Neither contact is selected by a rule: left unbound (matched again the
                    # day one of them enters a rule), never created across.
                    part.notes.append(Note(Side.A, rec_a, "excluded", NO_RULE))
                    part.notes.append(Note(Side.B, rec_b, "excluded", NO_RULE))
                    continue
                matched.append(self.plan_pair(0, rec_a, rec_b, None))
            for side, rid, status, reason in notes:
                step()
                part.notes.append(Note(side, take(side, rid), status, reason))
            for side, rid in creates:
                step()
                self.plan_one_create(part, side, take(side, rid))
            if matched:
                self.hold_back_email_collisions(SyncPlan(pairs=matched), reads)
                part.pairs.extend(matched)
            yield part
        say("Planning", total, total)

    def planning_step(self, say: Progress, done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0:
            say("Planning", done, total)
            self.checkpoint()

    def plan_one_create(self, plan: SyncPlan, side: Side, rec: Record) -> None:
        """A create of ``rec`` into the other app, or the note why there is none."""
        if not self.writable(side.other):
            reason = f"one-way: nothing is written to {self.app_name(side.other)}"
            plan.notes.append(Note(side, rec, "excluded", reason))
            return
        if not self.rules.can_create(side, rec):
            reason = NO_RULE
            if self.rules.matching(side, rec, exists=True):
                reason = (
                    "its rule only updates contacts that already exist in "
                    f"{self.app_name(side.other)}, and none matches"
                )
            plan.notes.append(Note(side, rec, "excluded", reason))
            return
        plan.creates.append(self.plan_create(side, rec))

    def hold_back_email_collisions(self, plan: SyncPlan, reads: dict[Side, SideRead]) -> None:
        """A new email that another contact of the target app already has is not copied.

        Copying it would make two contacts share a match key (SPEC §4 "email collision");
        the rest of the pair still syncs and Health says which email and why. Cost: one
        pass over this run's changes and one index query per side, whatever the plan's size.
        """
        email_maps = [m for m in self.mappings if m.match_key]
        if not email_maps:
            return
        checks: list[tuple[PairPlan, PlannedUpdate, FieldMapping, list[str]]] = []
        for pair in plan.pairs:
            for u in pair.updates:
                for m in email_maps:
                    if m.key not in u.mappings:
                        continue
                    fields = m.fields_of(u.target)
                    after = Record(
                        u.record.id,
                        u.record.version,
                        {**u.record.fields, **{k: v for k, v in u.fields.items() if k in fields}},
                    )
                    old = set(keys_of(u.record))
                    new = [k for k in keys_of(after) if k not in old]
                    if new:
                        checks.append((pair, u, m, new))
        if not checks:
            return
        holders: dict[Side, dict[str, set[str]]] = {}
        for side in (Side.A, Side.B):
            wanted = {k for _, u, _, keys in checks if u.target is side for k in keys}
            if not wanted:
                continue
            changed = reads[side].changed
            found = {
                k: {rid for rid in ids if rid not in changed}
                for k, ids in self.state.key_holders(side, wanted).items()
            }
            for k, rids in self.changed_holders(side, reads, wanted).items():
                found.setdefault(k, set()).update(rids)
            holders[side] = found
        for pair, u, m, new in checks:
            taken = [k for k in new if holders[u.target].get(k, set()) - {u.record.id}]
            if not taken:
                continue
            fields = m.fields_of(u.target)
            for k in fields:
                u.fields.pop(k, None)
            u.mappings = u.mappings - {m.key}
            if m.key in pair.old_base:
                pair.base[m.key] = pair.old_base[m.key]
            else:
                pair.base.pop(m.key, None)
            pair.problems.append(
                Problem(
                    u.target,
                    u.record,
                    "email_collision",
                    f"The email {taken[0]} is already used by another contact in "
                    f"{self.app_name(u.target)}; it was not copied there.",
                    fields[0],
                )
            )
            if not (u.fields or u.add_segments or u.remove_segments) and u in pair.updates:
                pair.updates.remove(u)

    def changed_holders(
        self, side: Side, reads: dict[Side, SideRead], wanted: set[str]
    ) -> dict[str, list[str]]:
        """This run's changed records of ``side`` holding the ``wanted`` keys.

        The key map is built once per run (not once per plan slice: that would be quadratic)
        and forgets a record when its slice is released (``Applier.release``): from then on
        the index knows it."""
        held = self.changed_keys.get(side)
        if held is None:
            held = {}
            for rid, keys in reads[side].changed.match_keys.items():
                for k in keys:
                    hold(held, k, rid)
            self.changed_keys[side] = held
        return {k: holders_of(held, k) for k in wanted if k in held}

    def planned_keys(self, plan: SyncPlan) -> dict[Side, dict[str, list[str]]]:
        """Match keys of records whose emails this plan rewrites, as they will be."""
        out: dict[Side, dict[str, list[str]]] = {Side.A: {}, Side.B: {}}
        email_fields = {f for m in self.mappings if m.match_key for f in (*m.fields_a, *m.fields_b)}
        for u in plan.updates():
            if email_fields.intersection(u.fields):
                after = Record(u.record.id, u.record.version, {**u.record.fields, **u.fields})
                out[u.target][u.record.id] = keys_of(after)
        return out

    def plan_bound_pairs(
        self,
        plan: SyncPlan,
        rows: list[BindingRow],
        reads: dict[Side, SideRead],
        step: Step = None,
    ) -> None:
        """Merge bound pairs. ``step``: called once a pair (progress, a safe point to stop);
        by default "Matching" progress every ``PROGRESS_EVERY`` pairs."""
        if not rows:
            return
        need: dict[Side, list[str]] = {Side.A: [], Side.B: []}
        for b in rows:
            for side in (Side.A, Side.B):
                rid = b.id_on(side)
                if rid not in reads[side].changed:
                    need[side].append(rid)
        loaded = {side: self.state.load_records(side, ids) for side, ids in need.items()}
        for i, b in enumerate(rows, 1):
            if step is not None:
                step()
            elif i % PROGRESS_EVERY == 0:
                self.progress("Matching", i, len(rows))
                self.checkpoint()
            recs: dict[Side, Record | None] = {}
            statuses: list[str] = []
            for side in (Side.A, Side.B):
                rid = b.id_on(side)
                got = reads[side].changed.get(rid)
                if got is None and rid in loaded[side]:
                    got, status = loaded[side][rid]
                    statuses.append(status)
                recs[side] = got
            rec_a, rec_b = recs[Side.A], recs[Side.B]
            if rec_a is None or rec_b is None:
                continue  # unreadable this run: reported as such, retried when readable
            pair = self.plan_pair(
                b.id,
                rec_a,
                rec_b,
                None if b.needs_merge and not b.base else b.base,
                b.rule_state,
            )
            if b.id in self.replan_only and len(statuses) == 2:
                pair.indexed_as = (statuses[0], statuses[1])
            plan.pairs.append(pair)

    def plan_pair(
        self,
        binding_id: int,
        rec_a: Record,
        rec_b: Record,
        base: dict[str, Any] | None,
        rule_state: dict[str, Any] | None = None,
    ) -> PairPlan:
        recs = {Side.A: rec_a, Side.B: rec_b}
        old = dict(base or {})
        new_base = dict(old)
        patches = {Side.A: Patch(), Side.B: Patch()}
        carried: dict[Side, set[str]] = {Side.A: set(), Side.B: set()}
        conflicts: list[tuple[str, Any, Any, str]] = []
        problems: list[Problem] = []
        for m in self.mappings:
            va, vb = m.value(Side.A, rec_a), m.value(Side.B, rec_b)
            ca, cb = m.canon(va), m.canon(vb)
            prior = old.get(m.key)
            first = base is None or m.key not in old
            if is_held(prior):
                held_a, held_b = prior[HELD]
                if ca == held_a and cb == held_b:
                    continue  # both still hold what was left there: nothing flows
                note = prior.get(NOT_FITTING)
                if isinstance(note, dict):
                    # One app had no room for some values: what *it* holds is the base, for
                    # whichever side moved (the values it never had are not removals).
                    prior = held_a if note.get("side") == "a" else held_b
                else:
                    # The side that moved is the change; the other side's value is the base.
                    prior = cb if cb == held_b else ca if ca == held_a else held_a
            if m.set_merge:
                merged = merge_sets(ca, cb, None if first else prior)
                agreed = merged
                for side, cur in ((Side.A, ca), (Side.B, cb)):
                    if cur != merged:
                        if self.flows(m, side):
                            patches[side].merge(m.patch(side, recs[side], frozenset(merged)))
                            carried[side].add(m.key)
                        else:
                            agreed = prior if prior is not None else cur
                new_base[m.key] = agreed
                continue
            if m.list_merge and isinstance(m, ListField):
                self.merge_list_mapping(
                    m, recs, va, vb, ca, cb, None if first else prior, patches, carried, new_base
                )
                continue
            out = merge_value(
                ca,
                cb,
                prior,
                first=first,
                winner=self.mapping_winner(m),
                propagate_clears=self.settings.propagate_clears,
                match_key=m.match_key,
            )
            if out.source is None:
                if ca == cb:
                    new_base[m.key] = ca
                continue
            target = out.source.other
            if not self.flows(m, target):
                continue  # keep the base: the other side's change is not ours to write back
            value = va if out.source is Side.A else vb
            try:
                patch = m.patch(target, recs[target], value)
            except Rejected as err:
                # This field of this contact cannot be written (e.g. value not allowed);
                # its base stays, the other fields still sync.
                problems.append(Problem(target, recs[target], err.code, str(err), err.field or ""))
                continue
            patches[target].merge(patch)
            carried[target].add(m.key)
            new_base[m.key] = ca if out.source is Side.A else cb
            if out.conflict:
                conflicts.append(
                    (m.key, value_to_json_any(va), value_to_json_any(vb), out.source.value)
                )
        pair = PairPlan(
            binding_id, rec_a, rec_b, new_base, old, conflicts=conflicts, problems=problems
        )
        self.plan_rules(pair, recs, patches, carried, dict(rule_state or {}))
        for side in (Side.A, Side.B):
            patch = patches[side]
            fields = {
                k: v for k, v in patch.fields.items() if not _same(recs[side].fields.get(k), v)
            }
            add = frozenset(s for s in patch.add_segments if s not in recs[side].segments) or NONE
            remove = frozenset(s for s in patch.remove_segments if s in recs[side].segments) or NONE
            if fields or add or remove:
                pair.updates.append(
                    PlannedUpdate(
                        op_id=self.new_id(),
                        binding_id=binding_id,
                        target=side,
                        record=recs[side],
                        fields=fields,
                        add_segments=add,
                        remove_segments=remove,
                        mappings=frozenset(carried[side]) or NONE,
                    )
                )
        return pair

    def plan_rules(
        self,
        pair: PairPlan,
        recs: dict[Side, Record],
        patches: dict[Side, Patch],
        carried: dict[Side, set[str]],
        state: dict[str, Any],
    ) -> None:
        """Scope, actions, Undo and unsubscribes for a bound pair (SPEC §3, §8).

        A pair no rule selects goes dormant: the mappings' writes are dropped and its base
        stays as it was, so the pair re-attaches with a three-way merge when it matches again.
        """
        outcome = self.rules.pair_outcome(recs, state.get("log", []))
        pair.old_rule_state = state
        seen = dict(state.get("seen", {}))
        if not outcome.in_scope:
            pair.dormant = True
            for side in (Side.A, Side.B):
                patches[side] = Patch()
                carried[side] = set()
            pair.base = dict(pair.old_base)
            pair.conflicts.clear()
            pair.problems.clear()
        elif self.settings.unsubscribes:
            opt_out = {
                s: self.settings.unsubscribe_opt_out and self.apps[s].info.capabilities.subscription
                for s in (Side.A, Side.B)
            }
            unsub, seen = unsubscribe_patches(
                recs, seen, {s: self.writable(s) for s in (Side.A, Side.B)}, opt_out
            )
            for side in (Side.A, Side.B):
                if unsub[side]:
                    patches[side].merge(unsub[side])
                    carried[side].add(RULES_KEY)
        for side in (Side.A, Side.B):
            if outcome.patches[side]:
                patches[side].merge(outcome.patches[side])
                carried[side].add(RULES_KEY)
        pair.rule_conflicts = outcome.conflicts
        new_state: dict[str, Any] = {}
        if outcome.log:
            new_state["log"] = outcome.log
        if any(v is not None for v in seen.values()):
            new_state["seen"] = seen
        pair.rule_state = new_state

    def merge_list_mapping(
        self,
        m: ListField,
        recs: dict[Side, Record],
        va: Any,
        vb: Any,
        ca: Any,
        cb: Any,
        prior: Any,
        patches: dict[Side, Patch],
        carried: dict[Side, set[str]],
        new_base: dict[str, Any],
    ) -> None:
        """Emails, phones, addresses: merged value by value, nothing either side added lost."""
        if ca == cb:
            new_base[m.key] = ca
            return
        keys_a = [m.item_key(i) for i in va]
        keys_b = [m.item_key(i) for i in vb]
        base_keys = list(prior) if isinstance(prior, list) else None
        merged = merge_lists(keys_a, keys_b, base_keys, self.mapping_winner(m))
        if (
            not merged
            and (keys_a or keys_b)
            and (m.match_key or not self.settings.propagate_clears)
        ):
            return  # never clear the match email; clears may be switched off
        held = False
        for side, own, other, cur in ((Side.A, va, vb, ca), (Side.B, vb, va, cb)):
            value = m.assemble(merged, own, other)
            if m.canon(value) == cur:
                continue
            if not self.flows(m, side):
                held = True  # this side keeps its value: the base does not move
                continue
            patches[side].merge(m.patch(side, recs[side], value))
            carried[side].add(m.key)
        if not held:
            new_base[m.key] = m.canon(m.assemble(merged, va, vb))

    def plan_create(self, source: Side, rec: Record) -> PlannedCreate:
        target = source.other
        patch = Patch()
        base: dict[str, Any] = {}
        problems: list[Problem] = []
        for m in self.mappings:
            if not self.flows(m, target):
                continue
            value = m.value(source, rec)
            try:
                patch.merge(m.patch(target, None, value))
            except Rejected as err:
                problems.append(Problem(target, rec, err.code, str(err), err.field or ""))
                continue
            base[m.key] = m.canon(value)
        actions, log = self.rules.create_patch(source, rec, self.settings.unsubscribes)
        patch.merge(actions)
        state: dict[str, Any] = {"log": log} if log else {}
        if self.settings.unsubscribes and rec.subscribed is not None:
            state["seen"] = {source.value: rec.subscribed}
            if (
                rec.subscribed is False
                and self.settings.unsubscribe_opt_out
                and self.apps[target].info.capabilities.subscription
            ):
                patch.fields[OPT_OUT_FIELD] = "false"
        fields = {k: v for k, v in patch.fields.items() if not _same(None, v)}
        chooses = self.apps[target].info.capabilities.chooses_ids
        return PlannedCreate(
            op_id=self.new_id(),
            source=source,
            record=rec,
            fields=fields,
            segments=frozenset(patch.add_segments) or NONE,
            base=base,
            new_id=self.new_id() if chooses else None,
            problems=problems,
            rule_state=state,
        )

    def fill_counts(self, plan: SyncPlan) -> None:
        """The report's counts of a plan, or of each slice of a dry run's plan as it is
        planned (a preview also breaks each down here, then lets it go: see
        ``app.preview``)."""
        self.add_counts(plan)

    def add_counts(self, plan: SyncPlan) -> None:
        """Add a plan's (or a slice's) counts to the report."""
        r = self.report
        for side in (Side.A, Side.B):
            r.created[side.value] += plan.count_creates(side)
            r.updated[side.value] += plan.count_updates(side)
        r.conflicts += sum(len(p.conflicts) for p in plan.pairs)
        r.matched += sum(1 for p in plan.pairs if p.binding_id == 0)
        r.excluded += sum(1 for n in plan.notes if n.status == "excluded")
        r.excluded += sum(2 for p in plan.pairs if p.dormant)
        r.rule_conflicts += sum(len(p.rule_conflicts) for p in plan.pairs)
        r.duplicates += sum(1 for n in plan.notes if n.status == "duplicate")
        r.deleted_other_side += len(plan.tombstones)

    # --- applying ------------------------------------------------------------------------------


def is_held(base_value: Any) -> TypeGuard[dict[str, list[Any]]]:
    """Is this base entry a held pair of values (see ``HELD``)?"""
    return isinstance(base_value, dict) and HELD in base_value


def not_fitting_base(ca: Any, cb: Any, side: Side, err: NotFitting) -> dict[str, Any]:
    """The base entry of a mapping whose write did not fit: both apps keep what they hold
    (nothing flows, nothing is retried) until either changes, and Health names the values."""
    return {
        HELD: [ca, cb],
        NOT_FITTING: {
            "side": side.value,
            "field": err.field or "",
            "values": list(err.values),
            "message": str(err),
        },
    }


def held(ca: Any, cb: Any) -> Any:
    """The base entry for two canonical values: the value itself when they agree."""
    return ca if ca == cb else {HELD: [ca, cb]}
