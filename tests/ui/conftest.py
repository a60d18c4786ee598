"""Fixtures for the desktop app's tests: the real service on the test's PAIRSYNC_HOME, a
task runner whose workers open their own Service, real address books, and the main window.

Every fixture that starts work off the GUI thread waits for it at teardown, so no worker
outlives its test (or its tmp folder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from app.service import ConnectionOptions, Service
from app.ui.main_window import MainWindow
from app.ui.tasks import TaskRunner
from tests.ui.contacts import address_books


@pytest.fixture
def service(pairsync_home: Path) -> Iterator[Service]:
    svc = Service()
    yield svc
    svc.close()


@pytest.fixture
def runner(qapp: object, service: Service) -> Iterator[TaskRunner]:
    tasks = TaskRunner(Service)
    yield tasks
    tasks.cancel_all()
    assert tasks.wait(30_000), "a worker did not finish"


@pytest.fixture
def books(tmp_path: Path) -> tuple[Path, Path]:
    return address_books(tmp_path)


@pytest.fixture
def connection(service: Service, books: tuple[Path, Path]) -> str:
    """Phone (the vCard folder) ⇄ Sheet (the CSV), two-way, never synced."""
    folder, sheet = books
    service.add_account("vcard-folder", "Phone", {"path": str(folder)})
    service.add_account("csv", "Sheet", {"path": str(sheet)})
    service.create_connection("Main", "Phone", "Sheet", ConnectionOptions())
    return "Main"


@pytest.fixture
def ui_settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "pairsync-ui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(
    qtbot: object, service: Service, runner: TaskRunner, ui_settings: QSettings
) -> Iterator[MainWindow]:
    win = MainWindow(service, runner, ui_settings)
    qtbot.addWidget(win)  # type: ignore[attr-defined]
    win.show()
    yield win
    if win.wizard is not None:
        win.wizard.reject()
    runner.cancel_all()
    assert win.sync_runner.wait(30_000)
    assert runner.wait(30_000)
