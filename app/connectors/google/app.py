"""Google Contacts as a Pairsync app (People API v1).

Ids and versions
----------------
A record's id is the contact's resource name when Pairsync first saw it (``people/c…``).
Google may give a contact a new resource name (a linked profile, a merge); sync results then
list the old ones in ``metadata.previousResourceNames``, and the connector keeps answering
under the first id, so a binding survives a rename. The version is the person's ``etag``
(it changes with any field and with group membership).

Reading
-------
A mirror file in the cache folder holds, per contact, the person as last read (only the
fields we map, no secret) and the connections sync token. ``list_versions()`` asks Google
only what changed since that token (one request when nothing did); an expired token
(``EXPIRED_SYNC_TOKEN``) or no mirror means one full listing, 1000 people a page.
``fetch()`` answers from the mirror what the listing just confirmed and reads anything else
with ``people:batchGet`` (200 a request). A deleted contact (``metadata.deleted``) leaves the
mirror and the listing; the engine's own check decides what that means (never a delete
elsewhere). ``changes(cursor)`` is the change feed: sync tokens, deletions reported in
``ChangeSet.deleted``, an expired cursor → a complete listing.

Writing
-------
``batchCreateContacts`` / ``batchUpdateContacts``, 200 a request, one request at a time as
Google asks. An update sends the CONTACT source's etag and names in ``updatePersonFields``
only the person fields it writes, merged onto the person as Google has it (see
``records.merged_person``). A stale etag (400 FAILED_PRECONDITION) → the contacts are read
again; those whose written fields did not change meanwhile are merged onto the fresh person
and sent once more, the others fail with :class:`Conflict`. A request Google refuses as
invalid is split so only the bad contact fails. Segments are user contact groups (and
"Starred"); membership changes go in bulk through ``contactGroups.members:modify``; a group
that does not exist yet is created.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from app.connectors.base import ChangeSet
from app.connectors.file_writes import replace_file
from app.connectors.google.api import (
    BATCH_WRITE,
    ApiRefusal,
    PeopleApi,
    StaleEtag,
    SyncTokenExpired,
)
from app.connectors.google.records import (
    Person,
    group_names,
    merged_person,
    same_fields,
    source_etag,
    to_record,
)
from app.connectors.google.schema import READ_FIELDS, fields_with
from app.errors import Conflict, NotFound, PairsyncError, Rejected
from app.model import (
    AppInfo,
    Capabilities,
    Create,
    FieldSpec,
    Record,
    Schema,
    Unreadable,
    Update,
    WriteOp,
    WriteResult,
    email_key,
    record_emails,
)

log = logging.getLogger(__name__)

MIRROR_FORMAT = 1
STARRED = "contactGroups/starred"
STARRED_NAME = "Starred"
_RESOURCE = re.compile(r"^people/[^/]+$")


class GoogleContactsApp:
    info = AppInfo(
        kind="google",
        name="Google Contacts",
        aliases=("gmail", "google", "google workspace", "g suite", "android contacts"),
        auth="oauth",
        capabilities=Capabilities(
            segments=True, change_feed=True, chooses_ids=False, batch_size=BATCH_WRITE
        ),
    )

    def __init__(self, api: PeopleApi, *, mirror_file: Path | None = None) -> None:
        self.api = api
        self.mirror_file = mirror_file
        self._people: dict[str, Person] = {}
        """Stable id → the person as last read."""
        self._current: dict[str, str] = {}
        """Stable id → its resource name now (only when it differs)."""
        self._alias: dict[str, str] = {}
        """Former or current resource name → stable id (only when they differ)."""
        self._token: str | None = None
        self._loaded = False
        self._dirty = False
        self._listed = False
        """The mirror was checked against Google during this instance."""
        self._confirmed: set[str] = set()
        self._groups: dict[str, str] | None = None
        """Contact group resource name → segment name (user groups and Starred)."""
        self._starred = 0
        """Contacts in Starred (the segment is listed only when someone is starred)."""
        self._seen: dict[tuple[str, str], Record] = {}

    # --- ids -----------------------------------------------------------------------------

    def _name(self, stable: str) -> str:
        return self._current.get(stable, stable)

    def _stable_of(self, person: Person) -> str:
        name = str(person.get("resourceName", ""))
        previous = person.get("metadata", {}).get("previousResourceNames", []) or []
        for candidate in [name, *previous]:
            if candidate in self._alias:
                stable = self._alias[candidate]
                break
            if candidate in self._people:
                stable = candidate
                break
        else:
            stable = name
        if stable != name:
            self._current[stable] = name
            self._alias[name] = stable
            for old in previous:
                self._alias.setdefault(old, stable)
        return stable

    # --- mirror --------------------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.mirror_file is None:
            return
        try:
            data = json.loads(self.mirror_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(data, dict) or data.get("format") != MIRROR_FORMAT:
            return
        self._people = dict(data.get("people", {}))
        self._current = dict(data.get("current", {}))
        self._alias = dict(data.get("alias", {}))
        self._token = data.get("token") or None

    def _save(self) -> None:
        if self.mirror_file is None or not self._dirty:
            return
        payload = json.dumps(
            {
                "format": MIRROR_FORMAT,
                "token": self._token,
                "people": self._people,
                "current": self._current,
                "alias": self._alias,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        try:
            self.mirror_file.parent.mkdir(parents=True, exist_ok=True)

            def write(fh: BinaryIO) -> None:
                fh.write(payload)

            replace_file(self.mirror_file, write)
        except OSError as err:  # only an optimisation: the next run reads everything
            log.warning("Could not save the Google mirror %s: %s", self.mirror_file, err)
            return
        self._dirty = False

    def _keep(self, person: Person) -> str:
        stable = self._stable_of(person)
        self._people[stable] = person
        self._confirmed.add(stable)
        self._dirty = True
        return stable

    def _forget(self, stable: str) -> None:
        self._people.pop(stable, None)
        self._confirmed.discard(stable)
        name = self._current.pop(stable, None)
        for alias in [a for a, s in self._alias.items() if s == stable]:
            del self._alias[alias]
        if name is not None:
            self._alias.pop(name, None)
        self._dirty = True

    # --- reading -------------------------------------------------------------------------

    def _full_listing(self) -> str | None:
        """Read every contact; the mirror becomes exactly that. Returns the sync token."""
        found: dict[str, Person] = {}
        token: str | None = None
        for page in self.api.connections(fields=READ_FIELDS):
            for person in page.get("connections", []) or []:
                if person.get("metadata", {}).get("deleted"):
                    continue
                found[self._stable_of(person)] = person
            token = page.get("nextSyncToken") or token
        for gone in set(self._people) - set(found):
            self._forget(gone)
        self._people = found
        self._confirmed = set(found)
        self._dirty = True
        return token

    def _delta(self, token: str) -> tuple[list[str], list[str], str | None]:
        """Apply what changed since ``token``: (changed ids, deleted ids, next token)."""
        changed: list[str] = []
        deleted: list[str] = []
        new_token: str | None = None
        for page in self.api.connections(sync_token=token, fields=READ_FIELDS):
            for person in page.get("connections", []) or []:
                if person.get("metadata", {}).get("deleted"):
                    name = str(person.get("resourceName", ""))
                    stable = self._alias.get(name, name)
                    if stable in self._people:
                        self._forget(stable)
                    deleted.append(stable)
                else:
                    changed.append(self._keep(person))
            new_token = page.get("nextSyncToken") or new_token
        return changed, deleted, new_token

    def _refresh(self) -> None:
        self._load()
        if self._listed:
            return
        if self._token:
            try:
                _, _, token = self._delta(self._token)
            except SyncTokenExpired:
                log.info("Google sync token expired: reading every contact again")
            else:
                self._token = token
                self._confirmed = set(self._people)
                self._listed = True
                self._dirty = True
                return
        self._token = self._full_listing()
        self._listed = True

    def _segment_map(self) -> dict[str, str]:
        if self._groups is None:
            groups: dict[str, str] = {STARRED: STARRED_NAME}
            for g in self.api.groups():
                if g.get("resourceName") == STARRED:
                    self._starred = int(g.get("memberCount", 0) or 0)
                if g.get("groupType") == "USER_CONTACT_GROUP" and not g.get("metadata", {}).get(
                    "deleted"
                ):
                    groups[str(g["resourceName"])] = str(g.get("name", ""))
            self._groups = groups
        return self._groups

    def _record(self, stable: str) -> Record | Unreadable:
        person = self._people[stable]
        try:
            names = group_names(person)
            needs_groups = any(
                n.startswith("contactGroups/") and "/" in n and not _system(n) for n in names
            )
            segment_of = self._segment_map() if needs_groups else {STARRED: STARRED_NAME}
            record = to_record(stable, person, segment_of)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            return Unreadable(
                stable,
                str(person.get("etag", "")),
                f"Google sent a contact we cannot read ({err}).",
                raw=json.dumps(person)[:500],
            )
        self._seen[(record.id, record.version)] = record
        return record

    def _custom_keys(self) -> set[str]:
        keys: set[str] = set()
        for person in self._people.values():
            for item in person.get("userDefined", []) or []:
                key = str(item.get("key", "")).strip()
                if key:
                    keys.add(key)
        return keys

    def fields(self) -> tuple[FieldSpec, ...]:
        self._load()
        return fields_with(self._custom_keys())

    def schema(self) -> Schema:
        self._refresh()
        self._groups = None  # names as they are now
        names = {n for rid, n in self._segment_map().items() if rid != STARRED}
        if self._starred:
            names.add(STARRED_NAME)
        return Schema(fields_with(self._custom_keys()), tuple(sorted(names)))

    def prepare(self) -> None:
        pass

    def list_versions(self) -> dict[str, str]:
        self._refresh()
        return {stable: str(p.get("etag", "")) for stable, p in self._people.items()}

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        self._load()
        wanted = list(dict.fromkeys(ids))
        unknown = [i for i in wanted if i not in self._confirmed and _RESOURCE.match(i)]
        if unknown:
            self._read([self._name(i) for i in unknown])
        return [self._record(i) for i in wanted if i in self._people and i in self._confirmed]

    def _read(self, names: Sequence[str]) -> None:
        for name, person in self.api.batch_get(names, READ_FIELDS).items():
            if person is not None:
                self._keep(person)
            else:
                stable = self._alias.get(name, name)
                if stable in self._people:
                    self._forget(stable)

    def find_by_email(self, emails: Iterable[str]) -> list[Record]:
        wanted = {email_key(e) for e in emails} - {""}
        if not wanted:
            return []
        self._refresh()
        out: list[Record] = []
        for stable in list(self._people):
            item = self._record(stable)
            if isinstance(item, Record) and wanted & {email_key(e) for e in record_emails(item)}:
                out.append(item)
        return out

    def changes(self, cursor: str | None) -> ChangeSet | None:
        """Changes since ``cursor`` (a connections sync token). No cursor, or an expired
        one, gives every contact (``complete``) and a new cursor."""
        self._load()
        if cursor:
            try:
                changed, deleted, token = self._delta(cursor)
            except SyncTokenExpired:
                log.info("Google sync token expired: a complete listing instead")
            else:
                items = [self._record(s) for s in dict.fromkeys(changed) if s in self._people]
                return ChangeSet(items, list(dict.fromkeys(deleted)), token)
        self._token = self._full_listing()
        self._listed = True
        return ChangeSet([self._record(s) for s in self._people], [], self._token, complete=True)

    def close(self) -> None:
        try:
            self._save()
        finally:
            self.api.close()

    # --- writing -------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        self._load()
        results: dict[str, WriteResult] = {}
        # The mirror is saved by close(), not after every batch (10k contacts would mean
        # rewriting a growing file 50 times): a run that dies before close() leaves the old
        # token, and the next listing since that token brings these writes back.
        self._write(ops, results)
        return [results.get(op.op_id) or WriteResult(op.op_id, error=_unsaid()) for op in ops]

    def _write(self, ops: Sequence[WriteOp], results: dict[str, WriteResult]) -> None:
        wanted_segments = {s for op in ops if isinstance(op, Create) for s in op.segments}
        wanted_segments |= {s for op in ops if isinstance(op, Update) for s in op.add_segments}
        group_of = self._ensure_groups(wanted_segments) if wanted_segments else {}
        updates = [op for op in ops if isinstance(op, Update)]
        # A contact the mirror holds at the version the engine read needs no read before
        # writing: if Google has changed it since, the etag sent with the update says so
        # (400 FAILED_PRECONDITION) and it is read then (see _merge_and_retry).
        stale = [
            op.record_id
            for op in updates
            if op.record_id not in self._confirmed
            and _RESOURCE.match(op.record_id)
            and (
                op.record_id not in self._people
                or op.expected_version is None
                or str(self._people[op.record_id].get("etag", "")) != op.expected_version
            )
        ]
        if stale:
            self._read([self._name(i) for i in dict.fromkeys(stale)])
        creates = [op for op in ops if isinstance(op, Create)]
        for start in range(0, len(creates), BATCH_WRITE):
            self._create(creates[start : start + BATCH_WRITE], group_of, results)
        ready: list[Update] = []
        for op in updates:
            if op.record_id not in self._people:
                results[op.op_id] = WriteResult(
                    op.op_id, error=NotFound("The contact no longer exists in Google Contacts.")
                )
                continue
            if op.expected_version is not None and not self._still_current(op):
                results[op.op_id] = WriteResult(op.op_id, error=_conflict())
                continue
            ready.append(op)
        self._update_fields([op for op in ready if op.fields], results)
        self._update_segments(
            [op for op in ready if op.op_id not in results or results[op.op_id].ok],
            group_of,
            results,
        )

    def _still_current(self, op: Update) -> bool:
        """The record changed since the engine read it only in fields this op leaves
        alone (or not at all)."""
        person = self._people[op.record_id]
        if str(person.get("etag", "")) == op.expected_version:
            return True
        seen = self._seen.get((op.record_id, op.expected_version or ""))
        now = self._record(op.record_id)
        touched = op.add_segments | op.remove_segments
        return (
            seen is not None
            and isinstance(now, Record)
            and same_fields(op.fields, seen, now)
            and seen.segments & touched == now.segments & touched
        )

    def _create(
        self, ops: Sequence[Create], group_of: dict[str, str], results: dict[str, WriteResult]
    ) -> None:
        people = []
        for op in ops:
            person, _ = merged_person({}, op.fields)
            person = {k: v for k, v in person.items() if v}
            memberships = [
                {"contactGroupMembership": {"contactGroupResourceName": group_of[s]}}
                for s in sorted(op.segments)
                if s in group_of
            ]
            if memberships:
                person["memberships"] = memberships
            people.append(person)
        try:
            created = self.api.batch_create(people, READ_FIELDS)
        except ApiRefusal as err:
            if len(ops) > 1:
                for op in ops:
                    self._create([op], group_of, results)
                return
            results[ops[0].op_id] = WriteResult(ops[0].op_id, error=_refused(err))
            return
        for op, person in zip(ops, created, strict=False):
            if not person.get("resourceName"):
                results[op.op_id] = WriteResult(op.op_id, error=_unsaid())
                continue
            stable = self._keep(person)
            results[op.op_id] = WriteResult(op.op_id, record=self._record_ok(stable))

    def _record_ok(self, stable: str) -> Record:
        item = self._record(stable)
        if isinstance(item, Unreadable):
            raise PairsyncError(item.message)
        return item

    def _update_fields(self, ops: Sequence[Update], results: dict[str, WriteResult]) -> None:
        """Updates grouped by their update mask, 200 a request, one op per contact each."""
        groups: dict[frozenset[str], list[list[Update]]] = {}
        for op in ops:
            _, fields_mask = merged_person({}, op.fields)
            chunks = groups.setdefault(frozenset(fields_mask), [[]])
            for chunk in chunks:
                if len(chunk) < BATCH_WRITE and all(o.record_id != op.record_id for o in chunk):
                    chunk.append(op)
                    break
            else:
                chunks.append([op])
        for mask, chunks in groups.items():
            for chunk in chunks:
                if chunk and mask:
                    self._update_chunk(chunk, mask, results, {}, retry=True)
                elif chunk:  # only unmapped keys: nothing to send
                    for op in chunk:
                        results[op.op_id] = WriteResult(
                            op.op_id, record=self._record_ok(op.record_id)
                        )

    def _update_chunk(
        self,
        ops: Sequence[Update],
        mask: frozenset[str],
        results: dict[str, WriteResult],
        bases: dict[str, Person],
        *,
        retry: bool,
    ) -> None:
        body: dict[str, Person] = {}
        for op in ops:
            current = bases.get(op.record_id) or self._people[op.record_id]
            person, _ = merged_person(current, op.fields)
            person["metadata"] = {"sources": [{"type": "CONTACT", "etag": source_etag(current)}]}
            body[self._name(op.record_id)] = person
        try:
            answer = self.api.batch_update(body, ",".join(sorted(mask)), READ_FIELDS)
        except StaleEtag:
            if not retry:
                for op in ops:
                    results[op.op_id] = WriteResult(op.op_id, error=_conflict())
                return
            self._merge_and_retry(ops, mask, results)
            return
        except ApiRefusal as err:
            if len(ops) > 1:
                for op in ops:
                    self._update_chunk([op], mask, results, bases, retry=retry)
                return
            results[ops[0].op_id] = WriteResult(ops[0].op_id, error=_refused(err))
            return
        for op in ops:
            written = answer.get(self._name(op.record_id))
            if not written:
                results[op.op_id] = WriteResult(op.op_id, error=_unsaid())
                continue
            stable = self._keep(written)
            results[op.op_id] = WriteResult(op.op_id, record=self._record_ok(stable))

    def _merge_and_retry(
        self, ops: Sequence[Update], mask: frozenset[str], results: dict[str, WriteResult]
    ) -> None:
        """After a stale etag: read the contacts again; send once more those whose written
        fields did not change meanwhile (merged onto the fresh person)."""
        before = {op.record_id: self._record(op.record_id) for op in ops}
        self._read([self._name(op.record_id) for op in ops])
        again: list[Update] = []
        for op in ops:
            if op.record_id not in self._people:
                results[op.op_id] = WriteResult(
                    op.op_id, error=NotFound("The contact no longer exists in Google Contacts.")
                )
                continue
            old, new = before[op.record_id], self._record(op.record_id)
            if (
                isinstance(old, Record)
                and isinstance(new, Record)
                and same_fields(op.fields, old, new)
            ):
                again.append(op)
            else:
                results[op.op_id] = WriteResult(op.op_id, error=_conflict())
        if again:
            self._update_chunk(again, mask, results, {}, retry=False)

    def _update_segments(
        self, ops: Sequence[Update], group_of: dict[str, str], results: dict[str, WriteResult]
    ) -> None:
        add: dict[str, list[str]] = {}
        remove: dict[str, list[str]] = {}
        touched: list[Update] = []
        by_name = (
            {name: rid for rid, name in self._segment_map().items()}
            if any(op.remove_segments for op in ops)
            else {}
        )
        for op in ops:
            if not (op.add_segments or op.remove_segments):
                if op.op_id not in results:
                    results[op.op_id] = WriteResult(op.op_id, record=self._record_ok(op.record_id))
                continue
            name = self._name(op.record_id)
            for segment in op.add_segments:
                if segment in group_of:
                    add.setdefault(group_of[segment], []).append(name)
            for segment in op.remove_segments - op.add_segments:
                group = group_of.get(segment) or by_name.get(segment)
                if group is not None:
                    remove.setdefault(group, []).append(name)
            touched.append(op)
        if not touched:
            return
        for group in sorted(set(add) | set(remove)):
            self.api.modify_members(group, add.get(group, []), remove.get(group, []))
        self._read([self._name(op.record_id) for op in touched])
        for op in touched:
            if op.record_id in self._people:
                results[op.op_id] = WriteResult(op.op_id, record=self._record_ok(op.record_id))
            else:
                results[op.op_id] = WriteResult(
                    op.op_id, error=NotFound("The contact no longer exists in Google Contacts.")
                )

    def _ensure_groups(self, segments: set[str]) -> dict[str, str]:
        """Segment name → contact group resource name, creating the groups missing."""
        by_name = {name: rid for rid, name in self._segment_map().items()}
        out: dict[str, str] = {}
        for segment in sorted(segments):
            rid = by_name.get(segment)
            if rid is None:
                folded = {n.casefold(): r for n, r in by_name.items()}
                rid = folded.get(segment.casefold())
            if rid is None:
                try:
                    group = self.api.create_group(segment)
                except ApiRefusal as err:
                    if err.code != 409:
                        raise Rejected(
                            f"Google Contacts refused to create the group {segment!r}: "
                            f"{err.message}",
                            raw=str(err),
                        ) from None
                    self._groups = None
                    by_name = {name: r for r, name in self._segment_map().items()}
                    rid = by_name.get(segment)
                    if rid is None:
                        continue
                else:
                    rid = str(group["resourceName"])
                    assert self._groups is not None
                    self._groups[rid] = str(group.get("name", segment))
                    by_name[segment] = rid
            out[segment] = rid
        return out


def _system(name: str) -> bool:
    return name.split("/", 1)[1] in {
        "myContacts",
        "starred",
        "friends",
        "family",
        "coworkers",
        "chatBuddies",
        "all",
        "blocked",
    }


def _conflict() -> Conflict:
    return Conflict("The contact changed in Google Contacts while syncing; it is retried.")


def _unsaid() -> PairsyncError:
    return Rejected("Google Contacts did not say what became of this contact.")


def _refused(err: ApiRefusal) -> PairsyncError:
    if err.code == 404:
        return NotFound("The contact no longer exists in Google Contacts.", raw=str(err))
    return Rejected(f"Google Contacts refused the contact: {err.message}", raw=str(err))
