"""Starting the desktop app: ``pairsync`` with no arguments (``--background``: in the tray,
without opening the window — how "Start Pairsync when I log in" starts it).

The window is wired with the background scheduler, tray, Health, Activity… by
``app.ui.app_wiring.wire``; syncing starts once the window exists. Quitting (the tray's or
the menu's Quit, or closing the window when there is no tray) stops a running sync at its
next safe point, then the scheduler, then the service.

One instance per Pairsync home: a second start finds the first through a local socket
(named after the data folder and the user), asks it to come to the front, and exits. The
window's size and position are kept in ``pairsync-ui.ini`` in Pairsync's config folder
(an INI file everywhere, never the Windows registry), so ``PAIRSYNC_HOME`` moves it too.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import (
    QLibraryInfo,
    QLocale,
    QObject,
    QSettings,
    QTimer,
    QTranslator,
    Signal,
)
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication, QMessageBox

from app import __version__
from app.errors import DatabaseDamaged
from app.paths import AppPaths, app_paths
from app.service import Service, database_backups, restore_database
from app.sync_worker import WorkerOptions
from app.ui.app_wiring import wire
from app.ui.icons import pairsync_icon
from app.ui.main_window import MainWindow
from app.ui.signals import emit
from app.ui.tasks import TaskRunner

log = logging.getLogger(__name__)

ACTIVATE = b"activate\n"
UI_SETTINGS = "pairsync-ui.ini"


def instance_key(paths: AppPaths) -> str:
    """The local socket's name: one per user and per data folder (a portable
    ``PAIRSYNC_HOME`` is a separate instance), short enough for every platform."""
    digest = hashlib.sha256(f"{getpass.getuser()}\0{paths.data}".encode()).hexdigest()
    return f"pairsync-{digest[:20]}"


class SingleInstance(QObject):
    """Claims the key; a later claimant wakes the first one (``activated``) and gives up."""

    activated = Signal()

    def __init__(self, key: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.server: QLocalServer | None = None

    def claim(self, timeout_ms: int = 500) -> bool:
        """True: we are the first instance (and now listen). False: another one runs and
        was asked to show itself."""
        socket = QLocalSocket(self)
        socket.connectToServer(self.key)
        if socket.waitForConnected(timeout_ms):
            socket.write(ACTIVATE)
            socket.flush()
            socket.waitForBytesWritten(timeout_ms)
            socket.disconnectFromServer()
            return False
        QLocalServer.removeServer(self.key)  # a stale socket left by a crash
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._incoming)
        if not self.server.listen(self.key):
            log.warning("single-instance socket unavailable: %s", self.server.errorString())
        return True

    def _incoming(self) -> None:
        assert self.server is not None
        while self.server.hasPendingConnections():
            conn = self.server.nextPendingConnection()
            conn.readyRead.connect(lambda conn=conn: self._read(conn))

    def _read(self, conn: QLocalSocket) -> None:
        message = bytes(conn.readAll().data())
        conn.readyRead.disconnect()
        conn.deleteLater()  # one message per connection (not on "disconnected": that one
        # also fires while the socket is being destroyed)
        if message.startswith(ACTIVATE.strip()):
            emit(self.activated)

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


def ui_settings(paths: AppPaths) -> QSettings:
    """The window's own settings file, private (0600) like every file Pairsync keeps: made
    first by us, so that Qt's save (which keeps an existing file's permissions) keeps 0600."""
    path = Path(paths.config) / UI_SETTINGS
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
    return QSettings(str(path), QSettings.Format.IniFormat)


def _install_translations(app: QApplication) -> None:
    """Qt's own strings (Next, Back, Cancel…) in the user's language. Pairsync's strings are
    marked with ``tr()``; their translations will join from ``resources/`` when there are
    some."""
    translator = QTranslator(app)
    if translator.load(
        QLocale(), "qtbase", "_", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    ):
        app.installTranslator(translator)


def create_app(argv: Sequence[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication(list(argv if argv is not None else sys.argv[:1]))
    app.setApplicationName("Pairsync")
    app.setApplicationDisplayName("Pairsync")
    app.setOrganizationName("Pairsync")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("org.pairsync.Pairsync")  # the .desktop file of the installers
    app.setWindowIcon(pairsync_icon())
    _install_translations(app)
    return app


QUIT_AFTER_ENV = "PAIRSYNC_QUIT_AFTER_S"
"""Seconds after which the app quits as by its Quit command (smoke tests of an installed
app: tests/installer/). Unset: runs until Quit."""


def _quit_after_env(app: QApplication) -> None:
    try:
        seconds = float(os.environ.get(QUIT_AFTER_ENV, ""))
    except ValueError:
        return
    log.info("quitting after %.1f s (%s)", seconds, QUIT_AFTER_ENV)
    QTimer.singleShot(max(0, int(seconds * 1000)), app.quit)


def open_service(home: str | None, *, allow_insecure_keyring: bool = False) -> Service | None:
    """The service, or None when the user chose to quit because the database is damaged or
    missing: the window says so in the same sentence as the CLI, and offers to restore the
    newest backup (``pairsync restore``) when there is one."""
    while True:
        try:
            return Service(home, allow_insecure_keyring=allow_insecure_keyring)
        except DatabaseDamaged as err:
            log.error("%s", err)
            box = QMessageBox(QMessageBox.Icon.Critical, "Pairsync", str(err))
            box.setObjectName("database-damaged")
            restore_button = None
            if database_backups(home):
                restore_button = box.addButton(
                    box.tr("Restore the newest backup"), QMessageBox.ButtonRole.AcceptRole
                )
            box.addButton(box.tr("Quit"), QMessageBox.ButtonRole.RejectRole)
            box.exec()
            if restore_button is None or box.clickedButton() is not restore_button:
                return None
            restore_database(home)


def main(
    argv: Sequence[str] | None = None,
    *,
    home: str | None = None,
    allow_insecure_keyring: bool = False,
    background: bool = False,
) -> int:
    """Open the main window (or raise the one already open) and run until Quit.
    ``background``: start in the tray when the desktop has one (else the window opens:
    without a tray it is the only way to see Pairsync, and to quit it)."""
    app = create_app(argv)
    paths = app_paths(home).ensure()
    instance = SingleInstance(instance_key(paths))
    if not instance.claim():
        return 0
    service = open_service(home, allow_insecure_keyring=allow_insecure_keyring)
    if service is None:
        instance.release()
        return 2
    service.load_editors()  # now, before the window shows: not on its first schedule tick

    def worker_service() -> Service:
        return Service(home, allow_insecure_keyring=allow_insecure_keyring)

    runner = TaskRunner(
        worker_service,
        worker=WorkerOptions(home=home, allow_insecure_keyring=allow_insecure_keyring),
    )
    window = MainWindow(service, runner, ui_settings(paths))
    wiring = wire(window, service, runner, quit_app=app.quit)
    # With a tray, closing the window only hides it: the app ends with Quit.
    app.setQuitOnLastWindowClosed(not wiring.tray.available)
    instance.activated.connect(window.bring_to_front)
    if background and wiring.tray.available:
        log.info("started in the tray (--background)")
    else:
        window.show()
    wiring.start()
    _quit_after_env(app)
    try:
        return int(app.exec())
    finally:
        wiring.shutdown()  # a running sync stops at its next safe point; the worker ends
        window.close()  # saves the window's state, cancels what can be cancelled
        runner.wait()
        instance.release()
        service.close()
