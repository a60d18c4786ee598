"""What a run has left to plan once ``Planner.plan_head`` is done, a slice at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from app.engine.match import MatchResult
from app.model import Side

T = TypeVar("T")

Step = Callable[[], None] | None
"""Called once per contact planned (progress, and a safe point to stop)."""


@dataclass(slots=True)
class BoundPairs:
    """Bound pairs to merge, by binding id: their bases and records are loaded a slice at a
    time (a run where every contact changed must not hold them all)."""

    ids: list[int]
    moved: dict[int, tuple[Side, str]] = field(default_factory=dict)
    """Binding id -> (side, id): a contact back under a new id (see ``SyncRun.find_moved``);
    the id it has now stands for it in the plan."""
    retried: set[int] = field(default_factory=set)
    """Pairs retried after a failed write."""


@dataclass(slots=True)
class PlanWork:
    """Bound pairs still to merge, then what matching found."""

    bound: BoundPairs
    matched: MatchResult

    def left(self) -> int:
        """Contacts still to plan that may be written."""
        return len(self.bound.ids) + self.matched.left()

    def most_writes(self) -> int:
        """The most writes what is left can make: one a side per pair, one per create."""
        return 2 * (len(self.bound.ids) + len(self.matched.pairs)) + len(self.matched.creates)

    def fits(self, size: int) -> bool:
        """Does what is left make at most one slice of ``size``?"""
        m = self.matched
        return len(self.bound.ids) + len(m.pairs) + len(m.notes) + len(m.creates) <= size


def slices(items: list[T], size: int, keep: bool) -> Iterator[list[T]]:
    """``items``, ``size`` at a time; each slice leaves ``items`` as it is handed out
    (nothing of it stays held), unless ``keep``."""
    if keep:
        for start in range(0, len(items), size):
            yield items[start : start + size]
        return
    while items:
        part = items[:size]
        del items[:size]
        yield part
