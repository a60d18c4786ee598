"""The shared state of one sync run, its settings and its report."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.connectors.base import Connector
from app.engine.held import Held
from app.engine.match import Holders, keys_of
from app.engine.state import FailureNote, IndexEntry, SyncStateStore
from app.errors import PairsyncError, Unavailable
from app.mapping.canonical import canon_text
from app.mapping.fields import Direction, FieldMapping, Segments
from app.model import (
    ConnectionSettings,
    FieldValue,
    Record,
    Side,
    Unreadable,
    record_to_json,
    value_to_json,
)
from app.rules.evaluate import UNSUBSCRIBES_SEGMENT, RuleSet
from app.rules.model import Rule, default_rules

Progress = Callable[[str, int, int], None]
ShouldStop = Callable[[], bool]

TRASH_SEGMENT = "Pairsync Trash"
MAPPINGS_CURSOR = "m"
"""Cursor row holding the fingerprint of the mappings and rules the bases were agreed under."""
SYSTEM_SEGMENTS = frozenset(canon_text(s).casefold() for s in (TRASH_SEGMENT, UNSUBSCRIBES_SEGMENT))


RUN_CEILING = 4 * 3600.0
"""How long a run may take by default: a first sync of 100,000 contacts fits well within it;
a server that answers just within every deadline cannot hold the connection for ever."""

Settings = ConnectionSettings
"""A run's settings are the connection's settings (one type, ``app.model``)."""


@dataclass(slots=True)
class RunReport:
    connection: str
    status: str = "ok"  # ok | failed | guard | auth | unavailable | rate_limited | cancelled
    dry_run: bool = False
    created: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    failed: int = 0
    conflicts: int = 0
    rule_conflicts: int = 0
    excluded: int = 0
    duplicates: int = 0
    matched: int = 0
    deleted_other_side: int = 0
    not_fitting: int = 0
    """Contacts written with some values left out: the app had no room for them."""
    message: str = ""
    guard: dict[str, Any] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    retry_after: float = 0.0
    """Seconds the app asked us to wait (status rate_limited): the scheduler backs off."""

    def as_json(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "status": self.status,
            "dry_run": self.dry_run,
            "created": dict(self.created),
            "updated": dict(self.updated),
            "failed": self.failed,
            "conflicts": self.conflicts,
            "rule_conflicts": self.rule_conflicts,
            "excluded": self.excluded,
            "duplicates": self.duplicates,
            "matched": self.matched,
            "deleted_other_side": self.deleted_other_side,
            "not_fitting": self.not_fitting,
            "read": dict(self.read),
            "guard": self.guard,
            "message": self.message,
            "retry_after": self.retry_after,
        }


@dataclass(slots=True)
class SideRead:
    """What one side's read produced this run."""

    changed: Held = field(default_factory=Held)
    """id -> record read this run, held packed until its slice is planned (see ``held``)."""
    unreadable: list[Unreadable] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    moved: dict[str, tuple[str, int]] = field(default_factory=dict)
    """new id -> (old id, binding id): a bound contact that is back under another id."""
    listed: int = 0
    known: int = 0
    how: str = ""
    """How the side was read: ``listing``, ``feed``, or a full read of a feed app and why
    (``first``, ``resumed``, ``configuration``, ``daily``, ``expired``)."""
    feed: bool = False
    """Read through the app's change feed: ``cursor`` is stored once the run committed."""
    cursor: str | None = None
    full_at: datetime | None = None
    """When this side was last read in full (now, if this read was complete)."""
    cursor_run: int = 0
    """The run that first read up to ``cursor``, when this read did not move it (0: this
    run). Kept, so a run where nothing changed stores the very position it read."""


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} hours" if seconds != 3600 else "1 hour"
    if seconds >= 60:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


class GuardStop(Exception):
    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


class Cancelled(Exception):
    """The user asked the run to stop (cancel, pause, quit); raised only at a safe point.

    Safe points are between read batches, between phases and after a write batch has been
    committed with everything it changed, so a cancelled run leaves exactly what a crash at
    that point would: nothing half-committed, and the next run carries on from there.
    Not a ``PairsyncError``: no connector or error handler may swallow it by accident.
    """


def _noop_progress(phase: str, done: int, total: int) -> None:
    return None


class RunContext:
    """What every step of a run shares: the apps, mappings, settings, store and report."""

    def __init__(
        self,
        name: str,
        state: SyncStateStore,
        apps: dict[Side, Connector],
        mappings: Sequence[FieldMapping],
        settings: Settings,
        progress: Progress | None = None,
        rules: Sequence[Rule] | None = None,
        should_stop: ShouldStop | None = None,
        run_ceiling: float = RUN_CEILING,
    ) -> None:
        self.name = name
        self.should_stop = should_stop
        self.started = time.monotonic()
        self.run_ceiling = run_ceiling
        """Seconds the run may take; past them it stops at its next safe point (unavailable)."""
        self.state = state
        self.apps = apps
        self.settings = settings
        self.rules = RuleSet(
            default_rules() if rules is None else rules,
            settings.direction,
            {side: {f.key: f for f in app.fields()} for side, app in apps.items()},
        )
        self.mappings = list(mappings)
        managed = self.rules.managed_segments() | SYSTEM_SEGMENTS
        for m in self.mappings:
            if isinstance(m, Segments):
                m.managed = frozenset(canon_text(x).casefold() for x in managed)
        self.progress = progress or _noop_progress
        self.report = RunReport(connection=name)
        self.run_id = 0
        self.run_no = 0
        self.write_total = 0
        self.writes_done = 0
        self.done: dict[str, dict[str, int]] = {
            "created": {"a": 0, "b": 0},
            "updated": {"a": 0, "b": 0},
        }
        """What was actually written so far (a cancelled run reports these counts)."""
        self.touching: Side | None = None
        """The app being read or written right now: named when it turns out unavailable."""
        self.changed_keys: dict[Side, Holders] = {}
        """Per side, match key -> this run's changed records holding it (built when needed)."""
        self.replan_only: set[int] = set()
        """Bindings planned only because the configuration changed (nothing was read)."""

    # --- helpers ---------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """A safe point: stop here if asked (see ``Cancelled``), or when the run has taken
        longer than its ceiling (the apps answered too slowly: "unavailable")."""
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("Cancelled: the run stopped at a safe point; nothing is half-done.")
        ceiling = self.run_ceiling
        if time.monotonic() - self.started > ceiling:
            raise Unavailable(
                f"The run took longer than {_duration(ceiling)}, the most a run may take, and "
                "stopped at a safe point (nothing is half-done); the next run carries on."
            )

    def new_id(self) -> str:
        """A fresh id for an operation or a record we create (one place, for tests too)."""
        return uuid.uuid4().hex

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

    def mapping_fingerprint(self) -> str:
        """Changes when anything that decides what a run writes changes: mappings (with
        their value tables and phone region), rules and the direction, the unsubscribe
        options, the winning app, Avoid Duplicates and whether clears propagate. Every pair
        is then planned again from the local index (and excluded contacts matched again).
        Not here, as they change no plan: the Trash option (it acts when a deletion is
        found), the guard's limits, the schedule, pausing."""
        parts = sorted(f"{m.key}|{m.direction.value}|{m.fingerprint()}" for m in self.mappings)
        parts.append(self.rules.fingerprint())
        parts.append(f"unsub={self.settings.unsubscribes}/{self.settings.unsubscribe_opt_out}")
        # Only when not the default, so fingerprints stored before these counted still match.
        defaults = Settings()
        for name in ("winner", "avoid_duplicates", "propagate_clears"):
            value = getattr(self.settings, name)
            if value != getattr(defaults, name):
                parts.append(f"{name}={getattr(value, 'value', value)}")
        return hashlib.sha1("\n".join(parts).encode()).hexdigest()

    def mappings_changed(self) -> bool:
        return self.state.cursor(MAPPINGS_CURSOR) not in (None, self.mapping_fingerprint())


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
