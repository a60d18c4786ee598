"""End-to-end: the ``pairsync`` CLI syncing a vCard folder with Radicale and a CSV file with
Xandikos, both real servers on 127.0.0.1, with edits on both sides between runs."""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import vobject

from app.cli import main
from tests.dav import USER, DavServer


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def sync(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = cli(capsys, "sync", "main", "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)[0]
    assert report["status"] == "ok", report
    return report


def card(uid: str, fn: str, *extra: str) -> str:
    given, _, family = fn.partition(" ")
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{fn}", f"N:{family};{given};;;"]
    return "\r\n".join([*lines, *extra, "END:VCARD"]) + "\r\n"


def server_cards(server: DavServer, book: str) -> dict[str, Any]:
    """Every card of the book as vobject reads it, by FN."""
    response = server.session.request(
        "PROPFIND",
        book,
        headers={"Depth": "1", "Content-Type": "application/xml"},
        data='<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
    )
    out = {}
    for href in ET.fromstring(response.content).iter("{DAV:}href"):
        if href.text and href.text.endswith(".vcf"):
            parsed = vobject.readOne(server.get(urljoin(book, href.text))[1].decode())
            out[parsed.fn.value] = parsed
    return out


@pytest.fixture
def phone_and_server(
    radicale: DavServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, str]:
    """An empty vCard folder ("Phone") and an empty Radicale address book ("Server"),
    connected as "main" through the CLI as a user would: the test fills both, then syncs."""
    folder = tmp_path / "cards"
    folder.mkdir()
    book = radicale.new_book()
    monkeypatch.setenv("DAV_PASSWORD", radicale.auth[1])  # type: ignore[index]
    assert cli(capsys, "account", "add", "vcard-folder", "Phone", "--set", f"path={folder}")[0] == 0
    code, _, err = cli(
        capsys,
        *("account", "add", "carddav", "Server", "--set", f"url={radicale.url}"),
        *("--set", f"username={USER}", "--set", f"addressbook={book}"),
        *("--secret-env", "DAV_PASSWORD"),
    )
    assert code == 0, err
    assert cli(capsys, "connection", "create", "main", "--a", "Phone", "--b", "Server")[0] == 0
    return folder, book


def test_vcard_folder_with_radicale(
    radicale: DavServer,
    phone_and_server: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, book = phone_and_server
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "EMAIL:ann@x.com", "TITLE:CEO"))
    (folder / "zed.vcf").write_text(card("zed", "Zed Zee", "EMAIL:zed@x.com"))
    radicale.put(f"{book}bea.vcf", card("bea-uid", "Bea Bo", "EMAIL:bea@x.com", "X-KEEP:me"))

    report = sync(capsys)
    assert report["created"] == {"a": 1, "b": 2}
    on_server = server_cards(radicale, book)
    assert set(on_server) == {"Ann Lee", "Zed Zee", "Bea Bo"}
    assert on_server["Ann Lee"].title.value == "CEO"
    assert any("Bea Bo" in p.read_text() for p in folder.glob("*.vcf"))

    # Edits on both sides: Ann's title in the folder, Bea's phone on the server.
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "EMAIL:ann@x.com", "TITLE:Chair"))
    etag, body = radicale.get(f"{book}bea.vcf")
    edited = body.decode().replace("END:VCARD", "TEL;TYPE=CELL:+44 7700 900123\r\nEND:VCARD")
    radicale.put(f"{book}bea.vcf", edited, etag)
    report = sync(capsys)
    assert report["updated"] == {"a": 1, "b": 1}
    assert server_cards(radicale, book)["Ann Lee"].title.value == "Chair"
    bea = next(p for p in folder.glob("*.vcf") if "Bea Bo" in p.read_text())
    assert "+44 7700 900123" in bea.read_text()
    assert "X-KEEP:me" in radicale.get(f"{book}bea.vcf")[1].decode()  # unmapped: kept

    report = sync(capsys)  # S17: nothing to do
    assert report["created"] == {"a": 0, "b": 0} and report["updated"] == {"a": 0, "b": 0}
    code, out, err = cli(capsys, "health", "main", "--json")
    assert code == 0, err
    assert json.loads(out)["counts"]["in_sync"] == 3


def test_csv_with_xandikos_found_by_discovery(
    xandikos: DavServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sheet = tmp_path / "contacts.csv"
    with sheet.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["First Name", "Last Name", "E-mail Address", "Job Title", "Categories"])
        writer.writerow(["Cy", "Cee", "cy@x.com", "Engineer", "Customers"])
        writer.writerow(["Dee", "Dee", "dee@x.com", "", ""])
    book = xandikos.new_book("pairsync-e2e")
    xandikos.put(f"{book}dee.vcf", card("dee-uid", "Dee Dee", "EMAIL:dee@x.com", "TITLE:Boss"))
    xandikos.put(f"{book}eve.vcf", card("eve-uid", "Eve Ex", "EMAIL:eve@x.com"))
    monkeypatch.setenv("DAV_PASSWORD", "unused-by-xandikos")
    assert cli(capsys, "account", "add", "csv", "Sheet", "--set", f"path={sheet}")[0] == 0
    code, _, err = cli(
        capsys,
        *("account", "add", "carddav", "Dav", "--set", f"url={xandikos.url}"),
        *("--set", "username=user", "--set", "addressbook=pairsync-e2e"),
        *("--secret-env", "DAV_PASSWORD"),
    )
    assert code == 0, err
    code, out, _ = cli(capsys, "account", "list", "--json")
    dav = next(a for a in json.loads(out) if a["name"] == "Dav")
    assert dav["settings"]["addressbook"] == book  # discovery's answer is stored
    assert "unused-by-xandikos" not in out
    assert cli(capsys, "connection", "create", "main", "--a", "Sheet", "--b", "Dav")[0] == 0

    report = sync(capsys)
    assert report["created"] == {"a": 1, "b": 1}
    on_server = server_cards(xandikos, book)
    assert set(on_server) == {"Cy Cee", "Dee Dee", "Eve Ex"}
    assert on_server["Cy Cee"].categories.value == ["Customers"]
    with sheet.open(newline="", encoding="utf-8") as fh:
        rows = {r["E-mail Address"]: r for r in csv.DictReader(fh)}
    assert rows["dee@x.com"]["Job Title"] == "Boss" and "eve@x.com" in rows

    # Both sides edit: the sheet renames Cy's job, the server changes Eve's title.
    text = sheet.read_text(encoding="utf-8").replace("Engineer", "Architect")
    sheet.write_text(text, encoding="utf-8")
    etag, body = xandikos.get(f"{book}eve.vcf")
    xandikos.put(
        f"{book}eve.vcf", body.decode().replace("END:VCARD", "TITLE:Pilot\r\nEND:VCARD"), etag
    )
    report = sync(capsys)
    assert report["updated"] == {"a": 1, "b": 1}
    assert server_cards(xandikos, book)["Cy Cee"].title.value == "Architect"
    with sheet.open(newline="", encoding="utf-8") as fh:
        rows = {r["E-mail Address"]: r for r in csv.DictReader(fh)}
    assert rows["eve@x.com"]["Job Title"] == "Pilot"
    report = sync(capsys)
    assert report["created"] == {"a": 0, "b": 0} and report["updated"] == {"a": 0, "b": 0}


def test_account_add_reports_a_wrong_password(
    radicale: DavServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAV_PASSWORD", "not-the-password")
    code, out, err = cli(
        capsys,
        *("account", "add", "carddav", "Server", "--set", f"url={radicale.url}"),
        *("--set", f"username={USER}", "--secret-env", "DAV_PASSWORD"),
    )
    assert code == 3 and "refused the user name or password" in err
    assert "not-the-password" not in out + err
    code, out, _ = cli(capsys, "account", "list", "--json")
    assert json.loads(out) == []
    code, _, err = cli(
        capsys,
        *("account", "add", "carddav", "Server", "--set", "url=http://contacts.example.com"),
        *("--set", f"username={USER}", "--secret-env", "DAV_PASSWORD"),
    )
    assert code == 2 and "https://" in err


def test_account_add_checks_an_addressbook_given_as_a_url(
    radicale: DavServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    book = radicale.new_book()
    add = (
        *("account", "add", "carddav", "Server", "--set", f"url={radicale.url}"),
        *("--set", f"username={USER}", "--secret-env", "DAV_PASSWORD"),
    )
    keyring_file = tmp_path / "keyring.json"

    # A wrong password: refused at once (not at the first sync), nothing stored.
    monkeypatch.setenv("DAV_PASSWORD", "wrong-but-plausible")
    code, out, err = cli(capsys, *add, "--set", f"addressbook={book}")
    assert code == 3 and "refused the user name or password" in err
    assert "wrong-but-plausible" not in out + err + caplog.text
    assert json.loads(cli(capsys, "account", "list", "--json")[1]) == []
    assert not keyring_file.exists() or "wrong-but-plausible" not in keyring_file.read_text()

    # The right password, but a URL that is no address book: the sentence names it.
    monkeypatch.setenv("DAV_PASSWORD", radicale.auth[1])  # type: ignore[index]
    missing = f"{radicale.url}/{USER}/no-such-book/"
    code, out, err = cli(capsys, *add, "--set", f"addressbook={missing}")
    assert code == 2 and f"There is no address book at {missing}" in err
    home = f"{radicale.url}/{USER}/"
    code, out, err = cli(capsys, *add, "--set", f"addressbook={home}")
    assert code == 2 and f"{home} is not a CardDAV address book" in err
    assert radicale.auth[1] not in out + err + caplog.text  # type: ignore[index]
    assert json.loads(cli(capsys, "account", "list", "--json")[1]) == []

    # Both right: stored, with the book's URL.
    code, out, err = cli(capsys, *add, "--set", f"addressbook={book}")
    assert code == 0, err
    [stored] = json.loads(cli(capsys, "account", "list", "--json")[1])
    assert stored["settings"]["addressbook"] == book


def test_account_add_refuses_a_url_that_is_no_book_on_xandikos(
    xandikos: DavServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAV_PASSWORD", "unused-by-xandikos")
    add = (
        *("account", "add", "carddav", "Dav", "--set", f"url={xandikos.url}"),
        *("--set", "username=user", "--secret-env", "DAV_PASSWORD"),
    )
    missing = f"{xandikos.url}{xandikos.home}no-such-book/"
    code, _, err = cli(capsys, *add, "--set", f"addressbook={missing}")
    assert code == 2 and f"There is no address book at {missing}" in err
    home = f"{xandikos.url}{xandikos.home}"
    code, _, err = cli(capsys, *add, "--set", f"addressbook={home}")
    assert code == 2 and f"{home} is not a CardDAV address book" in err
    assert json.loads(cli(capsys, "account", "list", "--json")[1]) == []
    book = xandikos.new_book()
    assert cli(capsys, *add, "--set", f"addressbook={book}")[0] == 0


def _tables(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, but the run rows and the connections' run counters."""
    with sqlite3.connect(database) as db:
        names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            name: sorted(db.execute(f'SELECT * FROM "{name}"'), key=repr)
            for name in names
            if name not in ("runs", "connections")
        }


def test_a_run_where_nothing_changed_writes_only_its_run_row(
    radicale: DavServer,
    phone_and_server: tuple[Path, str],
    pairsync_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A scheduled run that finds nothing to do leaves the index, the cursors (their times
    included) and the CardDAV mirror file as they were: no write but the run's own row."""
    folder, book = phone_and_server
    for name in ("ann", "zed"):
        (folder / f"{name}.vcf").write_text(card(name, f"{name.title()} Lee", f"EMAIL:{name}@x"))
    radicale.put(f"{book}bea.vcf", card("bea-uid", "Bea Bo", "EMAIL:bea@x.com"))
    assert sync(capsys)["created"] == {"a": 1, "b": 2}
    sync(capsys)  # hears the echo of its own writes
    database = pairsync_home / "pairsync.db"
    [mirror] = pairsync_home.rglob("carddav-*.json")
    tables, saved = _tables(database), mirror.stat()
    assert tables["cursors"]

    report = sync(capsys)
    assert report["created"] == {"a": 0, "b": 0} and report["updated"] == {"a": 0, "b": 0}
    assert _tables(database) == tables
    assert (mirror.stat().st_ino, mirror.stat().st_mtime_ns) == (saved.st_ino, saved.st_mtime_ns)
