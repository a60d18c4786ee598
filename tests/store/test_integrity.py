"""Pairsync's database is never silently replaced by an empty one (issue 12).

A 0-byte, deleted or damaged ``pairsync.db`` is refused with one sentence naming the backup
and ``pairsync restore``; a rolling backup (SQLite's backup API, 0600, a few generations) is
kept after configuration changes; ``pairsync restore`` puts one back. A fresh install starts
normally.
"""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli import main
from app.store.db import Store
from app.store.integrity import (
    GENERATIONS,
    DatabaseDamaged,
    backup_now,
    check_database,
    list_backups,
)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def setup(pairsync_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """An account and a connection, made with the CLI; returns the database's path."""
    folder = tmp_path / "cards"
    folder.mkdir()
    assert cli(capsys, "account", "add", "vcard-folder", "Phone", "--set", f"path={folder}")[0] == 0
    csv = tmp_path / "out.csv"
    assert cli(capsys, "account", "add", "csv", "Out", "--set", f"path={csv}")[0] == 0
    assert cli(capsys, "connection", "create", "Main", "--a", "Phone", "--b", "Out")[0] == 0
    return pairsync_home / "pairsync.db"


def _connections(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return cli(capsys, "connection", "list")


def test_fresh_install_starts_normally(
    pairsync_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _connections(capsys)
    assert code == 0, err
    assert "No connections yet" in out
    assert (pairsync_home / "pairsync.db").stat().st_size > 0


def test_configuration_changes_are_backed_up_privately(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backups = list_backups(setup)
    assert backups, "a backup after the configuration changed"
    for b in backups:
        assert stat.S_IMODE(b.path.stat().st_mode) == 0o600
        conn = sqlite3.connect(b.path)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM connections")}
        finally:
            conn.close()
        assert names <= {"Main"}
    assert "Main" in _names(backups[0].path)
    # Nothing changed: no new generation.
    count = len(backups)
    assert _connections(capsys)[0] == 0
    assert len(list_backups(setup)) == count


def _names(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM connections")}
    finally:
        conn.close()


def test_a_few_generations_are_kept(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(GENERATIONS + 3):
        assert cli(capsys, "connection", "set", "Main", "--guard-threshold", str(100 + i))[0] == 0
    assert len(list_backups(setup)) == GENERATIONS


def test_an_old_backup_is_renewed_after_a_day(setup: Path) -> None:
    before = list_backups(setup)
    assert backup_now(setup) is None  # nothing changed
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    assert backup_now(setup, now=later) is not None
    assert len(list_backups(setup)) == len(before) + 1


@pytest.mark.parametrize("damage", ["empty", "deleted", "garbage", "truncated"])
def test_damaged_database_is_refused_in_one_sentence_and_restored(
    damage: str, setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra in ("-wal", "-shm"):
        Path(f"{setup}{extra}").unlink(missing_ok=True)
    original = setup.read_bytes()
    if damage == "empty":
        setup.write_bytes(b"")
    elif damage == "deleted":
        setup.unlink()
    elif damage == "garbage":
        setup.write_bytes(b"\x13\x37" * 2000)
    else:
        setup.write_bytes(original[:100] + b"\x00" * 3000)
    damaged = setup.read_bytes() if setup.exists() else None

    code, out, err = _connections(capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(setup) in err
    assert str(list_backups(setup)[0].path) in err
    assert "pairsync restore" in err
    assert "Traceback" not in err
    # Refused, not replaced.
    assert (setup.read_bytes() if setup.exists() else None) == damaged

    code, out, err = cli(capsys, "restore", "--list")
    assert code == 0 and list_backups(setup)[0].path.name in out
    code, out, err = cli(capsys, "restore")
    assert code == 0, err
    assert "Restored" in out
    assert stat.S_IMODE(setup.stat().st_mode) == 0o600
    code, out, err = _connections(capsys)
    assert code == 0, err
    assert "Main" in out
    if damaged is not None:
        kept = [p for p in setup.parent.iterdir() if ".damaged-" in p.name]
        assert kept and kept[0].read_bytes() == damaged


def test_without_a_backup_the_sentence_says_how_to_start_again(
    pairsync_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairsync_home.mkdir()
    db = pairsync_home / "pairsync.db"
    db.write_bytes(b"not a database at all, just text" * 20)
    code, _out, err = _connections(capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "pairsync restore --fresh" in err
    code, out, err = cli(capsys, "restore")
    assert code == 2 and "no backup" in err
    code, out, err = cli(capsys, "restore", "--fresh")
    assert code == 0, err
    code, out, err = _connections(capsys)
    assert code == 0 and "No connections yet" in out


def test_missing_database_with_other_pairsync_files_does_not_start_fresh(
    pairsync_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A database from before backups existed, synced once (its run lock is there).
    folder = tmp_path / "cards"
    folder.mkdir()
    assert cli(capsys, "account", "add", "vcard-folder", "P", "--set", f"path={folder}")[0] == 0
    assert cli(capsys, "account", "add", "vcard-folder", "Q", "--set", f"path={tmp_path}")[0] == 0
    assert cli(capsys, "connection", "create", "M", "--a", "P", "--b", "Q")[0] == 0
    assert cli(capsys, "sync", "M")[0] == 0
    for b in list_backups(pairsync_home / "pairsync.db"):
        b.path.unlink()
    for p in pairsync_home.glob("pairsync.db*"):
        p.unlink()
    with pytest.raises(DatabaseDamaged, match="missing"):
        check_database(pairsync_home / "pairsync.db")
    assert not (pairsync_home / "pairsync.db").exists()


def test_store_refuses_a_zero_byte_file_when_backups_exist(setup: Path) -> None:
    for extra in ("-wal", "-shm"):
        Path(f"{setup}{extra}").unlink(missing_ok=True)
    setup.write_bytes(b"")
    with pytest.raises(DatabaseDamaged, match="0 bytes"):
        Store(setup)
    assert setup.stat().st_size == 0


def test_a_zero_byte_file_of_a_never_used_folder_is_a_fresh_start(tmp_path: Path) -> None:
    db = tmp_path / "pairsync.db"
    db.write_bytes(b"")
    store = Store(db)
    store.close()
    assert db.stat().st_size > 0
