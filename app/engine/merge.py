"""Three-way merge of one mapped field of one bound pair (SPEC §6).

Inputs are canonical values (JSON-able) of A, of B, and of the base agreed at the last sync
(``None`` on the first sync of the pair). The outcome says which side's value each side must
end up with; the engine turns that into writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.mapping.fields import is_empty_canon
from app.model import Side


@dataclass(frozen=True, slots=True)
class Outcome:
    source: Side | None
    """Whose value both sides should hold; None when they already agree or nothing flows."""
    conflict: bool = False
    clear: bool = False
    """The source value is a deliberate clear."""


AGREE = Outcome(None)


def merge_value(
    ca: Any,
    cb: Any,
    base: Any,
    *,
    first: bool,
    winner: Side,
    propagate_clears: bool,
    match_key: bool,
) -> Outcome:
    if ca == cb:
        return AGREE
    empty_a, empty_b = is_empty_canon(ca), is_empty_canon(cb)
    if first:
        # First sync of a pair: fill empties from the other side; an empty never erases.
        if empty_a:
            return Outcome(Side.B)
        if empty_b:
            return Outcome(Side.A)
        return Outcome(winner)
    changed_a, changed_b = ca != base, cb != base
    if changed_a and changed_b:
        # Both changed, differently. A clear against an edit: the edit is the intent.
        if empty_a and not empty_b:
            return Outcome(Side.B)
        if empty_b and not empty_a:
            return Outcome(Side.A)
        return Outcome(winner, conflict=True)
    source = Side.A if changed_a else Side.B
    if empty_a if changed_a else empty_b:
        if not propagate_clears or match_key:
            return AGREE
        return Outcome(source, clear=True)
    return Outcome(source)


def merge_sets(ca: list[Any], cb: list[Any], base: list[Any] | None) -> list[Any]:
    """Element-wise merge (segments): additions and removals from both sides apply."""
    a, b = set(ca), set(cb)
    if base is None:
        return sorted(a | b)
    old = set(base)
    result = (old | (a - old) | (b - old)) - (old - a) - (old - b)
    return sorted(result)
