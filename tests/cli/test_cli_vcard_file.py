"""End-to-end: the ``pairsync`` CLI syncing one .vcf export (many cards) with a CSV file."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
import vobject

from app.cli import main

HEADER = ["First Name", "Last Name", "E-mail Address", "Mobile Phone", "Job Title", "Categories"]
BROKEN = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Half Done\r\nEMAIL:half@x.com\r\n"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def sync(capsys: pytest.CaptureFixture[str], name: str = "main") -> tuple[int, dict[str, Any]]:
    code, out, err = cli(capsys, "sync", name, "--json")
    assert "Traceback" not in err
    return code, json.loads(out)[0]


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {r["E-mail Address"].lower(): r for r in csv.DictReader(fh)}


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])


def cards(path: Path) -> dict[str, Any]:
    """The readable cards by email (the broken one is skipped)."""
    text = path.read_bytes().decode("utf-8").replace(BROKEN, "")
    return {c.email.value: c for c in vobject.readComponents(text)}


def card_texts(path: Path) -> list[str]:
    return re.findall(r"BEGIN:VCARD.*?END:VCARD\r\n", path.read_bytes().decode(), re.S)


def test_vcard_file_and_csv_sync_both_ways(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    vcf, sheet = tmp_path / "iCloud export.vcf", tmp_path / "contacts.csv"
    # An export as phones and iCloud write it: no UIDs on some cards, a photo, X- properties.
    vcf.write_bytes(
        (
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\n"
            "EMAIL;TYPE=INTERNET:ann@x.com\r\nTEL;TYPE=CELL:+44 7700 900123\r\n"
            "X-PHONETIC-FIRST-NAME:an\r\nEND:VCARD\r\n"
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob-1\r\nFN:Bob Bo\r\nN:Bo;Bob;;;\r\n"
            "EMAIL:bob@x.com\r\nPHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQ==\r\n"
            "CATEGORIES:Customers\r\nEND:VCARD\r\n" + BROKEN
        ).encode()
    )
    write_csv(
        sheet,
        [["Ann", "Lee", "ann@x.com", "", "Founder", ""], ["Cy", "Cee", "cy@x.com", "", "CTO", ""]],
    )
    assert cli(capsys, "account", "add", "vcard-file", "Phone", "--set", f"path={vcf}")[0] == 0
    assert cli(capsys, "account", "add", "csv", "Sheet", "--set", f"path={sheet}")[0] == 0
    assert cli(capsys, "connection", "create", "main", "--a", "Phone", "--b", "Sheet")[0] == 0

    code, report = sync(capsys)
    assert (code, report["status"]) == (1, "failed")  # the broken card, reported in Health
    assert report["created"] == {"a": 1, "b": 1}
    rows = read_csv(sheet)
    assert set(rows) == {"ann@x.com", "bob@x.com", "cy@x.com"}
    assert rows["ann@x.com"]["Mobile Phone"] == "+44 7700 900123"
    assert rows["bob@x.com"]["Categories"] == "Customers"
    got = cards(vcf)
    assert set(got) == {"ann@x.com", "bob@x.com", "cy@x.com"}
    assert got["ann@x.com"].title.value == "Founder"  # empty in A, filled from B
    assert got["cy@x.com"].title.value == "CTO"  # created, appended to the file
    assert got["bob@x.com"].photo.value == b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01"
    assert "X-PHONETIC-FIRST-NAME:an\r\n" in vcf.read_bytes().decode()
    assert all(c.uid.value for c in got.values())  # a UID on every card from now on
    assert BROKEN.encode() in vcf.read_bytes()  # the broken card is kept as it was
    health = json.loads(cli(capsys, "health", "main", "--json")[1])
    assert "Half Done" in json.dumps(health) and "not closed" in json.dumps(health)

    # A second run with no edits writes nothing.
    before = (vcf.stat().st_mtime_ns, sheet.stat().st_mtime_ns, vcf.read_bytes())
    _, report = sync(capsys)
    assert report["created"] == {"a": 0, "b": 0} and report["updated"] == {"a": 0, "b": 0}
    assert (vcf.stat().st_mtime_ns, sheet.stat().st_mtime_ns, vcf.read_bytes()) == before

    # An edit in the CSV reaches the card; the other cards stay byte for byte.
    rows = read_csv(sheet)
    rows["bob@x.com"]["Job Title"] = "Buyer"
    header = list(rows["bob@x.com"])  # with the Pairsync ID column the first sync added
    write_csv(sheet, [list(r.values()) for r in rows.values()], header)
    old_cards = card_texts(vcf)
    _, report = sync(capsys)
    assert report["updated"] == {"a": 1, "b": 0}
    new_cards = card_texts(vcf)
    others = [c for c in old_cards if "Bob Bo" not in c]
    assert [c for c in new_cards if "Bob Bo" not in c] == others
    assert cards(vcf)["bob@x.com"].title.value == "Buyer"

    # An edit in the vCard file reaches the CSV, and the card keeps its id.
    vcf.write_bytes(vcf.read_bytes().replace(b"TITLE:Founder", b"TITLE:Chair"))
    _, report = sync(capsys)
    assert report["updated"] == {"a": 0, "b": 1} and report["created"] == {"a": 0, "b": 0}
    assert read_csv(sheet)["ann@x.com"]["Job Title"] == "Chair"
    assert len(read_csv(sheet)) == 3 and len(cards(vcf)) == 3


def test_a_new_vcard_file_is_created_by_the_first_sync(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    vcf, sheet = tmp_path / "backup.vcf", tmp_path / "contacts.csv"
    write_csv(sheet, [["Ann", "Lee", "ann@x.com", "+1 555", "CEO", "VIP"]])
    assert cli(capsys, "account", "add", "vcard-file", "Backup", "--set", f"path={vcf}")[0] == 0
    code, _, err = cli(capsys, "account", "add", "vcard-file", "Bad", "--set", f"path={tmp_path}")
    assert code == 2 and "is a folder" in err
    assert cli(capsys, "account", "add", "csv", "Sheet", "--set", f"path={sheet}")[0] == 0
    one_way = ("--a", "Sheet", "--b", "Backup", "--direction", "a-to-b")
    assert cli(capsys, "connection", "create", "main", *one_way)[0] == 0
    _, report = sync(capsys)
    assert report["created"] == {"a": 0, "b": 1}
    [ann] = cards(vcf).values()
    assert ann.fn.value == "Ann Lee" and ann.title.value == "CEO"
    assert ann.categories.value == ["VIP"]
    assert vcf.read_bytes().startswith(b"BEGIN:VCARD\r\nVERSION:3.0\r\n")
