"""The shared HTTP layer (app/connectors/http.py) and the CardDAV connector against a hostile
server (tests/hostile_server.py): credentials never cross origins, time and size are bounded,
server XML cannot expand entities, and no part of a secret reaches an error (issue 13)."""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from app.connectors.carddav import CardDavApp
from app.connectors.http import HttpClient, Redirected, RetryPolicy, TimedOut, TooLarge
from app.errors import PairsyncError, Unavailable
from app.model import Record, Unreadable
from tests.dav import DavServer, plant
from tests.hostile_server import (
    HostileServer,
    answer,
    huge_multistatus,
    redirect,
    trickle,
)

FAST = RetryPolicy(attempts=3, backoff=0.01, max_wait=1.0)


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


@pytest.fixture
def other() -> Iterator[HostileServer]:
    """A second server: another origin (another port of the same host)."""
    server = HostileServer()
    yield server
    server.close()


def client(url: str, **kw: object) -> HttpClient:
    return HttpClient("The test server", url, auth=("ann", "s3cret-pw"), retry=FAST, **kw)  # type: ignore[arg-type]


def auth_headers(server: HostileServer) -> list[str]:
    return [s.headers.get("Authorization", "") for s in server.seen if "Authorization" in s.headers]


# --- redirects -----------------------------------------------------------------------------


def test_credentials_never_follow_a_redirect_to_another_port(
    hostile: HostileServer, other: HostileServer
) -> None:
    other.route("/dav/", answer(207, b"<ok/>"))
    hostile.route("/dav/", redirect(other.url("/dav/")))
    http = client(hostile.url("/dav/"))
    with pytest.raises(Redirected) as info:
        http.request("PROPFIND", hostile.url("/dav/"), retry=True)
    message = str(info.value)
    assert f"127.0.0.1:{hostile.port}" in message and f"127.0.0.1:{other.port}" in message
    assert other.seen == []  # not even asked without the password
    assert auth_headers(hostile)  # the account's own server got them


def test_credentials_never_follow_a_redirect_to_another_host_name(
    hostile: HostileServer,
) -> None:
    # the same port, but "localhost" is another host than "127.0.0.1"
    hostile.route("/dav/", redirect(hostile.url("/elsewhere/", host="localhost")))
    hostile.route("/elsewhere/", answer(207, b"<ok/>"))
    http = client(hostile.url("/dav/"))
    with pytest.raises(Redirected) as info:
        http.request("PROPFIND", hostile.url("/dav/"), retry=False)
    assert "localhost" in str(info.value)
    assert [s.path for s in hostile.seen] == ["/dav/"]


def test_a_redirect_on_the_same_origin_keeps_the_credentials(hostile: HostileServer) -> None:
    hostile.route("/dav/", redirect("/moved/", 308))
    hostile.route("/moved/", answer(207, b"<ok/>"))
    response = client(hostile.url("/dav/")).request("PROPFIND", hostile.url("/dav/"), retry=True)
    assert response.status_code == 207 and response.content == b"<ok/>"
    assert [s.method for s in hostile.seen] == ["PROPFIND", "PROPFIND"]
    assert len(auth_headers(hostile)) == 2


def test_carddav_discovery_stops_at_a_cross_origin_redirect(
    hostile: HostileServer, other: HostileServer
) -> None:
    other.route("/", answer(207, b"<ok/>"))
    other.route("/.well-known/carddav", answer(207, b"<ok/>"))
    hostile.route("/.well-known/carddav", redirect(other.url("/")))
    hostile.route("/", redirect(other.url("/")))
    app = CardDavApp(hostile.url("/"), "ann", "s3cret-pw", retry=FAST)
    with pytest.raises(Redirected) as info:
        app.list_addressbooks()
    assert str(other.port) in str(info.value)
    assert other.seen == []


# --- bounded time --------------------------------------------------------------------------


def test_a_slowloris_body_is_cut_off_at_the_total_deadline(hostile: HostileServer) -> None:
    # every byte comes well within the read timeout, so only a total deadline ends it
    hostile.route("/dav/", trickle(b"<multistatus/>" * 100, every=0.1))
    http = client(hostile.url("/dav/"), deadline=1.5, timeout=(5.0, 5.0))
    started = time.monotonic()
    with pytest.raises(TimedOut) as info:
        http.request("PROPFIND", hostile.url("/dav/"), retry=True)  # a read: not retried
    took = time.monotonic() - started
    assert 1.4 < took < 4.0, took
    assert "1.5 seconds" in str(info.value)
    assert len(hostile.seen) == 1


def test_a_slowloris_status_line_and_headers_are_cut_off_too(hostile: HostileServer) -> None:
    hostile.route("/dav/", trickle(b"<multistatus/>", every=0.1, headers_too=True))
    http = client(hostile.url("/dav/"), deadline=1.0, timeout=(5.0, 5.0))
    started = time.monotonic()
    with pytest.raises(TimedOut):
        http.request("GET", hostile.url("/dav/"), retry=False)
    assert time.monotonic() - started < 3.5


def test_the_deadline_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIRSYNC_HTTP_DEADLINE_S", "2.5")
    monkeypatch.setenv("PAIRSYNC_HTTP_MAX_BYTES", "12345")
    http = client("http://127.0.0.1:1/")
    assert (http.deadline, http.max_bytes) == (2.5, 12345)
    monkeypatch.setenv("PAIRSYNC_HTTP_DEADLINE_S", "nonsense")
    monkeypatch.delenv("PAIRSYNC_HTTP_MAX_BYTES")
    http = client("http://127.0.0.1:1/")
    assert (http.deadline, http.max_bytes) == (180.0, 100_000_000)


def test_fast_answers_are_not_disturbed_by_the_deadline(hostile: HostileServer) -> None:
    hostile.route("/ok", answer(200, b"fine"))
    http = client(hostile.url("/"), deadline=0.5)
    for _ in range(20):  # the same pooled connection, watched request after request
        assert http.request("GET", hostile.url("/ok"), retry=False).content == b"fine"
    time.sleep(0.7)  # the watches of finished requests fire on nothing
    assert http.request("GET", hostile.url("/ok"), retry=False).content == b"fine"


# --- bounded size --------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_answer_is_abandoned_at_the_cap(hostile: HostileServer, chunked: bool) -> None:
    hostile.route("/dav/", huge_multistatus(300_000_000, chunked=chunked))
    http = client(hostile.url("/dav/"), max_bytes=5_000_000)
    rss = psutil.Process(os.getpid()).memory_info().rss
    with pytest.raises(TooLarge) as info:
        http.request("PROPFIND", hostile.url("/dav/"), retry=True)
    grew = psutil.Process(os.getpid()).memory_info().rss - rss
    assert "larger than 5 MB" in str(info.value)
    assert grew < 60_000_000, grew
    assert len(hostile.seen) == 1  # not retried


def test_an_answer_within_the_cap_is_read_whole(hostile: HostileServer) -> None:
    hostile.route("/dav/", huge_multistatus(3_000_000, chunked=True))
    response = client(hostile.url("/dav/"), max_bytes=5_000_000).request(
        "PROPFIND", hostile.url("/dav/"), retry=True
    )
    assert len(response.content) == 3_000_000
    assert response.content.endswith(b"</d:multistatus>")


# --- XML -------------------------------------------------------------------------------------

BOOK = (
    '<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav">'
    "<d:response><d:href>/book/</d:href><d:propstat><d:prop>"
    "<d:resourcetype><d:collection/><c:addressbook/></d:resourcetype>"
    "<d:displayname>{name}</d:displayname>"
    "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    "</d:multistatus>"
)


def test_entities_after_a_long_comment_are_refused(hostile: HostileServer) -> None:
    comment = "<!--" + "x" * 5000 + "-->"
    doctype = '<!DOCTYPE d:multistatus [<!ENTITY inj "INJECTED-BY-ENTITY">]>'
    body = ('<?xml version="1.0"?>' + comment + doctype + BOOK.format(name="&inj;")).encode()
    hostile.route("/book/", answer(207, body))
    app = CardDavApp(hostile.url("/book/"), "ann", "s3cret-pw", retry=FAST)
    with pytest.raises(Unavailable) as info:
        app.list_addressbooks()
    assert "DOCTYPE or entities" in str(info.value)


def test_a_plain_book_answer_is_still_read(hostile: HostileServer) -> None:
    hostile.route("/book/", answer(207, BOOK.format(name="Friends").encode()))
    app = CardDavApp(hostile.url("/book/"), "ann", "s3cret-pw", retry=FAST)
    assert [b.name for b in app.list_addressbooks()] == ["Friends"]


@pytest.mark.parametrize(
    "body",
    [b"\x00\xff garbage \x89PNG", b"<d:multistatus xmlns:d='DAV:'><d:response>", b""],
    ids=["binary", "truncated", "empty"],
)
def test_garbage_is_a_sentence(hostile: HostileServer, body: bytes) -> None:
    hostile.route("/book/", answer(207, body))
    app = CardDavApp(hostile.url("/book/"), "ann", "s3cret-pw", retry=FAST)
    with pytest.raises(PairsyncError) as info:
        app.list_addressbooks()
    assert "s3cret" not in str(info.value) + info.value.raw


# --- secrets -------------------------------------------------------------------------------


def test_a_non_latin1_password_is_sent_as_utf8_and_never_echoed(hostile: HostileServer) -> None:
    hostile.route("/dav/", answer(207, b"<ok/>"))
    secret = "pässwörd€≠✓"
    http = HttpClient("The test server", hostile.url("/dav/"), auth=("zoë", secret), retry=FAST)
    assert http.request("PROPFIND", hostile.url("/dav/"), retry=True).status_code == 207
    sent = auth_headers(hostile)[0]
    assert sent.startswith("Basic ")
    assert base64.b64decode(sent[6:]).decode("utf-8") == f"zoë:{secret}"


def test_the_watchdog_serves_many_threads(hostile: HostileServer) -> None:
    hostile.route("/ok", answer(200, b"fine"))
    hostile.route("/slow", trickle(b"x" * 100, every=0.1))
    http = client(hostile.url("/"), deadline=1.0)
    outcomes: list[str] = []

    def work(path: str) -> None:
        try:
            http.request("GET", hostile.url(path), retry=False)
            outcomes.append("ok")
        except TimedOut:
            outcomes.append("timed out")

    threads = [threading.Thread(target=work, args=(p,)) for p in ["/ok", "/slow"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(outcomes) == ["ok"] * 3 + ["timed out"] * 3


def test_a_card_over_the_size_cap_fails_alone(
    xandikos: DavServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAIRSYNC_HTTP_MAX_BYTES", "1000000")
    book = xandikos.new_book()
    photo = base64.b64encode(os.urandom(1_500_000)).decode("ascii")
    for uid, extra in (("a", ""), ("big", f"PHOTO;ENCODING=b;TYPE=JPEG:{photo}\r\n"), ("c", "")):
        text = f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Card {uid}\r\n{extra}END:VCARD\r\n"
        plant(xandikos, book, f"{uid}.vcf", text.encode("ascii"))
    user, password = xandikos.auth or ("", "")
    app = CardDavApp(xandikos.url, user, password, addressbook=book, cache_dir=tmp_path / "c")
    items = {i.id: i for i in app.fetch(sorted(app.list_versions()))}
    assert isinstance(items["a"], Record) and isinstance(items["c"], Record)
    big = items["big"]
    assert isinstance(big, Unreadable)
    assert big.message == (
        "The card big.vcf is larger than 1 MB, the most Pairsync reads at once; "
        "it is left as it is on the server."
    )
