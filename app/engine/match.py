"""Matching unbound contacts on email (SPEC §4).

Emails are compared trimmed and case-folded; the primary email is tried first, then the
others. Exactly one hit on the other side binds; several records sharing a key on one side
all go to Duplicates and none is bound. Lookups combine this run's reads (in memory) with the
local index (SQL), so a re-sync never loads the whole address book.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from app.engine.state import SyncStateStore
from app.model import Record, Side, email_key, record_emails
from app.packed import PackedRecords

if TYPE_CHECKING:
    from app.engine.held import Held


class _Read(Protocol):
    @property
    def changed(self) -> Held: ...

    gone: list[str]
    known: int
    """How many records of the side the index held when it was read (0: no key holders)."""


def keys_of(record: Record) -> list[str]:
    return list(dict.fromkeys(k for k in (email_key(e) for e in record_emails(record)) if k))


Holders = dict[str, str | list[str]]
"""Match key -> the id holding it, or the ids when several do. Most keys have one holder,
and a run holds an entry per key of every contact it read: a lone id costs no list (about
70 bytes a key, 16 MB at 100,000 contacts on each side)."""


def hold(holders: Holders, key: str, rid: str) -> None:
    """``rid`` holds ``key`` (once)."""
    held = holders.get(key)
    if held is None:
        holders[key] = rid
    elif isinstance(held, str):
        if held != rid:
            holders[key] = [held, rid]
    elif rid not in held:
        held.append(rid)


def holders_of(holders: Holders, key: str) -> list[str]:
    held = holders.get(key)
    if held is None:
        return []
    return [held] if isinstance(held, str) else held


def let_go(holders: Holders, key: str, rid: str) -> None:
    """``rid`` no longer holds ``key``."""
    held = holders.get(key)
    if held == rid or (isinstance(held, list) and held == [rid]):
        del holders[key]
    elif isinstance(held, list) and rid in held:
        held.remove(rid)


PairIds = tuple[str, str]
"""A matched pair: (id on A, id on B)."""
NoteIds = tuple[Side, str, str, str]
"""A contact not synced: (side, id, status, reason)."""
CreateIds = tuple[Side, str]
"""A contact to create in the other app: (its side, its id)."""


@dataclass(slots=True)
class MatchResult:
    """What matching found, by id: the records stay packed where they are held (this run's
    reads, or ``found``) until their slice is planned (``record``)."""

    reads: Mapping[Side, _Read]
    found: dict[Side, PackedRecords]
    """Records matched that this run did not read (from the local index)."""
    pairs: list[PairIds] = field(default_factory=list)
    notes: list[NoteIds] = field(default_factory=list)
    creates: list[CreateIds] = field(default_factory=list)
    keep_taken: bool = True
    """A record taken stays held, as the slice's object instead of its bytes, until the slice
    is released (a real run applies it, then ``Applier.release``; a whole plan holds each
    record once, not also packed). A dry run releases nothing: it sets this off, and each
    slice's records go with the slice while their packed bytes stay."""

    def left(self) -> int:
        """Contacts still to plan that may be written (pairs and creates)."""
        return len(self.pairs) + len(self.creates)

    def peek(self, side: Side, rid: str) -> Record:
        """The record of ``rid``, unpacked, left where it is held (counting, not applying)."""
        found = self.found[side]
        return found[rid] if rid in found else self.reads[side].changed[rid]

    def slices(
        self, size: int, keep: bool
    ) -> Iterator[tuple[list[PairIds], list[NoteIds], list[CreateIds]]]:
        """Pairs, notes and creates, up to ``size`` in all at a time (pairs first); each
        slice leaves these lists as it is handed out, unless ``keep``."""
        at = [0, 0, 0]
        while at[0] < len(self.pairs) or at[1] < len(self.notes) or at[2] < len(self.creates):
            room = size
            pairs = self.pairs[at[0] : at[0] + room]
            room -= len(pairs)
            notes = self.notes[at[1] : at[1] + room]
            room -= len(notes)
            creates = self.creates[at[2] : at[2] + room]
            if keep:
                at = [at[0] + len(pairs), at[1] + len(notes), at[2] + len(creates)]
            else:
                del self.pairs[: len(pairs)], self.notes[: len(notes)], self.creates[: len(creates)]
            yield pairs, notes, creates

    def take(self, side: Side, rid: str) -> Record:
        """The record of ``rid``, unpacked for its slice. One from ``found`` is forgotten
        there (the slice holds it now); one read is held as described at ``keep_taken``."""
        found = self.found[side]
        if rid in found:
            return found.pop(rid)
        changed = self.reads[side].changed
        return changed.take(rid) if self.keep_taken else changed[rid]


class Matcher:
    def __init__(
        self,
        state: SyncStateStore,
        reads: Mapping[Side, _Read],
        unbound: dict[Side, dict[str, None]],
        found: dict[Side, PackedRecords],
        app_names: Mapping[Side, str] | None = None,
        future: Mapping[Side, Mapping[str, list[str]]] | None = None,
    ) -> None:
        """``unbound``: per side, the ids to match, in order; their records are this run's
        reads or, for those it did not read, ``found``. ``future``: per side, the match
        keys records will have once this run's planned updates are written (they count
        instead of what the index or the read says)."""
        self.state = state
        self.reads = reads
        self.unbound = unbound
        self.found = found
        self.names = app_names or {Side.A: "side A", Side.B: "side B"}
        self.mem: dict[Side, Holders] = {Side.A: {}, Side.B: {}}
        self.skip: dict[Side, set[str]] = {}
        for side in (Side.A, Side.B):
            read = reads[side]
            planned = (future or {}).get(side, {})
            self.skip[side] = set(read.changed) | set(read.gone) | set(planned)
            for rid, keys in read.changed.match_keys.items():
                for k in planned.get(rid) or keys:
                    self._hold(side, k, rid)
            for rid, keys in planned.items():
                if rid not in read.changed:
                    for k in keys:
                        self._hold(side, k, rid)

    def _hold(self, side: Side, key: str, rid: str) -> None:
        hold(self.mem[side], key, rid)

    def duplicates_to_recheck(self, side: Side) -> list[str]:
        """Contacts held in Duplicates, matched again every run.

        Whether a duplicate is resolved can depend on a write of the previous run (the
        partner's email moved away), which no listing shows as a change; Duplicates are few,
        so re-checking them all is cheap and never leaves one stuck.
        """
        return [
            rid
            for rid in self.state.ids_with_status(side, "duplicate")
            if rid not in self.skip[side]
        ]

    def match(self, avoid_duplicates: bool) -> MatchResult:
        result = MatchResult(self.reads, self.found)
        keys = {s: self._keys(s) for s in (Side.A, Side.B)}
        for side in (Side.A, Side.B):
            for rid in self.unbound[side]:
                if rid not in self.reads[side].changed:
                    for k in keys[side][rid]:
                        self._hold(side, k, rid)
                    self.skip[side].add(rid)
        # An empty index (a first sync) holds no keys: no query for 100,000 of them.
        indexed: dict[Side, dict[str, set[str]]] = {Side.A: {}, Side.B: {}}
        if self.reads[Side.A].known or self.reads[Side.B].known:
            all_keys = {k for s in (Side.A, Side.B) for ks in keys[s].values() for k in ks}
            for s in (Side.A, Side.B):
                if self.reads[s].known:
                    indexed[s] = self.state.key_holders(s, all_keys)

        def holders(side: Side, key: str) -> set[str]:
            return (indexed[side].get(key, set()) - self.skip[side]) | set(
                holders_of(self.mem[side], key)
            )

        # Which of the other side's holders are already bound (one query per side).
        candidates = {
            s: {h for ks in keys[s.other].values() for k in ks for h in holders(s, k)}
            for s in (Side.A, Side.B)
        }
        bound = {s: set(self.state.pairs_for(s, candidates[s])) for s in (Side.A, Side.B)}

        dup: dict[Side, dict[str, str]] = {Side.A: {}, Side.B: {}}
        for side in (Side.A, Side.B):
            for rid, ks in keys[side].items():
                for k in ks:
                    others = holders(side, k) - {rid}
                    if others:
                        n = len(others)
                        dup[side][rid] = (
                            f"shares the email {k} with {n} other contact{'s' if n > 1 else ''} "
                            f"in {self.names[side]}"
                        )
                        break

        bound_now: dict[Side, set[str]] = {Side.A: set(), Side.B: set()}
        load: dict[Side, list[tuple[str, str]]] = {Side.A: [], Side.B: []}
        for side in (Side.A, Side.B):
            other = side.other
            for rid in self.unbound[side]:
                if rid in bound_now[side]:
                    continue
                if rid in dup[side]:
                    result.notes.append((side, rid, "duplicate", dup[side][rid]))
                    continue
                ks = keys[side][rid]
                if not ks:
                    if avoid_duplicates:
                        result.notes.append((side, rid, "excluded", "no email"))
                    else:
                        result.creates.append((side, rid))
                    continue
                verdict: tuple[str, str] | None = None
                for k in ks:
                    hs = holders(other, k)
                    if not hs:
                        continue
                    if len(hs) > 1:
                        verdict = (
                            "duplicate",
                            f"matches {len(hs)} contacts with the email {k} in {self.names[other]}",
                        )
                    else:
                        (y,) = hs
                        if y in bound[other] or y in bound_now[other]:
                            verdict = (
                                "duplicate",
                                f"the email {k} belongs to a contact in {self.names[other]} "
                                "that is already synced with another contact",
                            )
                        elif y in dup[other]:
                            verdict = (
                                "duplicate",
                                f"the matching contact in {self.names[other]} has duplicates",
                            )
                        else:
                            verdict = ("bind", y)
                    break
                if verdict is None:
                    result.creates.append((side, rid))
                elif verdict[0] == "bind":
                    y = verdict[1]
                    bound_now[side].add(rid)
                    bound_now[other].add(y)
                    load[other].append((rid, y))
                else:
                    result.notes.append((side, rid, verdict[0], verdict[1]))
        # Counterparts: from this run's reads, the unbound set, or the index.
        for side in (Side.A, Side.B):
            other = side.other
            missing = [
                y
                for _, y in load[other]
                if y not in self.reads[other].changed and y not in self.found[other]
            ]
            if missing:
                for y, (rec, _status) in self.state.load_records(other, missing).items():
                    self.found[other][y] = rec
            for rid, y in load[other]:
                result.pairs.append((rid, y) if side is Side.A else (y, rid))
        return result

    def _keys(self, side: Side) -> dict[str, list[str]]:
        """The match keys of every unbound record of ``side`` (those read: as read)."""
        read = self.reads[side].changed.match_keys
        found = self.found[side]
        return {
            rid: read[rid] if rid in read else keys_of(found[rid]) for rid in self.unbound[side]
        }
