"""The plan of one run: everything that would be written, and why, before anything is.

A dry run shows it; the apply step executes it in batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.model import FieldValue, Record, Side
from app.rules.evaluate import RuleConflict


@dataclass(slots=True)
class PlannedCreate:
    op_id: str
    source: Side
    record: Record
    """The source record, as read."""
    fields: dict[str, FieldValue]
    segments: frozenset[str]
    base: dict[str, Any]
    new_id: str | None = None
    problems: list[Problem] = field(default_factory=list)
    """Fields left out of the create (e.g. value not allowed), reported as failures."""
    rule_state: dict[str, Any] = field(default_factory=dict)
    """The new binding's action log (rules' actions applied by this create)."""

    @property
    def target(self) -> Side:
        return self.source.other


@dataclass(slots=True)
class PlannedUpdate:
    op_id: str
    binding_id: int
    target: Side
    record: Record
    """The target record as read (for expected version and journal 'before')."""
    fields: dict[str, FieldValue]
    add_segments: frozenset[str]
    remove_segments: frozenset[str]
    mappings: frozenset[str]
    """Keys of the mappings this write carries; their base moves only if it succeeds."""


@dataclass(slots=True)
class PairPlan:
    """A bound pair that was looked at this run."""

    binding_id: int
    record_a: Record
    record_b: Record
    base: dict[str, Any]
    """The base to store once every write of the pair succeeded (per mapping key)."""
    old_base: dict[str, Any]
    updates: list[PlannedUpdate] = field(default_factory=list)
    conflicts: list[tuple[str, Any, Any, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    """Fields held back for this pair (e.g. an email collision), reported as failures."""
    dormant: bool = False
    """No rule matches either contact: no fields flow (only Undo may write)."""
    rule_state: dict[str, Any] = field(default_factory=dict)
    old_rule_state: dict[str, Any] = field(default_factory=dict)
    rule_conflicts: list[RuleConflict] = field(default_factory=list)
    indexed_as: tuple[str, str] | None = None
    """Index statuses of both records when the pair was re-planned from the index alone."""

    def settled(self) -> bool:
        """Re-planned from the index and nothing at all changed: nothing to write or commit."""
        if self.indexed_as is None or self.updates or self.problems:
            return False
        if self.conflicts or self.rule_conflicts:
            return False
        status = "excluded" if self.dormant else "bound"
        return (
            self.indexed_as == (status, status)
            and self.base == self.old_base
            and self.rule_state == self.old_rule_state
        )


@dataclass(slots=True)
class Problem:
    target: Side
    record: Record
    code: str
    message: str
    field: str


@dataclass(slots=True)
class Note:
    """A contact that is not synced, and why (Excluded or Duplicates in Health)."""

    side: Side
    record: Record
    status: str  # excluded | duplicate
    reason: str


@dataclass(frozen=True, slots=True)
class PlannedTombstone:
    """A bound contact deleted in one app: its binding becomes a tombstone, and the copy in
    the other app is kept (never deleted) and marked "deleted in …"."""

    binding_id: int
    state: str
    """``deleted_a`` or ``deleted_b``."""
    keep_side: Side
    keep_id: str


@dataclass(slots=True)
class SyncPlan:
    creates: list[PlannedCreate] = field(default_factory=list)
    pairs: list[PairPlan] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    tombstones: list[PlannedTombstone] = field(default_factory=list)

    def absorb(self, part: SyncPlan) -> None:
        """Add a slice planned after this (see ``Planner.plan_parts``)."""
        self.creates.extend(part.creates)
        self.pairs.extend(part.pairs)
        self.notes.extend(part.notes)
        self.tombstones.extend(part.tombstones)

    def updates(self) -> list[PlannedUpdate]:
        return [u for p in self.pairs for u in p.updates]

    def count_creates(self, side: Side) -> int:
        return sum(1 for c in self.creates if c.target is side)

    def count_updates(self, side: Side) -> int:
        return sum(1 for u in self.updates() if u.target is side)

    def write_count(self) -> int:
        return len(self.creates) + len(self.updates())
