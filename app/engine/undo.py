"""Undo (SPEC §11) and "use the other value" (SPEC §6): journaled runs that write back.

**Undo a run** (or one contact's changes in it): for every field the run wrote, in whichever
app it wrote it, put back the value it found there (the journal's ``before``) — but only
where the field still holds what the run wrote (the journal's ``after``); a field changed
since is left alone and reported, so an undo never overwrites a newer edit. Contacts the run
*created* are never deleted (SPEC §7): they are kept and put in the segment "Pairsync Trash"
for the user to review. One contact's undo covers both records of its binding.

**Why the next run writes nothing (S17).** A run usually copies a change made in one app to
the other: the undo puts the second app back and leaves the user's own edit in the first, so
the two apps now hold different values on purpose. No single base value makes the three-way
merge leave such a pair alone, so the binding's base for each mapping the undo touched
becomes a *held* pair (``planner.HELD``: the value each side is meant to hold). While both
sides keep those values nothing flows; once one side changes, that change flows as usual.
A side the undo did not write keeps the value agreed at the last sync in the held pair, so
an edit the user made there meanwhile (not synced yet) still flows on the next run. The undo
also re-indexes the records it wrote, so the next run does not even see them as changed.

**Use the other value**: for one logged conflict, the losing app's value (the ``before`` of
that run's write to the loser) is written back to the loser and copied to the winner; both
then agree and the base is that value.

Every such run is a journaled run of its own (``runs.kind`` undo / use_other, ``undo_of``),
so an undo can itself be undone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from app.engine.applier import Applier
from app.engine.context import TRASH_SEGMENT, RunReport, _same
from app.engine.planner import HELD, held, is_held
from app.engine.state import BatchOutcome, BindingRow, JournalNote, JournalRow
from app.errors import AuthExpired, ConfigError, PairsyncError, RateLimited
from app.mapping.fields import FieldMapping
from app.model import FieldValue, Record, Side, Unreadable, Update, WriteOp, value_from_json
from app.model import value_to_json as to_json

SEGMENTS = "segments"
"""The journal's pseudo-field for segment changes (sorted lists of names)."""


@dataclass(slots=True)
class UndoReport(RunReport):
    """A run report with what an undo (or use-the-other-value) did and did not do."""

    kind: str = "undo"
    undo_of: int = 0
    restored: int = 0
    """Field values (and segment changes) put back."""
    trashed: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    """Contacts the undone run had created, now in "Pairsync Trash" (never deleted)."""
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """What was left alone, and why (changed since, no longer exists…)."""
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return RunReport.as_json(self) | {
            "kind": self.kind,
            "undo_of": self.undo_of,
            "restored": self.restored,
            "trashed": dict(self.trashed),
            "skipped": list(self.skipped),
            "errors": list(self.errors),
        }


@dataclass(slots=True)
class _Restore:
    """What to write to one record, and the journal it leaves once written."""

    side: Side
    record: Record
    fields: dict[str, FieldValue] = field(default_factory=dict)
    add: set[str] = field(default_factory=set)
    remove: set[str] = field(default_factory=set)
    restored: int = 0
    trash: bool = False

    def op(self, op_id: str) -> Update:
        return Update(
            op_id,
            self.record.id,
            self.fields,
            frozenset(self.add),
            frozenset(self.remove),
            expected_version=self.record.version,
        )

    def journal(self) -> list[JournalNote]:
        out = [
            JournalNote(
                self.side,
                self.record.id,
                "update",
                k,
                to_json(self.record.fields.get(k)),
                to_json(v),
            )
            for k, v in self.fields.items()
        ]
        if self.add or self.remove:
            before = sorted(self.record.segments)
            after = sorted((self.record.segments | self.add) - self.remove)
            out.append(JournalNote(self.side, self.record.id, "update", SEGMENTS, before, after))
        return out

    def __bool__(self) -> bool:
        return bool(self.fields or self.add or self.remove)


class Reverter(Applier):
    """Writes back what a run wrote (see the module docstring). Built like ``SyncRun``."""

    report: UndoReport

    # --- undo ---------------------------------------------------------------------------

    def undo(self, run_id: int, record: tuple[Side, str] | None = None) -> UndoReport:
        """Undo run ``run_id``, or only the changes it made to one contact (both records of
        its binding) when ``record`` = (side, record id) is given."""
        run = self.state.run_row(run_id)
        if run is None:
            raise ConfigError("There is no such run for this connection.")
        if run.dry_run:
            raise ConfigError("A dry run wrote nothing: there is nothing to undo.")
        if run.status == "running":
            raise ConfigError("That run has not finished; undo it once it has.")
        records: set[tuple[Side, str]] | None = None
        if record is not None:
            side, rid = record
            records = {record}
            b = self.state.bindings_for(side, [rid]).get(rid)
            if b is not None:
                records = {(Side.A, b.id_a), (Side.B, b.id_b)}
        entries = self.state.journal_of(run_id, records)
        if not entries:
            raise ConfigError(
                "That run wrote nothing to this contact: there is nothing to undo."
                if record is not None
                else "That run wrote nothing: there is nothing to undo."
            )
        self.report = UndoReport(connection=self.name, kind="undo", undo_of=run_id)
        self.run_id, self.run_no = self.state.begin_run(False, kind="undo", undo_of=run_id)
        return self._finish(lambda: self._revert(entries))

    def _finish(self, work: Callable[[], None]) -> UndoReport:
        status, message = "ok", ""
        try:
            work()
            if self.report.errors:
                status = "failed"
        except AuthExpired as err:
            status, message = "auth", str(err)
        except RateLimited as err:
            status, message = "rate_limited", str(err)
            self.report.retry_after = err.retry_after
        except PairsyncError as err:
            status, message = "unavailable", str(err)
        if not message:
            message = self._summary()
        self.report.status = status
        self.report.message = message
        self.report.failed = len(self.report.errors)
        self.state.finish_run(self.run_id, status, self.report.as_json(), message, wrote=True)
        return self.report

    def _summary(self) -> str:
        r = self.report
        parts = [f"{r.restored} change(s) put back"]
        trashed = r.trashed["a"] + r.trashed["b"]
        if trashed:
            parts.append(
                f"{trashed} contact(s) it had created kept and put in “{TRASH_SEGMENT}” for review"
            )
        if r.skipped:
            parts.append(f"{len(r.skipped)} left alone (changed since, or gone)")
        if r.errors:
            parts.append(f"{len(r.errors)} could not be written")
        return "; ".join(parts) + "."

    def _revert(self, entries: list[JournalRow]) -> None:
        by_record: dict[tuple[Side, str], list[JournalRow]] = {}
        for e in entries:
            by_record.setdefault((e.side, e.record_id), []).append(e)
        bindings = self._bindings(by_record)
        current = self._current(by_record, bindings)
        plans: dict[Side, list[_Restore]] = {Side.A: [], Side.B: []}
        for (side, rid), rows in by_record.items():
            rec = current[side].get(rid)
            if rec is None:
                self._skip(side, rid, rid, "", f"it no longer exists in {self.app_name(side)}")
                continue
            if any(r.action == "create" for r in rows):
                plan = self._trash(side, rec)
            else:
                plan = self._restore_fields(side, rec, rows)
            if plan:
                plans[side].append(plan)
        written = self._write(plans)
        self._agree(bindings, current, written)

    def _restore_fields(self, side: Side, rec: Record, rows: list[JournalRow]) -> _Restore:
        plan = _Restore(side, rec)
        first: dict[str, JournalRow] = {}
        last: dict[str, JournalRow] = {}
        for r in rows:
            first.setdefault(r.field, r)
            last[r.field] = r
        for key, row in first.items():
            before, after = row.before, last[key].after
            if key == SEGMENTS:
                self._restore_segments(plan, before or [], after or [])
                continue
            if not self._holds(side, rec, key, after):
                self._skip(side, rec.id, rec.display_name(), key, "changed since that run")
                continue
            plan.fields[key] = _restored_value(before, after)
            plan.restored += 1
        return plan

    def _restore_segments(self, plan: _Restore, before: list[str], after: list[str]) -> None:
        """Segments are put back one by one: what the run added is removed and what it
        removed is added, each only if it is still as the run left it."""
        have = plan.record.segments
        moved = False
        for name in set(after) - set(before):
            if name in have:
                plan.remove.add(name)
            else:
                moved = True
        for name in set(before) - set(after):
            if name not in have:
                plan.add.add(name)
            else:
                moved = True
        if plan.add or plan.remove:
            plan.restored += 1
        if moved:
            self._skip(
                plan.side,
                plan.record.id,
                plan.record.display_name(),
                SEGMENTS,
                "some segments changed since that run",
            )

    def _trash(self, side: Side, rec: Record) -> _Restore:
        """A contact the undone run created: kept, and marked for review (never deleted)."""
        plan = _Restore(side, rec, trash=True)
        if TRASH_SEGMENT in rec.segments:
            self._skip(side, rec.id, rec.display_name(), SEGMENTS, f"already in {TRASH_SEGMENT}")
        elif not self.apps[side].info.capabilities.segments:
            self._skip(
                side,
                rec.id,
                rec.display_name(),
                SEGMENTS,
                f"{self.app_name(side)} has no segments: the contact it created is kept; "
                "review it in the app",
            )
        else:
            plan.add.add(TRASH_SEGMENT)
        return plan

    # --- use the other value ------------------------------------------------------------------

    def use_other(self, conflict_id: int) -> UndoReport:
        """Apply a logged conflict's losing value to both apps (SPEC §6)."""
        c = self.state.conflict(conflict_id)
        if c is None or c.field.startswith("rule:"):
            raise ConfigError("There is no such conflict for this connection.")
        if c.resolved_run_id is not None:
            raise ConfigError("The other value was already applied for this conflict.")
        m = next((m for m in self.mappings if m.key == c.field), None)
        if m is None:
            raise ConfigError("That field mapping is off now: turn it on to use the other value.")
        found = self.state.bindings_by_id([c.binding_id])
        if not found or found[0].state != "active":
            raise ConfigError("One of the two contacts is gone: the pair is no longer synced.")
        b = found[0]
        winner = c.winner
        loser = winner.other
        if not self.flows(m, winner):
            raise ConfigError(f"{self.app_name(winner)} is not written by this mapping.")
        rows = [
            r
            for r in self.state.journal_of(c.run_id, [(loser, b.id_on(loser))])
            if r.action == "update" and r.field in m.fields_of(loser)
        ]
        if not rows:
            raise ConfigError(
                f"{self.app_name(loser)} still has its own value (the winning value was never "
                "written there): edit the contact in one app instead."
            )
        self.report = UndoReport(connection=self.name, kind="use_other", undo_of=c.run_id)
        self.run_id, self.run_no = self.state.begin_run(False, kind="use_other", undo_of=c.run_id)

        def work() -> None:
            current = self._current([], {b.id: b})
            rec_a, rec_b = current[Side.A].get(b.id_a), current[Side.B].get(b.id_b)
            if rec_a is None or rec_b is None:
                self._skip(loser, b.id_on(loser), "", m.key, "one of the two contacts is gone")
                return
            recs = {Side.A: rec_a, Side.B: rec_b}
            rec_l, rec_w = recs[loser], recs[winner]
            if m.canon(m.value(Side.A, rec_a)) != m.canon(m.value(Side.B, rec_b)):
                self._skip(loser, rec_l.id, rec_l.display_name(), m.key, "changed since")
                return
            plan_l = self._restore_fields(loser, rec_l, rows)
            if not plan_l:
                return
            restored = replace(rec_l, fields={**rec_l.fields, **plan_l.fields})
            value = m.value(loser, restored)
            patch = m.patch(winner, rec_w, value)
            plan_w = _Restore(winner, rec_w)
            plan_w.fields = {
                k: v for k, v in patch.fields.items() if not _same(rec_w.fields.get(k), v)
            }
            plan_w.add = set(patch.add_segments) - rec_w.segments
            plan_w.remove = set(patch.remove_segments) & rec_w.segments
            plan_w.restored = 1 if plan_w else 0
            written = self._write({loser: [plan_l], winner: [plan_w] if plan_w else []})
            self._agree({b.id: b}, current, written)
            if (loser, rec_l.id) in written:
                self.state.resolve_conflict(conflict_id, self.run_id)

        return self._finish(work)

    # --- shared steps ---------------------------------------------------------------------------

    def _bindings(self, records: Iterable[tuple[Side, str]]) -> dict[int, BindingRow]:
        out: dict[int, BindingRow] = {}
        for side in (Side.A, Side.B):
            ids = [rid for s, rid in records if s is side]
            for b in self.state.bindings_for(side, ids).values():
                out[b.id] = b
        return out

    def _current(
        self, records: Iterable[tuple[Side, str]], bindings: dict[int, BindingRow]
    ) -> dict[Side, dict[str, Record]]:
        """The records as the apps hold them now (an undo never trusts the index)."""
        need: dict[Side, set[str]] = {Side.A: set(), Side.B: set()}
        for side, rid in records:
            need[side].add(rid)
        for b in bindings.values():
            if b.state == "active":
                need[Side.A].add(b.id_a)
                need[Side.B].add(b.id_b)
        out: dict[Side, dict[str, Record]] = {Side.A: {}, Side.B: {}}
        for side, ids in need.items():
            todo = sorted(ids)
            size = max(1, self.apps[side].info.capabilities.batch_size)
            for start in range(0, len(todo), size):
                for item in self.apps[side].fetch(todo[start : start + size]):
                    if not isinstance(item, Unreadable):
                        out[side][item.id] = item
        return out

    def _holds(self, side: Side, rec: Record, key: str, after: Any) -> bool:
        """Does ``rec`` still hold what the run wrote to ``key``? Compared the way the
        mappings compare (labels, formatting and order the app may change do not count)."""
        target = value_from_json(after)
        probe_fields = dict(rec.fields)
        if target is None:
            probe_fields.pop(key, None)
        else:
            probe_fields[key] = target
        probe = replace(rec, fields=probe_fields)
        maps = [m for m in self.mappings if key in m.fields_of(side) and m.key != SEGMENTS]
        if maps:
            return all(m.canon(m.value(side, rec)) == m.canon(m.value(side, probe)) for m in maps)
        return _same(rec.fields.get(key), target)

    def _write(self, plans: dict[Side, list[_Restore]]) -> dict[tuple[Side, str], Record]:
        """Write the restores in batches; each batch commits its journal and index at once."""
        written: dict[tuple[Side, str], Record] = {}
        for side, todo in plans.items():
            size = max(1, self.apps[side].info.capabilities.batch_size)
            for start in range(0, len(todo), size):
                batch = todo[start : start + size]
                ops: list[WriteOp] = [p.op(self.new_id()) for p in batch]
                results = self.write_ops(side, ops)
                meta = self.state.index_meta(side, [p.record.id for p in batch])
                index = []
                journal: list[JournalNote] = []
                for p, res in zip(batch, results, strict=True):
                    if res.ok and res.record is not None:
                        written[(side, p.record.id)] = res.record
                        journal.extend(p.journal())
                        if p.trash:
                            self.report.trashed[side.value] += 1
                        else:
                            self.report.restored += p.restored
                            self.report.updated[side.value] += 1
                    elif p.trash:
                        # Kept all the same (never deleted); only the review mark failed.
                        self._skip(
                            side,
                            p.record.id,
                            p.record.display_name(),
                            SEGMENTS,
                            f"kept, but not marked for review: {res.error}",
                        )
                    else:
                        self.report.errors.append(
                            {
                                "side": side.value,
                                "record_id": p.record.id,
                                "name": p.record.display_name(),
                                "message": str(res.error or "The app did not accept the change."),
                            }
                        )
                    if res.record is not None:
                        status, reason = meta.get(p.record.id, ("bound", ""))
                        index.append(self.entry(side, res.record, status, reason))
                self.state.commit(BatchOutcome(self.run_id, index=index, journal=journal))
        return written

    def _agree(
        self,
        bindings: dict[int, BindingRow],
        current: dict[Side, dict[str, Record]],
        written: dict[tuple[Side, str], Record],
    ) -> None:
        """New bases for the mappings the writes touched (see the module docstring)."""
        bases: list[tuple[int, dict[str, Any]]] = []
        for b in bindings.values():
            if b.state != "active":
                continue
            recs: dict[Side, Record | None] = {}
            wrote: dict[Side, Record | None] = {}
            for side in (Side.A, Side.B):
                wrote[side] = written.get((side, b.id_on(side)))
                recs[side] = wrote[side] or current[side].get(b.id_on(side))
            touched = [m for m in self.mappings if _touches(m, wrote, recs, current, b)]
            if not touched or recs[Side.A] is None or recs[Side.B] is None:
                continue
            base = dict(b.base)
            for m in touched:
                values = []
                for side in (Side.A, Side.B):
                    rec = recs[side]
                    assert rec is not None
                    if wrote[side] is not None or m.key not in base:
                        values.append(m.canon(m.value(side, rec)))
                    else:
                        old = base[m.key]
                        values.append(
                            old[HELD][0 if side is Side.A else 1] if is_held(old) else old
                        )
                base[m.key] = held(values[0], values[1])
            bases.append((b.id, base))
        if bases:
            self.state.commit(BatchOutcome(self.run_id, bases=bases))

    def _skip(self, side: Side, rid: str, name: str, key: str, why: str) -> None:
        self.report.skipped.append(
            {"side": side.value, "record_id": rid, "name": name, "field": key, "reason": why}
        )


def _touches(
    m: FieldMapping,
    wrote: dict[Side, Record | None],
    recs: dict[Side, Record | None],
    current: dict[Side, dict[str, Record]],
    b: BindingRow,
) -> bool:
    """Did a write of this undo change what mapping ``m`` sees on either side?"""
    for side in (Side.A, Side.B):
        new = wrote[side]
        old = current[side].get(b.id_on(side))
        if new is None or old is None:
            continue
        if m.canon(m.value(side, new)) != m.canon(m.value(side, old)):
            return True
    return False


def _restored_value(before: Any, after: Any) -> FieldValue:
    """The journal's ``before`` as a value to write; nothing before means clearing the
    field (an empty value of the kind the run wrote)."""
    value = value_from_json(before)
    if value is not None:
        return value
    return () if isinstance(after, list) else ""
