"""One writer per connection across processes (``app.run_lock``): a run that finds another
process writing the same connection is skipped, writes nothing and says why; the lock is
freed when its holder ends, even by a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.run_lock import ConnectionBusy, lock_path
from app.service import ConnectionSettings, Service
from tests.ui.desktop import card, read_csv, write_csv

HOLD = (
    "import sys, time; from pathlib import Path; from app.run_lock import held\n"
    "with held(Path(sys.argv[1])) as ours:\n"
    "    print('held' if ours else 'busy', flush=True); time.sleep(60)"
)
"""Another process holding a lock file, as a running sync does (or ``busy`` if it cannot)."""


@pytest.fixture
def service(tmp_path: Path, pairsync_home: Path) -> Iterator[Service]:
    """Main: Phone (``tmp_path/cards``, Ann) ⇄ Sheet (``tmp_path/contacts.csv``, Bo)."""
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com"), encoding="utf-8")
    write_csv(sheet, [{"First Name": "Bo", "Last Name": "Bay", "E-mail Address": "bo@x.com"}])
    svc = Service()
    svc.add_account("vcard-folder", "Phone", {"path": str(folder)})
    svc.add_account("csv", "Sheet", {"path": str(sheet)})
    svc.create_connection("Main", "Phone", "Sheet", ConnectionSettings())
    yield svc
    svc.close()


def hold_lock(svc: Service) -> subprocess.Popen[str]:
    """Another process holding Main's writer lock, as a running sync would."""
    path = lock_path(svc.paths.data / "locks", svc._connections.connection("Main").id)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_lock_is_held_once_per_file_even_within_a_process(tmp_path: Path) -> None:
    """A second open of the same lock file is refused, in this process too (the desktop app
    runs undo on a thread while its worker process syncs); the first holder's exit frees it."""
    from app.run_lock import held

    path = tmp_path / "x.lock"
    with held(path) as first:
        assert first
        with held(path) as second:
            assert not second
        with held(tmp_path / "y.lock") as other:
            assert other
    with held(path) as again:
        assert again


def test_an_older_pairsync_holding_the_lock_with_filelock_is_respected(
    service: Service,
) -> None:
    """Pairsync used the filelock package before: an upgraded ``pairsync sync`` from cron
    must still skip while the not-yet-restarted desktop app (old code) writes, and the other
    way round. Both are the same OS call on the same file."""
    filelock = pytest.importorskip("filelock")
    path = lock_path(service.paths.data / "locks", service._connections.connection("Main").id)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = filelock.FileLock(str(path))
    old.acquire(timeout=0)
    try:
        [report] = service.sync(["Main"])
        assert report.status == "busy"
    finally:
        old.release()
    holder = hold_lock(service)
    try:
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(str(path)).acquire(timeout=0)
    finally:
        holder.kill()
        holder.wait()


def test_a_run_skips_a_connection_another_process_is_writing(
    service: Service, tmp_path: Path
) -> None:
    sheet = tmp_path / "contacts.csv"
    holder = hold_lock(service)
    try:
        [report] = service.sync(["Main"])
        assert report.status == "busy"
        assert "is syncing 'Main' right now" in report.message
        assert report.created == {"a": 0, "b": 0}
        assert len(read_csv(sheet)) == 1  # nothing written
        # A dry run only reads: it is not blocked.
        [dry] = service.sync(["Main"], dry_run=True)
        assert dry.status == "ok" and dry.created == {"a": 1, "b": 1}
        # Undo writes too: refused in words.
        with pytest.raises(ConnectionBusy, match="right now"):
            service.undo_run("Main", 1)
    finally:
        holder.kill()
        holder.wait()
    # A kill frees the lock: the next run syncs.
    [report] = service.sync(["Main"])
    assert report.status == "ok" and report.created == {"a": 1, "b": 1}


def test_the_cli_says_it_skipped_and_exits_zero(service: Service) -> None:
    holder = hold_lock(service)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "app.cli", "sync", "Main"],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            check=False,
        )
        as_json = subprocess.run(
            [sys.executable, "-m", "app.cli", "sync", "Main", "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait()
    assert out.returncode == 0, out.stderr
    assert "Main: skipped. Another Pairsync run" in out.stdout
    assert json.loads(as_json.stdout)[0]["status"] == "busy"


def test_two_syncs_at_once_write_each_contact_once(service: Service, tmp_path: Path) -> None:
    """Two real ``pairsync sync`` processes started together: one syncs, the other is
    skipped (or runs after it and finds nothing to do). Never two copies of a contact."""
    folder = tmp_path / "cards"
    for i in range(300):
        (folder / f"p{i}.vcf").write_text(card(f"p{i}", f"P {i}", f"p{i}@x.com"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "sync", "Main", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        reports.append(json.loads(out)[0])
    created_b = sum(r["created"]["b"] for r in reports)
    assert created_b == 301  # Ann and the 300, once
    emails = [r["E-mail Address"] for r in read_csv(tmp_path / "contacts.csv")]
    assert len(emails) == len(set(emails)) == 302


# --- two connections over the same storage (issue 12) ---------------------------------------------


def test_a_second_connection_over_the_same_apps_waits_for_the_first(
    service: Service, tmp_path: Path
) -> None:
    """Another connection writing the same folder and file: this one is skipped in words
    (status busy, nothing written), and syncs once the other run is over."""
    from app.run_lock import StorageBusy, storage_lock_path

    service.add_account("vcard-folder", "Phone again", {"path": str(tmp_path / "cards")})
    service.add_account("csv", "Sheet again", {"path": str(tmp_path / "contacts.csv")})
    service.create_connection("Second", "Phone again", "Sheet again", ConnectionSettings())
    key = f"path:{os.path.realpath(tmp_path / 'contacts.csv')}"
    path = storage_lock_path(service.paths.data / "locks", key)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        reports = service.sync()
        assert [r.status for r in reports] == ["busy", "busy"]
        assert "contacts.csv right now" in reports[1].message
        assert len(read_csv(tmp_path / "contacts.csv")) == 1
        with pytest.raises(StorageBusy):
            service.undo_run("Second", 1)
    finally:
        holder.kill()
        holder.wait()
    first, second = service.sync()
    assert first.status == second.status == "ok"
    assert first.created == {"a": 1, "b": 1} and second.created == {"a": 0, "b": 0}


def test_two_connections_over_the_same_apps_at_once_never_duplicate(
    service: Service, tmp_path: Path
) -> None:
    """Cron syncing one connection while the app syncs another over the same folder and
    file (two real processes, started together, each pass repeated): every contact exists
    once on each side."""
    folder = tmp_path / "cards"
    service.add_account("vcard-folder", "Phone 2", {"path": str(folder)})
    service.add_account("csv", "Sheet 2", {"path": str(tmp_path / "contacts.csv")})
    service.create_connection("Other", "Phone 2", "Sheet 2", ConnectionSettings())
    for i in range(400):
        (folder / f"p{i}.vcf").write_text(card(f"p{i}", f"P {i}", f"p{i}@x.com"))
    for _round in range(2):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", "sync", name, "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("Main", "Other")
        ]
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            assert json.loads(out)[0]["status"] in ("ok", "busy"), out
    emails = [r["E-mail Address"] for r in read_csv(tmp_path / "contacts.csv")]
    assert len(emails) == len(set(emails)) == 402
    assert len(list(folder.glob("*.vcf"))) == 402
