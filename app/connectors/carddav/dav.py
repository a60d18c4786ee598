"""WebDAV and CardDAV on the wire: namespaces, request bodies, multistatus answers.

Server XML is parsed here, in one place (every answer checked as XML first; carriage
returns inside ``address-data`` kept, as XML parsers fold CRLF into LF).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape as xml_escape

from app.errors import (
    PairsyncError,
    Unavailable,
)

DAV = "DAV:"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
PRODID = "-//Pairsync//CardDAV//EN"
XML_HEADERS = {"Content-Type": "application/xml; charset=utf-8"}

_ADDRESS_DATA_RE = re.compile(
    rb"(<(?:[A-Za-z_][\w.-]*:)?address-data\b[^>]*(?<!/)>)(.*?)(</(?:[A-Za-z_][\w.-]*:)?address-data\s*>)",
    re.DOTALL,
)


def _tag(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


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
