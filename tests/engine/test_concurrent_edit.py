"""Another client edits a contact while Pairsync writes it (issue 12).

CardDAV answers the conditional PUT with 412; the connector reads the card again, applies its
patch to the fresh card and stores the merge. The other client's fields are then on the
server but not yet in the other app: the pair must be planned again, so the other app gets
them (before: later runs wrote nothing and the two apps disagreed for good).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.connectors.carddav import CardDavApp, name_of
from app.connectors.vcard_folder import VCardFolderApp
from app.mapping.defaults import default_mappings
from app.model import Labeled, Record, WriteOp
from tests.dav import DavServer
from tests.engine.harness import Pair

CARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\n"
    "EMAIL:ann@x.com\r\nTITLE:CEO\r\nEND:VCARD\r\n"
)


def _folder_title(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (folder / "ann.vcf").read_text().splitlines():
        name, _, value = line.partition(":")
        out[name.split(";")[0]] = value
    return out


def test_a_412_merge_reaches_the_other_app(radicale: DavServer, tmp_path: Path) -> None:
    folder = tmp_path / "cards"
    folder.mkdir()
    (folder / "ann.vcf").write_bytes(CARD.encode())
    user, password = radicale.auth or ("", "")
    book = radicale.new_book()
    dav = CardDavApp(radicale.url, user, password, addressbook=book, cache_dir=tmp_path / "c")
    a = VCardFolderApp(folder)
    pair = Pair(tmp_path)
    pair.a, pair.b = a, dav  # type: ignore[assignment]
    pair.mappings = default_mappings(a.schema(), dav.schema())
    first = pair.run()
    assert first.created == {"a": 0, "b": 1}, first

    # Pairsync carries a new title to the server; meanwhile another client (a phone) adds
    # the company to the same card.
    text = (folder / "ann.vcf").read_text().replace("TITLE:CEO", "TITLE:CTO")
    (folder / "ann.vcf").write_text(text)
    [rid] = list(dav.list_versions())
    url = book + name_of(rid)
    real_write = dav.write
    raced: list[str] = []

    def racing_write(ops: list[WriteOp]) -> Any:
        if not raced:
            etag, body = radicale.get(url)
            edited = body.decode().replace("END:VCARD", "ORG:Globex\r\nEND:VCARD")
            radicale.put(url, edited, etag)
            raced.append(etag)
        return real_write(ops)

    dav.write = racing_write  # type: ignore[method-assign]
    second = pair.run()
    assert raced and second.status == "ok", second
    server = radicale.get(url)[1].decode()
    assert "TITLE:CTO" in server and "ORG:Globex" in server  # the merge is on the server

    # The next run(s) bring the other client's company to the folder; then nothing moves.
    for _ in range(2):
        pair.run()
    assert _folder_title(folder).get("ORG") == "Globex"
    assert _folder_title(folder).get("TITLE") == "CTO"
    last = pair.run()
    assert last.updated == {"a": 0, "b": 0} and last.created == {"a": 0, "b": 0}, last


def test_a_merged_stale_write_in_memory_converges(tmp_path: Path) -> None:
    """The same race on the in-memory app (``merge_stale``: it merges like CardDAV)."""
    pair = Pair(tmp_path)
    pair.b.merge_stale = True
    ann = pair.a.add({"emails": (Labeled("ann@x.com"),), "title": "CEO"}, record_id="ann")
    pair.run()
    [rid_b] = list(pair.b.records)
    pair.a.edit(ann.id, title="CTO")

    def other_client(op: WriteOp) -> None:
        pair.b.before_write = None
        pair.b.edit(rid_b, organization="Globex")

    pair.b.before_write = other_client
    pair.run()
    b = pair.b.records[rid_b]
    assert b.fields["title"] == "CTO" and b.fields["organization"] == "Globex"
    pair.run()
    a: Record = pair.a.records["ann"]
    assert a.fields.get("organization") == "Globex"
    assert pair.run().updated == {"a": 0, "b": 0}
