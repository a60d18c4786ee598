"""One sync run of one connection: read → match → plan → (guard) → apply → record.

The engine knows no particular app and no Qt. It reads what changed in each app since the
last run (``reader``: the app's change feed, or its listing and a fetch of the records whose
version changed since the local index saw them); bound pairs are merged field by
field against their base; unbound records are matched by email; creates are written behind
a committed intent; every batch commits its bindings, bases, index entries and journal at
once, so a crash at any point loses nothing and duplicates nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

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
from app.engine.plan import SyncPlan
from app.engine.planner import Planner
from app.engine.reader import Reader
from app.engine.state import BatchOutcome
from app.engine.work import PlanWork
from app.errors import AuthExpired, PairsyncError, RateLimited
from app.model import Side

__all__ = ["TRASH_SEGMENT", "Cancelled", "Progress", "RunReport", "Settings", "SyncRun"]


class SyncRun(Reader, Planner, Applier):
    """One run of one connection. ``run`` is the whole story; the steps live in ``reader``
    (what changed in each app), ``planner`` (read nothing, decide everything) and
    ``applier`` (write and record)."""

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
            if dry_run:
                # Planned, counted and shown a slice at a time, as a first sync applies it,
                # and no slice is kept: a dry run of 100,000 contacts holds its reads, never
                # 100,000 planned writes (issue 18). The guard then judges the counts.
                head, work = self.plan_head(reads)
                work.matched.keep_taken = False
                self.fill_counts(head)
                del head
                self.count_all(self.plan_parts(work, reads))
                self.check_writes(confirm)
                self.checkpoint()
            elif self.guard_applies(confirm):
                plan, work = self.plan_head(reads)
                if work.fits(self.slice_size()):
                    # One slice: planned whole, counted by the guard, then applied.
                    for part in self.plan_parts(work, reads):
                        plan.absorb(part)
                    self.fill_counts(plan)
                    self.check_writes(confirm)
                    self.checkpoint()
                    self.apply(plan, reads)
                elif self.guard_may_stop(plan, work):
                    # The guard counts every write before any is made, a slice at a time
                    # as a dry run does; the slices are then planned again as they are
                    # applied: a later run where every contact changed holds a slice of
                    # planned writes, never all of them (issue 18).
                    self.fill_counts(plan)
                    self.count_all(self.plan_parts(work, reads, keep=True))
                    self.check_writes(confirm)
                    self.checkpoint()
                    self.progress("Planning", 0, work.left())  # then interleaved with Writing
                    self.apply(plan, reads, self.plan_parts(work, reads, True), work.left)
                else:
                    self.apply_in_slices(plan, work, reads)
            else:
                # A first sync (or --yes): planned and applied a slice at a time, in bounded
                # memory, and writing starts early.
                self.apply_in_slices(*self.plan_head(reads), reads)
            if not dry_run:
                # Everything the reads produced is committed: the feeds' cursors may move.
                cursors: dict[str, str | None] = {MAPPINGS_CURSOR: self.mapping_fingerprint()}
                cursors.update(self.feed_positions(reads))
                self.state.commit(BatchOutcome(self.run_id, self.run_no, cursors=cursors))
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

    def apply_in_slices(self, plan: SyncPlan, work: PlanWork, reads: dict[Side, SideRead]) -> None:
        """Apply ``plan``, then the rest a slice at a time as it is planned, each counted as
        it comes."""
        self.fill_counts(plan)
        self.checkpoint()
        self.progress("Planning", 0, work.left())  # then interleaved with Writing
        self.apply(plan, reads, self.counted(self.plan_parts(work, reads, True)), work.left)

    def guard_may_stop(self, plan: SyncPlan, work: PlanWork) -> bool:
        """Could this run's writes be more than the guard allows? At most: what ``plan``
        writes, one write a side per pair and one per create left. If not, nothing needs
        counting before writing (each slice is then planned once)."""
        most = sum(plan.count_creates(s) + plan.count_updates(s) for s in Side)
        return most + work.most_writes() > self.settings.guard_max_writes

    def count_all(self, parts: Iterator[SyncPlan]) -> None:
        """Count every slice of ``parts``; none is held once counted (not even the last)."""
        for part in parts:
            self.fill_counts(part)
            del part  # not held while the next slice is planned

    def counted(self, parts: Iterator[SyncPlan]) -> Iterator[SyncPlan]:
        """The slices, each counted in the report before it is applied."""
        for part in parts:
            self.add_counts(part)
            yield part
            del part  # not held while the next slice is planned

    def unavailable_message(self, err: PairsyncError) -> str:
        """One line naming the app that could not be used, and why (CLI exit code 5)."""
        text = " ".join(str(err).split())
        if self.touching is None:
            return text
        return f"{self.app_name(self.touching)} is unavailable: {text}"

    # --- crash recovery ----------------------------------------------------------------------

    def reconcile_intents(self) -> None:
        for intent in self.state.open_intents():
            target = intent.target_side
            app = self.apps[target]
            self.touching = target
            found: str | None = None
            if intent.new_id is not None:
                if app.fetch([intent.new_id]):
                    found = intent.new_id
            else:
                emails = intent.emails
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
                intent.rule_state,
            )

    # --- reading -------------------------------------------------------------------------------

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

    def guard_applies(self, confirm: bool) -> bool:
        """Does the mass-change guard count this run's writes? Not on a connection's first
        sync (everything is new) nor with --yes."""
        return not confirm and self.state.connection().synced_once

    def check_writes(self, confirm: bool) -> None:
        """The mass-change guard, on the counts of the whole plan (``fill_counts``)."""
        if not self.guard_applies(confirm):
            return
        creates = sum(self.report.created.values())
        updates = sum(self.report.updated.values())
        if creates + updates > self.settings.guard_max_writes:
            raise GuardStop(
                f"Stopped before writing: this run would create {creates} and update "
                f"{updates} contacts, more than the limit of "
                f"{self.settings.guard_max_writes}. Nothing was written. Run again with --yes "
                "if this is intended.",
                {
                    "creates": creates,
                    "updates": updates,
                    "limit": self.settings.guard_max_writes,
                },
            )

    # --- planning ------------------------------------------------------------------------------
