"""Rules, unsubscribes and connection settings through the CLI, on real CSV files and vCard
folders (SPEC §3, §7, §8; S4 and S8 end to end)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from app.cli import main


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {r["Email"]: r for r in csv.DictReader(fh)}


def sync(capsys: pytest.CaptureFixture[str], name: str = "c") -> dict[str, Any]:
    code, out, _ = cli(capsys, "sync", name, "--json")
    report = json.loads(out)[0]
    assert code == 0, report
    return report


def rules(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    code, out, _ = cli(capsys, "connection", "rules", "c", "--json")
    assert code == 0
    return list(json.loads(out))


HEADER = ["Name", "Email", "Company", "Title", "Tags", "Newsletter"]


@pytest.fixture
def crm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """A: a CRM export with tags and a newsletter column; B: an address book sheet."""
    a, b = tmp_path / "crm.csv", tmp_path / "book.csv"
    write_csv(
        a,
        HEADER,
        [
            ["Carol King", "carol@x.com", "Acme", "CTO", "Customers", "subscribed"],
            ["Dan Brown", "dan@x.com", "Initech", "Dev", "Leads", "subscribed"],
            ["Eve Ng", "eve@x.com", "Acme", "CEO", "Customers; VIP", "unsubscribed"],
        ],
    )
    write_csv(b, HEADER, [["Dan Brown", "dan@x.com", "", "", "", "yes"]])
    assert cli(capsys, "account", "add", "csv", "CRM", "--set", f"path={a}",
               "--set", "subscription=Newsletter")[0] == 0  # fmt: skip
    assert cli(capsys, "account", "add", "csv", "Book", "--set", f"path={b}",
               "--set", "subscription=Newsletter")[0] == 0  # fmt: skip
    assert cli(capsys, "connection", "create", "c", "--a", "CRM", "--b", "Book")[0] == 0
    return a, b


def test_default_rules_are_listed_with_counts(crm, capsys) -> None:  # type: ignore[no-untyped-def]
    views = rules(capsys)
    assert [v["source"] for v in views] == ["a", "b"]
    assert [v["count"] for v in views] == [None, None]  # not counted before the first sync
    assert views[0]["sentence"].startswith("IF a contact in CRM THEN create or update it in Book")
    sync(capsys)
    views = rules(capsys)
    assert [v["count"] for v in views] == [3, 3]
    code, out, _ = cli(capsys, "connection", "rules", "c")
    assert code == 0 and "1. [on] IF a contact in CRM" in out and "matches 3 contacts" in out


def test_s4_through_the_cli(crm, capsys) -> None:  # type: ignore[no-untyped-def]
    a, b = crm
    assert cli(capsys, "connection", "rule", "remove", "c", "2")[0] == 0
    assert cli(capsys, "connection", "rule", "remove", "c", "1")[0] == 0
    code, out, _ = cli(
        capsys, "connection", "rule", "add", "c", "--source", "a",
        "--if-segment", "Customers", "--then-add-segment", "Customers",
    )  # fmt: skip
    assert code == 0, out
    assert "IF a contact in CRM is in segment “Customers” THEN create or update it in Book" in out
    assert "matches — (counted after the first sync)" in out  # nothing indexed yet
    report = sync(capsys)
    assert report["created"] == {"a": 0, "b": 2}
    book = read_csv(b)
    assert set(book) == {"carol@x.com", "dan@x.com", "eve@x.com"}
    assert book["carol@x.com"]["Tags"] == "Customers"
    assert book["dan@x.com"]["Tags"] == "", "Dan is in no rule: untouched"
    assert rules(capsys)[0]["count"] == 2
    # Carol leaves "Customers" in the CRM.
    rows = list(csv.reader(a.open(encoding="utf-8-sig")))
    header = rows[0]
    for row in rows[1:]:
        if row[1] == "carol@x.com":
            row[header.index("Tags")] = ""
    write_csv(a, header, rows[1:])
    sync(capsys)
    book = read_csv(b)
    assert "carol@x.com" in book, "nothing deleted"
    assert book["carol@x.com"]["Tags"] == ""
    code, out, _ = cli(capsys, "health", "c", "--json")
    health = json.loads(out)
    carol = [e for e in health["excluded"] if e["name"] == "Carol King"]
    assert {e["reason"] for e in carol} == {"no rule matches"}
    assert rules(capsys)[0]["count"] == 1
    # Idempotent.
    report = sync(capsys)
    assert report["created"] == {"a": 0, "b": 0} and report["updated"] == {"a": 0, "b": 0}


def test_field_filters_set_action_and_mapping_clash(crm, capsys) -> None:  # type: ignore[no-untyped-def]
    _, b = crm
    code, _, err = cli(
        capsys, "connection", "rule", "add", "c", "--source", "a",
        "--if", "organization contains acme", "--then-set", "title=Customer",
    )  # fmt: skip
    assert code == 2
    assert "already writes" in err and "title=title" in err
    assert cli(capsys, "connection", "toggle", "c", "title=title", "off")[0] == 0
    code, out, _ = cli(
        capsys, "connection", "rule", "add", "c", "--source", "a", "--position", "1",
        "--if", "organization contains acme", "--then-set", "title=Customer",
    )  # fmt: skip
    assert code == 0, out
    # Turning the mapping back on now fights the rule: refused with the reason.
    code, _, err = cli(capsys, "connection", "toggle", "c", "title=title", "on")
    assert code == 2 and "A rule sets title" in err
    sync(capsys)
    book = read_csv(b)
    assert book["carol@x.com"]["Title"] == "Customer"
    assert book["eve@x.com"]["Title"] == "Customer"
    assert book["dan@x.com"]["Title"] == ""
    code, _, err = cli(
        capsys, "connection", "rule", "add", "c", "--source", "a", "--if", "nosuch is x"
    )
    assert code == 2 and "has no field 'nosuch'" in err
    code, _, err = cli(
        capsys, "connection", "rule", "add", "c", "--source", "a", "--if", "gibberish"
    )
    assert code == 2 and "Cannot read the filter" in err


def test_move_enable_disable_and_toggles(crm, capsys) -> None:  # type: ignore[no-untyped-def]
    cli(
        capsys, "connection", "rule", "add", "c", "--source", "a",
        "--if-segment", "VIP", "--then-add-segment", "VIP",
    )  # fmt: skip
    assert [v["position"] for v in rules(capsys)] == [1, 2, 3]
    assert cli(capsys, "connection", "rule", "move", "c", "3", "1")[0] == 0
    views = rules(capsys)
    assert views[0]["if"] == [{"kind": "segment", "op": "has", "value": "VIP"}]
    assert cli(capsys, "connection", "rule", "disable", "c", "1")[0] == 0
    assert rules(capsys)[0]["enabled"] is False and rules(capsys)[0]["ignored"] == "turned off"
    assert cli(capsys, "connection", "rule", "enable", "c", views[0]["id"])[0] == 0
    code, out, _ = cli(capsys, "connection", "rule", "set", "c", "1", "--undo", "off",
                       "--other-way", "on")  # fmt: skip
    assert code == 0 and "undo off, other way around on" in out
    assert rules(capsys)[0]["mirror"]["sentence"].startswith("IF a contact in Book is in segment")
    code, _, err = cli(capsys, "connection", "rule", "move", "c", "9", "1")
    assert code == 2 and "No rule '9'" in err
    code, _, err = cli(capsys, "connection", "rule", "add", "c", "--source", "a",
                       "--if", "organization contains Acme", "--then-add-segment", "X",
                       "--other-way", "on")  # fmt: skip
    assert code == 2 and "not possible" in err


def test_one_way_shows_ignored_rules(crm, capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli(capsys, "connection", "set", "c", "--direction", "a-to-b")[0] == 0
    views = rules(capsys)
    assert views[0]["active"] is True
    assert views[1]["active"] is False and "one-way" in views[1]["ignored"]
    code, out, _ = cli(capsys, "connection", "rules", "c")
    assert code == 0 and "ignored: one-way" in out


def test_s8_unsubscribes_from_a_designated_column(crm, capsys) -> None:  # type: ignore[no-untyped-def]
    a, b = crm
    assert cli(capsys, "connection", "set", "c", "--unsubscribes", "on")[0] == 0
    sync(capsys)
    book = read_csv(b)
    assert "Pairsync Unsubscribes" in book["eve@x.com"]["Tags"]
    assert book["eve@x.com"]["Newsletter"] == "", "the status is not copied without opt-out"
    # Dan unsubscribes in the address book (B); the CRM copy gets the review segment, and
    # opting out is off, so the CRM's own flag is untouched.
    rows = list(csv.reader(b.open(encoding="utf-8-sig")))
    header = rows[0]
    for row in rows[1:]:
        if row[1] == "dan@x.com":
            row[header.index("Newsletter")] = "no"
    write_csv(b, header, rows[1:])
    sync(capsys)
    crm_rows = read_csv(a)
    assert "Pairsync Unsubscribes" in crm_rows["dan@x.com"]["Tags"]
    assert "Pairsync Unsubscribes" not in read_csv(b)["dan@x.com"]["Tags"]
    report = sync(capsys)
    assert report["updated"] == {"a": 0, "b": 0}
    # With opt-out on, the other file's own column is set too (Carol unsubscribes in A).
    assert cli(capsys, "connection", "set", "c", "--unsubscribe-opt-out", "on")[0] == 0
    rows = list(csv.reader(a.open(encoding="utf-8-sig")))
    header = rows[0]
    for row in rows[1:]:
        if row[1] == "carol@x.com":
            row[header.index("Newsletter")] = "Unsubscribed"
    write_csv(a, header, rows[1:])
    sync(capsys)
    assert read_csv(b)["carol@x.com"]["Newsletter"] == "unsubscribed"
    assert "Pairsync Unsubscribes" in read_csv(b)["carol@x.com"]["Tags"]


def test_rules_round_trip_through_export_and_import(crm, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cli(
        capsys, "connection", "rule", "add", "c", "--source", "b", "--any",
        "--if", "title starts with Dir", "--if-not-segment", "Old", "--only-existing",
        "--then-remove-segment", "Leads", "--undo", "off",
    )  # fmt: skip
    cli(capsys, "connection", "set", "c", "--unsubscribes", "on", "--unsubscribe-opt-out", "on")
    code, out, _ = cli(capsys, "connection", "export", "c")
    assert code == 0
    data = json.loads(out)
    path = tmp_path / "c.json"
    path.write_text(out, encoding="utf-8")
    assert cli(capsys, "connection", "import", str(path), "--name", "c2")[0] == 0
    code, out, _ = cli(capsys, "connection", "export", "c2")
    again = json.loads(out)
    assert again["config"]["rules"] == data["config"]["rules"]
    assert again["unsubscribe_opt_out"] is True
    assert data["config"]["rules"][2]["if"][2] == {"kind": "exists", "op": "exists"}
    bad = dict(data, config={"rules": [{"id": "x", "source": "q"}]})
    path.write_text(json.dumps(bad), encoding="utf-8")
    code, _, err = cli(capsys, "connection", "import", str(path), "--name", "c3")
    assert code == 2 and "rules are malformed" in err


def test_s8_vcard_property_and_csv_column_with_opt_out(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A vCard folder whose cards carry X-NEWSLETTER ↔ a CSV file with a Newsletter column."""
    folder, sheet = tmp_path / "cards", tmp_path / "list.csv"
    folder.mkdir()
    (folder / "eve.vcf").write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:eve\r\nFN:Eve Ng\r\nN:Ng;Eve;;;\r\n"
        "EMAIL:eve@x.com\r\nX-NEWSLETTER:subscribed\r\nX-KEEP:me\r\nEND:VCARD\r\n",
        encoding="utf-8",
    )
    write_csv(sheet, HEADER, [["Eve Ng", "eve@x.com", "", "", "", "yes"]])
    assert cli(capsys, "account", "add", "vcard-folder", "Cards", "--set", f"path={folder}",
               "--set", "subscription=X-NEWSLETTER")[0] == 0  # fmt: skip
    assert cli(capsys, "account", "add", "csv", "List", "--set", f"path={sheet}",
               "--set", "subscription=Newsletter")[0] == 0  # fmt: skip
    assert cli(capsys, "connection", "create", "c", "--a", "Cards", "--b", "List",
               "--unsubscribes", "on", "--unsubscribe-opt-out", "on")[0] == 0  # fmt: skip
    sync(capsys)
    assert read_csv(sheet)["eve@x.com"]["Tags"] == ""
    # Eve unsubscribes on the phone: the list gets the review tag and its own opt-out.
    card = (folder / "eve.vcf").read_text(encoding="utf-8")
    (folder / "eve.vcf").write_text(
        card.replace("X-NEWSLETTER:subscribed", "X-NEWSLETTER:Unsubscribed"), encoding="utf-8"
    )
    sync(capsys)
    row = read_csv(sheet)["eve@x.com"]
    assert row["Tags"] == "Pairsync Unsubscribes"
    assert row["Newsletter"] == "unsubscribed"
    card = (folder / "eve.vcf").read_text(encoding="utf-8")
    assert "Pairsync Unsubscribes" not in card, "the review tag stays on the other side"
    assert "X-KEEP:me" in card
    # She subscribes again on the phone: nobody is re-subscribed in the list.
    (folder / "eve.vcf").write_text(
        card.replace("X-NEWSLETTER:Unsubscribed", "X-NEWSLETTER:subscribed"), encoding="utf-8"
    )
    report = sync(capsys)
    assert read_csv(sheet)["eve@x.com"]["Newsletter"] == "unsubscribed"
    assert report["updated"]["b"] == 0
