"""Finding the address book: from a bare host, a principal or the book's own URL (RFC 6764,
RFC 6352 §7), listing and creating books for the wizard, proving the password."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests

from app.connectors.carddav.dav import (
    BOOK_PROPS,
    CARDDAV,
    DAV,
    DISCOVERY_PROPS,
    XML_HEADERS,
    DavResponse,
    _mkcol_body,
    _tag,
    parse_multistatus,
)
from app.connectors.http import HttpClient, check_url
from app.errors import (
    ConfigError,
    Unavailable,
)

_SLUG_RE = re.compile(r"[^a-z0-9]+")

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


class Discovery:
    """The address book of an account (see the package docstring)."""

    url: str
    username: str
    client: HttpClient
    wanted: str | None
    create: str | None
    _book: AddressBook | None
    _proven: bool
    _book_path: str

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
