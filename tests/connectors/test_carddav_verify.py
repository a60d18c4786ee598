"""``account add`` proves a CardDAV account: the registry's ``verify`` hook against Radicale
and Xandikos on 127.0.0.1, behind the counting proxy of ``tests.dav``.

A book given as a full URL skips discovery, so the hook asks the server about that URL (one
request); discovery proves the password with its own requests, and gets no extra one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from app.connectors.carddav import CardDavApp
from app.connectors.registry import app_kind
from app.errors import AuthExpired, ConfigError
from tests.dav import USER, DavProxy, DavServer

SERVERS = ["radicale", "xandikos"]
WRONG = "wrong-secret-456"


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> DavServer:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture
def proxy(server: DavServer) -> Iterator[DavProxy]:
    counting = DavProxy(server.url)
    yield counting
    counting.close()


def login(server: DavServer) -> tuple[str, str]:
    """User and password (Xandikos takes any: its Basic auth needs TLS)."""
    return server.auth or ("user", "unused-by-xandikos")


def verify(url: str, user: str, password: str, addressbook: str) -> dict[str, str]:
    hook = app_kind("carddav").verify
    assert hook is not None
    settings = {"url": url, "username": user, "addressbook": addressbook}
    return hook(settings, password)


def test_full_url_costs_one_request(server: DavServer, proxy: DavProxy) -> None:
    user, password = login(server)
    book = proxy.url + urlsplit(server.new_book("verify-me")).path
    stored = verify(proxy.url, user, password, book)
    assert stored == {"url": proxy.url, "username": user, "addressbook": book}
    assert proxy.counts == {"PROPFIND": 1}
    # A path on the server is a full URL too; without the trailing slash it is still found.
    proxy.reset()
    stored = verify(proxy.url, user, password, urlsplit(book).path.rstrip("/"))
    assert stored["addressbook"] == book
    assert proxy.total() == 1


def test_check_reads_the_book_it_was_given(server: DavServer) -> None:
    user, password = login(server)
    book = server.new_book("named-book")
    app = CardDavApp(server.url, user, password, addressbook=book)
    found = app.check()
    assert found.url == book and found.name == "named-book" and found.sync
    assert app.check() is found and app.settings()["addressbook"] == book
    assert app.client.sent == 1  # proven once: neither check() again nor settings() asks


def test_discovery_gets_no_extra_request(server: DavServer, proxy: DavProxy) -> None:
    user, password = login(server)
    book = proxy.url + urlsplit(server.new_book("found-by-name")).path
    CardDavApp(proxy.url, user, password, addressbook="found-by-name").resolve()
    discovery = proxy.total()
    proxy.reset()
    stored = verify(proxy.url, user, password, "found-by-name")
    assert stored["addressbook"] == book
    assert proxy.total() == discovery


def test_full_url_with_a_wrong_password_is_auth_expired(
    radicale: DavServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    proxy = DavProxy(radicale.url)
    try:
        book = proxy.url + urlsplit(radicale.new_book()).path
        with pytest.raises(AuthExpired, match="refused the user name or password") as info:
            verify(proxy.url, USER, WRONG, book)
        assert proxy.total() == 1
    finally:
        proxy.close()
    assert WRONG not in str(info.value) + info.value.raw
    assert WRONG not in caplog.text


@pytest.mark.parametrize("where", ["missing", "home", "card", "foreign"])
def test_a_url_that_is_not_an_address_book_is_refused(
    server: DavServer, proxy: DavProxy, where: str
) -> None:
    user, password = login(server)
    home = proxy.url + server.home
    said = "is not a CardDAV address book"
    if where == "missing":
        url, said = f"{home}no-such-book/", "There is no address book at"
    elif where == "home":  # a collection, but not an address book
        url = home
    elif where == "card":
        book = server.new_book()
        server.put(
            f"{book}ann.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann\r\nFN:Ann\r\nEND:VCARD\r\n"
        )
        url = proxy.url + urlsplit(book).path + "ann.vcf/"
    else:  # another user's: Radicale forbids it, Xandikos has no such user
        url = f"{proxy.url}/bob/contacts/"
        said = "does not let alice read" if server.kind == "radicale" else "There is no address"
    with pytest.raises(ConfigError) as info:
        verify(proxy.url, user, password, url)
    message = str(info.value)
    assert url in message and said in message, message
    assert password not in message + info.value.raw
    assert proxy.total() == 1
