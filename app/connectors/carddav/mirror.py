"""The mirror: a local copy of the book (resource name → ETag, UID, groups, card text, plus
the collection's sync-token) kept in a cache file (``cache_file``: read in layers, so a run
decodes only what it uses), and every request that reads or writes cards. Listing asks
``sync-collection`` since the stored token, else one PROPFIND of ETags; bodies come in
``addressbook-multiget`` batches; writes are conditional PUTs."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit

from app.connectors.carddav import cache_file
from app.connectors.carddav.cache_file import _Entry, _Group
from app.connectors.carddav.dav import (
    CARDDAV,
    DAV,
    ETAG_PROPS,
    XML_HEADERS,
    DavResponse,
    _error_names,
    _multiget_body,
    _sync_body,
    _tag,
    parse_multistatus,
    scan_multistatus,
)
from app.connectors.carddav.discovery import AddressBook, Discovery
from app.connectors.decoding import decode_card
from app.connectors.http import TooLarge, size_text
from app.connectors.vcard_text import (
    RAW_LIMIT,
    Broken,
    Card,
    card_values,
    parse_card,
    unescape,
)
from app.errors import (
    PairsyncError,
    Rejected,
    Unavailable,
)
from app.model import (
    Record,
    Unreadable,
)

log = logging.getLogger(__name__)

MULTIGET_BATCH = 100
"""Cards per addressbook-multiget request (keeps every request and answer bounded)."""
WORKERS = 2
"""Requests in flight at once (PUTs of one batch, multiget batches of a full read)."""
MAX_SYNC_ROUNDS = 1000
LOCKED_TRIES = 8
VCARD_TYPE = "text/vcard; charset=utf-8"

T = TypeVar("T")

# --- ids -------------------------------------------------------------------------------------


def id_of(name: str) -> str:
    """The record id of a resource name (see the module docstring)."""
    return name[:-4] if name.endswith(".vcf") else name + "/"


def name_of(record_id: str) -> str:
    return record_id[:-1] if record_id.endswith("/") else record_id + ".vcf"


def _member_key(value: str) -> str:
    """A MEMBER value or a UID, compared without ``urn:uuid:`` and case."""
    value = value.strip()
    if value[:9].lower() == "urn:uuid:":
        value = value[9:]
    return value.casefold()


def _member_value(uid: str) -> str:
    return uid if uid[:4].lower() == "urn:" else f"urn:uuid:{uid}"


def _describe_card(entry: _Entry, card: Card | None) -> None:
    """Fill ``uid``/``group`` from the entry's parsed text (None: broken, a plain card)."""
    entry.known = True
    entry.uid, entry.group = "", None
    if entry.text is None or card is None:
        return
    kind, name, members, prop = "", "", [], "MEMBER"
    for line in card.lines:
        if line.name == "UID" and not entry.uid:
            entry.uid = unescape(line.value).strip()
        elif line.name in ("KIND", "X-ADDRESSBOOKSERVER-KIND"):
            kind = line.value.strip().lower()
        elif line.name in ("MEMBER", "X-ADDRESSBOOKSERVER-MEMBER"):
            members.append(line.value.strip())
            prop = line.name
        elif line.name == "FN" and not name:
            name = unescape(line.value).strip()
    if kind == "group":
        if not members:
            prop = "MEMBER" if card.version.startswith("4") else "X-ADDRESSBOOKSERVER-MEMBER"
        entry.group = _Group(name or "(unnamed group)", tuple(members), prop)


@dataclass(slots=True)
class _Body:
    etag: str
    text: str | None
    error: str | None = None


@dataclass(slots=True)
class _PutResult:
    status: int
    etag: str | None
    body: bytes


class _Invalid(Exception):
    """The stored sync-token is no longer valid."""


class _NoSync(Exception):
    """The server does not do sync-collection on this book."""


class Mirror(Discovery):
    """Reads the book into the mirror, answers from it, writes cards (see the docstring)."""

    cache_dir: Path | None
    workers: int
    _entry_map: dict[str, _Entry]
    _unread: cache_file.Index | None
    """The cache file's index, not decoded yet (see the module docstring)."""
    _confirm_unread: bool
    """Every entry of ``_unread`` is confirmed once decoded (a quiet feed confirmed them)."""
    _token: str | None
    _sync: bool | None
    _loaded: bool
    _dirty: bool
    _confirmed: set[str]
    _parsed: dict[str, tuple[str, Record | Unreadable]]
    _seen: dict[tuple[str, str], Record]
    _group_map: dict[str, _Group]
    _member_map: dict[str, list[str]]
    _uid_map: dict[str, list[str]]
    _indexed: bool

    # --- the mirror ----------------------------------------------------------------------

    @property
    def _entries(self) -> dict[str, _Entry]:
        """Resource name → entry; the cache file's index is decoded on first use."""
        if self._unread is not None:
            self._decode_index()
        return self._entry_map

    @_entries.setter
    def _entries(self, entries: dict[str, _Entry]) -> None:
        self._entry_map, self._unread = entries, None

    def _decode_index(self) -> None:
        unread, self._unread = self._unread, None
        assert unread is not None
        try:
            self._entry_map = unread()
        except (ValueError, KeyError, TypeError, AttributeError):  # damaged: a full read
            log.warning("CardDAV cache damaged: the address book is read again")
            self._entry_map, self._token, self._sync = {}, None, None
            return
        if self._confirm_unread:
            self._confirmed.update(self._entry_map)
        self._indexed = False

    def _confirm_all(self) -> None:
        """The server just said every entry of the mirror is current (its ETag)."""
        if self._unread is not None:
            self._confirm_unread = True  # no need to decode the index for that
        else:
            self._confirmed.update(self._entry_map)

    def _stale(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` whose text must be read from the server before use."""
        entries = self._entries
        return [
            n
            for n in dict.fromkeys(names)
            if (entry := entries.get(n)) is None or n not in self._confirmed or entry.text is None
        ]

    def _cache_file(self) -> Path | None:
        if self.cache_dir is None or self._book is None:
            return None
        key = hashlib.sha256(f"{self._book.url}\n{self.username}".encode()).hexdigest()[:24]
        return self.cache_dir / f"carddav-{key}.json"

    def _load(self) -> AddressBook:
        book = self.resolve()
        if self._loaded:
            return book
        self._loaded = True
        path = self._cache_file()
        if path is None:
            return book
        try:
            head, unread = cache_file.read(path.read_bytes())
            if head.get("book") != book.url:
                return book
            token, sync = head.get("token") or None, head.get("sync")
            versions = tuple(str(v) for v in head.get("versions", ()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return book  # no mirror: a full read
        self._unread, self._confirm_unread = unread, False
        self._token, self._sync = token, sync
        book = AddressBook(book.url, book.name, versions, bool(sync))
        self._book = book
        self._indexed = False
        return book

    def _save(self) -> None:
        path = self._cache_file()
        if path is None or not self._dirty or self._book is None:
            return
        head = {
            "book": self._book.url,
            "token": self._token,
            "sync": self._sync,
            "versions": list(self._book.vcard_versions),
        }
        try:
            cache_file.write(path, head, self._entries)
            self._dirty = False
        except OSError as err:  # a cache that cannot be written only costs a full read
            log.warning("CardDAV cache not saved (%s)", err.strerror)

    def _set(self, name: str, etag: str, text: str | None) -> _Entry:
        entry = _Entry(etag, text)
        if text is not None:
            self._describe(name, entry)
        self._entries[name] = entry
        self._confirmed.add(name)
        self._dirty = True
        self._indexed = False
        return entry

    def _describe(self, name: str, entry: _Entry) -> None:
        """Fill ``entry.uid``/``group`` and the record of its text, parsing the text once."""
        assert entry.text is not None
        card, base = self._read_card(name, entry.text)
        _describe_card(entry, card)
        self._parsed[name] = (entry.text, base)

    def _drop(self, name: str) -> None:
        if self._entries.pop(name, None) is not None:
            self._dirty = True
            self._indexed = False
        self._confirmed.discard(name)

    def _index(self) -> None:
        """Groups, memberships and UIDs of the mirror (after any change to it)."""
        if self._indexed:
            return
        entries = self._entries
        self._indexed = True
        groups: dict[str, _Group] = {}
        membership: dict[str, list[str]] = {}
        uids: dict[str, list[str]] = {}
        for name in sorted(entries):
            entry = entries[name]
            if entry.group is not None:
                groups[name] = entry.group
            elif entry.uid:
                uids.setdefault(_member_key(entry.uid), []).append(name)
        for group in groups.values():
            for member in group.members:
                names = membership.setdefault(_member_key(member), [])
                if group.name not in names:
                    names.append(group.name)
        self._group_map, self._member_map, self._uid_map = groups, membership, uids

    @property
    def _groups(self) -> dict[str, _Group]:
        """Group cards by resource name, as the mirror is now."""
        self._index()
        return self._group_map

    @property
    def _membership(self) -> dict[str, list[str]]:
        """Member key (UID) → names of the groups it is in, as the mirror is now."""
        self._index()
        return self._member_map

    @property
    def _uids(self) -> dict[str, list[str]]:
        """UID key → resource names of the contact cards with it, as the mirror is now."""
        self._index()
        return self._uid_map

    @property
    def group_mode(self) -> bool:
        return bool(self._groups)

    def _name_url(self, name: str) -> str:
        assert self._book is not None
        return self._book.url + quote(name, safe="")

    def _name_path(self, name: str) -> str:
        return urlsplit(self._name_url(name)).path

    def _child(self, href: str) -> str | None:
        """The resource name of a member of the book, or None for anything else."""
        assert self._book is not None
        url = self._book.url
        if href.startswith(url):  # the usual answer: no parsing of thousands of hrefs
            rest = href[len(url) :]
            if rest and not any(ch in rest for ch in "%/?#"):
                return rest
        if not self._book_path:
            self._book_path = unquote(self._book.path)
        path = unquote(urlsplit(href).path)
        base = self._book_path
        if not path.startswith(base):
            return None
        rest = path[len(base) :]
        if not rest or "/" in rest:
            return None
        return rest

    # --- reading from the server ---------------------------------------------------------

    def _sync_collection(self, token: str) -> tuple[dict[str, str | None], str]:
        """Changes since ``token`` ("" = everything): name → ETag (None: deleted)."""
        assert self._book is not None
        changes: dict[str, str | None] = {}
        initial = token
        for _ in range(MAX_SYNC_ROUNDS):
            response = self.client.request(
                "REPORT",
                self._book.url,
                data=_sync_body(token),
                headers={**XML_HEADERS, "Depth": "0"},
                retry=True,
            )
            status = response.status_code
            if status != 207:
                if "valid-sync-token" in _error_names(response.content) and token:
                    raise _Invalid
                if status in (400, 403, 404, 405, 409, 412, 415, 501) and not token:
                    raise _NoSync
                if status in (403, 409, 412) and token:
                    raise _Invalid
                raise Unavailable(
                    f"The CardDAV server failed to list changes (HTTP {status}).",
                    raw=response.text[:300],
                )
            truncated = False

            def each(resp: DavResponse) -> None:
                nonlocal truncated
                name = self._child(resp.href)
                if name is None:
                    if resp.status == 507:
                        truncated = True
                    return
                etag = resp.text(DAV, "getetag")
                if resp.status == 404 or (etag is None and resp.status not in (None, 200)):
                    changes[name] = None
                elif etag:
                    changes[name] = etag.strip()

            new_token = scan_multistatus(response.content, self._book.url, "Listing changes", each)
            if not new_token:
                if not initial:
                    raise _NoSync
                raise Unavailable("The CardDAV server answered a listing without a sync-token.")
            token = new_token
            if not truncated:
                return changes, token
        raise Unavailable("The CardDAV server never finished listing changes.")

    def _propfind_listing(self) -> dict[str, str]:
        assert self._book is not None
        response = self._propfind(self._book.url, ETAG_PROPS, "1")
        if response.status_code == 404:
            raise Unavailable(f"The address book {self._book.url} no longer exists on the server.")
        if response.status_code != 207:
            raise Unavailable(
                f"The CardDAV server failed to list the address book (HTTP {response.status_code})."
            )
        out: dict[str, str] = {}

        def each(resp: DavResponse) -> None:
            name = self._child(resp.href)
            rtype = resp.props.get(_tag(DAV, "resourcetype"))
            if name is None or (rtype is not None and len(rtype)):
                return
            etag = resp.text(DAV, "getetag")
            if etag:
                out[name] = etag.strip()

        scan_multistatus(response.content, self._book.url, "Listing", each)
        return out

    def _full_listing(self) -> tuple[dict[str, str], str | None]:
        if self._sync is not False:
            try:
                changes, token = self._sync_collection("")
                self._sync = True
                return {n: e for n, e in changes.items() if e is not None}, token
            except _NoSync:
                self._sync = False
                self._dirty = True
        return self._propfind_listing(), None

    def _apply_listing(self, listing: Mapping[str, str]) -> None:
        for name in list(self._entries):
            if name not in listing:
                self._drop(name)
        for name, etag in listing.items():
            self._mark(name, etag)

    def _mark(self, name: str, etag: str) -> None:
        entry = self._entries.get(name)
        if entry is None or entry.etag != etag:
            self._entries[name] = _Entry(etag)
            self._dirty = True
            self._indexed = False
        self._confirmed.add(name)

    def _refresh(self) -> None:
        """Bring the mirror up to date with the server (one request when nothing changed)."""
        self._load()
        entries = self._entries  # decoded first: a damaged index drops the token with it
        if self._token and self._sync is not False:
            try:
                changes, token = self._sync_collection(self._token)
                for name, etag in changes.items():
                    if etag is None:
                        self._drop(name)
                    else:
                        self._mark(name, etag)
                self._confirm_all()
                if token != self._token:
                    self._token = token
                    self._dirty = True
            except _Invalid:
                log.info("CardDAV sync-token no longer valid: full listing")
                self._token = None
        if not self._token or self._sync is False:
            listing, full_token = self._full_listing()
            self._apply_listing(listing)
            self._token = full_token
            self._dirty = True
        self._read_bodies([n for n, e in entries.items() if not e.known])
        self._index()
        self._save()

    def _parallel(self, work: Callable[[T], None], items: Sequence[T]) -> None:
        if len(items) <= 1 or self.workers == 1:
            for item in items:
                work(item)
            return
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for future in [pool.submit(work, item) for item in items]:
                future.result()

    def _multiget(self, names: Sequence[str]) -> dict[str, _Body | None]:
        """name → what the server sent, or None when it has no such card.

        A batch the server fails to answer (Xandikos answers 500 to a whole multiget when one
        card in it is damaged) is split in halves until the card at fault is alone; that one
        is asked for with GET, and a failure there is kept as that card's error.
        """
        assert self._book is not None
        book_url = self._book.url
        got: dict[str, _Body | None] = {}

        def one(chunk: Sequence[str]) -> None:
            try:
                response = self.client.request(
                    "REPORT",
                    book_url,
                    data=_multiget_body(self._name_path(n) for n in chunk),
                    headers={**XML_HEADERS, "Depth": "1"},
                    retry=True,
                )
            except TooLarge:  # over the size cap: halves, down to the one card at fault
                response = None
            if response is None or response.status_code != 207:
                if len(chunk) == 1:
                    got[chunk[0]] = self._get(chunk[0])
                else:
                    half = len(chunk) // 2
                    one(chunk[:half])
                    one(chunk[half:])
                return
            responses, _ = parse_multistatus(response.content, book_url, "Reading")
            for resp in responses:
                child = self._child(resp.href)
                if child is None:
                    continue
                text = resp.text(CARDDAV, "address-data")
                etag = resp.text(DAV, "getetag")
                if resp.status == 404 or text is None:
                    got.setdefault(child, None)
                else:
                    got[child] = _Body((etag or "").strip(), text)
            for name in chunk:
                got.setdefault(name, None)

        chunks = [names[i : i + MULTIGET_BATCH] for i in range(0, len(names), MULTIGET_BATCH)]
        self._parallel(one, chunks)
        return got

    def _get(self, name: str) -> _Body | None:
        try:
            response = self.client.request("GET", self._name_url(name), retry=True)
        except TooLarge:
            return _Body(
                "",
                None,
                f"The card {name} is larger than {size_text(self.client.max_bytes)}, the most "
                "Pairsync reads at once; it is left as it is on the server.",
            )
        if response.status_code in (404, 410):
            return None
        etag = response.headers.get("ETag", "").strip()
        if response.status_code != 200:
            return _Body(
                etag,
                None,
                f"The CardDAV server could not send the card {name} (HTTP "
                f"{response.status_code}); it may be damaged on the server.",
            )
        return _Body(etag, decode_card(response.content))

    def _read_bodies(self, names: Sequence[str]) -> None:
        """Fetch and describe the cards ``names`` (absent ones leave the mirror)."""
        if not names:
            return
        for name, got in self._multiget(list(names)).items():
            if got is None:
                self._drop(name)
            elif got.text is not None:
                self._set(name, got.etag, got.text)
            else:
                old = self._entries.get(name)
                entry = _Entry(got.etag or (old.etag if old else ""), known=True, error=got.error)
                self._entries[name] = entry
                self._confirmed.add(name)
                self._dirty = True
                self._indexed = False
        self._index()

    # --- records ---------------------------------------------------------------------------

    def _version(self, name: str, entry: _Entry) -> str:
        version = entry.etag
        if entry.uid and len(self._uids.get(_member_key(entry.uid), ())) > 1:
            return version + " dup"
        if self.group_mode and entry.uid:
            groups = self._membership.get(_member_key(entry.uid))
            if groups:
                digest = hashlib.sha1("\n".join(sorted(groups)).encode()).hexdigest()[:12]
                version += f" g:{digest}"
        return version

    def _item(self, name: str) -> Record | Unreadable | None:
        """The record for a card of the mirror (None for group cards and unknown names)."""
        entry = self._entries.get(name)
        if entry is None or entry.group is not None:
            return None
        rid = id_of(name)
        version = self._version(name, entry)
        if entry.error:
            return Unreadable(rid, version, entry.error)
        if entry.text is None:
            return None
        cached = self._parsed.get(name)
        if cached is None or cached[0] != entry.text:
            cached = (entry.text, self._read_card(name, entry.text)[1])
            self._parsed[name] = cached
        base = cached[1]
        if isinstance(base, Unreadable):
            return Unreadable(rid, version, base.message, base.raw)
        if version.endswith(" dup"):
            others = [n for n in self._uids[_member_key(entry.uid)] if n != name]
            return Unreadable(
                rid,
                version,
                f"Duplicate UID {entry.uid!r} on the CardDAV server: the card {name} and "
                f"{', '.join(others)} share it; keep one (merge them in your contacts app).",
                entry.text[:RAW_LIMIT],
            )
        segments = base.segments
        if self.group_mode:
            segments = frozenset(self._membership.get(_member_key(entry.uid), ()))
        record = Record(rid, version, dict(base.fields), segments)
        self._seen[(rid, version)] = Record(rid, version, dict(base.fields), segments)
        return record

    def _read_card(self, name: str, text: str) -> tuple[Card | None, Record | Unreadable]:
        """The parsed card (None when broken) and its record; the version is set by
        :meth:`_item`."""
        rid = id_of(name)
        try:
            card = parse_card(text)
        except Broken as err:
            where = f"line {err.line}: " if err.line else ""
            return None, Unreadable(
                rid,
                "",
                f"The card {name} on the CardDAV server is not a valid vCard "
                f"({where}{err.reason}).",
                text[:RAW_LIMIT],
            )
        except Exception as err:  # never crash a read on one odd card
            return None, self._odd(name, text, err)
        try:
            fields, categories = card_values(card)
        except Exception as err:
            return card, self._odd(name, text, err)
        return card, Record(rid, "", fields, categories)

    @staticmethod
    def _odd(name: str, text: str, err: Exception) -> Unreadable:
        return Unreadable(
            id_of(name),
            "",
            f"The card {name} on the CardDAV server is not a valid vCard "
            f"({type(err).__name__}: {err}).",
            text[:RAW_LIMIT],
        )

    def _contact_names(self) -> list[str]:
        return [n for n, e in self._entries.items() if e.group is None]

    def _items(self, names: Sequence[str]) -> list[Record | Unreadable]:
        out: list[Record | Unreadable] = []
        for name in names:
            item = self._item(name)
            if item is not None:
                out.append(item)
        return out

    def _versions_of(self, names: Iterable[str]) -> dict[str, str]:
        self._index()
        return {id_of(n): self._version(n, self._entries[n]) for n in names if n in self._entries}

    # --- writing cards ---------------------------------------------------------------------

    def _put(self, name: str, text: str, *, etag: str | None) -> _PutResult:
        headers = {"Content-Type": VCARD_TYPE}
        if etag is None:
            headers["If-None-Match"] = "*"
        else:
            headers["If-Match"] = etag
        for attempt in range(LOCKED_TRIES):
            response = self.client.request(
                "PUT", self._name_url(name), data=text.encode("utf-8"), headers=headers, retry=False
            )
            # 423: the collection is busy with another write (Xandikos commits one at a time);
            # nothing was stored, so sending the same conditional PUT again is safe.
            if response.status_code != 423 or attempt == LOCKED_TRIES - 1:
                break
            time.sleep(0.02 * 2**attempt)
        new_etag = response.headers.get("ETag")
        if new_etag and new_etag.startswith("W/"):
            new_etag = None  # a weak ETag cannot be used for If-Match later
        return _PutResult(
            response.status_code, new_etag.strip() if new_etag else None, response.content
        )

    def _refusal(self, result: _PutResult) -> PairsyncError:
        names = _error_names(result.body)
        raw = f"HTTP {result.status}: {result.body[:300].decode('utf-8', 'replace')}"
        if "no-uid-conflict" in names:
            return Rejected("Another contact on the server already has this card's UID.", raw=raw)
        if "max-resource-size" in names or result.status == 413:
            return Rejected("The card is too large for the server (a big photo?).", raw=raw)
        if "valid-address-data" in names or "supported-address-data" in names:
            return Rejected("The server refused the card as invalid vCard data.", raw=raw)
        if result.status >= 500:
            return Unavailable(
                f"The server failed while saving this contact (HTTP {result.status}); it is "
                "tried again on the next run.",
                raw=raw,
            )
        return Rejected(f"The server refused the contact (HTTP {result.status}).", raw=raw)

    def _put_all(
        self, jobs: Mapping[int, tuple[str, str, str | None]]
    ) -> dict[int, _PutResult | PairsyncError]:
        """PUT every job; the answer (or the error that stops the whole write) by index.

        The first PUT goes alone, so the server answers the ops in their order at least
        that far and a server that refuses us (401, 429, down) is told so once, not once
        per card; after such an error no further PUT of the batch is sent (the write
        raises it, and nothing unsent was applied). The rest go ``workers`` at a time.
        """
        answers: dict[int, _PutResult | PairsyncError] = {}
        stopped = threading.Event()

        def one(i: int) -> None:
            if stopped.is_set():
                return
            name, text, etag = jobs[i]
            try:
                answers[i] = self._put(name, text, etag=etag)
            except PairsyncError as err:  # AuthExpired, RateLimited, Unavailable
                answers[i] = err
                stopped.set()

        order = sorted(jobs)
        if order:
            one(order[0])
        self._parallel(one, order[1:])
        return answers

    def _written(self, name: str, text: str, etag: str | None) -> None:
        self._set(name, etag or "", text)
