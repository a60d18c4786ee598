"""A command loads only what it needs (issue 18): a cron-run ``pairsync`` starts fast.

Each command runs in a fresh interpreter (a subprocess: this test process has everything
imported already), which prints the modules it loaded; the heavy parts a command does not
need must not be among them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from tests.dav import USER, DavServer

QT_AND_MIGRATIONS = ("PySide6", "alembic")
NOT_FOR_A_NO_CHANGE_SYNC = ("vobject", "phonenumbers", "tomllib")
"""A sync that reads no card and compares no phone needs neither the vCard line parser's
helper nor the phone library; nor does any command but ``--version`` read the version."""
NOT_FOR_A_SYNC = (
    "app.preview",
    "app.engine.undo",
    "app.app_list",
    "filelock",
    "sqlalchemy",
    "app.store.health",
)
"""The wizard's preview and app list and Undo: loaded by the methods that use them. The run
lock is the standard library's (``app.run_lock``): filelock cost 13-50 ms to import. Nor
SQLAlchemy (more than half of a cron run's import CPU): a sync runs on a plain ``sqlite3``
connection, and the ORM (Alembic's schema, the editors, Health) loads only where used."""

PROBE = """
import json, sys
from app.cli import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as exc:  # argparse's --version
    code = exc.code
sys.stdout.flush()
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
print("EXIT", code)
"""


def loaded(*args: str) -> tuple[set[str], str]:
    """The modules ``pairsync ARGS`` imports (each by its full name, and its top-level
    package), and what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "EXIT 0" in done.stdout, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    names = json.loads(line.removeprefix("MODULES "))
    return {*names, *(m.split(".")[0] for m in names)}, done.stdout


def test_version_loads_neither_qt_nor_the_store() -> None:
    modules, out = loaded("--version")
    assert "pairsync" in out
    assert not modules & {*QT_AND_MIGRATIONS, "sqlalchemy", "keyring", "vobject"}


def test_account_list_reads_without_sqlalchemy(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "cards"
    folder.mkdir()
    assert main(["account", "add", "vcard-folder", "Cards", "--set", f"path={folder}"]) == 0
    capsys.readouterr()
    modules, out = loaded("account", "list")
    assert f"Cards\tvcard-folder\t{folder.resolve()}" in out
    assert not modules & {*QT_AND_MIGRATIONS, "sqlalchemy", "keyring"}
    # Same answer as the full store gives.
    assert main(["account", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [a["name"] for a in listed] == ["Cards"]


def test_account_list_on_a_new_home_creates_the_database(tmp_path: Path) -> None:
    # No database yet: the full store opens (and migrates) it, as before.
    modules, out = loaded("account", "list")
    assert "No accounts yet" in out
    assert "alembic" in modules  # the first run builds the schema
    modules, out = loaded("account", "list")
    assert "alembic" not in modules


def test_no_change_sync_of_two_folders_loads_no_qt_alembic_or_keyring(
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "ann.vcf").write_bytes(
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\n"
        b"EMAIL:ann@example.com\r\nEND:VCARD\r\n"
    )
    for args in (
        ["account", "add", "vcard-folder", "A", "--set", f"path={a}"],
        ["account", "add", "vcard-folder", "B", "--set", f"path={b}"],
        ["connection", "create", "main", "--a", "A", "--b", "B"],
        ["sync", "main"],
    ):
        assert main(args) == 0
    capsys.readouterr()
    assert len(list(b.glob("*.vcf"))) == 1
    modules, out = loaded("sync", "main")
    assert "created 0 in A, 0 in B" in out
    assert not modules & {*QT_AND_MIGRATIONS, "keyring", *NOT_FOR_A_NO_CHANGE_SYNC}
    assert not modules & set(NOT_FOR_A_SYNC)


def test_no_change_sync_of_a_folder_and_a_csv_file_loads_no_sqlalchemy(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    (folder / "ann.vcf").write_bytes(
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\n"
        b"EMAIL:ann@example.com\r\nEND:VCARD\r\n"
    )
    sheet.write_text("Name,Email\r\nBob Roe,bob@example.com\r\n", encoding="utf-8")
    for args in (
        ["account", "add", "vcard-folder", "Cards", "--set", f"path={folder}"],
        ["account", "add", "csv", "Sheet", "--set", f"path={sheet}"],
        ["connection", "create", "main", "--a", "Cards", "--b", "Sheet"],
        ["sync", "main"],
    ):
        assert main(args) == 0
    capsys.readouterr()
    assert "ann@example.com" in sheet.read_text(encoding="utf-8")
    modules, out = loaded("sync")  # every connection, as a cron line without a name
    assert "main (ok): created 0 in A, 0 in B; updated 0 in A, 0 in B" in out
    assert not modules & {*QT_AND_MIGRATIONS, "keyring", *NOT_FOR_A_SYNC}


def test_no_change_carddav_sync_loads_no_card_parser_or_phone_library(
    radicale: DavServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cron case of issue 18: a CardDAV sync with nothing changed on either side."""
    folder = tmp_path / "cards"
    folder.mkdir()
    (folder / "ann.vcf").write_bytes(
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\n"
        b"EMAIL:ann@example.com\r\nTEL;TYPE=CELL:+44 7700 900123\r\nEND:VCARD\r\n"
    )
    book = radicale.new_book()
    monkeypatch.setenv("DAV_PASSWORD", radicale.auth[1])  # type: ignore[index]
    for args in (
        ["account", "add", "vcard-folder", "Phone", "--set", f"path={folder}"],
        [
            *("account", "add", "carddav", "Server", "--set", f"url={radicale.url}"),
            *("--set", f"username={USER}", "--set", f"addressbook={book}"),
            *("--secret-env", "DAV_PASSWORD"),
        ],
        ["connection", "create", "main", "--a", "Phone", "--b", "Server"],
        ["sync", "main"],
        ["sync", "main"],  # the server's echo of the upload
    ):
        assert main(args) == 0
    capsys.readouterr()
    modules, out = loaded("sync", "main")
    assert "created 0 in A, 0 in B; updated 0 in A, 0 in B" in out
    assert not modules & {*QT_AND_MIGRATIONS, *NOT_FOR_A_NO_CHANGE_SYNC, *NOT_FOR_A_SYNC}


EXIT_PROBE = """
import atexit, os, sys
class Witness:
    def __del__(self):
        os.write(2, b"TEARDOWN\\n")
witness = Witness()  # freed only by the interpreter's teardown
from app.__main__ import console
atexit.register(os.write, 2, b"HANDLERS RAN\\n")  # as a library would, during the run
raise SystemExit(console())
"""


def ended(*args: str) -> subprocess.CompletedProcess[str]:
    """``pairsync ARGS`` started as the program starts (``app.__main__.console``), its
    output to a pipe buffered as usual."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_a_command_ends_without_the_interpreters_teardown() -> None:
    """Freeing every module and object one by one cost a no-change cron sync about 60 ms of
    CPU; the exit handlers still run, what the command printed to a pipe arrives whole, and
    its exit status is kept."""
    done = ended("account", "kinds", "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) > 3  # all of it, though stdout to a pipe is buffered
    assert "HANDLERS RAN" in done.stderr
    assert "TEARDOWN" not in done.stderr
    failed = ended("sync", "no-such-connection")
    assert failed.returncode == 2
    assert "no connection named 'no-such-connection'" in failed.stderr
    assert "TEARDOWN" not in failed.stderr


def test_what_stops_with_an_exception_exits_normally() -> None:
    # argparse's --version and --help end with SystemExit: the ordinary exit, teardown and all.
    done = ended("--version")
    assert done.returncode == 0
    assert "pairsync" in done.stdout
    assert "HANDLERS RAN" in done.stderr
    assert "TEARDOWN" in done.stderr


def test_the_desktop_app_loads_the_orm_at_start_not_on_its_first_read(tmp_path: Path) -> None:
    """A Service opens without SQLAlchemy (a sync never needs it); the desktop app asks for
    it at start (``load_editors``), so its first schedule tick or Health read on the GUI
    thread never stops the window to import it."""
    probe = (
        "import sys; from app.service import Service; s = Service(sys.argv[1]); "
        "before = 'sqlalchemy' in sys.modules; s.load_editors(); "
        "print(before, 'sqlalchemy.orm' in sys.modules, 'app.store.health' in sys.modules); "
        "s.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # A new home's database is created by Alembic (SQLAlchemy then loaded); open it again.
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.split() == ["False", "True", "True"], done.stdout + done.stderr
