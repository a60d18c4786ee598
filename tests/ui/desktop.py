"""Shared set-up for the desktop app's background tests (scheduler, tray, Health, Activity):
a real vCard folder and a real CSV file, the real service on the test's PAIRSYNC_HOME, and a
running ``Scheduler`` whose worker thread opens its own Service.

Import the fixture into a test module (``from tests.ui.desktop import desk``); every
scheduler is shut down at teardown, so no worker outlives its test."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from app.service import ConnectionSettings, Service
from app.store.models import Run
from app.ui.scheduler import Scheduler

HEADER = [
    "First Name",
    "Last Name",
    "E-mail Address",
    "E-mail 2 Address",
    "Mobile Phone",
    "Company",
    "Job Title",
    "Notes",
    "Categories",
]
NAME = "Main"


def card(
    uid: str,
    fn: str,
    *emails: str,
    title: str = "",
    phone: str = "",
    categories: str = "",
) -> str:
    parts = fn.split(" ")
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{fn}"]
    lines.append(f"N:{parts[-1]};{' '.join(parts[:-1])};;;")
    lines += [f"EMAIL;TYPE=INTERNET:{e}" for e in emails]
    if phone:
        lines.append(f"TEL;TYPE=CELL:{phone}")
    if title:
        lines.append(f"TITLE:{title}")
    if categories:
        lines.append(f"CATEGORIES:{categories}")
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"


def settle(reader: Any, timeout: float = 20.0) -> None:
    """Let the window take in every database read it has asked for: Health and Activity
    read on reader threads (``app.ui.reader``), and their answers arrive as queued
    signals. Waits without a qtbot, so plain helpers (a tab's texts, a list's cells) can
    call it."""
    from PySide6.QtCore import QCoreApplication, QEventLoop

    deadline = time.monotonic() + timeout
    while reader.busy:
        if time.monotonic() > deadline:
            raise TimeoutError("the database reads did not finish")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.002)
    QCoreApplication.processEvents()


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow(row)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Desk:
    """One connection "Main": Phone (vCard folder, side A) ⇄ Sheet (CSV, side B)."""

    service: Service
    scheduler: Scheduler
    folder: Path
    sheet: Path
    name: str = NAME
    reports: list[dict[str, Any]] = field(default_factory=list)

    def put_card(self, uid: str, fn: str, *emails: str, **kw: str) -> Path:
        path = self.folder / f"{uid}.vcf"
        path.write_text(card(uid, fn, *emails, **kw), encoding="utf-8")
        return path

    def rows(self) -> dict[str, dict[str, str]]:
        """CSV rows by their first email."""
        return {r["E-mail Address"].lower(): r for r in read_csv(self.sheet)}

    def sync(self, qtbot: Any, timeout: int = 20_000, **kw: Any) -> dict[str, Any]:
        """Sync now through the scheduler and wait for the run's report. The first call
        starts the scheduler, which runs what is due: the never-synced connection."""
        self.wait_idle(qtbot, timeout)
        with qtbot.waitSignal(self.scheduler.run_finished, timeout=timeout) as blocker:
            if self.scheduler.started:
                self.scheduler.sync_now([self.name], **kw)
            else:
                self.scheduler.start()
        report: dict[str, Any] = blocker.args[1]
        return report

    def wait_saved(self, qtbot: Any, timeout: int = 20_000) -> None:
        """Wait until every pause, resume and interval asked for is in the database (they
        are saved off the GUI thread)."""
        names = self.service.connection_names()
        qtbot.waitUntil(lambda: not any(self.scheduler.saving(n) for n in names), timeout=timeout)

    def wait_idle(self, qtbot: Any, timeout: int = 20_000) -> None:
        qtbot.waitUntil(
            lambda: self.scheduler.running() is None and not self.scheduler.queued(),
            timeout=timeout,
        )

    def backdate_runs(self, minutes: int) -> None:
        """Pretend the runs so far happened ``minutes`` earlier (time passed, or the
        laptop slept)."""
        from datetime import timedelta

        with self.service._store.session() as s, s.begin():
            for run in s.query(Run).all():
                s.execute(
                    update(Run)
                    .where(Run.id == run.id)
                    .values(
                        started_at=run.started_at - timedelta(minutes=minutes),
                        finished_at=(run.finished_at or run.started_at)
                        - timedelta(minutes=minutes),
                    )
                )


def make_desk(root: Path, *, tick_ms: int = 60_000) -> Desk:
    folder = root / "cards"
    folder.mkdir()
    sheet = root / "contacts.csv"
    write_csv(sheet, [])
    service = Service()
    service.add_account("vcard-folder", "Phone", {"path": str(folder)})
    service.add_account("csv", "Sheet", {"path": str(sheet)})
    service.create_connection(NAME, "Phone", "Sheet", ConnectionSettings())
    scheduler = Scheduler(service, tick_ms=tick_ms)
    desk = Desk(service, scheduler, folder, sheet)
    scheduler.run_finished.connect(lambda _name, report: desk.reports.append(report))
    return desk


@pytest.fixture
def desk(qtbot: Any, tmp_path: Path, pairsync_home: Path) -> Iterator[Desk]:
    """Not started: a test adds its contacts, then calls ``desk.scheduler.start()`` (which
    runs what is due, i.e. a first sync) or ``desk.sync(qtbot)``."""
    d = make_desk(tmp_path)
    yield d
    assert d.scheduler.shutdown(30_000), "the sync worker did not stop"
    d.service.close()


class WriteLock:
    """Another process holding SQLite's write lock on the database, as the sync worker
    does while it commits a batch (a 100k first sync held it for up to 7.5 s)."""

    def __init__(self, database: Any) -> None:
        import subprocess
        import sys

        code = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('COMMIT')\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        self.proc.wait(10)
