"""Reading a side: what changed in an app since the last run, from its listing or its feed.

Two ways, picked per app and per run:

* **listing**: ``list_versions()`` names every record with a cheap version; only the records
  whose version differs from the local index are fetched. Every id the index knows and the
  listing lacks is asked for once more by id, and only what that fetch does not return is
  gone (SPEC §7: a flaky listing never tombstones anything).
* **change feed** (``capabilities.change_feed``): ``changes(cursor)`` says what changed since
  the cursor stored by the last run that committed everything it read. No full listing, no
  pass over the whole index: a run where nothing changed reads one small answer. Deletions
  the feed reports are confirmed with ``fetch`` like a listing's, and a record the feed
  reports with the version the index already has (e.g. the echo of our own write) is no
  change.

A feed run still reads everything (``changes(None)``: a *complete* change set, treated as a
listing) when the run has no cursor (the first run), after a pause, after the mappings or
rules changed (the bases are re-planned: the index must be trusted in full), once a day (a
feed that silently missed something is caught within a day), and whenever the app answers a
cursor with a complete set (the cursor expired: the connector's signal).

The cursor of a read is stored only once everything the read produced is committed (see
``FeedPosition`` and ``SyncRun.run``): a run that crashes, is cancelled or stopped by the
guard reads the same changes again next time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.connectors.base import ChangeSet, Connector
from app.engine.context import RunContext, SideRead
from app.model import Record, Side, Unreadable

FULL_READ_EVERY = timedelta(days=1)
"""A feed app is read in full at least this often."""


def _person(record: Record) -> str:
    """A record's person name, compared loosely ("" when it has none: never a match)."""
    full = record.fields.get("full_name")
    if not (isinstance(full, str) and full.strip()):
        parts = [record.fields.get(k) for k in ("given_name", "family_name")]
        full = " ".join(p for p in parts if isinstance(p, str))
    return " ".join(full.split()).casefold()


@dataclass(frozen=True, slots=True)
class FeedPosition:
    """Where a side's change feed stopped, as stored in that side's cursor row (JSON)."""

    cursor: str | None = None
    full_at: datetime | None = None
    """When the side was last read in full."""
    run_id: int = 0
    """The run that read up to ``cursor``: records Pairsync created in it or later are
    newer than the cursor (see ``Reader.read_changes``)."""

    @classmethod
    def parse(cls, text: str | None) -> FeedPosition:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            full_at = data.get("full_at")
            return cls(
                data.get("cursor") or None,
                datetime.fromisoformat(full_at) if full_at else None,
                int(data.get("run_id") or 0),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()  # unreadable: read in full, as on a first run

    def dump(self) -> str:
        return json.dumps(
            {
                "cursor": self.cursor,
                "full_at": self.full_at.isoformat() if self.full_at else None,
                "run_id": self.run_id,
            }
        )


class Reader(RunContext):
    """Read both sides (see the module docstring)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def read_side(self, side: Side) -> SideRead:
        self.touching = side
        out = self.read_app(side)
        self.touching = None
        return out

    def read_app(self, side: Side) -> SideRead:
        app = self.apps[side]
        self.progress(f"Reading {app.info.name}", 0, 0)
        if app.info.capabilities.change_feed:
            position = FeedPosition.parse(self.state.cursor(side.value))
            reason = self.full_read_reason(position)
            changes = app.changes(None if reason else position.cursor)
            if changes is not None:
                out = self.read_changes(side, app, changes, position)
                out.feed = True
                out.cursor = changes.cursor
                out.full_at = self.now() if changes.complete else position.full_at
                if changes.cursor is not None and changes.cursor == position.cursor:
                    out.cursor_run = position.run_id
                out.how = reason or ("expired" if changes.complete else "feed")
                self.report.read[side.value] = len(out.changed) + len(out.unreadable)
                return out
        out = self.read_listing(side, app)
        self.report.read[side.value] = len(out.changed) + len(out.unreadable)
        return out

    def full_read_reason(self, position: FeedPosition) -> str:
        """Why this run reads a feed app in full ("" = it need not)."""
        if position.cursor is None:
            return "first"
        if self.state.connection().needs_full_read:
            return "resumed"
        if self.mappings_changed():
            return "configuration"
        if position.full_at is None or self.now() - position.full_at >= FULL_READ_EVERY:
            return "daily"
        return ""

    def feed_positions(self, reads: dict[Side, SideRead]) -> dict[str, str | None]:
        """The cursor rows to store once everything these reads produced is committed.

        A cursor that did not move keeps the run that first read up to it: the app did not
        change since, so nothing Pairsync created after that run is newer than it (and were
        the app's cursor to stay put through a change, the older run only asks about more
        of Pairsync's creates, never fewer). The row is then the same, and not written."""
        return {
            side.value: FeedPosition(
                read.cursor, read.full_at, read.cursor_run or self.run_id
            ).dump()
            for side, read in reads.items()
            if read.feed
        }

    # --- the two ways ------------------------------------------------------------------------

    def read_listing(self, side: Side, app: Connector) -> SideRead:
        listing = app.list_versions()
        known = self.state.index_versions(side)
        out = SideRead(listed=len(listing), known=len(known), how="listing")
        changed_ids = [rid for rid, v in listing.items() if known.get(rid) != v]
        missing = [rid for rid in known if rid not in listing]
        missing += [rid for rid in self.bound_unindexed(side, known) if rid not in listing]
        del listing  # not held while every changed record is fetched (100,000 versions)
        self.fetch_into(side, app, changed_ids, out)
        self.confirm_gone(app, missing, out)
        if out.gone:
            self.find_moved(side, out, known)
        return out

    def read_changes(
        self, side: Side, app: Connector, changes: ChangeSet, position: FeedPosition
    ) -> SideRead:
        if changes.complete:
            # Everything the app holds: a listing (that may come with its records).
            known = self.state.index_versions(side)
            held = {item.id for item in changes.records} | set(changes.versions)
            out = SideRead(listed=len(held), known=len(known))
            self.take(changes.records, known, out)
            vanished = self.fetch_new(side, app, changes, known, out)
            missing = [rid for rid in known if rid not in held or rid in vanished]
            missing += [rid for rid in self.bound_unindexed(side, known) if rid not in held]
            self.confirm_gone(app, missing, out)
            if out.gone:
                self.find_moved(side, out, known)
            return out
        reported = {item.id for item in changes.records} | set(changes.versions)
        deleted = [rid for rid in dict.fromkeys(changes.deleted) if rid not in reported]
        # A record Pairsync created after the cursor and someone deleted since may never be
        # mentioned (RFC 6578 lets a server leave out what came and went between two
        # tokens; Radicale does): such records are asked for by id, like reported deletions.
        # Usually the feed reports them (the echo of the create) and nothing is fetched.
        told = reported | set(deleted)
        ours = [rid for rid in self.state.created_since(side, position.run_id) if rid not in told]
        known = self.state.index_versions_of(side, [*reported, *deleted, *ours])
        deleted += [rid for rid in ours if rid in known]
        # A bound record that was never indexed may have come and gone unreported too.
        unindexed = [rid for rid in self.bound_unindexed(side, known) if rid not in told]
        known.update(dict.fromkeys(unindexed, ""))
        deleted += unindexed
        out = SideRead(known=self.state.count_index(side))
        self.take(changes.records, known, out)
        vanished = self.fetch_new(side, app, changes, known, out)
        deleted += [rid for rid in vanished if rid in known and rid not in deleted]
        # Every reported deletion is checked, known or not: a record the feed wrongly calls
        # deleted would otherwise be skipped for good once the cursor moves past it.
        self.confirm_gone(app, deleted, out, known)
        out.gone = [rid for rid in out.gone if rid in known]
        if out.gone:
            self.find_moved(side, out, known)
        new = sum(1 for rid in {*reported, *out.changed} if rid not in known)
        out.listed = out.known + new - len(out.gone)
        return out

    # --- shared steps ------------------------------------------------------------------------

    def bound_unindexed(self, side: Side, known: dict[str, str]) -> list[str]:
        """Bound ids the index does not hold: the source of a create that a crash interrupted
        and the next run bound (``reconcile_intents``) before the pair was ever merged. Were
        it deleted before that merge, no "known but not listed" check would see it go and
        its pair would stay bound to nothing: such ids are checked like known ones."""
        return [rid for rid in self.state.bound_unindexed(side) if rid not in known]

    def take(self, items: list[Record | Unreadable], known: dict[str, str], out: SideRead) -> None:
        """Keep the items whose version the index does not have (the rest did not change)."""
        for item in items:
            if isinstance(item, Unreadable):
                out.unreadable.append(item)
            elif known.get(item.id) != item.version:
                out.changed[item.id] = item

    def fetch_new(
        self,
        side: Side,
        app: Connector,
        changes: ChangeSet,
        known: dict[str, str],
        out: SideRead,
    ) -> set[str]:
        """Fetch the records reported by version whose version the index does not have;
        the ids the fetch did not return (gone meanwhile?) come back."""
        ids = [
            rid
            for rid, version in changes.versions.items()
            if known.get(rid) != version and rid not in out.changed
        ]
        self.fetch_into(side, app, ids, out)
        got = set(out.changed) | {u.id for u in out.unreadable}
        return {rid for rid in ids if rid not in got}

    def fetch_into(self, side: Side, app: Connector, ids: list[str], out: SideRead) -> None:
        phase = f"Reading {app.info.name}"
        size = max(1, app.info.capabilities.batch_size)
        for start in range(0, len(ids), size):
            for item in app.fetch(ids[start : start + size]):
                if isinstance(item, Unreadable):
                    out.unreadable.append(item)
                else:
                    out.changed[item.id] = item
            self.progress(phase, min(start + size, len(ids)), len(ids))
            self.checkpoint()

    def confirm_gone(
        self,
        app: Connector,
        missing: list[str],
        out: SideRead,
        known: dict[str, str] | None = None,
    ) -> None:
        """Records absent from a listing (or reported deleted by a feed) are gone only when a
        fetch by id does not return them either (SPEC §7). With ``known`` (a feed), what the
        fetch does return is taken as a change if its version is new."""
        if not missing:
            return
        still: set[str] = set()
        size = max(1, app.info.capabilities.batch_size)
        for start in range(0, len(missing), size):
            items = app.fetch(missing[start : start + size])
            still.update(item.id for item in items)
            if known is not None:
                self.take(items, known, out)
        out.gone = [rid for rid in missing if rid not in still]

    # --- contacts back under another id ---------------------------------------------------

    def find_moved(self, side: Side, out: SideRead, known: dict[str, str]) -> None:
        """Bound records that are gone under one id and back under another: the same contact
        (a renamed .vcf, a CSV exported again without its Pairsync ID column, an edited row
        or card of a file that was never written, whose id is derived from its text). Its
        binding follows it to the new id instead of becoming a tombstone and leaving a
        duplicate. Matched by email first, then, for what is left, by the person's name
        (an edited email); only one-to-one matches count: a key shared by two gone or two
        new records moves nothing."""
        new = [rid for rid in out.changed if rid not in known]
        if not new:
            return
        bound = self.state.pairs_for(side, out.gone)
        olds = [rid for rid in out.gone if rid in bound and bound[rid].state == "active"]
        if not olds:
            return
        old_keys = self.state.keys_of(side, olds)
        gone = set(out.gone)
        moved = self._pair_up(
            {rid: old_keys.get(rid, []) for rid in olds},
            {rid: out.changed.match_keys[rid] for rid in new},
            lambda keys: self._other_holders(side, out, set(new), gone, keys),
        )
        left_old = [rid for rid in olds if rid not in moved.values()]
        left_new = [rid for rid in new if rid not in moved]
        if left_old and left_new:
            snapshots = self.state.load_records(side, left_old)
            moved.update(
                self._pair_up(
                    {rid: [_person(snapshots[rid][0])] for rid in left_old if rid in snapshots},
                    {rid: [_person(out.changed[rid])] for rid in left_new},
                    lambda keys: {},
                )
            )
        for n, o in moved.items():
            out.moved[n] = (o, bound[o].id)
        if out.moved:
            out.gone = [rid for rid in out.gone if rid not in set(moved.values())]

    def _other_holders(
        self,
        side: Side,
        out: SideRead,
        new: set[str],
        gone: set[str],
        keys: set[str],
    ) -> dict[str, set[str]]:
        """Records still there (not gone, not new) holding one of ``keys``."""
        others = {
            k: {rid for rid in holders if rid not in gone and rid not in out.changed}
            for k, holders in self.state.key_holders(side, keys).items()
        }
        for rid, held in out.changed.match_keys.items():
            if rid not in new:
                for k in held:
                    if k in keys:
                        others.setdefault(k, set()).add(rid)
        return others

    @staticmethod
    def _pair_up(
        olds: dict[str, list[str]],
        news: dict[str, list[str]],
        held_elsewhere: Callable[[set[str]], dict[str, set[str]]],
    ) -> dict[str, str]:
        """new id -> old id for records sharing a key one-to-one (empty keys never count)."""
        old_by_key: dict[str, set[str]] = {}
        for rid, ks in olds.items():
            for k in ks:
                if k:
                    old_by_key.setdefault(k, set()).add(rid)
        new_by_key: dict[str, set[str]] = {}
        for rid, ks in news.items():
            for k in ks:
                if k:
                    new_by_key.setdefault(k, set()).add(rid)
        shared = set(old_by_key) & set(new_by_key)
        if not shared:
            return {}
        others = held_elsewhere(shared)
        news_of: dict[str, set[str]] = {}
        olds_of: dict[str, set[str]] = {}
        for k in shared:
            if others.get(k):
                continue
            for o in old_by_key[k]:
                news_of.setdefault(o, set()).update(new_by_key[k])
            for n in new_by_key[k]:
                olds_of.setdefault(n, set()).update(old_by_key[k])
        out: dict[str, str] = {}
        for o, ns in news_of.items():
            if len(ns) == 1:
                (n,) = ns
                if olds_of.get(n) == {o}:
                    out[n] = o
        return out
