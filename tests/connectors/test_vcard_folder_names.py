"""vCard folder files with names other tools make, and files with several cards (issue 12).

``urn:uuid:1234.vcf``, quotes, ``?``, ``|``, a backslash or a 250-character name: each such
file is a contact like any other (read, synced, edited in place); files Pairsync creates keep
safe names. A file holding several cards is reported in Health and never rewritten, so no
card in it is lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.connectors.vcard_folder import VCardFolderApp
from app.model import Record, Unreadable, Update

ODD_NAMES = [
    "urn:uuid:1234",
    'say "hi"',
    "what?",
    "pipe|line",
    "back\\slash",
    "star*and<angle>",
    "x" * 250,
    "plain",
]


def card(uid: str, name: str, email: str) -> str:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\n"
        f"EMAIL:{email}\r\nEND:VCARD\r\n"
    )


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "cards"
    folder.mkdir()
    for i, name in enumerate(ODD_NAMES):
        (folder / f"{name}.vcf").write_text(card(f"u{i}", f"Person{i}", f"p{i}@example.com"))
    return folder


def test_odd_names_are_read_and_edited_in_place(odd_folder: Path) -> None:
    app = VCardFolderApp(odd_folder)
    listing = app.list_versions()
    assert set(listing) == set(ODD_NAMES)
    records = app.fetch(list(listing))
    assert len(records) == len(ODD_NAMES)
    assert all(isinstance(r, Record) for r in records), records
    target = next(r for r in records if r.id == "urn:uuid:1234")
    [result] = app.write([Update("u", target.id, {"title": "Boss"}, target.version)])
    assert result.error is None, result.error
    assert "TITLE:Boss" in (odd_folder / "urn:uuid:1234.vcf").read_text()
    assert sorted(p.name for p in odd_folder.iterdir()) == sorted(f"{n}.vcf" for n in ODD_NAMES)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


def test_all_eight_contacts_sync_and_new_files_are_safe_named(
    odd_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "new.vcf").write_text(card("n1", "Newcomer", "new@example.com"))
    assert (
        _cli(capsys, "account", "add", "vcard-folder", "A", "--set", f"path={odd_folder}")[0] == 0
    )
    assert _cli(capsys, "account", "add", "vcard-folder", "B", "--set", f"path={other}")[0] == 0
    assert _cli(capsys, "connection", "create", "M", "--a", "A", "--b", "B")[0] == 0
    code, out = _cli(capsys, "sync", "M", "--json")
    assert code == 0, out
    report = json.loads(out)[0]
    assert report["created"] == {"a": 1, "b": len(ODD_NAMES)}, report
    assert len(list(other.glob("*.vcf"))) == len(ODD_NAMES) + 1
    new = [p for p in odd_folder.glob("*.vcf") if p.stem not in ODD_NAMES]
    assert len(new) == 1
    assert all(ch.isalnum() or ch == "-" for ch in new[0].stem), new[0].name
    code, out = _cli(capsys, "sync", "M", "--json")
    again = json.loads(out)[0]
    assert again["created"] == {"a": 0, "b": 0} and again["updated"] == {"a": 0, "b": 0}


TWO_CARDS = card("one", "First", "first@example.com") + card("two", "Second", "second@ex.com")


def test_a_file_with_two_cards_is_reported_not_half_read(tmp_path: Path) -> None:
    (tmp_path / "both.vcf").write_bytes(TWO_CARDS.encode())
    app = VCardFolderApp(tmp_path)
    [item] = app.fetch(["both"])
    assert isinstance(item, Unreadable)
    assert "2 contacts" in item.message and "both.vcf" in item.message
    [result] = app.write([Update("u", "both", {"title": "X"})])
    assert result.error is not None
    assert (tmp_path / "both.vcf").read_bytes() == TWO_CARDS.encode()


def test_two_cards_in_one_file_show_in_health_and_stay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "both.vcf").write_text(TWO_CARDS)
    (a / "single.vcf").write_text(card("s", "Single", "single@example.com"))
    before = (a / "both.vcf").read_bytes()
    assert _cli(capsys, "account", "add", "vcard-folder", "A", "--set", f"path={a}")[0] == 0
    assert _cli(capsys, "account", "add", "vcard-folder", "B", "--set", f"path={b}")[0] == 0
    assert _cli(capsys, "connection", "create", "M", "--a", "A", "--b", "B")[0] == 0
    _cli(capsys, "sync", "M")
    _code, out = _cli(capsys, "health", "M", "--json")
    health = json.loads(out)
    reasons = [f["reason"] for f in health["failed"]]
    assert any("both.vcf holds 2 contacts" in r for r in reasons), health
    assert (a / "both.vcf").read_bytes() == before
    assert len(list(b.glob("*.vcf"))) == 1  # the single contact synced
