"""``pairsync undo NAME RUN``: put back what a run wrote, from the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from app.cli import main


def card(uid: str, fn: str, email: str, title: str) -> str:
    first, last = fn.split(" ")
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nN:{last};{first};;;\r\n"
        f"EMAIL:{email}\r\nTITLE:{title}\r\nEND:VCARD\r\n"
    )


def write_header(path: Path) -> None:
    path.write_text("First Name,Last Name,E-mail Address,Job Title\r\n", encoding="utf-8")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_undo_a_run_and_one_contact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "cards"
    folder.mkdir()
    sheet = tmp_path / "c.csv"
    write_header(sheet)
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", title="CTO"))
    (folder / "bo.vcf").write_text(card("bo", "Bo Bee", "bo@x.com", title="Dev"))
    assert cli(capsys, "account", "add", "vcard-folder", "Phone", "--set", f"path={folder}")[0] == 0
    assert cli(capsys, "account", "add", "csv", "Sheet", "--set", f"path={sheet}")[0] == 0
    assert cli(capsys, "connection", "create", "main", "--a", "Phone", "--b", "Sheet")[0] == 0
    assert cli(capsys, "sync", "main")[0] == 0
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", title="CEO"))
    (folder / "bo.vcf").write_text(card("bo", "Bo Bee", "bo@x.com", title="Lead"))
    assert cli(capsys, "sync", "main")[0] == 0
    code, out, _ = cli(capsys, "undo", "main", "2", "--contact", "a:ann")
    assert code == 0 and "1 change(s) put back" in out
    titles = {r["E-mail Address"]: r["Job Title"] for r in read_csv(sheet)}
    assert titles == {"ann@x.com": "CTO", "bo@x.com": "Lead"}
    code, out, _ = cli(capsys, "undo", "main", "2", "--json")
    report = json.loads(out)
    assert code == 0 and report["kind"] == "undo" and report["restored"] == 1
    assert [s["reason"] for s in report["skipped"]] == ["changed since that run"]  # Ann: done
    titles = {r["E-mail Address"]: r["Job Title"] for r in read_csv(sheet)}
    assert titles == {"ann@x.com": "CTO", "bo@x.com": "Dev"}
    code, out, _ = cli(capsys, "sync", "main", "--json")
    assert json.loads(out)[0]["updated"] == {"a": 0, "b": 0}
    # The first run created both contacts in the sheet: kept, never deleted.
    code, out, _ = cli(capsys, "undo", "main", "1")
    assert code == 0 and "Pairsync Trash" in out
    assert len(read_csv(sheet)) == 2
    code, _, err = cli(capsys, "undo", "main", "99")
    assert code == 2 and "no run number 99" in err
    code, _, err = cli(capsys, "undo", "main", "1", "--contact", "x")
    assert code == 2 and "a:ID or b:ID" in err
