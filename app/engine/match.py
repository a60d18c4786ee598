"""Matching unbound contacts on email (SPEC §4).

Emails are compared trimmed and case-folded; the primary email is tried first, then the
others. Exactly one hit on the other side binds; several records sharing a key on one side
all go to Duplicates and none is bound. Lookups combine this run's reads (in memory) with the
local index (SQL), so a re-sync never loads the whole address book.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.engine.state import SyncStateStore
from app.model import Record, Side, email_key, record_emails


class _Read(Protocol):
    changed: dict[str, Record]
    gone: list[str]
    known: int
    """How many records of the side the index held when it was read (0: no key holders)."""


def keys_of(record: Record) -> list[str]:
    return list(dict.fromkeys(k for k in (email_key(e) for e in record_emails(record)) if k))


@dataclass(slots=True)
class MatchResult:
    pairs: list[tuple[Record, Record]] = field(default_factory=list)
    notes: list[tuple[Side, Record, str, str]] = field(default_factory=list)
    creates: list[tuple[Side, Record]] = field(default_factory=list)

    def left(self) -> int:
        """Contacts still to plan that may be written (pairs and creates)."""
        return len(self.pairs) + len(self.creates)


class Matcher:
    def __init__(
        self,
        state: SyncStateStore,
        reads: Mapping[Side, Any],
        unbound: dict[Side, dict[str, Record]],
        app_names: Mapping[Side, str] | None = None,
        future: Mapping[Side, Mapping[str, list[str]]] | None = None,
    ) -> None:
        """``future``: per side, the match keys records will have once this run's planned
        updates are written (they count instead of what the index or the read says)."""
        self.state = state
        self.reads = reads
        self.unbound = unbound
        self.names = app_names or {Side.A: "side A", Side.B: "side B"}
        self.mem: dict[Side, dict[str, list[str]]] = {Side.A: {}, Side.B: {}}
        self.skip: dict[Side, set[str]] = {}
        self.keys: dict[Side, dict[str, list[str]]] = {Side.A: {}, Side.B: {}}
        """The match keys of this run's changed records, as read (computed once)."""
        for side in (Side.A, Side.B):
            read = reads[side]
            planned = (future or {}).get(side, {})
            self.skip[side] = set(read.changed) | set(read.gone) | set(planned)
            own = self.keys[side]
            for rid, rec in read.changed.items():
                own[rid] = keys_of(rec)
                for k in planned.get(rid) or own[rid]:
                    self._hold(side, k, rid)
            for rid, keys in planned.items():
                if rid not in read.changed:
                    for k in keys:
                        self._hold(side, k, rid)

    def _hold(self, side: Side, key: str, rid: str) -> None:
        """``rid`` holds ``key`` (a list, not a set: most keys have one holder, and a run
        holds one entry per key of every contact it read)."""
        held = self.mem[side].get(key)
        if held is None:
            self.mem[side][key] = [rid]
        elif rid not in held:
            held.append(rid)

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
        result = MatchResult()
        keys = {
            s: {
                rid: self.keys[s][rid] if self.reads[s].changed.get(rid) is r else keys_of(r)
                for rid, r in self.unbound[s].items()
            }
            for s in (Side.A, Side.B)
        }
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
                self.mem[side].get(key, ())
            )

        # Which of the other side's holders are already bound (one query per side).
        candidates = {
            s: {h for ks in keys[s.other].values() for k in ks for h in holders(s, k)}
            for s in (Side.A, Side.B)
        }
        bound = {s: set(self.state.bindings_for(s, candidates[s])) for s in (Side.A, Side.B)}

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
        load: dict[Side, list[tuple[Record, str]]] = {Side.A: [], Side.B: []}
        for side in (Side.A, Side.B):
            other = side.other
            for rid, rec in self.unbound[side].items():
                if rid in bound_now[side]:
                    continue
                if rid in dup[side]:
                    result.notes.append((side, rec, "duplicate", dup[side][rid]))
                    continue
                ks = keys[side][rid]
                if not ks:
                    if avoid_duplicates:
                        result.notes.append((side, rec, "excluded", "no email"))
                    else:
                        result.creates.append((side, rec))
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
                    result.creates.append((side, rec))
                elif verdict[0] == "bind":
                    y = verdict[1]
                    bound_now[side].add(rid)
                    bound_now[other].add(y)
                    load[other].append((rec, y))
                else:
                    result.notes.append((side, rec, verdict[0], verdict[1]))
        # Counterparts: from this run's reads, the unbound set, or the index.
        for side in (Side.A, Side.B):
            other = side.other
            wanted = [y for _, y in load[other]]
            missing = [
                y
                for y in wanted
                if y not in self.reads[other].changed and y not in self.unbound[other]
            ]
            from_index = self.state.load_records(other, missing) if missing else {}
            for rec, y in load[other]:
                partner = (
                    self.reads[other].changed.get(y)
                    or self.unbound[other].get(y)
                    or from_index[y][0]
                )
                pair = (rec, partner) if side is Side.A else (partner, rec)
                result.pairs.append(pair)
        return result
