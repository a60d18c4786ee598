"""End-to-end: a run writes only where it may, and a contact whose id changed is the same
contact (issue 12: "Writes only where allowed", "Dropping the Pairsync ID column")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli_scenarios import OUTLOOK, card, cli, read_cards, read_csv, write_csv


def _sync(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, err = cli("sync", "main", "--json", *extra, capsys=capsys)
    assert "Traceback" not in err
    return code, json.loads(out)[0]


def _health(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = cli("health", "main", "--json", capsys=capsys)
    assert code == 0
    return json.loads(out)  # type: ignore[no-any-return]


def _connect(
    capsys: pytest.CaptureFixture[str], a: tuple[str, Path], b: tuple[str, Path], *opts: str
) -> None:
    for name, (kind, path) in (("A", a), ("B", b)):
        code, _, err = cli("account", "add", kind, name, "--set", f"path={path}", capsys=capsys)
        assert code == 0, err
    code, _, err = cli("connection", "create", "main", "--a", "A", "--b", "B", *opts, capsys=capsys)
    assert code == 0, err


ROWS = [
    ["Ann", "Lee", "ann@x.com", "", "+44 7700 900123", "", "Acme", "CEO", "", ""],
    ["Bea", "Bo", "bea@x.com", "", "", "", "", "CTO", "", "Customers"],
    ["Cy", "Cee", "cy@x.com", "", "", "", "", "", "", ""],
]


def test_one_way_source_csv_is_never_written(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    sheet, folder = tmp_path / "source.csv", tmp_path / "cards"
    folder.mkdir()
    write_csv(sheet, OUTLOOK, ROWS)
    _connect(capsys, ("csv", sheet), ("vcard-folder", folder), "--direction", "a-to-b")
    before = sheet.read_bytes()
    code, report = _sync(capsys, "--dry-run")
    assert code == 0 and report["created"]["b"] == 3
    assert sheet.read_bytes() == before
    code, report = _sync(capsys)
    assert code == 0 and report["created"] == {"a": 0, "b": 3}
    assert sheet.read_bytes() == before  # no Pairsync ID column in the read-only source
    # An edit in the source (its id as read changes with it) flows as an update of the
    # same contact: no deletion, no duplicate, and still nothing written to the source.
    rows = read_csv(sheet)
    rows[0]["Job Title"] = "Chair"
    write_csv(sheet, OUTLOOK, [list(r.values()) for r in rows])
    edited = sheet.read_bytes()
    code, report = _sync(capsys)
    assert code == 0 and report["updated"] == {"a": 0, "b": 1}
    assert report["created"] == {"a": 0, "b": 0} and report["deleted_other_side"] == 0
    assert sheet.read_bytes() == edited
    cards = read_cards(folder)
    assert len(cards) == 3
    ann = next(c for c in cards.values() if c.fn.value == "Ann Lee")
    assert ann.title.value == "Chair"
    h = _health(capsys)
    assert h["counts"]["in_sync"] == 3 and h["counts"]["duplicates"] == 0
    code, report = _sync(capsys)
    assert report["updated"] == {"a": 0, "b": 0} and sheet.read_bytes() == edited


def test_one_way_source_vcard_file_gets_no_uids(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    book, sheet = tmp_path / "export.vcf", tmp_path / "out.csv"
    text = "".join(
        card(uid, name, email).replace(f"UID:{uid}\r\n", "")
        for uid, name, email in (("a", "Ann Lee", "ann@x.com"), ("b", "Bea Bo", "bea@x.com"))
    )
    book.write_bytes(text.encode())
    _connect(capsys, ("vcard-file", book), ("csv", sheet), "--direction", "a-to-b")
    code, report = _sync(capsys)
    assert code == 0 and report["created"] == {"a": 0, "b": 2}
    assert book.read_bytes() == text.encode()  # no UID stamped into the read-only side
    book.write_bytes(text.replace("FN:Ann Lee\r\n", "FN:Ann Lee\r\nTITLE:Boss\r\n").encode())
    code, report = _sync(capsys)
    assert code == 0 and report["created"] == {"a": 0, "b": 0}
    assert report["deleted_other_side"] == 0 and report["updated"]["b"] == 1
    assert b"UID" not in book.read_bytes()
    assert sorted(r["Job Title"] for r in read_csv(sheet)) == ["", "Boss"]


def test_guard_stop_leaves_both_apps_byte_identical(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    for i in range(6):
        (folder / f"c{i}.vcf").write_text(card(f"c{i}", f"Person {i}", f"p{i}@x.com"))
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    assert _sync(capsys)[0] == 0
    write_csv(sheet, OUTLOOK, [])  # emptied, and without its Pairsync ID column
    before = {p.name: p.read_bytes() for p in [sheet, *folder.glob("*.vcf")]}
    code, report = _sync(capsys)
    assert code == 4 and report["status"] == "guard"
    assert {p.name: p.read_bytes() for p in [sheet, *folder.glob("*.vcf")]} == before
    code, _out, err = cli("sync", "main", capsys=capsys)
    assert code == 4
    assert "CSV file lists no contacts at all, where it listed 6 contacts last time" in err
    assert "0 %" not in err
    assert {p.name: p.read_bytes() for p in [sheet, *folder.glob("*.vcf")]} == before


def test_a_run_with_nothing_to_write_writes_nothing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com"))
    write_csv(sheet, ["Name", "Email"], [["Ann Lee", "ann@x.com"]])
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    before = {p.name: p.read_bytes() for p in [sheet, *folder.glob("*.vcf")]}
    assert _sync(capsys, "--dry-run")[0] == 0
    assert {p.name: p.read_bytes() for p in [sheet, *folder.glob("*.vcf")]} == before
    code, report = _sync(capsys)
    assert code == 0 and report["updated"] == {"a": 0, "b": 0}
    assert report["created"] == {"a": 0, "b": 0}
    assert {p.name: p.read_bytes() for p in [sheet, *folder.glob("*.vcf")]} == before


def test_csv_exported_again_without_its_id_column_keeps_every_pair(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    for i in range(8):
        (folder / f"c{i}.vcf").write_text(card(f"c{i}", f"Person {i}", f"p{i}@x.com"))
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    assert _sync(capsys)[0] == 0
    rows = read_csv(sheet)
    assert "Pairsync ID" in rows[0]
    # The user re-exports the sheet: same contacts, no Pairsync ID column, one edit.
    header = [h for h in rows[0] if h != "Pairsync ID"]
    out = [[r[h] for h in header] for r in rows]
    out[0][header.index("Job Title")] = "Edited in the sheet"
    write_csv(sheet, header, out)
    code, report = _sync(capsys)
    assert code == 0 and report["status"] == "ok"
    assert report["created"] == {"a": 0, "b": 0} and report["deleted_other_side"] == 0
    assert report["duplicates"] == 0 and report["updated"] == {"a": 1, "b": 0}
    edited = next(
        c
        for c in read_cards(folder).values()
        if c.fn.value == rows[0]["First Name"] + " " + rows[0]["Last Name"]
    )
    assert edited.title.value == "Edited in the sheet"
    h = _health(capsys)
    assert h["counts"]["in_sync"] == 8 and h["counts"]["duplicates"] == 0
    assert h["counts"]["deleted_other_side"] == 0
    # Edits keep flowing both ways afterwards.
    (folder / "c3.vcf").write_text(card("c3", "Person 3", "p3@x.com", title="From the phone"))
    code, report = _sync(capsys)
    assert code == 0 and report["updated"] == {"a": 0, "b": 1}
    assert {r["Job Title"] for r in read_csv(sheet) if r["Work Email"] == "p3@x.com"} == {
        "From the phone"
    } or {r.get("Job Title") for r in read_csv(sheet) if "p3@x.com" in r.values()} == {
        "From the phone"
    }
    assert len(read_csv(sheet)) == 8 and len(list(folder.glob("*.vcf"))) == 8


def test_renamed_vcard_file_in_a_folder_is_the_same_contact(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    for n in ("ann", "bob"):
        (folder / f"{n}.vcf").write_text(card(n, f"{n.title()} X", f"{n}@x.com"))
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    assert _sync(capsys)[0] == 0
    (folder / "ann.vcf").rename(folder / "ann-renamed.vcf")
    code, report = _sync(capsys)
    assert code == 0 and report["deleted_other_side"] == 0 and report["duplicates"] == 0
    h = _health(capsys)
    assert h["counts"]["in_sync"] == 2 and h["counts"]["deleted_other_side"] == 0
    (folder / "ann-renamed.vcf").write_text(card("ann", "Ann X", "ann@x.com", title="Boss"))
    code, report = _sync(capsys)
    assert report["updated"] == {"a": 0, "b": 1}
    assert [r["Job Title"] for r in read_csv(sheet) if r["First Name"] == "Ann"] == ["Boss"]


def _edit_titles(sheet: Path, title: str) -> None:
    rows = read_csv(sheet)
    for r in rows:
        r["Job Title"] = title
    write_csv(sheet, list(rows[0]), [list(r.values()) for r in rows])


def test_read_only_files_are_never_replaced(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Mode 444 in a writable folder: the contacts fail with the reason, nothing is replaced
    (checked by the mode bits, so it holds when the tests run as root too)."""
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    for n in ("ann", "bob"):
        (folder / f"{n}.vcf").write_text(card(n, f"{n.title()} X", f"{n}@x.com"))
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    assert _sync(capsys)[0] == 0
    # A card file marked read-only: its contact fails, the other card is updated.
    (folder / "ann.vcf").chmod(0o444)
    ann_before = (folder / "ann.vcf").read_bytes()
    _edit_titles(sheet, "Edited")
    code, report = _sync(capsys)
    assert code == 1 and report["failed"] == 1 and report["updated"]["a"] == 1
    assert (folder / "ann.vcf").read_bytes() == ann_before
    [failure] = _health(capsys)["failed"]
    assert failure["name"] == "Ann X" and "ann.vcf is read-only" in failure["reason"]
    assert read_cards(folder)["bob"].title.value == "Edited"
    # The CSV file marked read-only: every contact to write there fails, the file stays.
    (folder / "ann.vcf").chmod(0o644)
    sheet.chmod(0o444)
    sheet_before = sheet.read_bytes()
    (folder / "bob.vcf").write_text(card("bob", "Bob X", "bob@x.com", title="From the phone"))
    code, report = _sync(capsys)
    assert code == 1 and report["failed"] >= 1
    assert sheet.read_bytes() == sheet_before
    reasons = [f["reason"] for f in _health(capsys)["failed"]]
    assert any("contacts.csv is read-only" in r for r in reasons)
    sheet.chmod(0o644)
    code, report = _sync(capsys)
    assert code == 0 and _health(capsys)["counts"]["failed"] == 0
    assert {r["Job Title"] for r in read_csv(sheet)} == {"Edited", "From the phone"}


def test_read_only_vcard_file_is_never_replaced(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    book, sheet = tmp_path / "book.vcf", tmp_path / "contacts.csv"
    book.write_text(card("ann", "Ann X", "ann@x.com"))
    _connect(capsys, ("vcard-file", book), ("csv", sheet))
    assert _sync(capsys)[0] == 0
    book.chmod(0o444)
    before = book.read_bytes()
    _edit_titles(sheet, "Edited")
    code, report = _sync(capsys)
    assert code == 1 and report["failed"] == 1
    assert book.read_bytes() == before
    [failure] = _health(capsys)["failed"]
    assert "book.vcf is read-only" in failure["reason"]


def test_a_kill_during_a_csv_write_leaves_no_temporary_file_after_the_next_run(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """kill -9 while the CSV is being replaced: the full-size ``.b.csv.*.tmp`` it leaves is
    removed by the next run, which completes the sync with no duplicate."""
    import os
    import signal
    import subprocess
    import sys
    import time

    source, target = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csv(source, ["Name", "Email"], [[f"Person {i}", f"p{i}@x.com"] for i in range(20_000)])
    _connect(capsys, ("csv", source), ("csv", target), "--direction", "a-to-b")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "sync", "main"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    temps: list[Path] = []
    deadline = time.monotonic() + 240
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            temps = list(tmp_path.glob(".b.csv.*.tmp"))
            if temps:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    if not temps:
        pytest.skip("the run finished before its write could be caught")
    assert list(tmp_path.glob(".b.csv.*.tmp")), "the kill left the temporary file"
    code, report = _sync(capsys, "--yes")
    assert code == 0, report
    assert list(tmp_path.glob(".*.tmp")) == []
    emails = [v for r in read_csv(target) for k, v in r.items() if "Email" in k and v]
    assert len(emails) == len(set(emails)) == 20_000


def test_one_windows_1252_row_in_a_utf8_csv_fails_alone(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    data = b"Name,Email\nJos\xc3\xa9,j@x.com\nRen\xe9,r@x.com\nAl,a@x.com\n"
    sheet.write_bytes(data)
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    code, report = _sync(capsys, "--dry-run")
    assert report["failed"] == 1 and report["created"] == {"a": 2, "b": 0}  # said in advance
    code, out, _err = cli("sync", "main", "--dry-run", capsys=capsys)
    assert "would create 2 in A, 0 in B; would update 0 in A, 0 in B" in out
    code, report = _sync(capsys)
    assert code == 1 and report["status"] == "failed"
    assert report["failed"] == 1 and report["created"] == {"a": 2, "b": 0}
    [failure] = _health(capsys)["failed"]
    assert "Row 3 contains bytes that are not valid UTF-8 text" in failure["reason"]
    assert sorted(c.fn.value for c in read_cards(folder).values()) == ["Al", "José"]
    assert sheet.read_bytes() == data  # nothing to write there: not even an id column
    code, report = _sync(capsys)
    assert code == 1 and report["created"] == {"a": 0, "b": 0}


def test_binary_garbage_is_not_a_csv_and_a_missing_folder_is_exit_5(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import random

    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    (folder / "ann.vcf").write_text(card("ann", "Ann X", "ann@x.com"))
    garbage = random.Random(7).randbytes(50_000)
    sheet.write_bytes(garbage)
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    code, _out, err = cli("sync", "main", capsys=capsys)
    assert code == 5
    [line] = err.strip().splitlines()
    assert "is not a CSV file" in line and "Traceback" not in err
    assert sheet.read_bytes() == garbage
    # The file is fine again, then the contacts folder disappears: the run cannot happen.
    sheet.write_text("Name,Email\n")
    assert cli("sync", "main", capsys=capsys)[0] == 0
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    code, _out, err = cli("sync", "main", capsys=capsys)
    assert code == 5
    [line] = err.strip().splitlines()
    assert line.startswith("main: vCard folder is unavailable: ") and str(folder) in line
    code, report = _sync(capsys)
    assert code == 5 and report["status"] == "unavailable"


def test_nul_byte_and_broken_row_fail_alone_and_are_kept_byte_for_byte(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    (folder / "zed.vcf").write_text(card("zed", "Zed Zee", "zed@x.com"))
    broken = b'Eve,"Broken,eve@x.com,1,"x\n'
    nul = b"Nul\x00Person,nul@x.com,2,\n"
    data = b"Name,Email,Phone,Notes\nAl,a@x.com,1,n\n" + broken + nul + b"Bo,b@x.com,2,n\n"
    sheet.write_bytes(data)
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    code, report = _sync(capsys)
    assert code == 1 and report["failed"] == 2
    assert report["created"] == {"a": 2, "b": 1}  # Al and Bo into A; Zed into the sheet
    reasons = sorted(f["reason"] for f in _health(capsys)["failed"])
    assert "Row 3 has broken quoting" in reasons[0] and "Row 4 contains a NUL" in reasons[1]
    after = sheet.read_bytes()
    assert broken in after and nul in after  # kept exactly as they were
    assert b"Al,a@x.com,1,n," in after and b"Bo,b@x.com,2,n," in after  # only an id added
    # Pairsync never writes a card it would itself call broken.
    for path in folder.glob("*.vcf"):
        assert b"\x00" not in path.read_bytes()
    code, out, _ = cli("health", "main", capsys=capsys)
    assert "not a valid vCard" not in out


def test_turning_avoid_duplicates_off_after_a_sync_takes_effect(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    (folder / "bob.vcf").write_text(card("bob", "Bob Nomail"))
    (folder / "ann.vcf").write_text(card("ann", "Ann X", "ann@x.com"))
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    code, report = _sync(capsys)
    assert code == 0 and report["excluded"] == 1 and report["created"]["b"] == 1
    assert cli("connection", "set", "main", "--avoid-duplicates", "off", capsys=capsys)[0] == 0
    code, report = _sync(capsys)  # Bob was not edited: the setting alone brings him in
    assert code == 0 and report["created"] == {"a": 0, "b": 1} and report["excluded"] == 0
    assert sorted(r["First Name"] for r in read_csv(sheet)) == ["Ann", "Bob"]
    code, report = _sync(capsys)
    assert report["created"] == {"a": 0, "b": 0} and report["updated"] == {"a": 0, "b": 0}


def test_an_email_edited_in_a_sheet_never_written_keeps_its_pair(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Nothing was ever written to the sheet (no Pairsync ID column): its rows' ids come from
    their text. Editing a row's email changes that id; the contact is found again by name
    and the new email flows to the other app."""
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    for n in ("ann", "bob"):
        (folder / f"{n}.vcf").write_text(card(n, f"{n.title()} Lee", f"{n}@x.com"))
    write_csv(sheet, ["Name", "Email"], [["Ann Lee", "ann@x.com"], ["Bob Lee", "bob@x.com"]])
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    code, report = _sync(capsys)
    assert code == 0 and report["created"] == {"a": 0, "b": 0} and report["matched"] == 2
    write_csv(sheet, ["Name", "Email"], [["Ann Lee", "ann@new.example"], ["Bob Lee", "bob@x.com"]])
    code, report = _sync(capsys)
    assert code == 0 and report["deleted_other_side"] == 0 and report["duplicates"] == 0
    assert report["updated"] == {"a": 1, "b": 0} and report["created"] == {"a": 0, "b": 0}
    assert read_cards(folder)["ann"].email.value == "ann@new.example"
    h = _health(capsys)
    assert h["counts"]["in_sync"] == 2 and h["counts"]["duplicates"] == 0


def test_a_full_disk_stops_the_run_with_exit_5(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A disk that is full (a fault made by refusing the write, as the OS would): the run
    could not happen, exit 5 with one line naming the app; the file is as it was."""
    import errno

    from app.connectors import single_file

    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    (folder / "ann.vcf").write_text(card("ann", "Ann X", "ann@x.com"))
    write_csv(sheet, ["Name", "Email"], [])
    _connect(capsys, ("vcard-folder", folder), ("csv", sheet))
    before = sheet.read_bytes()

    def full(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(single_file, "replace_file", full)
        code, _out, err = cli("sync", "main", capsys=capsys)
    assert code == 5
    [line] = err.strip().splitlines()
    assert line.startswith("main: CSV file is unavailable: ") and "No space left" in line
    assert sheet.read_bytes() == before
    code, report = _sync(capsys)
    assert code == 0 and report["created"] == {"a": 0, "b": 1}
