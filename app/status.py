"""A connection's status as the list, the dashboard and the tray show it (SPEC §10).

One small function so that every front reads the same chip from the same facts: whether the
connection is paused, and how its last real run ended. Qt-free: the fronts put words on the
``code`` (translated), this module only decides which one applies and how bad it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SEVERITY = {
    "ok": 0,
    "new": 0,
    "paused": 1,
    "failed": 2,
    "rate_limited": 2,
    "guard": 3,
    "unavailable": 3,
    "auth": 3,
}
"""Higher is worse; the tray icon shows the worst of all connections."""


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    code: str
    """ok · new (never synced) · paused · failed · rate_limited · guard · unavailable · auth"""
    failed: int = 0
    until: datetime | None = None
    """For rate_limited: when the app said to try again."""
    message: str = ""

    @property
    def severity(self) -> int:
        return SEVERITY.get(self.code, 0)


def connection_status(paused: bool, last_run: dict[str, Any] | None) -> ConnectionStatus:
    """``last_run``: status, counts (the run report), message and finished_at (or None)."""
    if paused:
        return ConnectionStatus("paused")
    if last_run is None:
        return ConnectionStatus("new")
    status = str(last_run.get("status", "ok"))
    counts = last_run.get("counts") or {}
    message = str(last_run.get("message") or "")
    failed = int(counts.get("failed", 0) or 0)
    if status == "rate_limited":
        finished = last_run.get("finished_at")
        wait = float(counts.get("retry_after", 0) or 0)
        until = finished + timedelta(seconds=wait) if isinstance(finished, datetime) else None
        return ConnectionStatus("rate_limited", failed, until, message)
    if status in ("auth", "unavailable", "guard"):
        return ConnectionStatus(status, failed, None, message)
    if failed or status == "failed":
        return ConnectionStatus("failed", failed, None, message)
    return ConnectionStatus("ok", 0, None, message)


@dataclass(frozen=True, slots=True)
class ConnectionSummary:
    """One row of the main window's connection list."""

    name: str
    account_a: str
    account_b: str
    kind_a: str
    kind_b: str
    direction: str
    paused: bool
    status: ConnectionStatus
    last_run_at: datetime | None = None
    app_a: str = ""
    """The apps' names ("CardDAV", "CSV file") for screen readers; the kind when unknown."""
    app_b: str = ""
