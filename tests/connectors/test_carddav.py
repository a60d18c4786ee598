"""The CardDAV connector against real servers: Radicale and Xandikos on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.connectors.base import Connector
from app.connectors.carddav import CardDavApp
from app.connectors.decoding import decode_card as decode_bytes
from app.connectors.http import RetryPolicy, check_url
from app.errors import (
    AuthExpired,
    BadData,
    ConfigError,
    Conflict,
    RateLimited,
    Rejected,
    Unavailable,
)
from app.model import Create, Labeled, Record, Unreadable, Update
from tests.connectors.contract import ConnectorContract
from tests.dav import MAX_RESOURCE_SIZE, SOLO, USER, DavProxy, DavServer, Fault, plant


def make_app(server: DavServer, book: str, cache: Path | None, **kw: object) -> CardDavApp:
    user, password = server.auth or ("", "")
    return CardDavApp(server.url, user, password, addressbook=book, cache_dir=cache, **kw)  # type: ignore[arg-type]


class _Contract(ConnectorContract):
    server_name = ""

    @pytest.fixture
    def server(self, request: pytest.FixtureRequest) -> DavServer:
        return request.getfixturevalue(self.server_name)  # type: ignore[no-any-return]

    @pytest.fixture
    def app(self, server: DavServer, tmp_path: Path) -> CardDavApp:
        return make_app(server, server.new_book(), tmp_path / "cache")

    @pytest.fixture
    def reopen(self, app: CardDavApp, server: DavServer, tmp_path: Path) -> Callable[[], Connector]:
        return lambda: make_app(server, app.resolve().url, None)


class TestRadicaleContract(_Contract):
    server_name = "radicale"


class TestXandikosContract(_Contract):
    server_name = "xandikos"


# --- helpers ------------------------------------------------------------------------------------

DATA = Path(__file__).resolve().parent.parent / "data" / "vcard"
SERVERS = ["radicale", "xandikos"]


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> DavServer:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture
def book(server: DavServer) -> str:
    return server.new_book()


@pytest.fixture
def app(server: DavServer, book: str, tmp_path: Path) -> CardDavApp:
    return make_app(server, book, tmp_path / "cache")


def card(uid: str, fn: str, *extra: str, version: str = "3.0") -> str:
    given, _, family = fn.partition(" ")
    lines = ["BEGIN:VCARD", f"VERSION:{version}", f"UID:{uid}", f"FN:{fn}"]
    lines += [f"N:{family};{given};;;", *extra, "END:VCARD"]
    return "\r\n".join(lines) + "\r\n"


def only(items: list[Record | Unreadable]) -> Record:
    assert len(items) == 1 and isinstance(items[0], Record), items
    return items[0]


def ok(app: CardDavApp, op: Create | Update) -> Record:
    [res] = app.write([op])
    assert res.ok, res.error
    assert res.record is not None
    return res.record


# --- discovery and accounts ---------------------------------------------------------------------


def test_discovery_picks_creates_and_lists(radicale: DavServer, tmp_path: Path) -> None:
    user, password = SOLO
    bare = CardDavApp(radicale.url, user, password)
    with pytest.raises(ConfigError, match=r"no address book yet.*create=NAME"):
        bare.resolve()
    made = CardDavApp(radicale.url, user, password, create="Family & Friends").resolve()
    assert made.name == "Family & Friends" and made.path == f"/{user}/family-friends/"
    only_one = CardDavApp(radicale.url + "/", user, password)  # exactly one: used
    assert only_one.resolve().url == made.url
    assert only_one.settings() == {
        "url": radicale.url + "/",
        "username": user,
        "addressbook": made.url,
    }
    CardDavApp(radicale.url, user, password).create_addressbook("Work")
    with pytest.raises(ConfigError) as info:
        CardDavApp(radicale.url, user, password).resolve()
    assert "several address books" in str(info.value)
    assert f"Family & Friends (/{user}/family-friends/)" in str(info.value)
    assert f"Work (/{user}/work/)" in str(info.value)
    for wanted in ("work", "Work", f"/{user}/work/", f"{radicale.url}/{user}/work/"):
        got = CardDavApp(radicale.url, user, password, addressbook=wanted).resolve()
        assert got.path == f"/{user}/work/", wanted
    with pytest.raises(ConfigError, match="'nope' is not on the server"):
        CardDavApp(radicale.url, user, password, addressbook="nope").resolve()
    names = {b.name for b in CardDavApp(radicale.url, user, password).list_addressbooks()}
    assert names == {"Family & Friends", "Work"}


def test_discovery_through_well_known_and_principal(xandikos: DavServer) -> None:
    book = xandikos.new_book("discover-me")
    app = CardDavApp(xandikos.url, "", "", addressbook="discover-me")
    assert app.resolve().url == book
    found = {b.url for b in app.list_addressbooks()}
    assert book in found
    # A URL that is itself the address book is used as it is.
    direct = CardDavApp(book, "", "")
    assert direct.resolve().url == book


def test_wrong_password_is_auth_expired_without_the_secret(
    radicale: DavServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = CardDavApp(radicale.url, USER, "wrong-secret-123", addressbook=radicale.new_book())
    with pytest.raises(AuthExpired) as info:
        app.list_versions()
    assert "wrong-secret-123" not in str(info.value) + info.value.raw
    assert "wrong-secret-123" not in caplog.text


def test_urls_must_be_https_except_loopback() -> None:
    for bad in ("http://contacts.example.com", "ftp://x", "contacts.icloud.com", "https://u:p@h/"):
        with pytest.raises(ConfigError):
            check_url(bad)
    assert check_url("https://contacts.icloud.com") == "https://contacts.icloud.com"
    assert check_url("http://127.0.0.1:5232/") and check_url("http://[::1]:80/")
    assert check_url("http://localhost:8080/")


# --- reading ------------------------------------------------------------------------------------


def test_incremental_listing_costs_one_request(
    server: DavServer, book: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    for i in range(5):
        server.put(f"{book}c{i}.vcf", card(f"uid-{i}", f"Person {i}", f"EMAIL:p{i}@x.com"))
    first = make_app(server, book, cache)
    versions = first.list_versions()
    assert sorted(versions) == [f"c{i}" for i in range(5)]
    first.close()
    # Next run, nothing changed: one sync-collection REPORT, fetches served from the mirror.
    again = make_app(server, book, cache)
    assert again.list_versions() == versions
    assert again.client.sent == 1
    assert only(again.fetch(["c3"])).fields["emails"] == (Labeled("p3@x.com"),)
    assert again.client.sent == 1
    again.close()
    # One card edited and one deleted by another client: 1 REPORT + 1 multiget.
    etag, _ = server.get(f"{book}c1.vcf")
    server.put(f"{book}c1.vcf", card("uid-1", "Person One", "EMAIL:p1@x.com"), etag)
    server.delete(f"{book}c4.vcf")
    third = make_app(server, book, cache)
    now = third.list_versions()
    assert sorted(now) == ["c0", "c1", "c2", "c3"]
    assert now["c1"] != versions["c1"] and now["c0"] == versions["c0"]
    assert only(third.fetch(["c1"])).fields["full_name"] == "Person One"
    assert third.client.sent == 2
    assert third.fetch(["c4"]) == []


def test_quiet_feed_costs_one_request_and_confirms_the_mirror(
    server: DavServer, book: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    for i in range(5):
        server.put(f"{book}c{i}.vcf", card(f"uid-{i}", f"Person {i}", f"EMAIL:p{i}@x.com"))
    first = make_app(server, book, cache)
    full = first.changes(None)
    assert full is not None and full.cursor
    first.close()
    [mirror] = cache.glob("carddav-*.json")
    saved = mirror.stat()
    # Next run, nothing changed: one sync-collection REPORT from the stored cursor, and the
    # cache file (every card's text) is not written again.
    again = make_app(server, book, cache)
    quiet = again.changes(full.cursor)
    assert quiet is not None and quiet.versions == {} and quiet.deleted == []
    assert again.client.sent == 1
    again.close()
    assert (mirror.stat().st_ino, mirror.stat().st_mtime_ns) == (saved.st_ino, saved.st_mtime_ns)
    again = make_app(server, book, cache)
    assert again.changes(full.cursor) == quiet
    # The mirror is the server's state now: a card the feed did not report is written
    # without reading it again (one PUT).
    rec = only(again.fetch(["c3"]))
    [res] = again.write([Update("u1", "c3", {"title": "CEO"}, expected_version=rec.version)])
    assert res.ok, res.error
    assert again.client.sent == 2
    again.close()
    # The next run hears of its own write (the echo), with the version the write returned.
    third = make_app(server, book, cache)
    echo = third.changes(quiet.cursor)
    assert echo is not None and echo.versions == {"c3": res.record.version}  # type: ignore[union-attr]
    assert third.client.sent == 1


def test_invalid_sync_token_means_full_reconcile(
    server: DavServer, book: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    for i in range(3):
        server.put(f"{book}c{i}.vcf", card(f"uid-{i}", f"Person {i}"))
    first = make_app(server, book, cache)
    first.list_versions()
    first.close()
    [path] = cache.glob("carddav-*.json")
    line, _, rest = path.read_bytes().partition(b"\n")  # the header, then index and texts
    data = json.loads(line)
    assert data["token"]
    data["token"] = data["token"] + "-expired"  # what the server answers for a lost token
    path.write_bytes(json.dumps(data).encode() + b"\n" + rest)
    etag, _ = server.get(f"{book}c0.vcf")
    server.put(f"{book}c0.vcf", card("uid-0", "Renamed Person"), etag)
    server.delete(f"{book}c2.vcf")
    server.put(f"{book}c9.vcf", card("uid-9", "New Person"))
    app = make_app(server, book, cache)
    listing = app.list_versions()
    assert sorted(listing) == ["c0", "c1", "c9"]
    assert only(app.fetch(["c0"])).fields["full_name"] == "Renamed Person"
    app.close()
    assert json.loads(path.read_bytes().partition(b"\n")[0])["token"] != data["token"]  # kept


def test_change_feed(server: DavServer, book: str, tmp_path: Path) -> None:
    app = make_app(server, book, tmp_path / "cache")
    assert app.info.capabilities.change_feed
    for i in range(3):
        server.put(f"{book}c{i}.vcf", card(f"uid-{i}", f"Person {i}"))
    full = app.changes(None)
    assert full is not None and full.complete and full.cursor
    assert sorted(full.versions) == ["c0", "c1", "c2"] and full.records == []
    etag, _ = server.get(f"{book}c1.vcf")
    server.put(f"{book}c1.vcf", card("uid-1", "Changed Person"), etag)
    server.delete(f"{book}c2.vcf")
    delta = app.changes(full.cursor)
    assert delta is not None and not delta.complete
    assert list(delta.versions) == ["c1"] and delta.versions["c1"] != full.versions["c1"]
    assert only(app.fetch(["c1"])).fields["full_name"] == "Changed Person"
    assert delta.deleted == ["c2"]
    quiet = app.changes(delta.cursor)
    assert quiet is not None and quiet.versions == {} and quiet.deleted == []
    expired = app.changes("http://radicale.org/ns/sync/0000-not-a-token")
    assert expired is not None and expired.complete
    assert sorted(expired.versions) == ["c0", "c1"]


def test_duplicate_uids_are_reported_on_both_cards(xandikos: DavServer, tmp_path: Path) -> None:
    book = xandikos.new_book()  # Xandikos accepts two cards with one UID (Radicale refuses)
    xandikos.put(f"{book}a.vcf", card("same-uid", "Ann One", "EMAIL:a@x.com"))
    xandikos.put(f"{book}b.vcf", card("same-uid", "Ann Two", "EMAIL:b@x.com"))
    xandikos.put(f"{book}c.vcf", card("other", "Cy", "EMAIL:c@x.com"))
    app = make_app(xandikos, book, tmp_path / "cache")
    items = {i.id: i for i in app.fetch(sorted(app.list_versions()))}
    for rid, other in (("a", "b.vcf"), ("b", "a.vcf")):
        bad = items[rid]
        assert isinstance(bad, Unreadable)
        assert "Duplicate UID 'same-uid'" in bad.message and other in bad.message
    assert isinstance(items["c"], Record)
    xandikos.delete(f"{book}b.vcf")
    fixed = make_app(xandikos, book, tmp_path / "cache")
    assert sorted(fixed.list_versions()) == ["a", "c"]
    assert only(fixed.fetch(["a"])).fields["full_name"] == "Ann One"


def test_cards_the_server_cannot_parse_are_unreadable(xandikos: DavServer, tmp_path: Path) -> None:
    book = xandikos.new_book()
    xandikos.put(f"{book}ok.vcf", card("ok", "Fine Card"))
    plant(xandikos, book, "broken.vcf", (DATA / "broken.vcf").read_bytes())
    plant(xandikos, book, "junk.vcf", b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Half")
    app = make_app(xandikos, book, tmp_path / "cache")
    items = {i.id: i for i in app.fetch(sorted(app.list_versions()))}
    assert isinstance(items["ok"], Record)
    for rid in ("broken", "junk"):
        bad = items[rid]
        assert isinstance(bad, Unreadable), rid
        assert bad.message.startswith(f"The card {rid}.vcf on the CardDAV server is not a valid")
    assert "line 3" in items["broken"].message  # type: ignore[union-attr]
    [res] = app.write([Update("u", "broken", {"title": "X"})])
    assert isinstance(res.error, BadData)


# --- writing ------------------------------------------------------------------------------------


def test_update_merges_after_412_and_conflicts_on_the_same_field(
    server: DavServer, book: str, tmp_path: Path
) -> None:
    server.put(f"{book}ann.vcf", card("ann", "Ann Lee", "TITLE:Boss", "NOTE:old note"))
    app = make_app(server, book, tmp_path / "cache")
    seen = only(app.fetch(list(app.list_versions())))
    # Another client edits the note between our read and our write: a real 412, then merge.
    etag, _ = server.get(f"{book}ann.vcf")
    server.put(f"{book}ann.vcf", card("ann", "Ann Lee", "TITLE:Boss", "NOTE:their note"), etag)
    put_before = app.client.sent
    rec = ok(app, Update("u1", "ann", {"title": "CEO"}, expected_version=seen.version))
    assert (rec.fields["title"], rec.fields["notes"]) == ("CEO", "their note")
    assert app.client.sent - put_before == 3  # PUT (412), multiget, PUT
    stored = server.get(f"{book}ann.vcf")[1].decode()
    assert "TITLE:CEO" in stored and "NOTE:their note" in stored
    # Now they change the title too: our title write must not overwrite theirs.
    etag, _ = server.get(f"{book}ann.vcf")
    server.put(f"{book}ann.vcf", card("ann", "Ann Lee", "TITLE:Chair", "NOTE:their note"), etag)
    [res] = app.write([Update("u2", "ann", {"title": "CTO"}, expected_version=rec.version)])
    assert isinstance(res.error, Conflict)
    assert "TITLE:Chair" in server.get(f"{book}ann.vcf")[1].decode()


def test_writes_keep_unmapped_properties_byte_for_byte(
    server: DavServer, book: str, tmp_path: Path
) -> None:
    original = (DATA / "apple-icloud-3.0.vcf").read_bytes()
    server.put(f"{book}aiko.vcf", original)
    _, before = server.get(f"{book}aiko.vcf")
    app = make_app(server, book, tmp_path / "cache")
    rec = only(app.fetch(list(app.list_versions())))
    assert rec.fields["emails"] == (Labeled("aiko@example.jp", "other"),)
    assert rec.fields["phones"] == (Labeled("+81 3-1234-5678", "tokyo office"),)
    ok(app, Update("u", "aiko", {"title": "Researcher"}, expected_version=rec.version))
    _, after = server.get(f"{book}aiko.vcf")
    old_lines = before.decode().split("\r\n")
    new_lines = after.decode().split("\r\n")
    assert [x for x in new_lines if not x.startswith("TITLE")] == old_lines
    assert "TITLE:Researcher" in new_lines
    if server.kind == "xandikos":  # stores what it is sent: CRLF and all, untouched
        assert after.replace(b"TITLE:Researcher\r\n", b"") == original


@pytest.mark.parametrize(
    "name", ["apple-3.0", "apple-icloud-3.0", "google-no-n-3.0", "rfc-4.0", "folded-3.0"]
)
def test_corpus_round_trips_through_the_server(
    server: DavServer, book: str, tmp_path: Path, name: str
) -> None:
    data = (DATA / f"{name}.vcf").read_bytes()
    if b"UID:" not in data and server.kind == "radicale":
        pytest.skip("Radicale refuses cards without UID (400)")
    server.put(f"{book}{name}.vcf", data)
    _, before = server.get(f"{book}{name}.vcf")
    app = make_app(server, book, tmp_path / "cache")
    rec = only(app.fetch(list(app.list_versions())))
    assert rec.fields, name
    new = ok(app, Update("u", name, {"title": "Round Trip"}, expected_version=rec.version))
    assert new.fields["title"] == "Round Trip"
    assert {k: v for k, v in new.fields.items() if k != "title"} == {
        k: v for k, v in rec.fields.items() if k != "title"
    }
    _, after = server.get(f"{book}{name}.vcf")
    old_lines = before.decode().splitlines()
    new_lines = after.decode().splitlines()
    added = [x for x in new_lines if x not in old_lines]
    assert added[0] == "TITLE:Round Trip" and all(x.startswith("UID:") for x in added[1:])
    assert b"UID:" in after  # always set, also on cards that had none
    assert [x for x in new_lines if x not in added] == [
        x for x in old_lines if not x.startswith("TITLE")
    ]
    if server.kind == "xandikos":  # stored as sent: the card's own line ends are kept
        assert after.count(b"\r\n") == (len(new_lines) if b"\r\n" in data else 0)
    again = make_app(server, book, None)
    assert only(again.fetch([name])).fields == new.fields


@pytest.mark.parametrize(
    "name", ["outlook-2.1", "legacy-2.1", "nameless-4.0", "cp1252", "google-3.0"]
)
def test_cards_the_server_refuses_to_store_are_read_and_fail_alone(
    xandikos: DavServer, tmp_path: Path, name: str
) -> None:
    """Cards another server let in (2.1, no FN, cp1252 bytes): read them; writing one back is
    either stored or refused for that card alone, never a crash or a lost property."""
    book = xandikos.new_book()
    data = (DATA / f"{name}.vcf").read_bytes()
    plant(xandikos, book, f"{name}.vcf", data)
    xandikos.put(f"{book}ok.vcf", card("ok", "Fine Card"))
    app = make_app(xandikos, book, tmp_path / "cache")
    items = {i.id: i for i in app.fetch(sorted(app.list_versions()))}
    rec = items[name]
    assert isinstance(rec, Record), rec
    results = app.write(
        [
            Update("u", name, {"title": "Edited"}, expected_version=rec.version),
            Update("v", "ok", {"title": "Also edited"}),
        ]
    )
    assert results[1].ok
    if results[0].ok:
        _, after = xandikos.get(f"{book}{name}.vcf")
        text = decode_bytes(after)
        for line in decode_bytes(data).splitlines():
            if not line.startswith("TITLE"):
                assert line in text.splitlines(), line
    else:
        assert isinstance(results[0].error, Rejected), results[0].error
        assert "invalid vCard" in str(results[0].error)
        assert xandikos.get(f"{book}{name}.vcf")[1] == data


def test_new_cards_have_uid_and_ids_we_chose(server: DavServer, book: str, app: CardDavApp) -> None:
    rid = uuid.uuid4().hex
    rec = ok(app, Create("c", {"full_name": "Mary Ann Smith"}, frozenset({"VIP"}), new_id=rid))
    assert rec.id == rid
    text = server.get(f"{book}{rid}.vcf")[1].decode()
    assert f"UID:{rid}" in text and "VERSION:3.0" in text and "CATEGORIES:VIP" in text
    [again] = app.write([Create("c2", {"full_name": "Someone"}, new_id=rid)])
    assert isinstance(again.error, Conflict)


def test_one_rejected_card_does_not_block_the_batch(radicale: DavServer, tmp_path: Path) -> None:
    app = make_app(radicale, radicale.new_book(), tmp_path / "cache")
    huge = "x" * (MAX_RESOURCE_SIZE + 10)
    results = app.write(
        [
            Create("a", {"full_name": "Small One"}, new_id="small-one"),
            Create("b", {"full_name": "Huge One", "notes": huge}, new_id="huge-one"),
            Create("c", {"full_name": "Small Two"}, new_id="small-two"),
        ]
    )
    assert results[0].ok and results[2].ok
    assert isinstance(results[1].error, Rejected)
    assert sorted(app.list_versions()) == ["small-one", "small-two"]


# --- groups -------------------------------------------------------------------------------------


def group_card(uid: str, name: str, members: list[str], *, apple: bool) -> str:
    if apple:
        lines = ["VERSION:3.0", f"UID:{uid}", f"N:{name};;;;", f"FN:{name}"]
        lines.append("X-ADDRESSBOOKSERVER-KIND:group")
        lines += [f"X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:{m}" for m in members]
    else:
        lines = ["VERSION:4.0", f"UID:{uid}", "KIND:group", f"FN:{name}"]
        lines += [f"MEMBER:urn:uuid:{m}" for m in members]
    return "\r\n".join(["BEGIN:VCARD", *lines, "END:VCARD"]) + "\r\n"


@pytest.mark.parametrize("apple", [False, True], ids=["kind-group", "icloud-group"])
def test_group_cards_are_segments(
    server: DavServer, book: str, tmp_path: Path, apple: bool
) -> None:
    server.put(f"{book}ann.vcf", card("ann-uid", "Ann Lee", "CATEGORIES:Ignored"))
    server.put(f"{book}bob.vcf", card("bob-uid", "Bob Bo"))
    server.put(f"{book}friends.vcf", group_card("g1", "Friends", ["ann-uid"], apple=apple))
    app = make_app(server, book, tmp_path / "cache")
    listing = app.list_versions()
    assert sorted(listing) == ["ann", "bob"]  # the group card is not a contact
    items = {r.id: r for r in app.fetch(sorted(listing))}
    assert items["ann"].segments == {"Friends"} and items["bob"].segments == set()
    assert app.schema().segments == ("Friends",)
    # Adding Bob to Friends and to a new group touches group cards, not Bob's card.
    bob_card = server.get(f"{book}bob.vcf")
    rec = ok(
        app,
        Update(
            "s",
            "bob",
            {},
            add_segments=frozenset({"Friends", "Climbing"}),
            expected_version=items["bob"].version,
        ),
    )
    assert rec.segments == {"Friends", "Climbing"}
    assert server.get(f"{book}bob.vcf") == bob_card
    member = "X-ADDRESSBOOKSERVER-MEMBER" if apple else "MEMBER"
    friends = server.get(f"{book}friends.vcf")[1].decode()
    assert f"{member}:urn:uuid:bob-uid" in friends and f"{member}:urn:uuid:ann-uid" in friends
    # The membership change shows in Bob's version, though his card did not change.
    fresh = make_app(server, book, tmp_path / "cache")
    now = fresh.list_versions()
    assert now["bob"] != listing["bob"] and now["ann"] == listing["ann"]
    assert only(fresh.fetch(["bob"])).segments == {"Friends", "Climbing"}
    # A removal edits the group card; a new group card follows the book's style.
    ok(fresh, Update("r", "ann", {}, remove_segments=frozenset({"Friends"})))
    friends = server.get(f"{book}friends.vcf")[1].decode()
    assert "ann-uid" not in friends and "bob-uid" in friends
    texts = [server.get(f"{book}{n}")[1].decode() for n in fresh._groups]
    climbing = next(t for t in texts if "FN:Climbing" in t)
    assert ("X-ADDRESSBOOKSERVER-KIND:group" in climbing) == apple
    assert ("KIND:group" in climbing.replace("X-ADDRESSBOOKSERVER-KIND", "")) == (not apple)
    # A card created with segments joins the groups.
    new = ok(fresh, Create("c", {"full_name": "Cy Cee"}, frozenset({"Friends"}), new_id="cy"))
    assert new.segments == {"Friends"}
    assert "CATEGORIES" not in server.get(f"{book}cy.vcf")[1].decode()


# --- faults (a proxy answers what a real server would only do on a bad day) ---------------------


@pytest.fixture
def proxied(radicale: DavServer, tmp_path: Path) -> Iterator[tuple[DavProxy, CardDavApp, str]]:
    book = radicale.new_book()
    radicale.put(f"{book}ann.vcf", card("ann", "Ann Lee", "EMAIL:ann@x.com"))
    proxy = DavProxy(radicale.url)
    app = CardDavApp(
        proxy.url,
        USER,
        radicale.auth[1],  # type: ignore[index]
        addressbook=urlsplit(book).path,
        cache_dir=tmp_path / "cache",
        retry=RetryPolicy(attempts=3, backoff=0.01, max_wait=5),
    )
    yield proxy, app, book
    proxy.close()


def times(n: int, method: str, answer: tuple[int, dict[str, str], bytes] | str) -> Fault:
    left = [n]

    def fault(m: str, path: str) -> tuple[int, dict[str, str], bytes] | str | None:
        if m == method and left[0] > 0:
            left[0] -= 1
            return answer
        return None

    return fault


def test_reads_are_retried_after_503_and_dropped_connections(
    proxied: tuple[DavProxy, CardDavApp, str],
) -> None:
    proxy, app, _ = proxied
    proxy.faults.append(times(1, "REPORT", (503, {"Retry-After": "0"}, b"busy")))
    proxy.faults.append(times(1, "REPORT", "drop"))
    assert list(app.list_versions()) == ["ann"]
    assert proxy.counts["REPORT"] == 4  # listing: 503, dropped, answered; then the multiget


def test_a_server_that_stays_down_is_unavailable(
    proxied: tuple[DavProxy, CardDavApp, str],
) -> None:
    proxy, app, _ = proxied
    proxy.faults.append(times(99, "REPORT", (503, {}, b"down")))
    with pytest.raises(Unavailable, match="HTTP 503"):
        app.list_versions()
    assert proxy.counts["REPORT"] == 3  # the policy's attempts, no more


def test_429_with_a_long_retry_after_is_rate_limited(
    proxied: tuple[DavProxy, CardDavApp, str],
) -> None:
    proxy, app, _ = proxied
    proxy.faults.append(times(99, "REPORT", (429, {"Retry-After": "120"}, b"slow down")))
    with pytest.raises(RateLimited) as info:
        app.list_versions()
    assert info.value.retry_after == 120
    assert proxy.counts["REPORT"] == 1


def test_writes_are_never_retried_blindly(proxied: tuple[DavProxy, CardDavApp, str]) -> None:
    proxy, app, _ = proxied
    rec = only(app.fetch(list(app.list_versions())))
    proxy.faults.append(times(1, "PUT", (503, {}, b"overloaded")))
    with pytest.raises(Unavailable):
        app.write([Update("u", "ann", {"title": "CEO"}, expected_version=rec.version)])
    assert proxy.counts["PUT"] == 1
    proxy.faults.append(times(1, "PUT", "drop"))  # the answer is lost: was it applied?
    with pytest.raises(Unavailable):
        app.write([Update("u", "ann", {"title": "CEO"}, expected_version=rec.version)])
    assert proxy.counts["PUT"] == 2
    # A 500 for one card fails that card only.
    proxy.faults.append(times(1, "PUT", (500, {}, b"oops")))
    results = app.write(
        [
            Update("u", "ann", {"title": "CFO"}, expected_version=rec.version),
            Create("c", {"full_name": "Bea Bo"}, new_id="bea"),
        ]
    )
    assert isinstance(results[0].error, Unavailable) and results[1].ok
