"""Hostile input at the CLI (issue 13): every case ends in one sentence on stderr and a
clear exit code, never a traceback; names and values printed are free of control
characters; Pairsync's own files are private; a hostile server is cut off in bounded time."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.cli import main
from app.errors import StorageError
from app.store.db import Store
from tests.hostile_server import HostileServer, redirect, trickle

ROOT = Path(__file__).resolve().parents[2]


def pairsync(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        input=stdin,
        timeout=timeout,
    )


def one_sentence(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("pairsync: ") and "unexpected error" not in lines[0]
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def csv_account(home: Path, name: str, path: Path) -> None:
    done = pairsync("--home", str(home), "account", "add", "csv", name, "--set", f"path={path}")
    assert done.returncode == 0, done.stderr


# --- one sentence, never a traceback -------------------------------------------------------


def test_home_that_is_a_file_or_proc(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    line = one_sentence(pairsync("--home", str(a_file), "account", "list"))
    assert f"{a_file} is a file, not a folder" in line
    line = one_sentence(pairsync("--home", str(a_file / "below"), "account", "list"))
    assert "is a file, not a folder" in line
    line = one_sentence(pairsync("--home", "/proc", "account", "list"))
    assert "Pairsync cannot keep its files in /proc" in line


def test_validation_messages_for_numbers_names_ports_and_devices(
    home: Path, tmp_path: Path
) -> None:
    h = ("--home", str(home))
    port = one_sentence(
        pairsync(
            *h,
            "account",
            "add",
            "carddav",
            "D",
            "--set",
            "url=https://dav.example:99999/",
            "--set",
            "username=ann",
        )
    )
    assert "port" in port and "65535" in port
    zero = one_sentence(pairsync(*h, "account", "add", "csv", "Z", "--set", "path=/dev/zero"))
    assert "/dev/zero is not a regular file" in zero
    csv_account(home, "A", tmp_path / "a.csv")
    csv_account(home, "B", tmp_path / "b.csv")
    huge = "99999999999999999999999"
    line = one_sentence(pairsync(*h, "connection", "create", "M", "--a", "A", "--b", "B",
                                 "--guard-threshold", huge))  # fmt: skip
    assert "mass-change threshold" in line
    assert pairsync(*h, "connection", "create", "M", "--a", "A", "--b", "B").returncode == 0
    one_sentence(pairsync(*h, "connection", "set", "M", "--guard-threshold", huge))
    export = json.loads(pairsync(*h, "connection", "export", "M").stdout)
    export["guard_max_writes"] = 1e30
    line = one_sentence(
        pairsync(*h, "connection", "import", "-", "--name", "M2", stdin=json.dumps(export))
    )
    assert "mass-change threshold" in line
    export["guard_max_writes"] = float("inf")
    text_inf = json.dumps(export)  # Infinity: Python's json reads it back
    one_sentence(pairsync(*h, "connection", "import", "-", "--name", "M3", stdin=text_inf))
    deep = "[" * 100_000 + "]" * 100_000
    line = one_sentence(pairsync(*h, "connection", "import", "-", stdin=deep))
    assert "nested too deeply" in line


def test_an_export_with_a_toggle_of_the_wrong_kind_is_one_sentence(
    home: Path, tmp_path: Path
) -> None:
    """A hand-edited export saying ``"trash": "maybe"`` (or ``"off"``, which ``bool()``
    read as on) is parsed by the one settings type: a sentence, or off as written."""
    h = ("--home", str(home))
    csv_account(home, "A", tmp_path / "a.csv")
    csv_account(home, "B", tmp_path / "b.csv")
    assert pairsync(*h, "connection", "create", "M", "--a", "A", "--b", "B").returncode == 0
    export = json.loads(pairsync(*h, "connection", "export", "M").stdout)
    export["trash"] = "maybe"
    line = one_sentence(
        pairsync(*h, "connection", "import", "-", "--name", "M2", stdin=json.dumps(export))
    )
    assert "(trash) is on or off, not 'maybe'" in line
    export["trash"] = "off"
    done = pairsync(*h, "connection", "import", "-", "--name", "M3", stdin=json.dumps(export))
    assert done.returncode == 0, done.stderr
    shown = json.loads(pairsync(*h, "connection", "show", "M3", "--json").stdout)
    assert shown["trash"] is False


def test_names_with_control_characters_are_refused(home: Path, tmp_path: Path) -> None:
    h = ("--home", str(home))
    evil = "Evil\x1b]0;owned\x07\x1b[2J"
    line = one_sentence(
        pairsync(*h, "account", "add", "csv", evil, "--set", f"path={tmp_path / 'e.csv'}")
    )
    assert "control characters" in line and "\x1b" not in line and "\\x1b" in line
    csv_account(home, "A", tmp_path / "a.csv")
    csv_account(home, "B", tmp_path / "b.csv")
    one_sentence(pairsync(*h, "connection", "create", "New\nLine", "--a", "A", "--b", "B"))
    one_sentence(pairsync(*h, "connection", "create", "Tab\tName", "--a", "A", "--b", "B"))
    one_sentence(pairsync(*h, "connection", "create", "RLO\u202eevil", "--a", "A", "--b", "B"))
    assert pairsync(*h, "connection", "create", "Fine ⇄ Ünïcode", "--a", "A", "--b", "B")
    one_sentence(pairsync(*h, "connection", "rename", "Fine ⇄ Ünïcode", "Bad\rName"))


# --- terminal output -----------------------------------------------------------------------


def test_printed_names_and_values_have_control_characters_escaped(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A CSV path may hold anything a file name may; the contacts come from a hostile file.
    folder = tmp_path / "odd\x1b[2J\tfolder"
    folder.mkdir()
    hostile = folder / "contacts.csv"
    hostile.write_text(
        "Name,Email\n"
        '"Mallory\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e",mallory@example.com\n'
        '"Mallory Twin\nline",mallory@example.com\n'
        "Nobody\x1b[5m,\n",
        encoding="utf-8",
    )
    h = ("--home", str(home))
    assert main([*h, "account", "add", "csv", "Hostile", "--set", f"path={hostile}"]) == 0
    assert main([*h, "account", "add", "csv", "Out", "--set", f"path={tmp_path / 'o.csv'}"]) == 0
    assert main([*h, "connection", "create", "M", "--a", "Hostile", "--b", "Out"]) == 0
    main([*h, "sync", "M"])
    capsys.readouterr()
    for args in (
        ["account", "list"],
        ["connection", "list"],
        ["connection", "show", "M"],
        ["health", "M"],
        ["connection", "fields", "M"],
        ["sync", "M", "--dry-run"],
    ):
        main([*h, *args])
        out, err = capsys.readouterr()
        for stream in (out, err):
            assert not any(ch in stream for ch in "\x1b\x07\x9b\r\u202e"), (args, stream)
    main([*h, "health", "M"])
    out, _ = capsys.readouterr()
    assert "\\x1b]0;pwned\\x07" in out  # shown, spelled out
    main([*h, "account", "list"])
    out, _ = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(line.count("\t") == 2 for line in lines)
    assert "odd\\x1b[2J\\tfolder" in out
    main([*h, "health", "M", "--json"])
    out, _ = capsys.readouterr()
    assert "\x9b" not in out and "\u202e" not in out and "\x1b" not in out
    json.loads(out)  # still JSON


# --- storage faults and file modes ---------------------------------------------------------


def test_a_full_database_is_one_sentence(tmp_path: Path) -> None:
    store = Store(tmp_path / "pairsync.db")
    with store.engine.connect() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar()
        conn.execute(text(f"PRAGMA max_page_count = {pages}"))  # SQLite's own "disk is full"
        with pytest.raises(StorageError) as info:
            conn.execute(text("CREATE TABLE filler (x TEXT)"))
            conn.execute(text("INSERT INTO filler VALUES (:x)"), {"x": "x" * 100_000})
            conn.commit()
    assert str(info.value) == (
        f"Pairsync cannot write its database {tmp_path / 'pairsync.db'}: the disk is full; "
        "free some space and run Pairsync again."
    )
    store.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 kB file system (tmpfs), where the machine lets tests mount one."""
    where = tmp_path / "tiny"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_one_sentence(tiny_disk: Path, tmp_path: Path) -> None:
    home = tiny_disk / "home"
    for _ in range(2):  # the first run fills the disk creating the database; the second too
        line = one_sentence(pairsync("--home", str(home), "account", "list"))
        assert "disk is full" in line
    (tiny_disk / "filler").write_bytes(b"")
    line = one_sentence(
        pairsync(
            "--home", str(home), "account", "add", "csv", "A", "--set", f"path={tmp_path}/a.csv"
        )
    )
    assert "disk is full" in line


def test_a_read_only_data_folder_is_one_sentence(tiny_disk: Path) -> None:
    home = tiny_disk / "home"
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    line = one_sentence(pairsync("--home", str(home), "account", "list"))
    assert "read-only" in line


def test_pairsyncs_files_are_private(home: Path, tmp_path: Path) -> None:
    csv_account(home, "A", tmp_path / "a.csv")
    csv_account(home, "B", tmp_path / "b.csv")
    (tmp_path / "a.csv").write_text("Name,Email\nAnn,ann@example.com\n", encoding="utf-8")
    assert pairsync("--home", str(home), "connection", "create", "M", "--a", "A", "--b", "B")
    assert pairsync("--home", str(home), "sync", "M").returncode == 0

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(home) == 0o700 and mode(home / "logs") == 0o700
    made = [p for p in home.rglob("*") if p.is_file()]
    assert home / "pairsync.db" in made and home / "logs" / "pairsync.log" in made
    for path in made:
        assert mode(path) == 0o600, (path, oct(mode(path)))
    for path in (p for p in home.rglob("*") if p.is_dir()):
        assert mode(path) == 0o700, path
    assert mode(tmp_path / "b.csv") & 0o044  # the user's own files keep the usual modes


# --- hostile servers at the CLI --------------------------------------------------------------


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


def test_a_slowloris_server_cannot_hold_account_add(hostile: HostileServer, home: Path) -> None:
    hostile.route("/dav/", trickle(b"<multistatus/>" * 1000, every=0.2))
    started = time.monotonic()
    done = pairsync(
        "--home", str(home), "account", "add", "carddav", "Slow",
        "--set", f"url={hostile.url('/dav/')}", "--set", "username=ann",
        "--secret-env", "DAV_PW",
        env={"DAV_PW": "s3cret-pw", "PAIRSYNC_HTTP_DEADLINE_S": "1.5"},
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "did not finish answering within 1.5 seconds" in done.stderr
    assert took < 20, took  # was: held past 420 s by a 1 byte / 20 s server
    assert "s3cret" not in done.stderr + done.stdout


def test_a_redirect_to_another_server_is_refused_naming_both(
    hostile: HostileServer, home: Path
) -> None:
    other = HostileServer()
    try:
        hostile.route("/dav/", redirect(other.url("/dav/")))
        hostile.route("/.well-known/carddav", redirect(other.url("/dav/")))
        done = pairsync(
            "--home", str(home), "account", "add", "carddav", "Moved",
            "--set", f"url={hostile.url('/dav/')}", "--set", "username=ann",
            "--secret-env", "DAV_PW", env={"DAV_PW": "pässwörd€"},
        )  # fmt: skip
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert f"127.0.0.1:{hostile.port}" in done.stderr
        assert f"127.0.0.1:{other.port}" in done.stderr
        assert other.seen == []
        assert "€" not in done.stderr and "pässw" not in done.stderr
    finally:
        other.close()


def _two_folders_synced(home: Path, tmp_path: Path) -> Path:
    """A connection of two card folders (outside ``home``), synced once; side A's folder."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "ann.vcf").write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann\r\nFN:Ann Lee\r\nEMAIL:ann@example.com\r\n"
        "END:VCARD\r\n"
    )
    h = ("--home", str(home))
    for args in (
        ("account", "add", "vcard-folder", "A", "--set", f"path={a}"),
        ("account", "add", "vcard-folder", "B", "--set", f"path={b}"),
        ("connection", "create", "main", "--a", "A", "--b", "B"),
        ("sync", "main"),
    ):
        done = pairsync(*h, *args)
        assert done.returncode == 0, done.stderr
    return a


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 16 MB file system (tmpfs): room for a database, then filled on purpose."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_sync_that_fills_the_disk_is_one_sentence(small_disk: Path, tmp_path: Path) -> None:
    """The sync path runs on the plain sqlite3 connection (issue 18): a full disk there is
    the same sentence as everywhere else, and the database is as the last commit left it."""
    home = small_disk / "home"
    a = _two_folders_synced(home, tmp_path)
    for n in range(100):  # far more than the 32 kB left
        (a / f"c{n}.vcf").write_text(
            f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c{n}\r\nFN:Contact {n} {'x' * 1000}\r\n"
            f"EMAIL:c{n}@example.com\r\nNOTE:{'y' * 2000}\r\nEND:VCARD\r\n"
        )
    room = os.statvfs(small_disk)
    filler = small_disk / "filler"  # leave 32 kB free
    filler.write_bytes(b"\0" * max(0, room.f_bavail * room.f_frsize - 32 * 1024))
    line = one_sentence(pairsync("--home", str(home), "sync", "main"))
    assert "disk is full" in line, line
    filler.unlink()
    done = pairsync("--home", str(home), "sync", "main")
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "b").glob("*.vcf"))) == 101  # each contact once


def test_a_sync_on_a_read_only_database_is_one_sentence(tmp_path: Path) -> None:
    """The database file alone read-only (its folder writable): the sync's first write on
    the plain sqlite3 connection says so in the same sentence as everywhere else."""
    home = tmp_path / "home"
    _two_folders_synced(home, tmp_path)
    database = home / "pairsync.db"
    bound = subprocess.run(
        ["mount", "--bind", str(database), str(database)], capture_output=True, check=False
    )
    if bound.returncode != 0:
        pytest.skip("cannot bind-mount a file here (needs root)")
    try:
        subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(database)], capture_output=True, check=True
        )
        line = one_sentence(pairsync("--home", str(home), "sync", "main"))
    finally:
        subprocess.run(["umount", "-l", str(database)], check=False)
    assert "read-only" in line, line
