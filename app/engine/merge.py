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


def merge_lists(
    keys_a: list[str],
    keys_b: list[str],
    base: list[str] | None,
    winner: Side,
) -> list[str]:
    """Element-wise merge of two lists of values (emails, phones, addresses), by value key.

    Values added on either side are kept, values removed on either side (present in the base,
    gone now) are removed, an edited value is a removal plus an addition. On the first sync
    (no base) it is the union: nothing either side holds is dropped. The order is that of the
    side that reordered or changed its list (the winner's when both did), the other side's
    additions after it — so a changed primary value stays first.
    """
    if base is None:
        removed: set[str] = set()
        lead = winner
    else:
        old = set(base)
        removed = (old - set(keys_a)) | (old - set(keys_b))
        changed_a, changed_b = keys_a != base, keys_b != base
        lead = winner if changed_a == changed_b else (Side.A if changed_a else Side.B)
    first, second = (keys_a, keys_b) if lead is Side.A else (keys_b, keys_a)
    out: list[str] = []
    for key in [*first, *second]:
        if key not in removed and key not in out:
            out.append(key)
    return out
