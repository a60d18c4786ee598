"""The CardDAV mirror's cache file (``app.connectors.carddav.mirror``), against Radicale:
a run reads only what it needs of it (the header when the feed is quiet, the index and the
changed cards' texts when a few changed), texts never read are written back as they were,
and a damaged or older file still gives the server's cards, never fewer."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.connectors.carddav import CardDavApp
from app.model import Update
from tests.connectors.test_carddav import card, make_app, only
from tests.dav import DavServer

CARDS = 12


@pytest.fixture
def book(radicale: DavServer) -> str:
    book = radicale.new_book()
    for i in range(CARDS):
        radicale.put(f"{book}c{i}.vcf", card(f"uid-{i}", f"Person {i}", f"EMAIL:p{i}@x.com"))
    return book


def first_read(server: DavServer, book: str, cache: Path) -> str:
    """A first run: every card read, the cache file written; the cursor it gave."""
    app = make_app(server, book, cache)
    full = app.changes(None)
    assert full is not None and full.cursor and len(full.versions) == CARDS
    app.close()
    return full.cursor


def decoded_texts(app: CardDavApp) -> set[str]:
    """Names of the cards whose text this instance decoded from the cache file or got from
    the server (the others are still the file's bytes)."""
    return {name for name, entry in app._entry_map.items() if entry.decoded}


def test_a_quiet_run_decodes_nothing_but_the_header(
    radicale: DavServer, book: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cursor = first_read(radicale, book, cache)
    [path] = cache.glob("carddav-*.json")
    saved = path.stat()
    app = make_app(radicale, book, cache)
    quiet = app.changes(cursor)
    assert quiet is not None and quiet.versions == {} and quiet.deleted == []
    assert app._unread is not None  # the index (and so every text) was left as bytes
    app.close()
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (saved.st_ino, saved.st_mtime_ns)
    # What the quiet feed confirmed holds once the index is needed: a write needs no read.
    rec = only(app.fetch(["c3"]))
    [res] = app.write([Update("u1", "c3", {"title": "CEO"}, expected_version=rec.version)])
    assert res.ok, res.error
    assert app.client.sent == 2  # the feed, the PUT
    assert decoded_texts(app) == {"c3.vcf"}


def test_a_run_where_one_card_changed_decodes_that_card_and_keeps_the_rest_as_it_was(
    radicale: DavServer, book: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cursor = first_read(radicale, book, cache)
    etag, _ = radicale.get(f"{book}c5.vcf")
    radicale.put(f"{book}c5.vcf", card("uid-5", "Person Five", "EMAIL:p5@x.com"), etag)
    app = make_app(radicale, book, cache)
    delta = app.changes(cursor)
    assert delta is not None and list(delta.versions) == ["c5"]
    assert only(app.fetch(["c5"])).fields["full_name"] == "Person Five"
    assert decoded_texts(app) == {"c5.vcf"}
    app.close()
    # The file written holds every card, byte for byte what the server has.
    again = make_app(radicale, book, cache)
    assert again.changes(delta.cursor) is not None
    records = again.fetch([f"c{i}" for i in range(CARDS)])
    assert again.client.sent == 1  # served from the mirror
    for i, record in enumerate(records):
        _, body = radicale.get(f"{book}c{i}.vcf")
        assert again._entries[f"c{i}.vcf"].text == body.decode(), i
        assert record.fields["full_name"] == ("Person Five" if i == 5 else f"Person {i}")


@pytest.mark.parametrize("damage", ["cut", "flip", "index"])
def test_a_damaged_cache_file_means_a_full_read(
    radicale: DavServer, book: str, tmp_path: Path, damage: str
) -> None:
    """A file cut short or changed where the texts or the index are (a disk fault, a full
    disk) is not believed: the cards a run needs come from the server, and its token goes
    with it (a listing reads the whole book)."""
    cache = tmp_path / "cache"
    cursor = first_read(radicale, book, cache)
    [path] = cache.glob("carddav-*.json")
    raw = bytearray(path.read_bytes())
    if damage == "cut":
        raw = raw[: len(raw) - 40]
    elif damage == "flip":
        at = raw.index(b"FN:Person 7") + 3
        raw[at] ^= 0x20  # "Person" → "person": still valid UTF-8 and a valid card
    else:
        at = raw.index(b'"c7.vcf"')
        raw[at + 2] = ord("X")  # c7 is now called cX
    path.write_bytes(bytes(raw))
    app = make_app(radicale, book, cache)
    quiet = app.changes(cursor)  # the engine's cursor: nothing changed since
    assert quiet is not None and quiet.versions == {}
    assert only(app.fetch(["c7"])).fields["full_name"] == "Person 7"
    assert app.client.sent == 2  # the feed, then the card itself
    assert sorted(app.list_versions()) == sorted(f"c{i}" for i in range(CARDS))
    assert app.client.sent == 4  # the file's token was dropped: a listing, every card


def test_a_cache_file_of_an_older_pairsync_is_used(
    radicale: DavServer, book: str, tmp_path: Path
) -> None:
    """Format 1 (one JSON document, texts inside) is read: no full read after an upgrade;
    it is written in the new format at the next change only."""
    cache = tmp_path / "cache"
    cursor = first_read(radicale, book, cache)
    [path] = cache.glob("carddav-*.json")
    app = make_app(radicale, book, cache)
    app._load()
    old = {
        "format": 1,
        "book": app.resolve().url,
        "token": app._token,
        "sync": app._sync,
        "versions": list(app.resolve().vcard_versions),
        "entries": {  # as Pairsync wrote them before the cache file was read in layers
            name: {"e": entry.etag, "k": 1, "u": entry.uid, "t": entry.text}
            for name, entry in app._entries.items()
        },
    }
    path.write_text(json.dumps(old, ensure_ascii=False), encoding="utf-8")
    again = make_app(radicale, book, cache)
    quiet = again.changes(cursor)
    assert quiet is not None and not quiet.complete and quiet.versions == {}
    assert only(again.fetch(["c2"])).fields["full_name"] == "Person 2"
    assert again.client.sent == 1
    again.close()
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == 1  # nothing changed


def test_groups_uids_and_unreadable_cards_are_kept_by_the_file(
    radicale: DavServer, tmp_path: Path
) -> None:
    """What the index holds besides ETags: group cards with their members (versions carry
    the membership), a UID two cards share (both unreadable, in words), a card's text."""
    from tests.connectors.test_carddav import group_card

    book = radicale.new_book()
    radicale.put(f"{book}ann.vcf", card("ann-uid", "Ann Lee"))
    radicale.put(f"{book}bob.vcf", card("bob-uid", "Bob Bo"))
    # Radicale refuses a second card with a UID: put it in its storage, as another server
    # (or an older version) may have kept it.
    folder = radicale.storage / "collection-root" / urlsplit(book).path.strip("/")
    (folder / "bob2.vcf").write_text(card("bob-uid", "Bob Again"), encoding="utf-8")
    radicale.put(f"{book}friends.vcf", group_card("g1", "Friends", ["ann-uid"], apple=False))
    cache = tmp_path / "cache"
    first = make_app(radicale, book, cache)
    versions = first.list_versions()
    items = {item.id: item for item in first.fetch(sorted(versions))}
    first.close()
    again = make_app(radicale, book, cache)
    assert again.list_versions() == versions
    assert {item.id: item for item in again.fetch(sorted(versions))} == items
    assert again.client.sent == 1  # the feed: all the rest came from the file
    assert items["ann"].segments == {"Friends"}  # type: ignore[union-attr]
    assert "Duplicate UID" in items["bob"].message  # type: ignore[union-attr]
