"""End-to-end: the ``pairsync`` CLI over a real vCard folder and real CSV files (SPEC §13b)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import vobject

from app.cli import main


def cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def card(
    uid: str,
    fn: str,
    email: str = "",
    tels: tuple[tuple[str, str], ...] = (),
    title: str = "",
    extra: str = "",
) -> str:
    parts = fn.split(" ")
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"UID:{uid}",
        f"FN:{fn}",
        f"N:{parts[-1]};{' '.join(parts[:-1])};;;",
    ]
    if email:
        lines.append(f"EMAIL;TYPE=INTERNET,WORK:{email}")
    for kind, number in tels:
        lines.append(f"TEL;TYPE={kind}:{number}")
    if title:
        lines.append(f"TITLE:{title}")
    if extra:
        lines.append(extra)
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"


def read_cards(folder: Path) -> dict[str, Any]:
    out = {}
    for path in sorted(folder.glob("*.vcf")):
        out[path.stem] = vobject.readOne(path.read_text(encoding="utf-8"))
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


OUTLOOK = [
    "First Name",
    "Last Name",
    "E-mail Address",
    "E-mail 2 Address",
    "Mobile Phone",
    "Business Phone",
    "Company",
    "Job Title",
    "Notes",
    "Categories",
]


@pytest.fixture
def setup(tmp_path: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    folder = tmp_path / "cards"
    folder.mkdir()
    sheet = tmp_path / "contacts.csv"

    def connect(
        *options: str, header: list[str] | None = None, rows: list[list[str]] | None = None
    ) -> None:
        if header is not None:
            write_csv(sheet, header, rows or [])
        assert (
            cli(
                "account", "add", "vcard-folder", "Phone", "--set", f"path={folder}", capsys=capsys
            )[0]
            == 0
        )
        assert (
            cli("account", "add", "csv", "Sheet", "--set", f"path={sheet}", capsys=capsys)[0] == 0
        )
        assert (
            cli(
                "connection",
                "create",
                "main",
                "--a",
                "Phone",
                "--b",
                "Sheet",
                *options,
                capsys=capsys,
            )[0]
            == 0
        )

    return folder, sheet, connect


def sync(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, err = cli("sync", "main", "--json", *extra, capsys=capsys)
    assert "Traceback" not in err
    return code, json.loads(out)[0]


def health(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = cli("health", "main", "--json", capsys=capsys)
    assert code == 0
    return json.loads(out)  # type: ignore[no-any-return]


def test_s1_s17_first_sync_then_nothing_to_do(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet, connect = setup
    (folder / "ann.vcf").write_text(
        card("ann", "Ann Lee", "ann@x.com", (("CELL", "+44 7700 900123"),))
    )
    (folder / "zed.vcf").write_text(card("zed", "Zed Zee", "zed@x.com"))
    connect(
        header=OUTLOOK,
        rows=[
            ["Ann", "Lee", "ANN@x.com", "", "+44 7700 900999", "", "Acme", "", "", ""],
            ["Bea", "Bo", "bea@x.com", "", "", "", "", "CTO", "", "Customers"],
        ],
    )
    code, report = sync(capsys)
    assert code == 0 and report["status"] == "ok"
    assert report["created"] == {"a": 1, "b": 1}
    rows = {r["E-mail Address"].lower(): r for r in read_csv(sheet)}
    assert set(rows) == {"ann@x.com", "bea@x.com", "zed@x.com"}
    assert rows["ann@x.com"]["Mobile Phone"] == "+44 7700 900123"  # winner A
    cards = read_cards(folder)
    assert cards["ann"].org.value == ["Acme"]  # empty in A, filled from B
    bea = next(c for c in cards.values() if c.fn.value == "Bea Bo")
    assert bea.title.value == "CTO" and bea.categories.value == ["Customers"]
    before = {p: p.stat().st_mtime_ns for p in [sheet, *folder.glob("*.vcf")]}
    code, report = sync(capsys)
    assert code == 0 and report["created"] == {"a": 0, "b": 0}
    assert report["updated"] == {"a": 0, "b": 0}
    assert {p: p.stat().st_mtime_ns for p in [sheet, *folder.glob("*.vcf")]} == before
    assert health(capsys)["counts"]["in_sync"] == 3


def test_s2_email_change_and_s6_conflict(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet, connect = setup
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", title="CEO"))
    (folder / "zed.vcf").write_text(card("zed", "Zed Zee", "zed@x.com"))
    connect(header=OUTLOOK, rows=[["Ann", "Lee", "ann@x.com", "", "", "", "", "CEO", "", ""]])
    sync(capsys)
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@y.com", title="Chair"))
    rows = read_csv(sheet)
    for r in rows:
        if r["First Name"] == "Ann":
            r["Job Title"] = "Founder"
    write_csv(sheet, list(rows[0]), [list(r.values()) for r in rows])
    code, report = sync(capsys)
    assert code == 0 and report["conflicts"] == 1 and report["created"] == {"a": 0, "b": 0}
    ann = next(r for r in read_csv(sheet) if r["First Name"] == "Ann")
    assert (ann["E-mail Address"], ann["Job Title"]) == ("ann@y.com", "Chair")
    assert len(read_csv(sheet)) == 2
    conflict = health(capsys)["conflicts"][0]
    assert (conflict["value_a"], conflict["value_b"], conflict["winner"]) == (
        "Chair",
        "Founder",
        "a",
    )


def test_s3_no_email_excluded_and_s11_duplicates(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, _sheet, connect = setup
    (folder / "bob.vcf").write_text(card("bob", "Bob Nomail"))
    (folder / "dave.vcf").write_text(card("dave", "Dave Dee", "dave@x.com"))
    connect(
        header=OUTLOOK,
        rows=[
            ["Dave", "One", "dave@x.com", "", "", "", "", "", "", ""],
            ["David", "Two", "Dave@X.com", "", "", "", "", "", "", ""],
        ],
    )
    code, report = sync(capsys)
    assert code == 0
    assert report["excluded"] == 1 and report["duplicates"] == 3
    assert report["created"] == {"a": 0, "b": 0} and report["updated"] == {"a": 0, "b": 0}
    h = health(capsys)
    assert [(e["name"], e["reason"]) for e in h["excluded"]] == [("Bob Nomail", "no email")]
    assert {d["name"] for d in h["duplicates"]} == {"Dave Dee", "Dave One", "David Two"}
    assert h["counts"]["in_sync"] == 0


def test_s5_one_way(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet, connect = setup
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", title="CEO"))
    connect(
        "--direction",
        "a-to-b",
        header=OUTLOOK,
        rows=[["Bea", "Bo", "bea@x.com", "", "", "", "", "", "", ""]],
    )
    sync(capsys)
    assert len(list(folder.glob("*.vcf"))) == 1  # Bea is not copied into A
    snapshot = (folder / "ann.vcf").read_bytes()
    rows = read_csv(sheet)
    for r in rows:
        r["Job Title"] = "Edited in B"
    write_csv(sheet, list(rows[0]), [list(r.values()) for r in rows])
    code, report = sync(capsys)
    assert code == 0 and report["updated"]["a"] == 0 and report["created"]["a"] == 0
    assert (folder / "ann.vcf").read_bytes() == snapshot


def test_s7_deleted_never_recreated(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet, connect = setup
    for name in ("Ann Lee", "Bea Bo", "Cy Cee"):
        uid = name.split()[0].lower()
        (folder / f"{uid}.vcf").write_text(card(uid, name, f"{uid}@x.com"))
    connect()
    sync(capsys)
    rows = [r for r in read_csv(sheet) if "ann@x.com" not in r.values()]
    header = list(read_csv(sheet)[0])
    write_csv(sheet, header, [list(r.values()) for r in rows])
    code, report = sync(capsys)
    assert code == 0 and report["deleted_other_side"] == 1
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", title="edited"))
    code, report = sync(capsys)
    assert report["created"] == {"a": 0, "b": 0}
    assert (folder / "ann.vcf").exists()
    assert len(read_csv(sheet)) == 2
    h = health(capsys)
    assert h["counts"]["deleted_other_side"] == 1
    assert [d["name"] for d in h["deleted_other_side"]] == ["Ann Lee"]


def test_s10_guard_when_a_side_empties(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet, connect = setup
    for i in range(6):
        (folder / f"c{i}.vcf").write_text(card(f"c{i}", f"Person {i}", f"p{i}@x.com"))
    connect()
    sync(capsys)
    header = list(read_csv(sheet)[0])
    write_csv(sheet, header, [])
    (folder / "c0.vcf").write_text(card("c0", "Person 0", "p0@x.com", title="changed"))
    before = {p.name: p.read_bytes() for p in [sheet, *folder.glob("*.vcf")]}
    code, report = sync(capsys)
    assert code == 4 and report["status"] == "guard"
    assert report["guard"]["listed"] == 0 and report["guard"]["known"] == 6
    assert {p.name: p.read_bytes() for p in [sheet, *folder.glob("*.vcf")]} == before
    code, _out, err = cli("sync", "main", capsys=capsys)
    assert code == 4 and "Nothing was written" in err
    code, report = sync(capsys, "--yes")
    assert code == 0 and report["deleted_other_side"] == 6
    assert len(list(folder.glob("*.vcf"))) == 6 and read_csv(sheet) == []


def test_s13_full_name_to_first_last(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    names, outlook = tmp_path / "names.csv", tmp_path / "outlook.csv"
    write_csv(names, ["Name", "Email"], [["Maria de la Cruz", "maria@x.com"]])
    write_csv(outlook, OUTLOOK, [])
    cli("account", "add", "csv", "Names", "--set", f"path={names}", capsys=capsys)
    cli("account", "add", "csv", "Outlook", "--set", f"path={outlook}", capsys=capsys)
    cli("connection", "create", "main", "--a", "Names", "--b", "Outlook", capsys=capsys)
    code, report = sync(capsys)
    assert code == 0 and report["created"]["b"] == 1
    [row] = read_csv(outlook)
    assert (row["First Name"], row["Last Name"]) == ("Maria de la", "Cruz")


def test_s14_two_phones_to_one_phone_column(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet = tmp_path / "cards", tmp_path / "simple.csv"
    folder.mkdir()
    (folder / "ann.vcf").write_text(
        card(
            "ann",
            "Ann Lee",
            "ann@x.com",
            (("CELL", "+44 7700 900123"), ("WORK", "+44 20 7946 0958")),
        )
    )
    write_csv(sheet, ["Name", "Email", "Phone"], [])
    cli("account", "add", "vcard-folder", "Phone", "--set", f"path={folder}", capsys=capsys)
    cli("account", "add", "csv", "Simple", "--set", f"path={sheet}", capsys=capsys)
    cli("connection", "create", "main", "--a", "Phone", "--b", "Simple", capsys=capsys)
    sync(capsys)
    [row] = read_csv(sheet)
    assert row["Phone"] == "+44 7700 900123"
    row["Phone"] = "+44 7700 900999"
    write_csv(sheet, list(row), [list(row.values())])
    sync(capsys)
    tels = [(t.params.get("TYPE"), t.value) for t in read_cards(folder)["ann"].contents["tel"]]
    assert [v for _, v in tels] == ["+44 7700 900999", "+44 20 7946 0958"]
    _code, report = sync(capsys)
    assert report["updated"] == {"a": 0, "b": 0}


def test_broken_card_is_reported_not_a_traceback(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, _sheet, connect = setup
    (folder / "ok.vcf").write_text(card("ok", "Ok Person", "ok@x.com"))
    (folder / "broken.vcf").write_bytes(b"BEGIN:VCARD\r\nthis is not a property\r\n\xff\xfe junk")
    connect()
    code, report = sync(capsys)
    assert code == 1 and report["status"] == "failed" and report["failed"] == 1
    assert report["created"]["b"] == 1
    [failure] = health(capsys)["failed"]
    assert failure["record_id"] == "broken" and "not a valid vCard" in failure["reason"]
    code, out, _ = cli("health", "main", capsys=capsys)
    assert "broken" in out and "not a valid vCard" in out
    # Fixing the file clears the failure.
    (folder / "broken.vcf").write_text(card("broken", "Fixed Person", "fixed@x.com"))
    code, report = sync(capsys)
    assert code == 0 and health(capsys)["counts"]["failed"] == 0


def test_pause_export_import_and_delete(setup, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, sheet, connect = setup
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com"))
    connect("--winner", "b", "--trash", "on")
    assert cli("connection", "pause", "main", capsys=capsys)[0] == 0
    code, report = sync(capsys)
    assert report["status"] == "paused" and not sheet.exists()
    cli("connection", "resume", "main", capsys=capsys)
    code, out, _ = cli("connection", "export", "main", capsys=capsys)
    exported = json.loads(out)
    assert exported["winner"] == "b" and exported["trash"] is True
    assert "password" not in out.lower()
    export_file = tmp_path / "export.json"
    export_file.write_text(out)
    code, _, err = cli("connection", "import", str(export_file), capsys=capsys)
    assert code == 2 and "already exists" in err
    assert cli("connection", "import", str(export_file), "--name", "copy", capsys=capsys)[0] == 0
    code, out, _ = cli("connection", "export", "copy", capsys=capsys)
    again = json.loads(out)
    assert {k: v for k, v in again.items() if k != "name"} == {
        k: v for k, v in exported.items() if k != "name"
    }
    code, out, _ = cli("connection", "delete", "copy", capsys=capsys)
    assert code == 0 and "No contact was changed" in out
    assert (folder / "ann.vcf").exists()


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["sync", "nope"], 2, "no connection named 'nope'"),
        (["health", "nope"], 2, "no connection named 'nope'"),
        (["account", "add", "fax-machine", "x"], 2, "Unknown app kind"),
        (["account", "add", "csv", "x"], 2, "needs --set path="),
        (["connection", "create", "c", "--a", "x", "--b", "y"], 2, "no account named 'x'"),
        (["connection", "create"], 2, "required"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_with_exit_codes(args: list[str], code: int, text: str, capsys) -> None:  # type: ignore[no-untyped-def]
    got, _out, err = cli(*args, capsys=capsys)
    assert got == code
    assert text in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_real_subprocess_no_traceback_and_help(tmp_path: Path) -> None:
    env = {"PAIRSYNC_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "app"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0 and "account" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "app", "health", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_value_that_does_not_fit_is_named_once_and_the_rest_syncs(
    setup,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    """Issue 12 changed this on purpose: a 3rd and 4th e-mail into Outlook's CSV (two e-mail
    columns) was a failure on every run (exit 1, retried forever); now the values that fit
    are written, the contact is in sync, the run exits 0, and Health names the rest once."""
    folder, sheet, connect = setup
    extra = "\r\n".join(f"EMAIL;TYPE=INTERNET:ann{i}@x.com" for i in range(2, 5))
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", extra=extra))
    (folder / "bo.vcf").write_text(card("bo", "Bo Bee", "bo@x.com"))
    connect(header=OUTLOOK, rows=[])
    code, report = sync(capsys)
    assert code == 0 and report["status"] == "ok"
    assert report["failed"] == 0 and report["not_fitting"] == 1 and report["created"]["b"] == 2
    h = health(capsys)
    assert h["counts"]["failed"] == 0 and h["counts"]["in_sync"] == 2
    assert h["counts"]["not_fitting"] == 1
    [item] = h["not_fitting"]
    assert (item["side"], item["name"], item["field"]) == ("b", "Ann Lee", "emails")
    assert item["values"] == ["ann3@x.com", "ann4@x.com"]
    assert item["record_id"] in {r["Pairsync ID"] for r in read_csv(sheet)}
    code, out, _ = cli("health", "main", capsys=capsys)
    assert "Not fitting" in out and "ann3@x.com, ann4@x.com" in out
    for _ in range(2):  # reported once: nothing retried, nothing written
        code, report = sync(capsys)
        assert code == 0 and report["not_fitting"] == 0
        assert report["updated"] == {"a": 0, "b": 0} and report["created"] == {"a": 0, "b": 0}
    ann = next(r for r in read_csv(sheet) if r["First Name"] == "Ann")
    assert (ann["E-mail Address"], ann["E-mail 2 Address"]) == ("ann@x.com", "ann2@x.com")
    assert len(read_csv(sheet)) == 2 and len(list(folder.glob("*.vcf"))) == 2
    cards = read_cards(folder)
    assert len(cards["ann"].contents["email"]) == 4  # nothing lost on the side that had them
    # An edit elsewhere in the contact still flows; the list stays as each app holds it.
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", title="CEO", extra=extra))
    code, report = sync(capsys)
    assert code == 0 and report["updated"] == {"a": 0, "b": 1}
    assert next(r for r in read_csv(sheet) if r["First Name"] == "Ann")["Job Title"] == "CEO"
    assert len(read_cards(folder)["ann"].contents["email"]) == 4
    # The user makes room in the sheet's contact (drops the 2nd e-mail there): the merge
    # removes it on both sides and the rest now fits.
    rows = read_csv(sheet)
    for r in rows:
        if r["First Name"] == "Ann":
            r["E-mail 2 Address"] = ""
    write_csv(sheet, list(rows[0]), [list(r.values()) for r in rows])
    code, report = sync(capsys)
    assert code == 0
    assert health(capsys)["counts"]["not_fitting"] == 1  # 3 left for 2 columns: one is out
