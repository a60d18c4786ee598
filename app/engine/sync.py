"""One sync run of one connection: read → match → plan → (guard) → apply → record.

The engine knows no particular app and no Qt. It reads each side's listing and fetches only
records whose version changed since the local index saw them; bound pairs are merged field by
field against their base; unbound records are matched by email; creates are written behind
a committed intent; every batch commits its bindings, bases, index entries and journal at
once, so a crash at any point loses nothing and duplicates nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from app.engine.applier import Applier
from app.engine.context import (
    MAPPINGS_CURSOR,
    TRASH_SEGMENT,
    Cancelled,
    GuardStop,
    Progress,
    RunReport,
    Settings,
    SideRead,
)
from app.engine.match import keys_of
from app.engine.plan import SyncPlan
from app.engine.planner import Planner
from app.errors import AuthExpired, PairsyncError, RateLimited
from app.model import (
    Record,
    Side,
    Unreadable,
)


def _person(record: Record) -> str:
    """A record's person name, compared loosely ("" when it has none: never a match)."""
    full = record.fields.get("full_name")
    if not (isinstance(full, str) and full.strip()):
        parts = [record.fields.get(k) for k in ("given_name", "family_name")]
        full = " ".join(p for p in parts if isinstance(p, str))
    return " ".join(full.split()).casefold()


__all__ = ["TRASH_SEGMENT", "Cancelled", "Progress", "RunReport", "Settings", "SyncRun"]


class SyncRun(Planner, Applier):
    """One run of one connection. ``run`` is the whole story; the steps live in
    ``planner`` (read nothing, decide everything) and ``applier`` (write and record)."""

    def run(self, *, dry_run: bool = False, confirm: bool = False) -> RunReport:
        self.report.dry_run = dry_run
        self.run_id, self.run_no = self.state.begin_run(dry_run)
        status, message = "ok", ""
        try:
            if not dry_run:
                self.reconcile_intents()
            # No app is prepared (no id column, no UID stamped) before the plan and the
            # guard: an app the run does not write stays byte for byte as it was (SPEC §2).
            # A record's id as read is valid for writing; the write itself makes it permanent.
            reads = {side: self.read_side(side) for side in (Side.A, Side.B)}
            if dry_run:
                # What the real run will report as failed (unreadable records), said now.
                self.report.failed += sum(len(r.unreadable) for r in reads.values())
            self.check_shrink(reads, confirm)
            self.checkpoint()
            plan = self.make_plan(reads)
            self.fill_counts(plan)
            self.check_writes(plan, confirm)
            self.checkpoint()
            if not dry_run:
                self.apply(plan, reads)
                self.state.set_cursor(MAPPINGS_CURSOR, self.mapping_fingerprint())
            status = "failed" if self.report.failed else "ok"
        except GuardStop as stop:
            status, message = "guard", str(stop)
            self.report.guard = stop.details
        except Cancelled as stop:
            status, message = "cancelled", str(stop)
            self.report.created = dict(self.done["created"])
            self.report.updated = dict(self.done["updated"])
        except AuthExpired as err:
            status, message = "auth", str(err)
        except RateLimited as err:
            status, message = "rate_limited", str(err)
            self.report.retry_after = err.retry_after
        except PairsyncError as err:
            status, message = "unavailable", self.unavailable_message(err)
        self.report.status = status
        self.report.message = message
        self.state.finish_run(
            self.run_id, status, self.report.as_json(), message, wrote=not dry_run
        )
        return self.report

    def unavailable_message(self, err: PairsyncError) -> str:
        """One line naming the app that could not be used, and why (CLI exit code 5)."""
        text = " ".join(str(err).split())
        if self.touching is None:
            return text
        return f"{self.app_name(self.touching)} is unavailable: {text}"

    # --- crash recovery ----------------------------------------------------------------------

    def reconcile_intents(self) -> None:
        for intent in self.state.open_intents():
            target = Side(intent.target_side)
            app = self.apps[target]
            self.touching = target
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
            self.state.resolve_intent(
                intent.op_id,
                source,
                intent.source_id,
                found,
                state,
                json.loads(intent.rule_state or "{}"),
            )

    # --- reading -------------------------------------------------------------------------------

    def read_side(self, side: Side) -> SideRead:
        app = self.apps[side]
        self.touching = side
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
            self.checkpoint()
        if missing:
            # Absent from the listing *and* a fetch by id says it is gone (SPEC §7).
            still: set[str] = set()
            for start in range(0, len(missing), size):
                still.update(item.id for item in app.fetch(missing[start : start + size]))
            out.gone = [rid for rid in missing if rid not in still]
            if out.gone:
                self.find_moved(side, out, known)
        self.report.read[side.value] = len(out.changed) + len(out.unreadable)
        self.touching = None
        return out

    def find_moved(self, side: Side, out: SideRead, known: dict[str, str]) -> None:
        """Bound records that are gone under one id and back under another: the same contact
        (a renamed .vcf, a CSV exported again without its Pairsync ID column, an edited row
        or card of a file that was never written, whose id is derived from its text). Its
        binding follows it to the new id instead of becoming a tombstone and leaving a
        duplicate. Matched by email first, then, for what is left, by the person's name
        (an edited email); only one-to-one matches count: a key shared by two gone or two
        new records moves nothing."""
        new = {rid: rec for rid, rec in out.changed.items() if rid not in known}
        if not new:
            return
        bound = self.state.bindings_for(side, out.gone)
        olds = [rid for rid in out.gone if rid in bound and bound[rid].state == "active"]
        if not olds:
            return
        old_keys = self.state.keys_of(side, olds)
        gone = set(out.gone)
        moved = self._pair_up(
            {rid: old_keys.get(rid, []) for rid in olds},
            {rid: keys_of(rec) for rid, rec in new.items()},
            lambda keys: self._other_holders(side, out, new, gone, keys),
        )
        left_old = [rid for rid in olds if rid not in moved.values()]
        left_new = {rid: rec for rid, rec in new.items() if rid not in moved}
        if left_old and left_new:
            snapshots = self.state.load_records(side, left_old)
            moved.update(
                self._pair_up(
                    {rid: [_person(snapshots[rid][0])] for rid in left_old if rid in snapshots},
                    {rid: [_person(rec)] for rid, rec in left_new.items()},
                    lambda keys: {},
                )
            )
        for n, o in moved.items():
            out.moved[n] = (o, bound[o].id)
        if out.moved:
            out.gone = [rid for rid in out.gone if rid not in set(moved.values())]

    def _other_holders(
        self,
        side: Side,
        out: SideRead,
        new: dict[str, Record],
        gone: set[str],
        keys: set[str],
    ) -> dict[str, set[str]]:
        """Records still there (not gone, not new) holding one of ``keys``."""
        others = {
            k: {rid for rid in holders if rid not in gone and rid not in out.changed}
            for k, holders in self.state.key_holders(side, keys).items()
        }
        for rid, rec in out.changed.items():
            if rid not in new:
                for k in keys_of(rec):
                    if k in keys:
                        others.setdefault(k, set()).add(rid)
        return others

    @staticmethod
    def _pair_up(
        olds: dict[str, list[str]],
        news: dict[str, list[str]],
        held_elsewhere: Callable[[set[str]], dict[str, set[str]]],
    ) -> dict[str, str]:
        """new id -> old id for records sharing a key one-to-one (empty keys never count)."""
        old_by_key: dict[str, set[str]] = {}
        for rid, ks in olds.items():
            for k in ks:
                if k:
                    old_by_key.setdefault(k, set()).add(rid)
        new_by_key: dict[str, set[str]] = {}
        for rid, ks in news.items():
            for k in ks:
                if k:
                    new_by_key.setdefault(k, set()).add(rid)
        shared = set(old_by_key) & set(new_by_key)
        if not shared:
            return {}
        others = held_elsewhere(shared)
        news_of: dict[str, set[str]] = {}
        olds_of: dict[str, set[str]] = {}
        for k in shared:
            if others.get(k):
                continue
            for o in old_by_key[k]:
                news_of.setdefault(o, set()).update(new_by_key[k])
            for n in new_by_key[k]:
                olds_of.setdefault(n, set()).update(old_by_key[k])
        out: dict[str, str] = {}
        for o, ns in news_of.items():
            if len(ns) == 1:
                (n,) = ns
                if olds_of.get(n) == {o}:
                    out[n] = o
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
                seen = f"{read.known} contact{'s' if read.known != 1 else ''}"
                if emptied:
                    what = f"lists no contacts at all, where it listed {seen} last time"
                else:
                    what = (
                        f"now lists {read.listed} contacts: {gone} of the {seen} seen last "
                        f"time are gone ({share:.0f} %)"
                    )
                raise GuardStop(
                    f"Stopped before writing: {self.app_name(side)} {what}. Nothing was "
                    "written. Run again with --yes if this is intended.",
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
