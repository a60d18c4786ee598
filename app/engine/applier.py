"""Applying a plan: writes in batches, each committed with what it changed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from app.engine.context import (
    TRASH_SEGMENT,
    RunContext,
    SideRead,
    _same,
)
from app.engine.match import keys_of, let_go
from app.engine.plan import Note, PairPlan, PlannedCreate, PlannedUpdate, SyncPlan
from app.engine.planner import NO_RULE, RULES_KEY, not_fitting_base
from app.engine.state import (
    BatchOutcome,
    ConflictNote,
    FailureNote,
    IndexEntry,
    IntentNote,
    JournalNote,
    NewBinding,
    Rebind,
    RecordRef,
    StatusChange,
    Tombstone,
)
from app.errors import NotFitting, PairsyncError, Rejected, ValueNotAllowed
from app.model import (
    Create,
    Record,
    Side,
    Update,
    WriteOp,
    WriteResult,
    value_to_json,
)


class Applier(RunContext):
    """Apply a plan in batches; each batch commits its bindings, bases, index and journal."""

    def apply(
        self,
        plan: SyncPlan,
        reads: dict[Side, SideRead],
        parts: Iterable[SyncPlan] = (),
        left: Callable[[], int] = lambda: 0,
    ) -> None:
        """Apply ``plan``, then each of ``parts``: slices planned only as they are needed
        (see ``SyncRun.run``), each released once its batches are committed. ``left``: how
        many contacts are still to be planned (they count as one write each in the
        progress total until they are)."""
        planned = plan.write_count()
        self.write_total = planned + left()
        self.writes_done = 0
        self.progress("Writing", 0, self.write_total)
        done_ids: dict[Side, set[str]] = {Side.A: set(), Side.B: set()}
        self.apply_notes(plan, reads, done_ids)
        self.apply_plan(plan, done_ids)
        for part in parts:
            planned += part.write_count()
            self.write_total = planned + left()
            self.commit_notes(part.notes, done_ids)
            self.apply_plan(part, done_ids)
            self.release(part, reads, done_ids)
            del part  # not held while the next slice is planned
        self.apply_rest(reads, done_ids)

    def apply_plan(self, plan: SyncPlan, done: dict[Side, set[str]]) -> None:
        # Matched pairs get their binding before any write, so a crash keeps the match.
        new_pairs = [p for p in plan.pairs if p.binding_id == 0]
        if new_pairs:
            self.bind_new_pairs(new_pairs)
        self.apply_creates(plan.creates, done)
        self.apply_pairs(plan.pairs, done)

    def commit_notes(self, notes: list[Note], done: dict[Side, set[str]]) -> None:
        """Index the contacts a slice does not sync (excluded, duplicates) with the reason."""
        if not notes:
            return
        for n in notes:
            done[n.side].add(n.record.id)
        index = [self.entry(n.side, n.record, n.status, n.reason) for n in notes]
        self.state.commit(BatchOutcome(self.run_id, self.run_no, index=index))

    def release(
        self, part: SyncPlan, reads: dict[Side, SideRead], done: dict[Side, set[str]]
    ) -> None:
        """Forget a committed slice's records: this run holds them nowhere any more (not
        even their ids among those done: ``apply_rest`` looks only at what is still held)."""
        gone: list[tuple[Side, str]] = [(n.side, n.record.id) for n in part.notes]
        gone += [(c.source, c.record.id) for c in part.creates]
        for p in part.pairs:
            gone += [(Side.A, p.record_a.id), (Side.B, p.record_b.id)]
        for side, rid in gone:
            done[side].discard(rid)
            changed = reads[side].changed
            keys = changed.match_keys.get(rid)
            if keys is None:
                continue
            changed.discard(rid)
            held = self.changed_keys.get(side)
            if held is not None:
                for k in keys:
                    let_go(held, k, rid)

    def apply_notes(
        self, plan: SyncPlan, reads: dict[Side, SideRead], done: dict[Side, set[str]]
    ) -> None:
        index: list[IndexEntry] = []
        failures: list[FailureNote] = []
        statuses: list[StatusChange] = []
        dropped: list[RecordRef] = []
        for n in plan.notes:
            index.append(self.entry(n.side, n.record, n.status, n.reason))
            done[n.side].add(n.record.id)
        for side in (Side.A, Side.B):
            for bad in reads[side].unreadable:
                failures.append(
                    FailureNote(
                        side=side,
                        record_id=bad.id,
                        target_side=side,
                        name=bad.id,
                        code="unreadable",
                        message=bad.message,
                        raw=bad.raw,
                        source_version=bad.version,
                    )
                )
            dropped.extend(RecordRef(side, rid) for rid in reads[side].gone)
            dropped.extend(RecordRef(side, old) for old, _bid in reads[side].moved.values())
        rebound = [
            Rebind(bid, side, new_id)
            for side in (Side.A, Side.B)
            for new_id, (_old, bid) in reads[side].moved.items()
        ]
        self.report.failed += sum(len(reads[s].unreadable) for s in (Side.A, Side.B))
        for t in plan.tombstones:
            statuses.append(
                StatusChange(
                    t.keep_side,
                    t.keep_id,
                    "excluded",
                    f"deleted in {self.app_name(t.keep_side.other)}",
                )
            )
        self.state.commit(
            BatchOutcome(
                self.run_id,
                self.run_no,
                index=index,
                tombstones=[Tombstone(t.binding_id, t.state) for t in plan.tombstones],
                clear_binding_failures=[t.binding_id for t in plan.tombstones],
                cleared=dropped,  # a contact that is gone has nothing left to retry
                statuses=statuses,
                dropped=dropped,
                rebound=rebound,
                failures=failures,
            )
        )
        if self.settings.trash and plan.tombstones:
            self.apply_trash(plan)

    def apply_trash(self, plan: SyncPlan) -> None:
        for keep_side in (Side.A, Side.B):
            ids = [t.keep_id for t in plan.tombstones if t.keep_side is keep_side]
            if not ids or not self.writable(keep_side):
                continue
            recs = self.state.load_records(keep_side, ids)
            ops: list[WriteOp] = [
                Update(self.new_id(), rid, {}, add_segments=frozenset({TRASH_SEGMENT}))
                for rid in recs
            ]
            for res in self.write_batches(keep_side, ops):
                if res.ok and res.record is not None:
                    self.state.commit(
                        BatchOutcome(
                            self.run_id,
                            index=[
                                self.entry(
                                    keep_side,
                                    res.record,
                                    "excluded",
                                    f"deleted in {self.app_name(keep_side.other)}",
                                )
                            ],
                            journal=[
                                JournalNote(
                                    keep_side,
                                    res.record.id,
                                    "update",
                                    "segments",
                                    None,
                                    [TRASH_SEGMENT],
                                )
                            ],
                        )
                    )

    def bind_new_pairs(self, pairs: list[PairPlan]) -> None:
        self.state.commit(
            BatchOutcome(
                self.run_id,
                self.run_no,
                new_bindings=[NewBinding(p.record_a.id, p.record_b.id) for p in pairs],
                matched=True,  # merged as a first sync until the pair's base is committed
            )
        )
        rows = self.state.pairs_for(Side.A, [p.record_a.id for p in pairs])
        for p in pairs:
            p.binding_id = rows[p.record_a.id].id
            for u in p.updates:
                u.binding_id = p.binding_id

    def apply_creates(self, creates: list[PlannedCreate], done: dict[Side, set[str]]) -> None:
        for target in (Side.A, Side.B):
            todo = [c for c in creates if c.target is target]
            size = max(1, self.apps[target].info.capabilities.batch_size)
            for start in range(0, len(todo), size):
                batch = todo[start : start + size]
                self.state.add_intents(
                    [
                        IntentNote(
                            op_id=c.op_id,
                            run_id=self.run_id,
                            target_side=target,
                            source_id=c.record.id,
                            new_id=c.new_id,
                            emails=keys_of(c.record),
                            rule_state=c.rule_state,
                        )
                        for c in batch
                    ]
                )
                ops: list[WriteOp] = [
                    Create(c.op_id, c.fields, c.segments, new_id=c.new_id) for c in batch
                ]
                results = self.write_ops(target, ops)
                self.commit_creates(batch, results, done)
                self.batch_written(len(batch))

    def commit_creates(
        self, batch: list[PlannedCreate], results: list[WriteResult], done: dict[Side, set[str]]
    ) -> None:
        index: list[IndexEntry] = []
        new_bindings: list[NewBinding] = []
        failures: list[FailureNote] = []
        cleared: list[RecordRef] = []
        journal: list[JournalNote] = []
        for c, res in zip(batch, results, strict=True):
            done[c.source].add(c.record.id)
            if res.record is not None:
                # Created (possibly only in part: then the error is recorded as well, and
                # the contact is bound all the same so a retry never creates it twice).
                new = res.record
                self.done["created"][c.target.value] += 1
                fit = res.error if isinstance(res.error, NotFitting) else None
                if fit is not None:
                    self.report.not_fitting += 1
                elif res.error is not None:
                    failures.append(self.failure(c.source, c.record, c.target, res.error, None))
                for pr in c.problems:
                    failures.append(
                        self.failure(
                            c.source,
                            c.record,
                            c.target,
                            ValueNotAllowed(pr.message, field=pr.field)
                            if pr.code == "value_not_allowed"
                            else Rejected(pr.message, field=pr.field),
                            None,
                        )
                    )
                index.append(self.entry(c.source, c.record, "bound"))
                index.append(self.entry(c.target, new, "bound"))
                ids = (c.record.id, new.id) if c.source is Side.A else (new.id, c.record.id)
                if fit is not None:
                    recs = {c.source: c.record, c.target: new}
                    base = self.not_fitting_bases(dict(c.base), c.target, fit, recs)
                    rule_state = c.rule_state
                else:
                    base = self.base_after_partial(c, res.error)
                    rule_state = c.rule_state if res.error is None else {}
                new_bindings.append(NewBinding(ids[0], ids[1], base, rule_state))
                cleared.append(RecordRef(c.source, c.record.id))
                journal.extend(
                    JournalNote(c.target, new.id, "create", k, None, value_to_json(v))
                    for k, v in c.fields.items()
                )
                if c.segments or not c.fields:
                    # Every create is journaled (an empty one as its segments): undo finds
                    # it, and so does the next feed read (``created_since``).
                    journal.append(
                        JournalNote(
                            c.target, new.id, "create", "segments", None, sorted(c.segments)
                        )
                    )
            else:
                index.append(self.entry(c.source, c.record, "failed", "could not be created"))
                failures.append(self.failure(c.source, c.record, c.target, res.error, None))
                self.report.created[c.target.value] -= 1
        self.state.commit(
            BatchOutcome(
                self.run_id,
                self.run_no,
                index=index,
                new_bindings=new_bindings,
                failures=failures,
                cleared=cleared,
                journal=journal,
                done_intents=[c.op_id for c in batch],
            )
        )

    def not_fitting_bases(
        self,
        base: dict[str, Any],
        target: Side,
        fit: NotFitting,
        recs: dict[Side, Record],
    ) -> dict[str, Any]:
        """``base`` with the mappings of the field that did not fit held at what each app
        now holds (see ``planner.not_fitting_base``)."""
        for m in self.mappings:
            if fit.field in m.fields_of(target):
                ca = m.canon(m.value(Side.A, recs[Side.A]))
                cb = m.canon(m.value(Side.B, recs[Side.B]))
                base[m.key] = not_fitting_base(ca, cb, target, fit)
        return base

    def base_after_partial(self, c: PlannedCreate, error: Exception | None) -> dict[str, Any]:
        """The base of a new pair: without the mappings a partial create did not write."""
        if error is None:
            return c.base
        failed_field = getattr(error, "field", None)
        if not failed_field:
            return {}
        return {
            m.key: c.base[m.key]
            for m in self.mappings
            if m.key in c.base and failed_field not in m.fields_of(c.target)
        }

    def apply_pairs(self, pairs: list[PairPlan], done: dict[Side, set[str]]) -> None:
        by_op: dict[str, tuple[PairPlan, PlannedUpdate]] = {}
        for p in pairs:
            for u in p.updates:
                by_op[u.op_id] = (p, u)
        failed_maps: dict[int, set[str]] = {}
        fits: dict[int, list[tuple[Side, NotFitting]]] = {}
        pending: dict[int, int] = {p.binding_id: len(p.updates) for p in pairs}
        # Pairs with no writes: their base and index move now (unless nothing changed at all:
        # a configuration change re-plans every pair, and most of them stay as they were).
        quiet = [p for p in pairs if not p.updates and not p.settled()]
        for start in range(0, len(quiet), 500):
            chunk = quiet[start : start + 500]
            self.state.commit(
                BatchOutcome(
                    self.run_id,
                    self.run_no,
                    index=[e for p in chunk for e in self.pair_entries(p, None, None)],
                    bases=[(p.binding_id, p.base) for p in chunk],
                    rule_states=[(p.binding_id, p.rule_state) for p in chunk],
                    conflicts=[c for p in chunk for c in self.pair_conflicts(p)],
                    clear_binding_failures=[p.binding_id for p in chunk],
                    failures=[f for p in chunk for f in self.problem_failures(p)],
                )
            )
            for p in chunk:
                done[Side.A].add(p.record_a.id)
                done[Side.B].add(p.record_b.id)
        for target in (Side.A, Side.B):
            todo = [u for p in pairs for u in p.updates if u.target is target]
            size = max(1, self.apps[target].info.capabilities.batch_size)
            for start in range(0, len(todo), size):
                batch = todo[start : start + size]
                ops: list[WriteOp] = [
                    Update(
                        u.op_id,
                        u.record.id,
                        u.fields,
                        u.add_segments,
                        u.remove_segments,
                        expected_version=u.record.version,
                    )
                    for u in batch
                ]
                results = self.write_ops(target, ops)
                index: list[IndexEntry] = []
                bases: list[tuple[int, dict[str, Any]]] = []
                rule_states: list[tuple[int, dict[str, Any]]] = []
                failures: list[FailureNote] = []
                journal: list[JournalNote] = []
                conflicts: list[ConflictNote] = []
                cleared_bindings: list[int] = []
                replan: list[int] = []
                for u, res in zip(batch, results, strict=True):
                    pair, _ = by_op[u.op_id]
                    pending[pair.binding_id] -= 1
                    last = pending[pair.binding_id] == 0
                    fit = res.error if isinstance(res.error, NotFitting) else None
                    if (res.ok or fit is not None) and res.record is not None:
                        self.done["updated"][target.value] += 1
                        if fit is not None:
                            self.report.not_fitting += 1
                            fits.setdefault(pair.binding_id, []).append((target, fit))
                        stored = res.record
                        journal.extend(
                            JournalNote(
                                target,
                                u.record.id,
                                "update",
                                k,
                                value_to_json(u.record.fields.get(k)),
                                # What the app holds now (all of it, unless it did not fit).
                                value_to_json(
                                    stored.fields.get(k)
                                    if fit is not None and k == fit.field
                                    else v
                                ),
                            )
                            for k, v in u.fields.items()
                        )
                        if u.add_segments or u.remove_segments:
                            journal.append(
                                JournalNote(
                                    target,
                                    u.record.id,
                                    "update",
                                    "segments",
                                    sorted(u.record.segments),
                                    sorted(
                                        (u.record.segments | u.add_segments) - u.remove_segments
                                    ),
                                )
                            )
                        index.extend(self.pair_entries(pair, target, res.record))
                        if self.changed_by_others(target, u, res.record):
                            replan.append(pair.binding_id)
                        if target is Side.A:
                            pair.record_a = res.record
                        else:
                            pair.record_b = res.record
                    else:
                        failed_maps.setdefault(pair.binding_id, set()).update(u.mappings)
                        other = pair.record_b if target is Side.A else pair.record_a
                        failures.append(
                            self.failure(
                                target,
                                u.record,
                                target,
                                res.error,
                                pair.binding_id,
                                name_from=other,
                            )
                        )
                        self.report.updated[target.value] -= 1
                        # A partial write still tells us what the app now holds.
                        index.extend(self.pair_entries(pair, target, res.record))
                        if res.record is not None:
                            if target is Side.A:
                                pair.record_a = res.record
                            else:
                                pair.record_b = res.record
                    if last:
                        lost = failed_maps.get(pair.binding_id, set())
                        base = {
                            k: (pair.old_base[k] if k in lost and k in pair.old_base else v)
                            for k, v in pair.base.items()
                            if not (k in lost and k not in pair.old_base)
                        }
                        for fit_side, fit_err in fits.pop(pair.binding_id, []):
                            recs = {Side.A: pair.record_a, Side.B: pair.record_b}
                            base = self.not_fitting_bases(base, fit_side, fit_err, recs)
                        bases.append((pair.binding_id, base))
                        if RULES_KEY not in lost:
                            rule_states.append((pair.binding_id, pair.rule_state))
                        conflicts.extend(self.pair_conflicts(pair))
                        if not lost:
                            cleared_bindings.append(pair.binding_id)
                        failures.extend(self.problem_failures(pair))
                        done[Side.A].add(pair.record_a.id)
                        done[Side.B].add(pair.record_b.id)
                self.state.commit(
                    BatchOutcome(
                        self.run_id,
                        self.run_no,
                        index=index,
                        bases=bases,
                        rule_states=rule_states,
                        failures=failures,
                        journal=journal,
                        conflicts=conflicts,
                        clear_binding_failures=cleared_bindings,
                        replan=replan,
                    )
                )
                self.batch_written(len(batch))

    def changed_by_others(self, target: Side, u: PlannedUpdate, written: Record) -> bool:
        """Does the app hold, after our write, mapped values we neither read nor wrote?

        That is another client's edit merged into ours (CardDAV after a 412: the card is read
        again and our patch applied to it). Its values are not in the base we agreed, and
        the record's new version is already indexed, so no later listing would show it as
        changed: the pair is planned again at the next run, and the edit flows across."""
        keys = {k for m in self.mappings for k in m.fields_of(target)}
        for key in keys - set(u.fields) - {"segments"}:
            if not _same(u.record.fields.get(key), written.fields.get(key)):
                return True
        if "segments" in keys:
            expected = (u.record.segments | u.add_segments) - u.remove_segments
            if written.segments != expected:
                return True
        return False

    def batch_written(self, count: int) -> None:
        """After a batch is committed: report progress, then a safe point to stop."""
        self.writes_done += count
        self.progress("Writing", self.writes_done, self.write_total)
        self.checkpoint()

    @staticmethod
    def pair_conflicts(pair: PairPlan) -> list[ConflictNote]:
        """Field conflicts between the apps, and rule conflicts ("rule:" + what they write)."""
        out = [ConflictNote(pair.binding_id, *c) for c in pair.conflicts]
        out.extend(
            ConflictNote(pair.binding_id, f"rule:{c.what}", c.message, c.loser, c.target.value)
            for c in pair.rule_conflicts
        )
        return out

    def problem_failures(self, pair: PairPlan) -> list[FailureNote]:
        out = []
        for pr in pair.problems:
            self.report.failed += 1
            other = pair.record_b if pr.target is Side.A else pair.record_a
            out.append(
                FailureNote(
                    side=pr.target,
                    record_id=pr.record.id,
                    target_side=pr.target,
                    name=other.display_name(),
                    code=pr.code,
                    message=pr.message,
                    field=pr.field,
                    binding_id=pair.binding_id,
                    source_version=pr.record.version,
                )
            )
        return out

    def pair_entries(
        self, pair: PairPlan, written: Side | None, new: Record | None
    ) -> list[IndexEntry]:
        """Index entries for a pair after a commit for side ``written`` (None: no writes).

        The written side gets its new record (or the one read, when the write failed); the
        other side is indexed here only when it has no write of its own, which indexes it.
        """
        targets = {u.target for u in pair.updates}
        out: list[IndexEntry] = []
        status, reason = ("excluded", NO_RULE) if pair.dormant else ("bound", "")
        for side, rec in ((Side.A, pair.record_a), (Side.B, pair.record_b)):
            if side is written:
                out.append(self.entry(side, new or rec, status, reason))
            elif side not in targets:
                out.append(self.entry(side, rec, status, reason))
        return out

    def apply_rest(self, reads: dict[Side, SideRead], done: dict[Side, set[str]]) -> None:
        """Changed records that needed no write (e.g. an edit to an unmapped field)."""
        for side in (Side.A, Side.B):
            changed = reads[side].changed
            rest = [changed[rid] for rid in changed if rid not in done[side]]
            if not rest:
                continue
            bound = self.state.pairs_for(side, [r.id for r in rest])
            for start in range(0, len(rest), 500):
                chunk = rest[start : start + 500]
                entries = []
                for r in chunk:
                    b = bound.get(r.id)
                    if b is None:
                        continue  # unplanned unbound record (e.g. failed): indexed by its note
                    status, reason = "bound", ""
                    if b.state != "active":
                        status, reason = "excluded", (f"deleted in {self.app_name(side.other)}")
                    entries.append(self.entry(side, r, status, reason))
                self.state.commit(BatchOutcome(self.run_id, self.run_no, index=entries))

    # --- small pieces ------------------------------------------------------------------------

    def write_ops(self, side: Side, ops: list[WriteOp]) -> list[WriteResult]:
        self.touching = side
        results = self.apps[side].write(ops)
        self.touching = None
        if len(results) != len(ops):
            raise PairsyncError(
                f"{self.app_name(side)} answered {len(results)} results for {len(ops)} writes."
            )
        return results

    def write_batches(self, side: Side, ops: list[WriteOp]) -> list[WriteResult]:
        size = max(1, self.apps[side].info.capabilities.batch_size)
        out: list[WriteResult] = []
        for start in range(0, len(ops), size):
            out.extend(self.write_ops(side, ops[start : start + size]))
        return out
