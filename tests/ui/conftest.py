"""Fixtures for the desktop app's tests: the real service on the test's PAIRSYNC_HOME, a
task runner whose workers open their own Service, real address books, and the main window
wired as ``pairsync`` wires it (``app.ui.app_wiring.wire``: scheduler, tray, Health,
Activity…), so the tests drive the app a user gets.

The scheduler is *not* started by the fixtures: a test starts it (``wiring.start()``) when
it wants syncing, so nothing runs before the test has looked at the first state. Every
fixture that starts work off the GUI thread waits for it at teardown, so no worker
outlives its test (or its tmp folder)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from app.service import ConnectionSettings, Service
from app.ui.app_wiring import Wiring, wire
from app.ui.main_window import MainWindow
from app.ui.tasks import TaskRunner
from tests.ui.contacts import address_books
from tests.ui.desktop import settle


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
    service.create_connection("Main", "Phone", "Sheet", ConnectionSettings())
    return "Main"


@pytest.fixture
def ui_settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "pairsync-ui.ini"), QSettings.Format.IniFormat)


class Quits:
    """Stands in for ``QApplication.quit`` (which would end pytest-qt's event loops)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


MakeWiring = Callable[..., Wiring]


@pytest.fixture
def make_wiring(
    qtbot: Any, service: Service, runner: TaskRunner, ui_settings: QSettings
) -> Iterator[MakeWiring]:
    """``make_wiring(**wire_options)``: a new main window, wired and shown. Patch the tray's
    availability (``app.ui.tray.system_tray_available``) before calling it."""
    made: list[Wiring] = []

    def make(**options: Any) -> Wiring:
        win = MainWindow(service, runner, ui_settings)
        qtbot.addWidget(win)
        options.setdefault("quit_app", Quits())
        wiring = wire(win, service, runner, **options)
        win.show()
        made.append(wiring)
        settle(wiring.reader)  # the list and the tray read the connections off the GUI thread
        return wiring

    yield make
    for wiring in made:
        if wiring.window.wizard is not None:
            wiring.window.wizard.reject()
        assert wiring.shutdown(30_000), "the sync worker did not stop"
    runner.cancel_all()
    assert runner.wait(30_000)


@pytest.fixture
def wiring(make_wiring: MakeWiring) -> Wiring:
    return make_wiring()


@pytest.fixture
def window(wiring: Wiring) -> MainWindow:
    return wiring.window
