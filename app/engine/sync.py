"""One sync run of one connection: read → match → plan → (guard) → apply → record.

The engine knows no particular app and no Qt. It reads each side's listing and fetches only
records whose version changed since the local index saw them; bound pairs are merged field by
field against their base; unbound records are matched by email; creates are written behind
a committed intent; every batch commits its bindings, bases, index entries and journal at
once, so a crash at any point loses nothing and duplicates nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.connectors.base import Connector
from app.engine.match import Matcher, keys_of
from app.engine.merge import merge_lists, merge_sets, merge_value
from app.engine.plan import Note, PairPlan, PlannedCreate, PlannedUpdate, Problem, SyncPlan
from app.errors import AuthExpired, PairsyncError, Rejected, ValueNotAllowed
from app.mapping.fields import Direction, FieldMapping, ListField, Patch
from app.model import (
    Create,
    FieldValue,
    Record,
    Side,
    Unreadable,
    Update,
    WriteOp,
    WriteResult,
    record_to_json,
    value_to_json,
)
from app.store.models import PendingOp
from app.store.state import BindingRow, FailureNote, IndexEntry, JournalNote, SyncState

Progress = Callable[[str, int, int], None]

TRASH_SEGMENT = "Pairsync Trash"
MAPPINGS_CURSOR = "m"
"""Cursor row holding the fingerprint of the mappings the stored bases were agreed under."""


@dataclass(slots=True)
class Settings:
    direction: Direction = Direction.TWO_WAY
    winner: Side = Side.A
    avoid_duplicates: bool = True
    propagate_clears: bool = True
    trash: bool = False
    guard_max_writes: int = 500
    guard_shrink_percent: int = 20
    guard_min_gone: int = 5


@dataclass(slots=True)
class RunReport:
    connection: str
    status: str = "ok"  # ok | failed | guard | auth | unavailable
    dry_run: bool = False
    created: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    failed: int = 0
    conflicts: int = 0
    excluded: int = 0
    duplicates: int = 0
    matched: int = 0
    deleted_other_side: int = 0
    message: str = ""
    guard: dict[str, Any] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})

    def as_json(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "status": self.status,
            "dry_run": self.dry_run,
            "created": dict(self.created),
            "updated": dict(self.updated),
            "failed": self.failed,
            "conflicts": self.conflicts,
            "excluded": self.excluded,
            "duplicates": self.duplicates,
            "matched": self.matched,
            "deleted_other_side": self.deleted_other_side,
            "read": dict(self.read),
            "guard": self.guard,
            "message": self.message,
        }


@dataclass(slots=True)
class SideRead:
    """What one side's read produced this run."""

    changed: dict[str, Record] = field(default_factory=dict)
    unreadable: list[Unreadable] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    listed: int = 0
    known: int = 0


class GuardStop(Exception):
    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


def _noop_progress(phase: str, done: int, total: int) -> None:
    return None


class SyncRun:
    def __init__(
        self,
        name: str,
        state: SyncState,
        apps: dict[Side, Connector],
        mappings: Sequence[FieldMapping],
        settings: Settings,
        progress: Progress | None = None,
    ) -> None:
        self.name = name
        self.state = state
        self.apps = apps
        self.mappings = list(mappings)
        self.settings = settings
        self.progress = progress or _noop_progress
        self.report = RunReport(connection=name)
        self.run_id = 0
        self.run_no = 0

    # --- helpers ---------------------------------------------------------------------------

    def writable(self, side: Side) -> bool:
        return self.settings.direction.writes(side)

    def flows(self, m: FieldMapping, side: Side) -> bool:
        """May mapping ``m`` write into ``side``? Connection ∩ mapping (∩ writability)."""
        return self.writable(side) and m.direction.writes(side)

    def mapping_winner(self, m: FieldMapping) -> Side:
        if m.direction is Direction.A_TO_B:
            return Side.A
        if m.direction is Direction.B_TO_A:
            return Side.B
        return self.effective_winner()

    def effective_winner(self) -> Side:
        if self.settings.direction is Direction.A_TO_B:
            return Side.A
        if self.settings.direction is Direction.B_TO_A:
            return Side.B
        return self.settings.winner

    def app_name(self, side: Side) -> str:
        return self.apps[side].info.name

    # --- the run ---------------------------------------------------------------------------

    def run(self, *, dry_run: bool = False, confirm: bool = False) -> RunReport:
        self.report.dry_run = dry_run
        self.run_id, self.run_no = self.state.begin_run(dry_run)
        status, message = "ok", ""
        try:
            if not dry_run:
                self.reconcile_intents()
                for app in self.apps.values():
                    app.prepare()
            reads = {side: self.read_side(side) for side in (Side.A, Side.B)}
            self.check_shrink(reads, confirm)
            plan = self.make_plan(reads)
            self.fill_counts(plan)
            self.check_writes(plan, confirm)
            if not dry_run:
                self.apply(plan, reads)
                self.state.set_cursor(MAPPINGS_CURSOR, self.mapping_fingerprint())
            status = "failed" if self.report.failed else "ok"
        except GuardStop as stop:
            status, message = "guard", str(stop)
            self.report.guard = stop.details
        except AuthExpired as err:
            status, message = "auth", str(err)
        except PairsyncError as err:
            status, message = "unavailable", str(err)
        self.report.status = status
        self.report.message = message
        self.state.finish_run(
            self.run_id, status, self.report.as_json(), message, wrote=not dry_run
        )
        return self.report

    # --- crash recovery ----------------------------------------------------------------------

    def reconcile_intents(self) -> None:
        for intent in self.state.open_intents():
            target = Side(intent.target_side)
            app = self.apps[target]
            found: str | None = None
            if intent.new_id is not None:
                if app.fetch([intent.new_id]):
                    found = intent.new_id
            else:
                emails = json.loads(intent.emails)
                hits = app.find_by_email(emails) if emails else []
                if len(hits) == 1:
                    found = hits[0].id
            source = target.other
            state = "active"
            if found is not None and not self.apps[source].fetch([intent.source_id]):
                # Created, then the user deleted the source before we recorded it: keep the
                # copy (never delete) and remember the pair as deleted on the source side.
                state = f"deleted_{source.value}"
                self.report.deleted_other_side += 1
            self.state.resolve_intent(intent.op_id, source, intent.source_id, found, state)

    # --- reading -------------------------------------------------------------------------------

    def read_side(self, side: Side) -> SideRead:
        app = self.apps[side]
        phase = f"Reading {app.info.name}"
        self.progress(phase, 0, 0)
        listing = app.list_versions()
        known = self.state.index_versions(side)
        out = SideRead(listed=len(listing), known=len(known))
        changed_ids = [rid for rid, v in listing.items() if known.get(rid) != v]
        missing = [rid for rid in known if rid not in listing]
        size = max(1, app.info.capabilities.batch_size)
        for start in range(0, len(changed_ids), size):
            for item in app.fetch(changed_ids[start : start + size]):
                if isinstance(item, Unreadable):
                    out.unreadable.append(item)
                else:
                    out.changed[item.id] = item
            self.progress(phase, min(start + size, len(changed_ids)), len(changed_ids))
        if missing:
            # Absent from the listing *and* a fetch by id says it is gone (SPEC §7).
            still: set[str] = set()
            for start in range(0, len(missing), size):
                still.update(item.id for item in app.fetch(missing[start : start + size]))
            out.gone = [rid for rid in missing if rid not in still]
        self.report.read[side.value] = len(out.changed) + len(out.unreadable)
        return out

    def check_shrink(self, reads: dict[Side, SideRead], confirm: bool) -> None:
        if confirm:
            return
        for side, read in reads.items():
            if read.known == 0:
                continue
            gone = len(read.gone)
            emptied = read.listed == 0
            share = gone * 100 / read.known
            if emptied or (
                share > self.settings.guard_shrink_percent and gone >= self.settings.guard_min_gone
            ):
                raise GuardStop(
                    f"Stopped before writing: {self.app_name(side)} now lists {read.listed} "
                    f"contacts, {gone} of the {read.known} seen last time are gone "
                    f"({share:.0f} %). Nothing was written. Run again with --yes if this is "
                    "intended.",
                    {"side": side.value, "listed": read.listed, "known": read.known, "gone": gone},
                )

    def check_writes(self, plan: SyncPlan, confirm: bool) -> None:
        if confirm or not self.state.connection().synced_once:
            return
        writes = plan.write_count()
        if writes > self.settings.guard_max_writes:
            raise GuardStop(
                f"Stopped before writing: this run would create {len(plan.creates)} and update "
                f"{len(plan.updates())} contacts, more than the limit of "
                f"{self.settings.guard_max_writes}. Nothing was written. Run again with --yes "
                "if this is intended.",
                {
                    "creates": len(plan.creates),
                    "updates": len(plan.updates()),
                    "limit": self.settings.guard_max_writes,
                },
            )

    # --- planning ------------------------------------------------------------------------------

    def make_plan(self, reads: dict[Side, SideRead]) -> SyncPlan:
        self.progress("Matching", 0, 0)
        plan = SyncPlan()
        # Bindings of everything that changed or disappeared.
        bindings: dict[Side, dict[str, BindingRow]] = {
            side: self.state.bindings_for(side, [*reads[side].changed, *reads[side].gone])
            for side in (Side.A, Side.B)
        }
        for side in (Side.A, Side.B):
            for rid in reads[side].gone:
                b = bindings[side].get(rid)
                if b is not None and b.state == "active":
                    plan.tombstones.append(
                        (b.id, f"deleted_{side.value}", side.other, b.id_on(side.other))
                    )
        tomb_ids = {t[0] for t in plan.tombstones}
        # Pairs to merge: changed bound records, pairs needing merge, due retries.
        pair_rows: dict[int, BindingRow] = {}
        for side in (Side.A, Side.B):
            for rid in reads[side].changed:
                b = bindings[side].get(rid)
                if b is not None and b.state == "active" and b.id not in tomb_ids:
                    pair_rows[b.id] = b
        for b in self.state.bindings_needing_merge():
            if b.state == "active" and b.id not in tomb_ids:
                pair_rows[b.id] = b
        due = self.state.due_failures(self.run_no) if self.run_no else []
        retry_ids = [f.binding_id for f in due if f.binding_id is not None]
        for b in self.state.bindings_by_id(retry_ids):
            if b.state == "active" and b.id not in tomb_ids:
                pair_rows.setdefault(b.id, b)
        # Unbound records to match.
        unbound: dict[Side, dict[str, Record]] = {Side.A: {}, Side.B: {}}
        for side in (Side.A, Side.B):
            for rid, rec in reads[side].changed.items():
                if rid not in bindings[side]:
                    unbound[side][rid] = rec
        retry_creates: dict[Side, list[str]] = {Side.A: [], Side.B: []}
        for f in due:
            if f.binding_id is None:
                retry_creates[Side(f.side)].append(f.record_id)
        if self.mappings_changed():
            # Mappings changed since the bases were agreed: every pair is planned again, from
            # the local index (no app is read again); only what the change implies is written.
            for chunk in self.state.active_bindings():
                for b in chunk:
                    if b.id not in tomb_ids:
                        pair_rows.setdefault(b.id, b)
        # Bound pairs first: the emails they are about to write are what matching must see
        # (a contact freed from Duplicates by an email change syncs in this same run).
        self.plan_bound_pairs(plan, list(pair_rows.values()), reads)
        self.hold_back_email_collisions(plan, reads)
        matcher = Matcher(
            self.state,
            reads,
            unbound,
            {s: self.app_name(s) for s in (Side.A, Side.B)},
            future=self.planned_keys(plan),
        )
        for side in (Side.A, Side.B):
            extra = [rid for rid in retry_creates[side] if rid not in unbound[side]]
            extra += matcher.duplicates_to_recheck(side)
            if extra:
                loaded = self.state.load_records(side, extra)
                still_bound = self.state.bindings_for(side, list(loaded))
                for rid, (rec, _status) in loaded.items():
                    if rid not in still_bound and rid not in reads[side].gone:
                        unbound[side][rid] = rec
        result = matcher.match(self.settings.avoid_duplicates)
        # New bindings from matching: merged now as first-sync pairs.
        self.progress("Planning", 0, 0)
        matched: list[PairPlan] = []
        for rec_a, rec_b in result.pairs:
            matched.append(self.plan_pair(0, rec_a, rec_b, None))
        for side, rec, status, reason in result.notes:
            plan.notes.append(Note(side, rec, status, reason))
        for side, rec in result.creates:
            if not self.writable(side.other):
                plan.notes.append(
                    Note(
                        side,
                        rec,
                        "excluded",
                        f"one-way: nothing is written to {self.app_name(side.other)}",
                    )
                )
                continue
            plan.creates.append(self.plan_create(side, rec))
        if matched:
            new_pairs = SyncPlan(pairs=matched)
            self.hold_back_email_collisions(new_pairs, reads)
            plan.pairs.extend(matched)
        return plan

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
            for rid, rec in changed.items():
                for k in keys_of(rec):
                    if k in wanted:
                        found.setdefault(k, set()).add(rid)
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

    def planned_keys(self, plan: SyncPlan) -> dict[Side, dict[str, list[str]]]:
        """Match keys of records whose emails this plan rewrites, as they will be."""
        out: dict[Side, dict[str, list[str]]] = {Side.A: {}, Side.B: {}}
        email_fields = {f for m in self.mappings if m.match_key for f in (*m.fields_a, *m.fields_b)}
        for u in plan.updates():
            if email_fields.intersection(u.fields):
                after = Record(u.record.id, u.record.version, {**u.record.fields, **u.fields})
                out[u.target][u.record.id] = keys_of(after)
        return out

    def mapping_fingerprint(self) -> str:
        parts = sorted(f"{m.key}|{m.direction.value}|{m.fingerprint()}" for m in self.mappings)
        return hashlib.sha1("\n".join(parts).encode()).hexdigest()

    def mappings_changed(self) -> bool:
        return self.state.cursor(MAPPINGS_CURSOR) not in (None, self.mapping_fingerprint())

    def plan_bound_pairs(
        self, plan: SyncPlan, rows: list[BindingRow], reads: dict[Side, SideRead]
    ) -> None:
        if not rows:
            return
        need: dict[Side, list[str]] = {Side.A: [], Side.B: []}
        for b in rows:
            for side in (Side.A, Side.B):
                rid = b.id_on(side)
                if rid not in reads[side].changed:
                    need[side].append(rid)
        loaded = {side: self.state.load_records(side, ids) for side, ids in need.items()}
        for b in rows:
            recs: dict[Side, Record | None] = {}
            for side in (Side.A, Side.B):
                rid = b.id_on(side)
                got = reads[side].changed.get(rid)
                if got is None and rid in loaded[side]:
                    got = loaded[side][rid][0]
                recs[side] = got
            rec_a, rec_b = recs[Side.A], recs[Side.B]
            if rec_a is None or rec_b is None:
                continue  # unreadable this run: reported as such, retried when readable
            plan.pairs.append(
                self.plan_pair(b.id, rec_a, rec_b, None if b.needs_merge and not b.base else b.base)
            )

    def plan_pair(
        self, binding_id: int, rec_a: Record, rec_b: Record, base: dict[str, Any] | None
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
        for side in (Side.A, Side.B):
            patch = patches[side]
            fields = {
                k: v for k, v in patch.fields.items() if not _same(recs[side].fields.get(k), v)
            }
            add = frozenset(s for s in patch.add_segments if s not in recs[side].segments)
            remove = frozenset(s for s in patch.remove_segments if s in recs[side].segments)
            if fields or add or remove:
                pair.updates.append(
                    PlannedUpdate(
                        op_id=uuid.uuid4().hex,
                        binding_id=binding_id,
                        target=side,
                        record=recs[side],
                        fields=fields,
                        add_segments=add,
                        remove_segments=remove,
                        mappings=frozenset(carried[side]),
                    )
                )
        return pair

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
        fields = {k: v for k, v in patch.fields.items() if not _same(None, v)}
        chooses = self.apps[target].info.capabilities.chooses_ids
        return PlannedCreate(
            op_id=uuid.uuid4().hex,
            source=source,
            record=rec,
            fields=fields,
            segments=frozenset(patch.add_segments),
            base=base,
            new_id=uuid.uuid4().hex if chooses else None,
            problems=problems,
        )

    def fill_counts(self, plan: SyncPlan) -> None:
        r = self.report
        for side in (Side.A, Side.B):
            r.created[side.value] = plan.count_creates(side)
            r.updated[side.value] = plan.count_updates(side)
        r.conflicts = sum(len(p.conflicts) for p in plan.pairs)
        r.matched = sum(1 for p in plan.pairs if p.binding_id == 0)
        r.excluded = sum(1 for n in plan.notes if n.status == "excluded")
        r.duplicates = sum(1 for n in plan.notes if n.status == "duplicate")
        r.deleted_other_side += len(plan.tombstones)

    # --- applying ------------------------------------------------------------------------------

    def apply(self, plan: SyncPlan, reads: dict[Side, SideRead]) -> None:
        self.progress("Writing", 0, plan.write_count())
        done_ids: dict[Side, set[str]] = {Side.A: set(), Side.B: set()}
        self.apply_notes(plan, reads, done_ids)
        # Matched pairs get their binding before any write, so a crash keeps the match.
        new_pairs = [p for p in plan.pairs if p.binding_id == 0]
        if new_pairs:
            self.bind_new_pairs(new_pairs)
        self.apply_creates(plan.creates, done_ids)
        self.apply_pairs(plan.pairs, done_ids)
        self.apply_rest(reads, done_ids)

    def apply_notes(
        self, plan: SyncPlan, reads: dict[Side, SideRead], done: dict[Side, set[str]]
    ) -> None:
        index: list[IndexEntry] = []
        failures: list[FailureNote] = []
        statuses: list[tuple[Side, str, str, str]] = []
        dropped: list[tuple[Side, str]] = []
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
            dropped.extend((side, rid) for rid in reads[side].gone)
        self.report.failed += sum(len(reads[s].unreadable) for s in (Side.A, Side.B))
        for _bid, _state, keep_side, keep_id in plan.tombstones:
            statuses.append(
                (keep_side, keep_id, "excluded", f"deleted in {self.app_name(keep_side.other)}")
            )
        self.state.commit(
            run_id=self.run_id,
            index=index,
            tombstones=[(t[0], t[1]) for t in plan.tombstones],
            clear_binding_failures=[t[0] for t in plan.tombstones],
            cleared=dropped,  # a contact that is gone has nothing left to retry
            statuses=statuses,
            dropped=dropped,
            failures=failures,
            run_no=self.run_no,
        )
        if self.settings.trash and plan.tombstones:
            self.apply_trash(plan)

    def apply_trash(self, plan: SyncPlan) -> None:
        for keep_side in (Side.A, Side.B):
            ids = [t[3] for t in plan.tombstones if t[2] is keep_side]
            if not ids or not self.writable(keep_side):
                continue
            recs = self.state.load_records(keep_side, ids)
            ops: list[WriteOp] = [
                Update(uuid.uuid4().hex, rid, {}, add_segments=frozenset({TRASH_SEGMENT}))
                for rid in recs
            ]
            for res in self.write_batches(keep_side, ops):
                if res.ok and res.record is not None:
                    self.state.commit(
                        run_id=self.run_id,
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

    def bind_new_pairs(self, pairs: list[PairPlan]) -> None:
        self.state.commit(
            run_id=self.run_id,
            new_bindings=[(p.record_a.id, p.record_b.id, {}) for p in pairs],
            matched=True,  # merged as a first sync until the pair's base is committed
            run_no=self.run_no,
        )
        rows = self.state.bindings_for(Side.A, [p.record_a.id for p in pairs])
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
                        PendingOp(
                            op_id=c.op_id,
                            connection_id=self.state.cid,
                            run_id=self.run_id,
                            target_side=target.value,
                            source_id=c.record.id,
                            new_id=c.new_id,
                            emails=json.dumps(keys_of(c.record)),
                        )
                        for c in batch
                    ]
                )
                ops: list[WriteOp] = [
                    Create(c.op_id, c.fields, c.segments, new_id=c.new_id) for c in batch
                ]
                results = self.write_ops(target, ops)
                self.commit_creates(batch, results, done)
                self.progress("Writing", start + len(batch), len(todo))

    def commit_creates(
        self, batch: list[PlannedCreate], results: list[WriteResult], done: dict[Side, set[str]]
    ) -> None:
        index: list[IndexEntry] = []
        new_bindings: list[tuple[str, str, dict[str, Any]]] = []
        failures: list[FailureNote] = []
        cleared: list[tuple[Side, str]] = []
        journal: list[JournalNote] = []
        for c, res in zip(batch, results, strict=True):
            done[c.source].add(c.record.id)
            if res.record is not None:
                # Created (possibly only in part: then the error is recorded as well, and
                # the contact is bound all the same so a retry never creates it twice).
                new = res.record
                if res.error is not None:
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
                new_bindings.append((ids[0], ids[1], self.base_after_partial(c, res.error)))
                cleared.append((c.source, c.record.id))
                journal.extend(
                    JournalNote(c.target, new.id, "create", k, None, value_to_json(v))
                    for k, v in c.fields.items()
                )
                if c.segments:
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
            run_id=self.run_id,
            index=index,
            new_bindings=new_bindings,
            failures=failures,
            cleared=cleared,
            journal=journal,
            done_intents=[c.op_id for c in batch],
            run_no=self.run_no,
        )

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
        pending: dict[int, int] = {p.binding_id: len(p.updates) for p in pairs}
        # Pairs with no writes: their base and index move now.
        quiet = [p for p in pairs if not p.updates]
        for start in range(0, len(quiet), 500):
            chunk = quiet[start : start + 500]
            self.state.commit(
                run_id=self.run_id,
                index=[e for p in chunk for e in self.pair_entries(p, None, None)],
                bases=[(p.binding_id, p.base) for p in chunk],
                conflicts=[(p.binding_id, *c) for p in chunk for c in p.conflicts],
                clear_binding_failures=[p.binding_id for p in chunk],
                failures=[f for p in chunk for f in self.problem_failures(p)],
                run_no=self.run_no,
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
                failures: list[FailureNote] = []
                journal: list[JournalNote] = []
                conflicts: list[tuple[int, str, Any, Any, str]] = []
                cleared_bindings: list[int] = []
                for u, res in zip(batch, results, strict=True):
                    pair, _ = by_op[u.op_id]
                    pending[pair.binding_id] -= 1
                    last = pending[pair.binding_id] == 0
                    if res.ok and res.record is not None:
                        journal.extend(
                            JournalNote(
                                target,
                                u.record.id,
                                "update",
                                k,
                                value_to_json(u.record.fields.get(k)),
                                value_to_json(v),
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
                        bases.append((pair.binding_id, base))
                        conflicts.extend((pair.binding_id, *c) for c in pair.conflicts)
                        if not lost:
                            cleared_bindings.append(pair.binding_id)
                        failures.extend(self.problem_failures(pair))
                        done[Side.A].add(pair.record_a.id)
                        done[Side.B].add(pair.record_b.id)
                self.state.commit(
                    run_id=self.run_id,
                    index=index,
                    bases=bases,
                    failures=failures,
                    journal=journal,
                    conflicts=conflicts,
                    clear_binding_failures=cleared_bindings,
                    run_no=self.run_no,
                )

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
        for side, rec in ((Side.A, pair.record_a), (Side.B, pair.record_b)):
            if side is written:
                out.append(self.entry(side, new or rec, "bound"))
            elif side not in targets:
                out.append(self.entry(side, rec, "bound"))
        return out

    def apply_rest(self, reads: dict[Side, SideRead], done: dict[Side, set[str]]) -> None:
        """Changed records that needed no write (e.g. an edit to an unmapped field)."""
        for side in (Side.A, Side.B):
            rest = [r for rid, r in reads[side].changed.items() if rid not in done[side]]
            if not rest:
                continue
            bound = self.state.bindings_for(side, [r.id for r in rest])
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
                self.state.commit(run_id=self.run_id, index=entries, run_no=self.run_no)

    # --- small pieces ------------------------------------------------------------------------

    def entry(self, side: Side, rec: Record, status: str, reason: str = "") -> IndexEntry:
        return IndexEntry(side, rec, record_to_json(rec), keys_of(rec), status, reason)

    def failure(
        self,
        target: Side,
        rec: Record,
        where: Side,
        error: Exception | None,
        binding_id: int | None,
        name_from: Record | None = None,
    ) -> FailureNote:
        self.report.failed += 1
        code = getattr(error, "code", "error")
        message = str(error) if error is not None else "The app did not accept the change."
        if not isinstance(error, PairsyncError):
            message = f"{self.app_name(where)} refused the change: {message}"
        return FailureNote(
            side=target,
            record_id=rec.id,
            target_side=where,
            name=(name_from or rec).display_name(),
            code=code,
            message=message,
            field=getattr(error, "field", None) or "",
            raw=getattr(error, "raw", "") or "",
            binding_id=binding_id,
            source_version=rec.version,
        )

    def write_ops(self, side: Side, ops: list[WriteOp]) -> list[WriteResult]:
        results = self.apps[side].write(ops)
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


def _same(old: FieldValue | None, new: FieldValue | None) -> bool:
    def norm(v: FieldValue | None) -> Any:
        if v is None or v == "" or v == ():
            return None
        return v

    return bool(norm(old) == norm(new))


def value_to_json_any(value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, str | tuple) or value is None:
        return value_to_json(value)
    return value
