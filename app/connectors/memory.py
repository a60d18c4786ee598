"""An app that lives in memory: the engine's test double and the benchmark's baseline.

It behaves like a careful real app: versions change on every write, writes with a stale
``expected_version`` are refused, required fields are enforced, and faults can be injected
(per-record rejections, an app-wide outage, a listing that loses records).

With ``change_feed=True`` it also has a change feed like a cloud app's (sync tokens): a
cursor names the state the app was in when it was handed out, and ``changes(cursor)`` reports
every record added or changed since then (at its current version) and every id gone since.
Whatever changes the records (a test editing ``records`` directly too) shows in the feed.
Faults: ``expire_cursors()`` makes every cursor handed out so far invalid (the next
``changes`` answers a complete set, as a server does for an expired token), only the last
``KEEP_CURSORS`` cursors stay valid anyway, and ``hide_from_listing`` makes a delta report
those records as deleted instead of changed (a feed that lies about a deletion, and never
mentions the record again unless it changes). A complete set is always the whole truth: a
record missing from it could only be found by the next complete read.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from app.connectors.base import ChangeSet
from app.errors import Conflict, NotFound, Rejected, RequiredMissing
from app.model import (
    OPT_OUT_FIELD,
    STANDARD_FIELDS,
    AppInfo,
    Capabilities,
    Create,
    FieldSpec,
    FieldValue,
    Labeled,
    Record,
    Schema,
    Unreadable,
    Update,
    WriteOp,
    WriteResult,
    email_key,
    is_empty_value,
    with_emails,
)
from app.packed import DeflatedRecords

__all__ = ["STANDARD_FIELDS", "MemoryApp"]

KEEP_CURSORS = 64
"""How many cursors the feed keeps valid (older ones expire, as on a real server)."""


class MemoryApp:
    """Connector over a dict. Tests reach into ``records`` to play the user.

    Each record is stored packed and deflated (``app.packed.DeflatedRecords``: about 100
    bytes instead of 1.6 KB as objects), as a server stores records serialised and
    compressed: every read hands out a new ``Record`` (changing it changes nothing stored,
    as with a real app), and two 100,000-contact apps fit beside a sync in the memory a
    re-sync may take (issue 18)."""

    def __init__(
        self,
        name: str = "Memory",
        fields: tuple[FieldSpec, ...] = STANDARD_FIELDS,
        batch_size: int = 100,
        subscription: bool = False,
        change_feed: bool = False,
        feed_bodies: bool = True,
    ) -> None:
        self.info = AppInfo(
            kind="memory",
            name=name,
            capabilities=Capabilities(
                segments=True,
                chooses_ids=True,
                batch_size=batch_size,
                subscription=subscription,
                change_feed=change_feed,
            ),
        )
        self._fields = fields
        self._records = DeflatedRecords()
        self.unreadable: dict[str, Unreadable] = {}
        self._counter = itertools.count(1)
        # Fault injection: record id or create-email -> error to raise for that record.
        self.reject: dict[str, Exception] = {}
        self.outage: Exception | None = None
        self.hide_from_listing: set[str] = set()
        self.before_write: Callable[[WriteOp], None] | None = None
        self.merge_stale = False
        """Like CardDAV after a 412: an update whose ``expected_version`` is stale is applied
        to the current record when none of the fields it writes changed meanwhile (else
        Conflict). Tests play another client editing a record during a write with it."""
        self._history: dict[tuple[str, str], Record] = {}
        self.write_calls = 0
        self.ops_written = 0
        self.list_calls = 0
        self.feed_calls: list[str | None] = []
        """The cursor of every ``changes`` call, in order (None: a full read was asked)."""
        self._states: dict[str, dict[str, str]] = {}
        """Cursor -> every id the app held then, with its version (the feed's memory)."""
        self._cursor_no = itertools.count(1)
        self.feed_bodies = feed_bodies
        """The feed sends whole records (like Google's); False: ids and versions only (like
        sync-collection's ETags)."""

    @property
    def records(self) -> DeflatedRecords:
        """id -> record (each read unpacks a new ``Record``; store one to change it)."""
        return self._records

    @records.setter
    def records(self, records: Mapping[str, Record]) -> None:
        if isinstance(records, DeflatedRecords):
            self._records = records
            return
        self._records = DeflatedRecords()
        self._records.update(records)

    # --- helpers for tests ---------------------------------------------------------------

    def _version(self) -> str:
        return f"v{next(self._counter)}"

    def add(
        self,
        fields: dict[str, FieldValue],
        segments: Iterable[str] = (),
        record_id: str | None = None,
        subscribed: bool | None = None,
    ) -> Record:
        rid = record_id or uuid.uuid4().hex
        rec = Record(rid, self._version(), dict(fields), frozenset(segments), subscribed)
        self.records[rid] = rec
        return rec

    def _remember(self, rec: Record) -> None:
        if self.merge_stale:
            self._history[(rec.id, rec.version)] = rec

    def edit(self, record_id: str, **fields: FieldValue) -> Record:
        rec = self.records[record_id]
        self._remember(rec)
        new_fields = dict(rec.fields)
        new_fields.update(fields)
        rec = replace(rec, fields=new_fields, version=self._version())
        self.records[record_id] = rec
        return rec

    def set_segments(self, record_id: str, segments: Iterable[str]) -> None:
        rec = self.records[record_id]
        self._remember(rec)
        self.records[record_id] = replace(
            rec, segments=frozenset(segments), version=self._version()
        )

    def set_subscribed(self, record_id: str, subscribed: bool | None) -> None:
        rec = self.records[record_id]
        self._remember(rec)
        self.records[record_id] = replace(rec, subscribed=subscribed, version=self._version())

    def delete(self, record_id: str) -> None:
        del self.records[record_id]

    # --- protocol ------------------------------------------------------------------------

    def schema(self) -> Schema:
        segs = sorted({s for r in self.records.values() for s in r.segments})
        return Schema(self._fields, tuple(segs))

    def fields(self) -> tuple[FieldSpec, ...]:
        return self._fields

    def prepare(self) -> None:
        self._check_outage()

    def _check_outage(self) -> None:
        if self.outage is not None:
            raise self.outage

    def list_versions(self) -> dict[str, str]:
        self._check_outage()
        self.list_calls += 1
        records = self.records
        out = {rid: records.version(rid) for rid in records if rid not in self.hide_from_listing}
        out.update({rid: u.version for rid, u in self.unreadable.items()})
        return out

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        self._check_outage()
        out: list[Record | Unreadable] = []
        for rid in ids:
            if rid in self.records:
                out.append(self.records[rid])
            elif rid in self.unreadable:
                out.append(self.unreadable[rid])
        return out

    def find_by_email(self, emails: Iterable[str]) -> list[Record]:
        self._check_outage()
        return with_emails(self.records.values(), emails)

    def changes(self, cursor: str | None) -> ChangeSet | None:
        if not self.info.capabilities.change_feed:
            return None
        self._check_outage()
        self.feed_calls.append(cursor)
        now = self._versions()
        then = self._states.get(cursor) if cursor is not None else None
        new_cursor = f"c{next(self._cursor_no)}"
        self._states[new_cursor] = now
        for old in list(self._states)[:-KEEP_CURSORS]:
            del self._states[old]
        if then is None:  # no cursor, or it expired: everything, for the caller to compare
            return self._change_set(list(now), [], new_cursor, complete=True)
        changed = [rid for rid, v in now.items() if then.get(rid) != v]
        changed = [rid for rid in changed if rid not in self.hide_from_listing]
        deleted = [rid for rid in then if rid not in now]
        deleted += [
            rid
            for rid in self.hide_from_listing
            if (rid in then or rid in now) and rid not in deleted
        ]
        return self._change_set(changed, deleted, new_cursor)

    def _change_set(
        self, ids: list[str], deleted: list[str], cursor: str, complete: bool = False
    ) -> ChangeSet:
        if self.feed_bodies:
            return ChangeSet(self._items(ids), deleted, cursor, complete)
        versions = {item.id: item.version for item in self._items(ids)}
        return ChangeSet([], deleted, cursor, complete, versions=versions)

    def expire_cursors(self) -> None:
        """Every cursor handed out so far is no longer valid."""
        self._states.clear()

    def _versions(self) -> dict[str, str]:
        out = {rid: self.records.version(rid) for rid in self.records}
        out.update({rid: u.version for rid, u in self.unreadable.items()})
        return out

    def _items(self, ids: Iterable[str]) -> list[Record | Unreadable]:
        out: list[Record | Unreadable] = []
        for rid in ids:
            if rid in self.records:
                out.append(self.records[rid])
            elif rid in self.unreadable:
                out.append(self.unreadable[rid])
        return out

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        self._check_outage()
        if len(ops) > self.info.capabilities.batch_size:
            raise ValueError(f"batch of {len(ops)} exceeds {self.info.capabilities.batch_size}")
        self.write_calls += 1
        results: list[WriteResult] = []
        for op in ops:
            try:
                if self.before_write is not None:
                    self.before_write(op)
                results.append(WriteResult(op.op_id, record=self._apply(op)))
                self.ops_written += 1
            except (Rejected, Conflict, NotFound) as err:
                results.append(WriteResult(op.op_id, error=err))
        return results

    def _apply(self, op: WriteOp) -> Record:
        if isinstance(op, Create):
            fields = {k: v for k, v in op.fields.items() if not is_empty_value(v)}
            subscribed = self._opt_out(fields, None)
            self._validate(op.new_id or "", fields)
            rid = op.new_id or uuid.uuid4().hex
            if rid in self.records:
                raise Conflict(f"A record with id {rid} already exists.")
            rec = Record(rid, self._version(), fields, frozenset(op.segments), subscribed)
            self.records[rid] = rec
            return rec
        assert isinstance(op, Update)
        found = self.records.get(op.record_id)
        if found is None:
            raise NotFound("The contact no longer exists in the app.")
        rec = found
        if op.expected_version is not None and rec.version != op.expected_version:
            seen = self._history.get((rec.id, op.expected_version))
            untouched = seen is not None and all(
                seen.fields.get(k) == rec.fields.get(k) for k in op.fields
            )
            if not (self.merge_stale and untouched):
                raise Conflict("The contact changed in the app while syncing; it is retried.")
        self._remember(rec)
        fields = dict(rec.fields)
        for key, value in op.fields.items():
            if is_empty_value(value):
                fields.pop(key, None)
            else:
                fields[key] = value
        subscribed = self._opt_out(fields, rec.subscribed)
        self._validate(op.record_id, fields)
        segments = (rec.segments | op.add_segments) - op.remove_segments
        new = Record(rec.id, self._version(), fields, segments, subscribed)
        self.records[rec.id] = new
        return new

    def _opt_out(self, fields: dict[str, FieldValue], current: bool | None) -> bool | None:
        """The opt-out pseudo-field: taken out of the fields; sets the status when the app
        has one (an app without subscriptions refuses it, as a real one would)."""
        if OPT_OUT_FIELD not in fields:
            return current
        value = fields.pop(OPT_OUT_FIELD)
        if not self.info.capabilities.subscription:
            raise Rejected("This app has no subscription status.", field=OPT_OUT_FIELD)
        return str(value).strip().casefold() not in ("false", "no", "0", "unsubscribed")

    def _validate(self, rid: str, fields: dict[str, FieldValue]) -> None:
        for key in [rid, *(email_key(e) for e in _emails_of(fields))]:
            if key in self.reject:
                raise self.reject[key]
        for spec in self._fields:
            if spec.required and is_empty_value(fields.get(spec.key)):
                raise RequiredMissing(
                    f"Required field {spec.label.lower()} is missing.", field=spec.key
                )

    def close(self) -> None:
        pass


def _emails_of(fields: dict[str, FieldValue]) -> list[str]:
    value = fields.get("emails")
    if isinstance(value, tuple):
        return [v.value for v in value if isinstance(v, Labeled)]
    if isinstance(value, str) and value:
        return [value]
    return []
