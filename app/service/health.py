"""The Health and Activity read model: status chips, schedule, counts, and paged lists.

What the CLI's ``health`` prints, the Health and Activity tabs page through (keyset pages,
never whole lists), the tray's and the scheduler's facts — all read from the database, never
from the apps. Retry and Ignore change only Pairsync's own failure records.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from app.connectors.registry import app_kind
from app.model import (
    ConflictRow,
    ContactRow,
    FailureRow,
    HealthCounts,
    JournalRowView,
    NotFittingRow,
    RunRow,
)
from app.schedule import ConnectionState, RunFacts, ScheduleEntry, next_run
from app.service.runs import Runs
from app.service.types import HealthReport
from app.status import connection_status
from app.store.rows import ConnectionRow
from app.store.sqlite import utcnow


def _conflicts_since() -> datetime:
    """Where Health's conflict lists start (``app.store.health``: loaded by Health's first
    read, never by a sync)."""
    from app.store.health import CONFLICT_DAYS

    return utcnow() - timedelta(days=CONFLICT_DAYS)


class Health(Runs):
    """How each connection is doing, as the fronts show it."""

    def health(self, name: str) -> HealthReport:
        """Everything ``pairsync health`` shows about one connection."""
        return HealthReport.from_json(self._health.report(self._connections.connection(name)))

    def _run_facts(self, conn: ConnectionRow) -> list[RunFacts]:
        return [
            RunFacts(
                r.status,
                r.started_at,
                r.finished_at,
                float(r.counts.get("retry_after", 0) or 0),
                r.message,
                int(r.counts.get("failed", 0) or 0),
            )
            for r in self._health.recent_sync_runs(conn.id)
        ]

    def schedule(self) -> list[ScheduleEntry]:
        """When each connection syncs next, derived from its runs in the database (so it
        survives restarts and sleep), with back-off after whole-run failures and holds for
        paused connections, sign-in and the mass-change guard (``app.schedule``)."""
        return [
            next_run(c.name, c.interval_minutes, c.paused, self._run_facts(c), c.created_at)
            for c in self._connections.connections()
        ]

    def connection_names(self, *, paused: bool | None = None) -> list[str]:
        """The connections' names (only the paused or only the running ones, when asked)."""
        return [
            c.name for c in self._connections.connections() if paused is None or c.paused == paused
        ]

    def is_paused(self, name: str) -> bool:
        return bool(self._connections.connection(name).paused)

    def connection_state(self, name: str) -> ConnectionState:
        """The Health chip's facts for one connection: status with the live failure count,
        the schedule, and which accounts to sign in to again."""
        conn = self._connections.connection(name)
        runs = self._run_facts(conn)
        queries = self._health
        failed = queries.failures_count(conn.id, ignored=False)
        facts = None
        if runs and runs[0].status != "running":
            last_status = runs[0].status
            if last_status == "failed":
                # Some contacts failed (the live count decides, below), or, with no contact
                # failed, the run could not even start: an app that cannot be opened.
                last_status = "ok" if runs[0].failed else "unavailable"
            facts = {
                "status": last_status,
                "counts": {"failed": failed, "retry_after": runs[0].retry_after},
                "message": runs[0].message,
                "finished_at": runs[0].ended,
            }
        status = connection_status(conn.paused, facts)
        sign_in: tuple[str, ...] = ()
        if status.code == "auth":
            accounts = [
                self._connections.account_by_id(i) for i in (conn.account_a_id, conn.account_b_id)
            ]
            with_secret = [a.name for a in accounts if app_kind(a.kind).needs_secret]
            sign_in = tuple(with_secret or [a.name for a in accounts])
        return ConnectionState(
            name=conn.name,
            status=status,
            schedule=next_run(conn.name, conn.interval_minutes, conn.paused, runs, conn.created_at),
            ignored=queries.failures_count(conn.id, ignored=True),
            sign_in=sign_in,
            last_run_at=runs[0].ended if runs else None,
        )

    def health_counts(self, name: str) -> HealthCounts:
        """The numbers on the Health tabs."""
        cid = self._connections.connection(name).id
        q = self._health
        since = _conflicts_since()
        return HealthCounts(
            in_sync=q.contacts_count(cid, "bound", side="a"),
            excluded=q.contacts_count(cid, "excluded"),
            duplicates=q.contacts_count(cid, "duplicate"),
            failed=q.failures_count(cid, ignored=False),
            ignored=q.failures_count(cid, ignored=True),
            conflicts=q.conflicts_count(cid, since=since),
            not_fitting=len(q.not_fitting(cid)),
        )

    def contacts_page(
        self,
        name: str,
        status: str,
        *,
        search: str = "",
        reason: str | None = None,
        after: tuple[str, str, str] | None = None,
        limit: int = 200,
    ) -> list[ContactRow]:
        """One page of In sync (status bound: one row per pair, side A), Excluded or
        Duplicates, ordered by name, filtered by a search on name and emails."""
        cid = self._connections.connection(name).id
        return self._health.contacts_page(
            cid,
            status,
            side="a" if status == "bound" else None,
            search=search,
            reason=reason,
            after=after,
            limit=limit,
        )

    def excluded_reasons(self, name: str) -> list[tuple[str, int]]:
        return self._health.reasons(self._connections.connection(name).id, "excluded")

    def failure_groups(
        self, name: str, *, search: str = "", ignored: bool = False
    ) -> list[tuple[str, int]]:
        """Failed contacts grouped by reason code, biggest group first."""
        cid = self._connections.connection(name).id
        return self._health.failure_groups(cid, search=search, ignored=ignored)

    def failures_page(
        self,
        name: str,
        code: str,
        *,
        search: str = "",
        ignored: bool = False,
        after: tuple[str, int] | None = None,
        limit: int = 200,
    ) -> list[FailureRow]:
        cid = self._connections.connection(name).id
        return self._health.failures_page(
            cid, code, search=search, ignored=ignored, after=after, limit=limit
        )

    def not_fitting(self, name: str, *, search: str = "") -> list[NotFittingRow]:
        """Values an app had no room for (Health's "Not fitting"): named once, not failures;
        each contact's other fields are in sync."""
        return self._health.not_fitting(self._connections.connection(name).id, search=search)

    def failure_raw(self, name: str, failure_id: int) -> str:
        return self._health.failure_raw(self._connections.connection(name).id, failure_id)

    def retry_failures(self, name: str, ids: Sequence[int] = (), code: str | None = None) -> int:
        """ "Retry now" (SPEC §9): the failures are due on the next run, which the desktop
        app starts at once. Retrying an ignored failure stops ignoring it."""
        cid = self._connections.connection(name).id
        return self._health.retry_failures(cid, ids, code)

    def ignore_failures(self, name: str, ids: Sequence[int], ignored: bool = True) -> int:
        """Ignore: out of the Failed counts and not retried until the contact changes."""
        cid = self._connections.connection(name).id
        return self._health.ignore_failures(cid, ids, ignored)

    def conflicts_page(
        self, name: str, *, search: str = "", after: int | None = None, limit: int = 200
    ) -> list[ConflictRow]:
        """Field and rule conflicts of the last 30 days, newest first."""
        cid = self._connections.connection(name).id
        since = _conflicts_since()
        return self._health.conflicts_page(
            cid, search=search, since=since, after=after, limit=limit
        )

    def conflicts(self, name: str, limit: int = 1000) -> list[ConflictRow]:
        """The conflicts of the last 30 days, newest first (``pairsync conflicts``)."""
        return self.conflicts_page(name, limit=limit)

    def runs_page(self, name: str, *, before: int | None = None, limit: int = 100) -> list[RunRow]:
        """Runs newest first (Activity), dry runs left out."""
        cid = self._connections.connection(name).id
        return self._health.runs_page(cid, before=before, limit=limit)

    def run(self, name: str, run_id: int) -> RunRow | None:
        """One run of the connection (Activity names the run an undo undid)."""
        return self._health.run(self._connections.connection(name).id, run_id)

    def journal_page(
        self,
        name: str,
        run_id: int,
        *,
        search: str = "",
        created_only: bool = False,
        after: int | None = None,
        limit: int = 200,
    ) -> list[JournalRowView]:
        """The field changes of one run, in the order they were written (SPEC §11)."""
        cid = self._connections.connection(name).id
        return self._health.journal_page(
            cid, run_id, search=search, created_only=created_only, after=after, limit=limit
        )
