"""When the desktop app syncs a connection next, and what its status chip says (SPEC §9, §10).

Both are derived from the runs stored in the database, never from a timer's memory: a timer
stops while the laptop sleeps and forgets everything on restart (the vorta lesson, see
``reference/anchors-architecture.md`` A12), the database does not. So a run missed while the
laptop slept is simply overdue when it wakes, and a restart keeps each connection's rhythm.

Plain functions over plain values: no Qt, no SQL; the service feeds them, the scheduler
(``app.ui.scheduler``) and the Health chip use what they return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.model import MAX_INTERVAL, MIN_INTERVAL
from app.status import ConnectionStatus

MAX_BACKOFF = timedelta(minutes=60)
BACKOFF_STATUSES = frozenset({"unavailable", "rate_limited"})
"""Runs that failed as a whole because an app could not be reached or asked us to slow
down: each one in a row doubles the wait (interval × 2ⁿ, at most an hour), and a
rate limit's own Retry-After is honoured when longer."""
HOLD_STATUSES = {"auth": "auth", "guard": "guard"}
"""A last run with these statuses holds the schedule until the user acts: signing in again
(re-authorization triggers a run) or deciding about the mass-change guard."""


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the schedule needs of one stored sync run."""

    status: str
    started_at: datetime
    finished_at: datetime | None
    retry_after: float = 0.0
    message: str = ""
    failed: int = 0
    """Contacts that failed in that run."""

    @property
    def ended(self) -> datetime:
        return _aware(self.finished_at or self.started_at)


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    name: str
    interval_minutes: int
    due_at: datetime | None
    """When the next scheduled run is due (UTC); None while held."""
    hold: str = ""
    """Why no run is scheduled: "" | paused | auth | guard."""
    backoff: int = 0
    """Whole-run failures in a row (unreachable, rate limited) behind the current wait."""

    def is_due(self, now: datetime) -> bool:
        return self.due_at is not None and self.due_at <= now


def _aware(when: datetime) -> datetime:
    """SQLite hands back naive datetimes for values stored as UTC: make them UTC-aware."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def clamp_interval(minutes: int) -> int:
    return max(MIN_INTERVAL, min(MAX_INTERVAL, int(minutes)))


def next_run(
    name: str,
    interval_minutes: int,
    paused: bool,
    runs: Sequence[RunFacts],
    created_at: datetime | None = None,
) -> ScheduleEntry:
    """The next scheduled run of one connection, from its recent sync runs (newest first).
    A connection that never ran is due since it was created."""
    interval = clamp_interval(interval_minutes)
    if paused:
        return ScheduleEntry(name, interval, None, "paused")
    if not runs:
        return ScheduleEntry(name, interval, _aware(created_at or datetime.fromtimestamp(0, UTC)))
    last = runs[0]
    hold = HOLD_STATUSES.get(last.status, "")
    if hold:
        return ScheduleEntry(name, interval, None, hold)
    streak = 0
    for run in runs:
        if run.status not in BACKOFF_STATUSES:
            break
        streak += 1
    wait = timedelta(minutes=interval)
    if streak:
        wait = min(wait * (2**streak), MAX_BACKOFF)
        if last.status == "rate_limited":
            wait = max(wait, timedelta(seconds=last.retry_after))
    return ScheduleEntry(name, interval, last.ended + wait, backoff=streak)


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """One connection as the Health chip, the tray and notifications need it.

    ``status`` is ``app.status``'s chip (shared with the connection list), fed with the live
    count of failed contacts (ignored ones left out) rather than the last run's count, so
    Retry and Ignore show at once.
    """

    name: str
    status: ConnectionStatus
    schedule: ScheduleEntry
    ignored: int = 0
    sign_in: tuple[str, ...] = ()
    """Accounts to sign in to again when the status is ``auth`` (SPEC §9)."""
    last_run_at: datetime | None = None
