"""CardDAV address books (RFC 6352): iCloud, Nextcloud, Fastmail, Radicale, Xandikos…

Finding the address book
------------------------
From a bare host (``https://contacts.icloud.com``) or any URL on the server: RFC 6764
``/.well-known/carddav`` → ``DAV:current-user-principal`` → ``CARDDAV:addressbook-home-set``
→ the collections under the home whose resourcetype is ``CARDDAV:addressbook``. The setting
``addressbook`` picks one (full URL, path, last path segment or display name); without it the
only book is used, and several give a ConfigError listing them. ``create`` makes a new book
with an extended MKCOL (RFC 5689). A URL that is itself an address book is used as it is.
A book given as a full URL or path is used without any request (every sync run starts so);
:meth:`CardDavApp.check`, run when the account is added, proves it and the password with one
``PROPFIND Depth: 0``, as discovery proves them with its own requests.
:meth:`CardDavApp.list_addressbooks` and :meth:`CardDavApp.create_addressbook` are there for
the wizard.

Ids and versions
----------------
A record's id is its resource name in the book without ``.vcf`` (``ann.vcf`` → ``ann``); a
name without that extension gets a trailing ``/`` so the mapping stays one-to-one. We choose
the id of new cards (``<id>.vcf``, ``UID:<id>``), so crash recovery can fetch by id. The
version is the ETag, with ``" g:<hash>"`` appended when the card belongs to group cards (so a
membership change, which does not touch the card, still changes the version) and ``" dup"``
when another card has the same UID.

Reading
-------
The connector keeps a small mirror of the book in a cache file (resource name → ETag, UID,
group membership and the card text, plus the collection's sync-token; no secret). Listing
asks for ``sync-collection`` (RFC 6578) since the stored token — one request that returns only
what changed — and falls back to one ``PROPFIND Depth: 1`` of ETags on servers without it.
An invalid or expired token (403/409/412 with ``DAV:valid-sync-token``) means a full listing,
compared with the mirror, so no change is lost. Bodies of new or changed cards are fetched with
``addressbook-multiget`` in batches of :data:`MULTIGET_BATCH`; ``fetch()`` of a card whose ETag
the listing just confirmed is answered from the mirror. Carriage returns inside
``address-data`` are kept (XML parsers would fold CRLF into LF), so cards are edited as the
server stores them. The mirror is only an optimisation: a missing or damaged file means a full
read, and every entry is checked against the server's ETag before use.

Segments: when the book holds group cards (``KIND:group`` + ``MEMBER`` in vCard 4.0, or
iCloud's ``X-ADDRESSBOOKSERVER-KIND:group`` + ``X-ADDRESSBOOKSERVER-MEMBER``), groups are the
segments and group cards are not records; otherwise ``CATEGORIES`` values are. Broken cards
and cards sharing a UID are :class:`Unreadable` with a message saying which.

Writing
-------
``PUT`` with ``If-None-Match: *`` to create and ``If-Match: <etag>`` to update, a few at a
time in parallel (the first of a batch alone; once the server refuses us as a whole, 401,
429 or unreachable, no further PUT of the batch is sent). Updates patch the server's own
text (``vcard_text.apply_patch``): untouched properties (PHOTO, X- properties, ``itemN.``
groups with ``X-ABLabel``…) stay byte for byte, in the card's own vCard version. A 412
means the card changed on the server: it is read again and, if none of the fields we patch
changed meanwhile, the patch is applied to the fresh card once more (once); otherwise, or on
a second 412, the op fails with :class:`Conflict`. Writes are never retried blindly. A card
the server refuses (4xx) fails that op alone (:class:`Rejected`); 401, 429 and unreachable
servers raise for the whole app.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit
from xml.sax.saxutils import escape as xml_escape

import requests

from app.connectors.base import ChangeSet
from app.connectors.http import HttpClient, RetryPolicy, check_url
from app.connectors.vcard_text import (
    FIELDS,
    KNOWN_KEYS,
    RAW_LIMIT,
    Broken,
    Card,
    Line,
    apply_patch,
    card_values,
    decode_bytes,
    escape,
    format_line,
    new_card,
    parse_card,
    render,
    unescape,
)
from app.errors import (
    BadData,
    ConfigError,
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

log = logging.getLogger(__name__)

DAV = "DAV:"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
PRODID = "-//Pairsync//CardDAV//EN"
MULTIGET_BATCH = 100
"""Cards per addressbook-multiget request (keeps every request and answer bounded)."""
WORKERS = 2
"""Requests in flight at once (PUTs of one batch, multiget batches of a full read)."""
CACHE_FORMAT = 1
CACHE_TEXT_LIMIT = 256 * 1024
"""Card texts longer than this are not kept in the cache file (fetched when needed)."""
MAX_SYNC_ROUNDS = 1000
LOCKED_TRIES = 8
XML_HEADERS = {"Content-Type": "application/xml; charset=utf-8"}
VCARD_TYPE = "text/vcard; charset=utf-8"

_ADDRESS_DATA_RE = re.compile(
    rb"(<(?:[A-Za-z_][\w.-]*:)?address-data\b[^>]*(?<!/)>)(.*?)(</(?:[A-Za-z_][\w.-]*:)?address-data\s*>)",
    re.DOTALL,
)
_SLUG_RE = re.compile(r"[^a-z0-9]+")

T = TypeVar("T")


def _tag(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


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


# --- XML -------------------------------------------------------------------------------------


@dataclass(slots=True)
class DavResponse:
    href: str
    """Absolute URL of the resource."""
    status: int | None
    props: dict[str, ET.Element] = field(default_factory=dict)
    """Properties found (status 200), by Clark name."""

    def text(self, ns: str, name: str) -> str | None:
        el = self.props.get(_tag(ns, name))
        return None if el is None else (el.text or "")

    def hrefs(self, ns: str, name: str) -> list[str]:
        el = self.props.get(_tag(ns, name))
        if el is None:
            return []
        return [(h.text or "").strip() for h in el.iter(_tag(DAV, "href")) if h.text]


def _status_code(text: str | None) -> int | None:
    parts = (text or "").split()
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


def _keep_cr(match: re.Match[bytes]) -> bytes:
    body = match.group(2)
    if b"<![CDATA[" in body:
        return match.group(0)
    return match.group(1) + body.replace(b"\r", b"&#13;") + match.group(3)


def _checked_xml(content: bytes, what: str) -> bytes:
    """``content`` ready for the XML parser: no DOCTYPE, carriage returns in address-data kept."""
    head = content[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise Unavailable(f"{what}: the server sent XML with a DOCTYPE, which is not accepted.")
    if b"address-data" in content:  # listings have none: skip the regex over them
        content = _ADDRESS_DATA_RE.sub(_keep_cr, content)
    return content


def _not_xml(what: str, err: ET.ParseError, content: bytes) -> Unavailable:
    return Unavailable(
        f"{what}: the server's answer is not valid XML ({err}).",
        raw=content[:300].decode("utf-8", "replace"),
    )


def parse_xml(content: bytes, what: str) -> ET.Element:
    content = _checked_xml(content, what)
    try:
        return ET.fromstring(content)
    except ET.ParseError as err:
        raise _not_xml(what, err, content) from None


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _absolute(base_url: str, origin: str, href: str) -> str:
    """``urljoin(base_url, href)``, without its cost for the usual absolute path (a listing
    of a big book has thousands of hrefs)."""
    if href[:1] == "/" and href[:2] != "//" and "/." not in href:
        return origin + href
    return urljoin(base_url, href)


_RESPONSE, _HREF, _STATUS = _tag(DAV, "response"), _tag(DAV, "href"), _tag(DAV, "status")
_PROPSTAT, _PROP, _SYNC_TOKEN = _tag(DAV, "propstat"), _tag(DAV, "prop"), _tag(DAV, "sync-token")
_FEED = 1 << 16
"""Bytes handed to the streaming XML parser at a time."""


def _dav_response(el: ET.Element, base_url: str, origin: str) -> DavResponse | None:
    href = (el.findtext(_HREF) or "").strip()
    if not href:
        return None
    item = DavResponse(_absolute(base_url, origin, href), _status_code(el.findtext(_STATUS)))
    for propstat in el.iter(_PROPSTAT):
        code = _status_code(propstat.findtext(_STATUS))
        prop = propstat.find(_PROP)
        if prop is None or (code is not None and not 200 <= code < 300):
            continue
        for prop_el in prop:
            item.props[prop_el.tag] = prop_el
    return item


def scan_multistatus(
    content: bytes, base_url: str, what: str, each: Callable[[DavResponse], None]
) -> str:
    """Hand every response of a 207 answer to ``each``, in order; the answer's
    ``DAV:sync-token`` (or "").

    The answer is parsed as a stream and each response's elements are let go once it is
    handled, so a listing of thousands of cards never holds all their elements at once
    (less memory, and fewer garbage-collector passes over the whole process).
    """
    content = _checked_xml(content, what)
    origin = _origin(base_url)
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    root: ET.Element | None = None
    depth = 0
    token: str | None = None

    def emit(el: ET.Element) -> None:
        for found in el.iter(_RESPONSE):  # document order, as ``root.iter`` would give
            item = _dav_response(found, base_url, origin)
            if item is not None:
                each(item)

    def handle() -> None:
        nonlocal root, depth, token
        for pair in parser.read_events():
            event, el = pair[0], pair[-1]
            if not isinstance(el, ET.Element):  # only start and end events were asked for
                continue
            if event == "start":
                if root is None:
                    root = el
                depth += 1
                continue
            depth -= 1
            if root is None:
                continue
            if depth == 1:  # a child of the root, complete: handled, then let go
                if el.tag == _SYNC_TOKEN and token is None:
                    token = el.text or ""
                if root.tag != _RESPONSE:
                    emit(el)
                    root.remove(el)
            elif depth == 0 and root.tag == _RESPONSE:  # a bare response, not a multistatus
                emit(root)

    try:
        for start in range(0, len(content), _FEED):
            parser.feed(content[start : start + _FEED])
            handle()
        parser.close()
        handle()
    except ET.ParseError as err:
        raise _not_xml(what, err, content) from None
    return (token or "").strip()


def parse_multistatus(content: bytes, base_url: str, what: str) -> tuple[list[DavResponse], str]:
    """The responses of a 207 answer and its ``DAV:sync-token`` (or "")."""
    out: list[DavResponse] = []
    token = scan_multistatus(content, base_url, what, out.append)
    return out, token


def _error_names(content: bytes) -> list[str]:
    """Local names of the preconditions in a WebDAV ``DAV:error`` body, if it is one."""
    if b"error" not in content[:2000]:
        return []
    try:
        root = parse_xml(content, "error")
    except PairsyncError:
        return []
    return [el.tag.rsplit("}", 1)[-1] for el in root]


def _propfind_body(*props: tuple[str, str]) -> str:
    prefixes = {DAV: "d", CARDDAV: "c"}
    inner = "".join(f"<{prefixes[ns]}:{name}/>" for ns, name in props)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:propfind xmlns:d="DAV:" xmlns:c="{CARDDAV}"><d:prop>{inner}</d:prop></d:propfind>'
    )


DISCOVERY_PROPS = _propfind_body(
    (DAV, "current-user-principal"),
    (CARDDAV, "addressbook-home-set"),
    (DAV, "resourcetype"),
    (DAV, "displayname"),
    (DAV, "sync-token"),
    (CARDDAV, "supported-address-data"),
)
BOOK_PROPS = _propfind_body(
    (DAV, "resourcetype"),
    (DAV, "displayname"),
    (DAV, "sync-token"),
    (CARDDAV, "supported-address-data"),
)
ETAG_PROPS = _propfind_body((DAV, "resourcetype"), (DAV, "getetag"))


def _sync_body(token: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:">'
        f"<d:sync-token>{xml_escape(token)}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def _multiget_body(paths: Iterable[str]) -> str:
    hrefs = "".join(f"<d:href>{xml_escape(p)}</d:href>" for p in paths)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<c:addressbook-multiget xmlns:d="DAV:" xmlns:c="{CARDDAV}">'
        f"<d:prop><d:getetag/><c:address-data/></d:prop>{hrefs}</c:addressbook-multiget>"
    )


def _email_query_body(emails: Iterable[str]) -> str:
    filters = "".join(
        '<c:prop-filter name="EMAIL"><c:text-match collation="i;unicode-casemap" '
        f'match-type="contains">{xml_escape(e)}</c:text-match></c:prop-filter>'
        for e in emails
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<c:addressbook-query xmlns:d="DAV:" xmlns:c="{CARDDAV}">'
        "<d:prop><d:getetag/><c:address-data/></d:prop>"
        f'<c:filter test="anyof">{filters}</c:filter></c:addressbook-query>'
    )


def _mkcol_body(name: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:mkcol xmlns:d="DAV:" xmlns:c="{CARDDAV}"><d:set><d:prop>'
        "<d:resourcetype><d:collection/><c:addressbook/></d:resourcetype>"
        f"<d:displayname>{xml_escape(name)}</d:displayname>"
        "</d:prop></d:set></d:mkcol>"
    )


# --- address books -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressBook:
    url: str
    name: str
    vcard_versions: tuple[str, ...] = ()
    """What ``supported-address-data`` advertises (empty: not said)."""
    sync: bool = False
    """The collection has a ``DAV:sync-token`` (sync-collection works)."""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def new_card_version(self) -> str:
        """vCard 3.0 unless the server says it takes only 4.0 (3.0 is what every client reads)."""
        if self.vcard_versions and "3.0" not in self.vcard_versions:
            return "4.0" if "4.0" in self.vcard_versions else self.vcard_versions[0]
        return "3.0"


def _book_from(resp: DavResponse) -> AddressBook | None:
    rtype = resp.props.get(_tag(DAV, "resourcetype"))
    if rtype is None or rtype.find(_tag(CARDDAV, "addressbook")) is None:
        return None
    url = resp.href if resp.href.endswith("/") else resp.href + "/"
    name = (resp.text(DAV, "displayname") or "").strip()
    if not name:
        name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    versions: list[str] = []
    data = resp.props.get(_tag(CARDDAV, "supported-address-data"))
    if data is not None:
        for el in data:
            version = el.get("version")
            if version and version not in versions:
                versions.append(version)
    return AddressBook(url, name, tuple(versions), resp.text(DAV, "sync-token") is not None)


def _slug(name: str) -> str:
    return _SLUG_RE.sub("-", name.casefold()).strip("-") or uuid.uuid4().hex[:12]


# --- the mirror ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    name: str
    members: tuple[str, ...]
    """MEMBER values as written (``urn:uuid:…``)."""
    prop: str
    """The property naming members: MEMBER or X-ADDRESSBOOKSERVER-MEMBER."""


@dataclass(slots=True)
class _Entry:
    """What we know of one resource of the book, for one ETag."""

    etag: str
    text: str | None = None
    known: bool = False
    """``uid`` and ``group`` describe this ETag's card."""
    uid: str = ""
    group: _Group | None = None
    error: str | None = None
    """Why the server could not send this card (it stays unreadable until it changes)."""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"e": self.etag}
        if self.known:
            out["k"] = 1
            out["u"] = self.uid
            if self.group is not None:
                out["g"] = [self.group.name, list(self.group.members), self.group.prop]
        if self.text is not None and len(self.text) <= CACHE_TEXT_LIMIT:
            out["t"] = self.text
        if self.error:
            out["x"] = self.error
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> _Entry:
        entry = cls(str(data["e"]))
        text = data.get("t")
        entry.text = text if isinstance(text, str) else None
        error = data.get("x")
        entry.error = error if isinstance(error, str) else None
        if data.get("k"):
            entry.known = True
            entry.uid = str(data.get("u", ""))
            group = data.get("g")
            if isinstance(group, list) and len(group) == 3:
                entry.group = _Group(str(group[0]), tuple(map(str, group[1])), str(group[2]))
        return entry


def _entry_hook(data: dict[str, object]) -> object:
    """``json.loads`` hook reading the mirror file: an entry's object becomes an _Entry."""
    return _Entry.from_json(data) if isinstance(data.get("e"), str) else data


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


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


def _unsaid_refusal() -> Rejected:
    return Rejected(
        "The server refused the card (HTTP 412) without saying why; it may be too large "
        "(a big photo?) or not valid for this server.",
        raw="HTTP 412",
    )


class _Invalid(Exception):
    """The stored sync-token is no longer valid."""


class _NoSync(Exception):
    """The server does not do sync-collection on this book."""


# --- the connector ---------------------------------------------------------------------------


class CardDavApp:
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
        self._entries: dict[str, _Entry] = {}
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
        self._groups: dict[str, _Group] = {}
        self._membership: dict[str, list[str]] = {}
        self._uids: dict[str, list[str]] = {}
        self._indexed = False
        """``_groups``/``_membership``/``_uids`` describe ``_entries`` as they are now."""
        self._book_path = ""
        """The book's path, unquoted (``_child`` compares hrefs with it)."""

    # --- address books -------------------------------------------------------------------

    def _propfind(self, url: str, body: str, depth: str) -> requests.Response:
        return self.client.request(
            "PROPFIND", url, data=body, headers={**XML_HEADERS, "Depth": depth}, retry=True
        )

    def _probe(self, url: str) -> tuple[list[DavResponse], str] | None:
        response = self._propfind(url, DISCOVERY_PROPS, "0")
        if response.status_code != 207:
            return None
        return parse_multistatus(response.content, response.url or url, "Discovery")[0], (
            response.url or url
        )

    def _home(self) -> tuple[str | None, AddressBook | None]:
        """(address book home, or the book itself when the URL points at one)."""
        parts = urlsplit(self.url)
        candidates = [self.url]
        if parts.path in ("", "/"):
            candidates = [urljoin(self.url, "/.well-known/carddav"), urljoin(self.url, "/")]
        else:
            candidates.append(urljoin(self.url, "/.well-known/carddav"))
        for candidate in candidates:
            found = self._probe(candidate)
            if found is None:
                continue
            responses, where = found
            for resp in responses:
                book = _book_from(resp)
                if book is not None:
                    return None, book
                homes = resp.hrefs(CARDDAV, "addressbook-home-set")
                if homes:
                    return urljoin(where, homes[0]), None
                principals = resp.hrefs(DAV, "current-user-principal")
                if principals:
                    again = self._probe(urljoin(where, principals[0]))
                    if again is not None:
                        for inner in again[0]:
                            homes = inner.hrefs(CARDDAV, "addressbook-home-set")
                            if homes:
                                return urljoin(again[1], homes[0]), None
            if candidate == self.url and parts.path not in ("", "/"):
                return candidate if candidate.endswith("/") else candidate + "/", None
        return None, None

    def _books_at(self, home: str) -> list[AddressBook]:
        response = self._propfind(home, DISCOVERY_PROPS, "1")
        if response.status_code != 207:
            raise ConfigError(
                f"The CardDAV server did not list the address books at {home} "
                f"(HTTP {response.status_code})."
            )
        responses, _ = parse_multistatus(response.content, response.url or home, "Discovery")
        return [b for b in map(_book_from, responses) if b is not None]

    def list_addressbooks(self) -> list[AddressBook]:
        """Every address book of the account (for the wizard's picker)."""
        home, book = self._home()
        if book is not None:
            return [book]
        if home is None:
            raise ConfigError(
                f"No CardDAV service was found at {self.url}: check the address (for iCloud "
                "https://contacts.icloud.com, for Nextcloud https://HOST/remote.php/dav)."
            )
        return self._books_at(home)

    def create_addressbook(self, name: str) -> AddressBook:
        """A new address book called ``name`` under the account's home (extended MKCOL)."""
        name = name.strip()
        if not name:
            raise ConfigError("A new address book needs a name.")
        home, book = self._home()
        if home is None and book is not None:  # the URL is a book: its parent is the home
            home = urljoin(book.url, "..")
        if home is None:
            raise ConfigError(f"The CardDAV server at {self.url} has no address book home.")
        url = urljoin(home if home.endswith("/") else home + "/", quote(_slug(name)) + "/")
        response = self.client.request(
            "MKCOL", url, data=_mkcol_body(name), headers=XML_HEADERS, retry=False
        )
        if response.status_code not in (200, 201):
            why = {405: "an address book with that name already exists", 403: "not allowed"}.get(
                response.status_code, f"HTTP {response.status_code}"
            )
            raise ConfigError(f"The server did not create the address book {name!r} ({why}).")
        for found in self._books_at(home):
            if found.path.rstrip("/") == urlsplit(url).path.rstrip("/"):
                return found
        return AddressBook(url, name)

    def _choose(self, books: Sequence[AddressBook]) -> AddressBook:
        listing = ", ".join(f"{b.name} ({b.path})" for b in books)
        if self.wanted:
            want = self.wanted.casefold().rstrip("/")
            hits = [
                b
                for b in books
                if want
                in (
                    b.url.casefold().rstrip("/"),
                    b.path.casefold().rstrip("/"),
                    unquote(b.path).casefold().rstrip("/"),
                    unquote(b.path.rstrip("/").rsplit("/", 1)[-1]).casefold(),
                    b.name.casefold(),
                )
            ]
            if len(hits) == 1:
                return hits[0]
            raise ConfigError(
                f"The address book {self.wanted!r} is not on the server"
                + (" (or the name is ambiguous)" if hits else "")
                + f"; it has: {listing or 'none'}."
            )
        if len(books) == 1:
            return books[0]
        if not books:
            raise ConfigError(
                "The account has no address book yet: add --set create=NAME to make one."
            )
        raise ConfigError(
            f"The account has several address books; pick one with --set addressbook=PATH: "
            f"{listing}."
        )

    def resolve(self) -> AddressBook:
        """Find (or create) the address book this connector works on."""
        if self._book is not None:
            return self._book
        wanted = self.wanted or ""
        if wanted.startswith(("http://", "https://", "/")) and not self.create:
            url = urljoin(self.url, wanted)
            self._book = AddressBook(check_url(url if url.endswith("/") else url + "/"), wanted)
            return self._book  # taken on trust, without a request: see check()
        books = self.list_addressbooks()
        if self.create:
            same = [b for b in books if b.name.casefold() == self.create.casefold()]
            self._book = same[0] if same else self.create_addressbook(self.create)
        else:
            self._book = self._choose(books)
        self._proven = True  # discovery's requests carried the credentials
        return self._book

    def check(self) -> AddressBook:
        """The address book, proven to exist and to take our credentials.

        Discovery proves both with the requests it makes anyway. A book given as a full URL
        or path is used by :meth:`resolve` without asking the server (each sync run starts
        so), so here it costs one ``PROPFIND Depth: 0`` of the book: 401 raises
        :class:`AuthExpired` like discovery's, and anything but an address book at that URL
        is a :class:`ConfigError` naming it.
        """
        book = self.resolve()
        if self._proven:
            return book
        response = self._propfind(book.url, BOOK_PROPS, "0")
        status = response.status_code
        where = response.url or book.url
        responses: list[DavResponse] = []
        if status == 207:
            responses, _ = parse_multistatus(response.content, where, "Checking the address book")
            want = unquote(urlsplit(where).path).rstrip("/")
            mine = [r for r in responses if unquote(urlsplit(r.href).path).rstrip("/") == want]
            responses = mine or (responses if len(responses) == 1 else [])
            if responses and all(r.status in (403, 404, 410) for r in responses):
                status = responses[0].status or status  # Xandikos: 207 with a 404 inside
        if status in (404, 410):
            raise ConfigError(
                f"There is no address book at {book.url}: check the address book's URL, or "
                "give its name (--set addressbook=NAME) to find it on the server."
            )
        if status == 403:
            raise ConfigError(
                f"The CardDAV server does not let {self.username or 'this login'} read "
                f"{book.url} (HTTP 403): check the address book's URL."
            )
        if status >= 500:
            raise Unavailable(
                f"The CardDAV server failed to answer for {book.url} (HTTP {status}).",
                raw=response.text[:300],
            )
        books = [b for b in map(_book_from, responses) if b is not None]
        found = books[0] if status == 207 and books else None
        if found is None:
            raise ConfigError(
                f"{book.url} is not a CardDAV address book"
                + ("" if status == 207 else f" (HTTP {status})")
                + ": check the address book's URL, or give its name (--set addressbook=NAME) "
                "to find it on the server."
            )
        url = check_url(where if where.endswith("/") else where + "/")
        self._book = AddressBook(url, found.name, found.vcard_versions, found.sync)
        self._book_path = ""
        self._proven = True
        return self._book

    def settings(self) -> dict[str, str]:
        """The resolved account settings to store (the book's URL instead of a guess)."""
        book = self.resolve()
        return {"url": self.url, "username": self.username, "addressbook": book.url}

    # --- the mirror ----------------------------------------------------------------------

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
            # Entries are made as the file is decoded (not a dict each first, then converted).
            data = json.loads(path.read_text(encoding="utf-8"), object_hook=_entry_hook)
            if data.get("format") != CACHE_FORMAT or data.get("book") != book.url:
                return book
            entries = data["entries"]
            if not all(isinstance(e, _Entry) for e in entries.values()):
                raise ValueError("not a mirror entry")
            self._entries = {str(name): entry for name, entry in entries.items()}
            self._token = data.get("token") or None
            self._sync = data.get("sync")
            versions = tuple(str(v) for v in data.get("versions", ()))
            book = AddressBook(book.url, book.name, versions, bool(self._sync))
            self._book = book
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self._entries, self._token, self._sync = {}, None, None
        self._indexed = False
        self._index()
        return book

    def _save(self) -> None:
        path = self._cache_file()
        if path is None or not self._dirty or self._book is None:
            return
        data = {
            "format": CACHE_FORMAT,
            "book": self._book.url,
            "token": self._token,
            "sync": self._sync,
            "versions": list(self._book.vcard_versions),
            "entries": {name: e.to_json() for name, e in self._entries.items()},
        }
        # One shot, so the C encoder runs (json.dump to a file runs the pure Python one,
        # ten times slower on a book of thousands of cards).
        payload = _JSON.encode(data).encode("utf-8")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".carddav.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
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
        self._indexed = True
        self._groups, self._membership, self._uids = {}, {}, {}
        for name in sorted(self._entries):
            entry = self._entries[name]
            if entry.group is not None:
                self._groups[name] = entry.group
            elif entry.uid:
                self._uids.setdefault(_member_key(entry.uid), []).append(name)
        for group in self._groups.values():
            for member in group.members:
                names = self._membership.setdefault(_member_key(member), [])
                if group.name not in names:
                    names.append(group.name)

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
        if self._token and self._sync is not False:
            try:
                changes, token = self._sync_collection(self._token)
                for name, etag in changes.items():
                    if etag is None:
                        self._drop(name)
                    else:
                        self._mark(name, etag)
                self._confirmed.update(self._entries)
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
        self._read_bodies([n for n, e in self._entries.items() if not e.known])
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
            response = self.client.request(
                "REPORT",
                book_url,
                data=_multiget_body(self._name_path(n) for n in chunk),
                headers={**XML_HEADERS, "Depth": "1"},
                retry=True,
            )
            if response.status_code != 207:
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
        response = self.client.request("GET", self._name_url(name), retry=True)
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
        return _Body(etag, decode_bytes(response.content))

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

    def _items(self, names: Sequence[str]) -> list[Record | Unreadable]:
        out: list[Record | Unreadable] = []
        for name in names:
            item = self._item(name)
            if item is not None:
                out.append(item)
        return out

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        self._load()
        names = [name_of(rid) for rid in ids]
        stale = [
            n
            for n in dict.fromkeys(names)
            if n not in self._confirmed
            or self._entries.get(n) is None
            or self._entries[n].text is None
        ]
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
                    self._confirmed.update(self._entries)
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

    def _versions_of(self, names: Iterable[str]) -> dict[str, str]:
        self._index()
        return {id_of(n): self._version(n, self._entries[n]) for n in names if n in self._entries}

    def close(self) -> None:
        self._save()
        self.client.close()

    # --- writing -------------------------------------------------------------------------

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
        stale = [
            n
            for n in dict.fromkeys(updates)
            if n not in self._confirmed
            or self._entries.get(n) is None
            or self._entries[n].text is None
        ]
        self._read_bodies(stale)

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

    # --- groups ----------------------------------------------------------------------------

    def _write_groups(
        self, ops: Sequence[WriteOp], names: Sequence[str], results: list[WriteResult | None]
    ) -> dict[int, PairsyncError]:
        if not self.group_mode:
            return {}
        adds: dict[str, set[str]] = {}
        removes: dict[str, set[str]] = {}
        users: dict[str, list[int]] = {}
        for i, op in enumerate(ops):
            if results[i] is not None:
                continue
            entry = self._entries.get(names[i])
            if entry is None or not entry.uid:
                continue
            add = op.segments if isinstance(op, Create) else op.add_segments
            remove = frozenset() if isinstance(op, Create) else op.remove_segments
            for seg in add - remove:
                adds.setdefault(seg, set()).add(entry.uid)
                users.setdefault(seg, []).append(i)
            for seg in remove:
                removes.setdefault(seg, set()).add(entry.uid)
                users.setdefault(seg, []).append(i)
        errors: dict[int, PairsyncError] = {}
        for segment in sorted(users):
            error = self._write_group(
                segment, adds.get(segment, set()), removes.get(segment, set())
            )
            if error is not None:
                for i in users[segment]:
                    errors[i] = error
        return errors

    def _group_name_of(self, segment: str) -> str | None:
        hits = sorted(n for n, g in self._groups.items() if g.name == segment)
        return hits[0] if hits else None

    def _write_group(self, segment: str, add: set[str], remove: set[str]) -> PairsyncError | None:
        """Add and remove members of one group card (created when missing); the error if any."""
        for attempt in range(2):
            name = self._group_name_of(segment)
            if name is None:
                if not add:
                    return None
                text, etag, name = self._new_group(segment, add), None, f"{uuid.uuid4().hex}.vcf"
            else:
                entry = self._entries[name]
                if entry.text is None:
                    self._read_bodies([name])
                    entry = self._entries[name]
                assert entry.text is not None and entry.group is not None
                text = _edit_members(entry.text, entry.group.prop, add, remove)
                etag = entry.etag
                if text == entry.text:
                    return None
            answer = self._put(name, text, etag=etag)
            if answer.status in (200, 201, 204):
                self._written(name, text, answer.etag)
                if not answer.etag:
                    self._read_bodies([name])
                self._index()
                return None
            if answer.status == 412 and attempt == 0:
                if etag is not None:
                    self._read_bodies([name])
                else:
                    self._refresh()
                continue
            if answer.status == 412:
                break
            return self._refusal(answer)
        return Conflict(f"The group {segment!r} keeps changing on the server; retried later.")

    def _new_group(self, segment: str, members: Iterable[str]) -> str:
        """A group card in the style the book's other group cards use."""
        apple = any(g.prop.startswith("X-") for g in self._groups.values())
        uid = str(uuid.uuid4())
        card = new_card(uid, PRODID, "3.0" if apple else "4.0")
        lines: list[Line] = []
        if apple:
            lines.append(format_line(card, "N", escape(segment) + ";;;;"))
            lines.append(format_line(card, "X-ADDRESSBOOKSERVER-KIND", "group"))
        else:
            lines.append(format_line(card, "KIND", "group"))
        lines.append(format_line(card, "FN", escape(segment)))
        prop = "X-ADDRESSBOOKSERVER-MEMBER" if apple else "MEMBER"
        lines += [format_line(card, prop, _member_value(uid)) for uid in sorted(members)]
        card.lines.extend(lines)
        return render(card)


def _ensure_uid(card: Card, uid: str) -> None:
    """Every card we write has a UID (group membership and other clients rely on it)."""
    if uid or any(line.name == "UID" for line in card.lines):
        return
    card.lines.append(format_line(card, "UID", escape(str(uuid.uuid4()))))


def _edit_members(text: str, prop: str, add: set[str], remove: set[str]) -> str:
    card = parse_card(text)
    drop = {_member_key(u) for u in remove}
    have = {_member_key(line.value) for line in card.lines if line.name == prop}
    kept = [
        line for line in card.lines if not (line.name == prop and _member_key(line.value) in drop)
    ]
    new = [
        format_line(card, prop, _member_value(uid))
        for uid in sorted(add)
        if _member_key(uid) not in have and _member_key(uid) not in drop
    ]
    at = len(kept)
    while at > 0 and not kept[at - 1].name and not kept[at - 1].raw.strip():
        at -= 1
    kept[at:at] = new
    card.lines[:] = kept
    return render(card)
