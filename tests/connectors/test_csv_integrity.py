"""CSV file: another program's edits are never lost, temp files of a killed write are
cleaned, bad bytes and broken rows stay the user's (issue 12)."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

from app.connectors.csv import CsvApp
from app.model import Record, Update


def _big_csv(path: Path, rows: int) -> None:
    lines = ["Name,Email,Phone,Notes"]
    lines += [f"Person {i},p{i}@x.com,+44 20 7946 {i:04d},note {i}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _emails(path: Path) -> list[str]:
    """The Email cell of every row (exact values: ``appended1@`` is inside ``appended10@``)."""
    with path.open(encoding="utf-8", newline="") as fh:
        return [row["Email"] for row in csv.DictReader(fh)]


APPENDER = """
import os, sys, time
path, count, every = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
for n in range(count):
    line = f"Appended {n},appended{n}@x.com,,\\n".encode()
    tries = 0
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            tries += 1
            ino = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        # The name leads to another file: the file was replaced around this write. The line
        # may have gone with the old file (written after the rename: the appender's own
        # race, as for any program appending), so it writes it again; had it landed before
        # the rename, Pairsync carried it over, and the line is there twice.
        if os.stat(path).st_ino == ino:
            break
    print(f"appended{n}@x.com {tries}", flush=True)
    time.sleep(every)
"""


def test_rows_appended_while_writing_are_never_lost(tmp_path: Path) -> None:
    """Another program (a real process) appends a row every 20 ms to a 20,000-row file
    while Pairsync writes it again and again: every appended row is still there, and none
    more often than the appender wrote it. (Once, at load 8, a row appended between the
    last check and the rename was lost: see the test below, which makes that moment.)"""
    path = tmp_path / "big.csv"
    _big_csv(path, 20_000)
    app = CsvApp(path)
    records = [r for r in app.fetch(list(app.list_versions())) if isinstance(r, Record)]
    appender = subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(path), "100", "0.02"],
        stdout=subprocess.PIPE,
        text=True,
    )
    writes = 0
    try:
        while appender.poll() is None and writes < len(records):
            rec = records[writes]
            [res] = app.write([Update(f"u{writes}", rec.id, {"notes": f"edited {writes}"})])
            assert res.ok, res.error
            writes += 1
    finally:
        out, _ = appender.communicate(timeout=60)
    tries = {email: int(n) for email, n in (line.split() for line in out.splitlines())}
    assert len(tries) == 100 and writes >= 1  # every write ran while the appender did
    emails = Counter(_emails(path))
    missing = [e for e in tries if emails[e] == 0]
    assert missing == [], f"{len(missing)} of {len(tries)} appended rows lost"
    # A line is there as often as the appender wrote it at most: Pairsync copied none.
    assert all(emails[e] <= n for e, n in tries.items()), {e: emails[e] for e in tries}
    again = CsvApp(path)
    found = [r for r in again.fetch(list(again.list_versions())) if isinstance(r, Record)]
    notes = {str(r.fields.get("notes")) for r in found}
    assert {f"edited {i}" for i in range(writes)} <= notes
    assert len(found) == 20_000 + sum(emails[e] for e in tries)
    assert all(emails[f"p{i}@x.com"] == 1 for i in range(20_000))


def test_a_row_appended_between_the_last_check_and_the_rename_is_kept(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The file is checked, then replaced: a row another program appends in between (a
    moment of microseconds, or milliseconds when the writer is preempted under load)
    landed in the old file, which the rename then took away. The row is carried over to
    the new file. The hook appends at that very moment (as ``APPENDER`` once did at load 8),
    and checks as the appender does that it wrote into the file at the path."""
    import os

    from app.connectors import single_file

    path = tmp_path / "a.csv"
    path.write_text("Name,Email\nAl,a@x.com\nBo,b@x.com\n")
    app = CsvApp(path)
    al = next(r for r in app.fetch(list(app.list_versions())) if isinstance(r, Record))
    real = single_file.replace_file
    appended: list[bool] = []

    def append_now() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"Di,d@x.com\n")
            appended.append(os.fstat(fd).st_ino == os.stat(path).st_ino)
        finally:
            os.close(fd)

    def replace_file(*args, **kwargs):  # type: ignore[no-untyped-def]
        return real(*args, before_replace=append_now, **kwargs)

    monkeypatch.setattr(single_file, "replace_file", replace_file)
    [res] = app.write([Update("u1", al.id, {"email": "al@x.com"})])
    assert res.ok, res.error
    assert appended == [True]  # it wrote into the file then at the path
    monkeypatch.undo()
    assert sorted(_emails(path)) == ["al@x.com", "b@x.com", "d@x.com"]
    # The next write stamps the carried-over row like any other.
    again = CsvApp(path)
    found = [r for r in again.fetch(list(again.list_versions())) if isinstance(r, Record)]
    [res] = again.write([Update("u2", found[-1].id, {"full_name": "Di Ray"})])
    assert res.ok, res.error
    assert sorted(_emails(path)) == ["al@x.com", "b@x.com", "d@x.com"]
    assert "Di Ray" in path.read_text()


def test_a_file_saved_by_another_program_during_a_write_is_merged_not_overwritten(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A spreadsheet saves the file (an edit in the middle, not an append) while Pairsync
    writes: the ops are applied again to the file as saved, and its edit is kept."""
    from app.connectors.csv import app as csv_file

    path = tmp_path / "a.csv"
    path.write_text("Name,Email\nAl,a@x.com\nBo,b@x.com\nCy,c@x.com\n")
    app = CsvApp(path)
    recs = {str(r.fields["full_name"]): r for r in app.fetch(list(app.list_versions()))}
    real = csv_file._write_text
    saves = []

    def save_meanwhile(handle, table):  # type: ignore[no-untyped-def]
        if not saves:
            saves.append(1)
            path.write_text("Name,Email\nAl,a@x.com\nBo,bo@new.example\nCy,c@x.com\nDi,d@x.com\n")
        real(handle, table)

    monkeypatch.setattr(csv_file, "_write_text", save_meanwhile)
    al, bo = recs["Al"], recs["Bo"]
    [ok, stale] = app.write(
        [
            Update("u1", al.id, {"email": "al@x.com"}, expected_version=al.version),
            Update("u2", bo.id, {"full_name": "Bob"}, expected_version=bo.version),
        ]
    )
    assert ok.ok, ok.error
    assert stale.error is not None  # Bo's row changed meanwhile: retried next run
    text = path.read_text()
    assert "Bob" not in text
    assert "bo@new.example" in text and "Di,d@x.com" in text and "al@x.com" in text


def test_only_our_own_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    import os

    from app.connectors.file_writes import remove_stale_temps

    path = tmp_path / "a.csv"
    path.write_text("Name,Email\nAl,a@x.com\n")
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    dead = int(done.stdout)
    names = {
        f".a.csv.{dead}.abcdefgh.tmp": False,  # its writer is gone: removed
        f".a.csv.{os.getpid()}.abcdefgh.tmp": True,  # a write in progress (this process)
        ".a.csv.zz.tmp": True,  # not a name we make
        f".b.csv.{dead}.abcdefgh.tmp": True,  # another file's
        f".a.csv.{dead}.abcdefgh.tmp.keep": True,
    }
    for name in names:
        (tmp_path / name).write_text("x")
    old = tmp_path / ".a.csv.ab12cd34.tmp"  # from before the pid was in the name
    old.write_text("x")
    os.utime(old, (0, 0))
    young = tmp_path / ".a.csv.ef56gh78.tmp"
    young.write_text("x")
    assert sorted(remove_stale_temps(path)) == sorted([f".a.csv.{dead}.abcdefgh.tmp", old.name])
    for name, kept in names.items():
        assert (tmp_path / name).exists() is kept
    assert young.exists() and path.read_text() == "Name,Email\nAl,a@x.com\n"


def test_a_write_right_after_a_write_does_not_read_the_whole_file_into_memory(
    tmp_path: Path,
) -> None:
    """A file written less than a few seconds ago is checked by its bytes (its mtime cannot
    tell two writes apart). Those bytes are digested as they are read, not held: at 100,000
    rows (22 MB) each write of a bulk run held the file twice over, and that was the peak
    of the run (issue 18)."""
    import tracemalloc

    path = tmp_path / "big.csv"
    lines = ["Name,Email,Notes"]
    lines += [f"Person {i},p{i}@x.com,{'a long note. ' * 25}{i}" for i in range(20_000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    size = path.stat().st_size  # 7 MB
    app = CsvApp(path)
    first = app.fetch(list(app.list_versions())[:1])[0]
    assert isinstance(first, Record)
    app.write([Update("u1", first.id, {"notes": "one"})])
    second = app.fetch([first.id])[0]
    assert isinstance(second, Record)
    tracemalloc.start()
    try:
        results = app.write([Update("u2", first.id, {"notes": "two"})])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert results[0].ok
    assert peak < size / 2, (peak, size)
    # Another program's edit within the same second is still seen (by the bytes).
    text = path.read_text(encoding="utf-8").replace("Person 7,", "Person Seven,")
    path.write_text(text, encoding="utf-8")
    third = app.fetch([first.id])[0]
    assert isinstance(third, Record)
    assert app.write([Update("u3", first.id, {"notes": "three"})])[0].ok
    assert "Person Seven," in path.read_text(encoding="utf-8")
