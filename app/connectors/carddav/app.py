"""The CardDAV connector: the protocol over the mirror, discovery and group cards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from app.connectors.base import ChangeSet
from app.connectors.carddav.dav import (
    CARDDAV,
    DAV,
    PRODID,
    XML_HEADERS,
    _email_query_body,
    _error_names,
    parse_multistatus,
)
from app.connectors.carddav.discovery import AddressBook
from app.connectors.carddav.groups import Groups, _ensure_uid
from app.connectors.carddav.mirror import (
    WORKERS,
    _Group,
    _Invalid,
    _member_key,
    id_of,
    name_of,
)
from app.connectors.http import HttpClient, RetryPolicy, check_url
from app.connectors.vcard_text import (
    FIELDS,
    KNOWN_KEYS,
    apply_patch,
    new_card,
    parse_card,
    render,
)
from app.errors import (
    BadData,
    Conflict,
    NotFound,
    PairsyncError,
    Rejected,
    Unavailable,
)
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


def _unsaid_refusal() -> Rejected:
    return Rejected(
        "The server refused the card (HTTP 412) without saying why; it may be too large "
        "(a big photo?) or not valid for this server.",
        raw="HTTP 412",
    )


class CardDavApp(Groups):
    """Connector over one CardDAV address book."""

    info = AppInfo(
        kind="carddav",
        name="CardDAV",
        aliases=("icloud", "nextcloud", "fastmail", "radicale", "xandikos", "dav"),
        auth="password",
        capabilities=Capabilities(
            segments=True, change_feed=True, chooses_ids=True, batch_size=100
        ),
    )

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        addressbook: str | None = None,
        create: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        workers: int = WORKERS,
    ) -> None:
        self.url = check_url(url)
        self.username = username
        self.client = HttpClient(
            "The CardDAV server",
            self.url,
            auth=(username, password) if username or password else None,
            timeout=timeout,
            retry=retry,
            pool_size=max(2, workers * 2),
        )
        self.wanted = (addressbook or "").strip() or None
        self.create = (create or "").strip() or None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.workers = max(1, workers)
        self._book: AddressBook | None = None
        self._proven = False
        """The server answered for ``_book`` with our credentials (see :meth:`check`)."""
        self._entries = {}
        self._confirm_unread = False
        self._token: str | None = None
        self._sync: bool | None = None
        self._loaded = False
        self._dirty = False
        self._confirmed: set[str] = set()
        """Names whose ETag in ``_entries`` the server confirmed during this instance."""
        self._parsed: dict[str, tuple[str, Record | Unreadable]] = {}
        """The record of a card's text (fields and segments as read), by name: (text, base)."""
        self._seen: dict[tuple[str, str], Record] = {}
        """Records handed out, by (id, version): what the engine based its patches on."""
        self._based_on: dict[str, Record] = {}
        """The record each update op was applied to, by op id (to merge after a 412)."""
        self._group_map: dict[str, _Group] = {}
        self._member_map: dict[str, list[str]] = {}
        self._uid_map: dict[str, list[str]] = {}
        self._indexed = False
        """``_groups``/``_membership``/``_uids`` describe ``_entries`` as they are now."""
        self._book_path = ""
        """The book's path, unquoted (``_child`` compares hrefs with it)."""

    # --- protocol: reading -----------------------------------------------------------------

    def fields(self) -> tuple[FieldSpec, ...]:
        return FIELDS

    def schema(self) -> Schema:
        self._refresh()
        if self.group_mode:
            names = {g.name for g in self._groups.values()}
        else:
            names = set()
            for item in self._items(self._contact_names()):
                if isinstance(item, Record):
                    names |= item.segments
        return Schema(FIELDS, tuple(sorted(names)))

    def prepare(self) -> None:
        pass

    def list_versions(self) -> dict[str, str]:
        self._refresh()
        return self._versions_of(self._contact_names())

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        self._load()
        names = [name_of(rid) for rid in ids]
        stale = self._stale(names)
        if stale:
            self._read_bodies(stale)
        return self._items(names)

    def find_by_email(self, emails: Iterable[str]) -> list[Record]:
        wanted = {email_key(e) for e in emails} - {""}
        if not wanted:
            return []
        book = self._load()
        response = self.client.request(
            "REPORT",
            book.url,
            data=_email_query_body(sorted(wanted)),
            headers={**XML_HEADERS, "Depth": "1"},
            retry=True,
        )
        names: list[str] = []
        if response.status_code == 207:
            responses, _ = parse_multistatus(response.content, book.url, "Search")
            for resp in responses:
                name = self._child(resp.href)
                text = resp.text(CARDDAV, "address-data")
                etag = resp.text(DAV, "getetag")
                if name is not None and text is not None and etag:
                    self._set(name, etag.strip(), text)
                    names.append(name)
            self._index()
        else:  # the server cannot search: look through the whole book
            self._refresh()
            names = self._contact_names()
        return [
            item
            for item in self._items(names)
            if isinstance(item, Record) and wanted & {email_key(e) for e in record_emails(item)}
        ]

    def changes(self, cursor: str | None) -> ChangeSet | None:
        """Changes since ``cursor`` (a sync-token), as sync-collection reports them: changed
        cards by version (ETag), for the engine to fetch those it does not have.

        ``cursor`` None, a server without sync-collection or an expired token give a complete
        set (``ChangeSet.complete``): every card's version, so nothing is missed.
        """
        self._load()
        if cursor and self._sync is not False:
            try:
                delta, token = self._sync_collection(cursor)
            except _Invalid:
                delta, token = {}, ""
            if token and not delta:  # a quiet feed: nothing of the mirror is read
                if cursor == self._token:
                    self._confirm_all()
                    if token != self._token:
                        self._token = token
                        self._dirty = True
                self._save()
                return ChangeSet(cursor=token)
            if token:
                old_groups = dict(self._groups)
                deleted_groups = [n for n, e in delta.items() if e is None and n in old_groups]
                for name, etag in delta.items():
                    if etag is None:
                        self._drop(name)
                    else:
                        self._mark(name, etag)
                if cursor == self._token:
                    # The mirror stood at this very cursor: with the delta it is the server's
                    # state now (as after a refresh), so later writes need not re-read cards.
                    self._confirm_all()
                    if token != self._token:  # a quiet feed leaves the cache file as it is
                        self._token = token
                        self._dirty = True
                self._read_bodies(
                    [n for n in delta if n in self._entries and not self._entries[n].known]
                )
                touched = {n for n, e in delta.items() if e is not None}
                group_names = [n for n in delta if n in old_groups or n in self._groups]
                if group_names:  # members whose segments moved
                    keys: set[str] = set()
                    for n in group_names:
                        for group in (old_groups.get(n), self._groups.get(n)):
                            if group is not None:
                                keys |= {_member_key(m) for m in group.members}
                    touched |= {
                        n
                        for n, e in self._entries.items()
                        if e.group is None and _member_key(e.uid) in keys
                    }
                contacts = [
                    n
                    for n in sorted(touched)
                    if self._entries.get(n) is not None and self._entries[n].group is None
                ]
                # A version needs the card's UID and groups (known once its body was read).
                self._read_bodies([n for n in contacts if not self._entries[n].known])
                self._save()
                deleted = [
                    id_of(n) for n, e in delta.items() if e is None and n not in deleted_groups
                ]
                return ChangeSet(
                    deleted=deleted, cursor=token, versions=self._versions_of(contacts)
                )
        self._token = None  # a full read, and the mirror's token is renewed with it
        self._refresh()
        return ChangeSet(
            cursor=self._token or None,
            complete=True,
            versions=self._versions_of(self._contact_names()),
        )

    def close(self) -> None:
        self._save()
        self.client.close()

    # --- writing -------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        book = self._load()
        results: list[WriteResult | None] = [None] * len(ops)
        names: list[str] = []
        for op in ops:
            if isinstance(op, Create):
                names.append(f"{op.new_id}.vcf" if op.new_id else f"{uuid.uuid4().hex}.vcf")
            else:
                names.append(name_of(op.record_id))
        updates = [names[i] for i, op in enumerate(ops) if isinstance(op, Update)]
        self._read_bodies(self._stale(updates))

        # 1. The new text of every card, or the op's outcome right away.
        texts: dict[int, tuple[str, str | None]] = {}
        for i, op in enumerate(ops):
            try:
                planned = self._plan(op, names[i], book)
            except PairsyncError as err:
                results[i] = WriteResult(op.op_id, error=err)
                continue
            if planned is not None:
                texts[i] = planned
        # 2. PUT them, a few at a time; a 412 on an update is merged once, then a Conflict.
        answers = self._put_all({i: (names[i], *texts[i]) for i in texts})
        retry: dict[int, tuple[str, str | None]] = {}
        taken: list[int] = []
        fatal: PairsyncError | None = None
        failures = 0
        for i, answer in answers.items():
            op = ops[i]
            if isinstance(answer, PairsyncError):
                fatal = fatal or answer
                continue
            if answer.status == 412 and _error_names(answer.body):
                answer.status = 403  # a CardDAV precondition (Xandikos: valid-address-data)
            if answer.status in (200, 201, 204):
                self._written(names[i], texts[i][0], answer.etag)
            elif answer.status == 412 and isinstance(op, Update):
                retry[i] = texts[i]
            elif answer.status == 412:
                taken.append(i)
            elif answer.status in (404, 410) and isinstance(op, Update):
                self._drop(names[i])
                results[i] = WriteResult(
                    op.op_id, error=NotFound("The contact no longer exists on the server.")
                )
            else:
                error = self._refusal(answer)
                failures += isinstance(error, Unavailable)
                results[i] = WriteResult(op.op_id, error=error)
        if taken:  # 412 to If-None-Match: taken, or refused for another reason (Radicale: size)
            self._read_bodies([names[i] for i in taken])
            for i in taken:
                refusal: PairsyncError = Conflict(
                    "A contact with this id already exists on the server."
                )
                if names[i] not in self._entries:
                    refusal = _unsaid_refusal()
                results[i] = WriteResult(ops[i].op_id, error=refusal)
        if retry:
            self._read_bodies([names[i] for i in retry])
            again: dict[int, tuple[str, str | None]] = {}
            for i in retry:
                entry = self._entries.get(names[i])
                if entry is not None and entry.etag == retry[i][1]:  # not a change: a refusal
                    results[i] = WriteResult(ops[i].op_id, error=_unsaid_refusal())
                    continue
                try:
                    planned = self._plan(ops[i], names[i], book, merging=True)
                except PairsyncError as err:
                    results[i] = WriteResult(ops[i].op_id, error=err)
                    continue
                if planned is not None:
                    again[i] = planned
            for i, answer in self._put_all({i: (names[i], *again[i]) for i in again}).items():
                if isinstance(answer, PairsyncError):
                    fatal = fatal or answer
                elif answer.status in (200, 201, 204):
                    self._written(names[i], again[i][0], answer.etag)
                elif answer.status == 412:
                    results[i] = WriteResult(
                        ops[i].op_id,
                        error=Conflict(
                            "The contact keeps changing on the server while syncing; it is "
                            "retried on the next run."
                        ),
                    )
                else:
                    results[i] = WriteResult(ops[i].op_id, error=self._refusal(answer))
        unknown = [
            names[i]
            for i in range(len(ops))
            if results[i] is None and names[i] in self._entries and not self._entries[names[i]].etag
        ]
        if unknown:  # the server did not say the new ETag (it may have rewritten the card)
            self._read_bodies(unknown)
        self._index()
        if fatal is not None:
            self._save()
            raise fatal
        if failures >= 3 and failures == len(answers):
            raise Unavailable("The CardDAV server fails to save any contact right now.")

        # 3. Groups (when the book uses them): one PUT per group touched.
        group_errors = self._write_groups(ops, names, results)
        self._index()
        out: list[WriteResult] = []
        for i, op in enumerate(ops):
            done = results[i]
            if done is not None:
                out.append(done)
                continue
            item = self._item(names[i])
            if item is None:
                out.append(
                    WriteResult(op.op_id, error=NotFound("The contact is not on the server."))
                )
            elif isinstance(item, Unreadable):
                out.append(WriteResult(op.op_id, error=BadData(item.message, raw=item.raw)))
            else:
                out.append(WriteResult(op.op_id, record=item, error=group_errors.get(i)))
        return out

    def _plan(
        self, op: WriteOp, name: str, book: AddressBook, *, merging: bool = False
    ) -> tuple[str, str | None] | None:
        """(new text, If-Match ETag or None to create) — None when nothing is to be written."""
        fields = {k: v for k, v in op.fields.items() if k in KNOWN_KEYS}
        if isinstance(op, Create):
            if name in self._entries:
                raise Conflict("A contact with this id already exists on the server.")
            uid = op.new_id or name[:-4]
            card = new_card(uid, PRODID, book.new_card_version())
            segments = () if self.group_mode else op.segments
            apply_patch(card, fields, segments, is_new=True)
            return render(card), None
        entry = self._entries.get(name)
        if entry is None or entry.text is None:
            raise NotFound("The contact no longer exists on the server.")
        if entry.group is not None:
            raise NotFound("This is a group card, not a contact.")
        current = self._item(name)
        if isinstance(current, Unreadable):
            raise BadData(current.message, raw=current.raw)
        assert current is not None
        expected = op.expected_version.split(" ")[0] if op.expected_version else None
        seen: Record | None = current
        if merging:  # the card changed between our read and our PUT (412)
            seen = self._based_on.get(op.op_id)
        elif expected is not None and expected != entry.etag:  # changed since the engine read it
            seen = self._seen.get((op.record_id, op.expected_version or ""))
        if seen is None or (seen is not current and not self._same_for(op, seen, current)):
            raise Conflict(
                "The contact changed on the server while syncing; it is read again on the next run."
            )
        self._based_on[op.op_id] = seen
        card = parse_card(entry.text)
        add = () if self.group_mode else op.add_segments
        remove = () if self.group_mode else op.remove_segments
        apply_patch(card, fields, add, remove)
        _ensure_uid(card, entry.uid)
        text = render(card)
        if text == entry.text:
            return None
        return text, entry.etag

    def _same_for(self, op: Update, seen: Record, fresh: Record) -> bool:
        """Did the fields and segments ``op`` writes keep the values the engine saw?"""
        for key in op.fields:
            if seen.fields.get(key) != fresh.fields.get(key):
                return False
        return all(
            (s in seen.segments) == (s in fresh.segments)
            for s in op.add_segments | op.remove_segments
        )
