"""vCard structure survives a sync: comma lists in N and NICKNAME, every ORG unit (issue 12).

``N:de Vries;Jan,Pieter;;Prof.,Dr.;`` holds two given names and two prefixes; written to
another vCard app it must stay two given names (not ``Jan\\,Pieter``, one literal name with a
comma). ``ORG:Acme;Sales;EMEA`` has two organizational units; the second must not be lost.
Checked between every pair of vCard apps (folder, file, CardDAV on a real Radicale), and on a
round trip back to the card it came from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.connectors.base import Connector
from app.connectors.carddav import CardDavApp, name_of
from app.connectors.vcard_file import VCardFileApp
from app.connectors.vcard_folder import VCardFolderApp
from app.connectors.vcard_text import apply_patch, card_values, new_card, parse_card, render
from app.mapping.defaults import default_mappings
from app.model import Create, Record, Update
from tests.dav import DavServer
from tests.engine.harness import Pair

CARD = (
    "BEGIN:VCARD\r\n"
    "VERSION:3.0\r\n"
    "UID:jan-1\r\n"
    "FN:Prof. Dr. Jan Pieter de Vries\r\n"
    "N:de Vries;Jan,Pieter;;Prof.,Dr.;\r\n"
    "NICKNAME:Jan,JP\r\n"
    "ORG:Acme;Sales;EMEA\r\n"
    "EMAIL;TYPE=INTERNET:jan@example.com\r\n"
    "END:VCARD\r\n"
)


def _lines(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.replace("\r\n ", "").splitlines():
        name, _, value = line.partition(":")
        out.setdefault(name.split(";")[0].upper(), value)
    return out


def test_reading_keeps_lists_and_units() -> None:
    values, _ = card_values(parse_card(CARD))
    assert values["given_name"] == "Jan,Pieter"
    assert values["name_prefix"] == "Prof.,Dr."
    assert values["organization"] == "Acme"
    assert values["department"] == "Sales;EMEA"
    assert values["nickname"] == "Jan,JP"


def test_writing_a_new_card_keeps_lists_and_units() -> None:
    values, _ = card_values(parse_card(CARD))
    card = new_card("x", "-//test//EN")
    apply_patch(card, values, is_new=True)
    got = _lines(render(card))
    assert got["N"] == "de Vries;Jan,Pieter;;Prof.,Dr.;"
    assert got["ORG"] == "Acme;Sales;EMEA"
    assert got["NICKNAME"] == "Jan,JP"
    assert got["FN"] == "Prof. Dr. Jan Pieter de Vries"


def test_literal_specials_in_the_organization_name_stay_literal() -> None:
    card = new_card("x", "-//test//EN")
    apply_patch(card, {"organization": "Smith; Jones, Inc.", "department": "R&D"}, is_new=True)
    assert _lines(render(card))["ORG"] == "Smith\\; Jones\\, Inc.;R&D"
    values, _ = card_values(parse_card(render(card)))
    assert values["organization"] == "Smith; Jones, Inc."
    assert values["department"] == "R&D"


def test_editing_one_part_keeps_the_others_as_written() -> None:
    card = parse_card(CARD.replace("N:de Vries;", "N:de Vries\\, Jr.;"))
    apply_patch(card, {"given_name": "Jan,Piet"})
    got = _lines(render(card))
    assert got["N"] == "de Vries\\, Jr.;Jan,Piet;;Prof.,Dr.;"
    apply_patch(card, {"department": "Sales;APAC"})
    assert _lines(render(card))["ORG"] == "Acme;Sales;APAC"


# --- through the engine, between two real vCard apps -------------------------------------------


def _folder(tmp: Path, card: str | None = None) -> VCardFolderApp:
    tmp.mkdir(parents=True, exist_ok=True)
    if card is not None:
        (tmp / "jan-1.vcf").write_bytes(card.encode())
    return VCardFolderApp(tmp)


def _file(tmp: Path, card: str | None = None) -> VCardFileApp:
    tmp.mkdir(parents=True, exist_ok=True)
    if card is not None:
        (tmp / "all.vcf").write_bytes(card.encode())
    return VCardFileApp(tmp / "all.vcf")


def _dav(server: DavServer, tmp: Path, card: str | None = None) -> CardDavApp:
    book = server.new_book()
    if card is not None:
        server.put(f"{book}jan-1.vcf", card)
    user, password = server.auth or ("", "")
    return CardDavApp(server.url, user, password, addressbook=book, cache_dir=tmp / "cache")


def _raw(app: Connector, server: DavServer | None) -> str:
    if isinstance(app, VCardFolderApp):
        return "".join(p.read_text() for p in sorted(app.path.glob("*.vcf")))
    if isinstance(app, VCardFileApp):
        return app.path.read_text()
    assert isinstance(app, CardDavApp) and server is not None
    ids = list(app.list_versions())
    assert len(ids) == 1
    return server.get(app.resolve().url + name_of(ids[0]))[1].decode()


def _only(app: Connector) -> Record:
    records = app.fetch(list(app.list_versions()))
    assert len(records) == 1
    record = records[0]
    assert isinstance(record, Record)
    return record


KINDS = ["folder", "file", "carddav"]


def _make(kind: str, tmp: Path, radicale: DavServer | None, card: str | None) -> Connector:
    if kind == "folder":
        return _folder(tmp / kind, card)
    if kind == "file":
        return _file(tmp / kind, card)
    assert radicale is not None
    return _dav(radicale, tmp, card)


@pytest.mark.parametrize(
    ("source", "target"),
    [(s, t) for s in KINDS for t in KINDS if s != t],
)
def test_sync_between_vcard_apps_keeps_lists_and_units(
    source: str, target: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    radicale = request.getfixturevalue("radicale") if "carddav" in (source, target) else None
    a = _make(source, tmp_path / "a", radicale, CARD)
    b = _make(target, tmp_path / "b", radicale, None)
    pair = Pair(tmp_path)
    pair.a, pair.b = a, b  # type: ignore[assignment]
    pair.mappings = default_mappings(a.schema(), b.schema())
    first = pair.run()
    assert first.created == {"a": 0, "b": 1} or sum(first.created.values()) == 1, first
    written = _lines(_raw(b, radicale))
    assert written["N"] == "de Vries;Jan,Pieter;;Prof.,Dr.;"
    assert written["ORG"] == "Acme;Sales;EMEA"
    if "carddav" not in (source, target):
        # Radicale stores cards re-serialized by vobject, which keeps only the first
        # nickname of a list (NICKNAME:Jan,JP → NICKNAME:Jan): a server quirk, not ours.
        assert written["NICKNAME"] == "Jan,JP"

    # Round trip: an edit in the target comes back; the source's structure is untouched.
    created = _only(b)
    [result] = b.write(
        [Update("t1", created.id, {"title": "Director"}, expected_version=created.version)]
    )
    assert result.error is None, result.error
    pair.run()
    back = _lines(_raw(a, radicale))
    assert back["TITLE"] == "Director"
    assert back["N"] == "de Vries;Jan,Pieter;;Prof.,Dr.;"
    assert back["ORG"] == "Acme;Sales;EMEA"
    if "carddav" not in (source, target):
        assert back["NICKNAME"] == "Jan,JP"
    again = pair.run()
    assert sum(again.created.values()) + sum(again.updated.values()) == 0, again


def test_create_through_the_connector_keeps_lists(tmp_path: Path) -> None:
    app = _folder(tmp_path)
    [res] = app.write(
        [Create("c1", {"given_name": "Anna,Maria", "family_name": "Berg"}, new_id="anna")]
    )
    assert res.error is None
    assert _lines((tmp_path / "anna.vcf").read_text())["N"] == "Berg;Anna,Maria;;;"
