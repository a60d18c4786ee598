"""The main window: the list of connections (or, before the first one, an invitation to
create it), the selected connection's dashboard, and the app's menu and toolbar.

The window never syncs by itself. "Sync now", "Sync all now", the wizard's "Start syncing",
"Pause all / Resume all" and the dashboard's Pause/Resume and interval all go through one
``SyncControl`` (the background scheduler, ``app.ui.scheduler``), set by
``app.ui.app_wiring.wire``: one writer, one run at a time, and a second trigger while a
connection is queued or running coalesces (SPEC §9). ``sync_requested(names)`` (an empty
list means all) stays the seam the header, the menu and the wizard emit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QByteArray, QModelIndex, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QHideEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.service import ConnectionSummary, Service
from app.ui.connection_list import ARROWS, ConnectionDelegate, ConnectionListModel
from app.ui.dashboard.dashboard import ConnectionDashboard
from app.ui.icons import app_icon, pairsync_icon
from app.ui.progress import RunProgressBar
from app.ui.reader import Reader
from app.ui.scheduler import SyncControl
from app.ui.settings_dialog import SettingsDialog
from app.ui.signals import emit
from app.ui.status_chip import StatusChip
from app.ui.tasks import TaskControl, TaskRunner
from app.ui.wizard.wizard import ConnectionWizard

log = logging.getLogger(__name__)


class EmptyState(QWidget):
    """What a new user sees first: what Pairsync does, and one button to start."""

    def __init__(self, action: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        logo = QLabel(self)
        size = self.fontMetrics().height() * 5
        logo.setPixmap(pairsync_icon().pixmap(size, size))
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title = QLabel(self.tr("Keep the contacts of two apps in sync"), self)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        title.setFont(font)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel(
            self.tr(
                "Connect a vCard folder, a CSV file or a CardDAV address book with another "
                "one. You see a preview before anything is written; nothing is ever deleted."
            ),
            self,
        )
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.button = QPushButton(self.tr("&New connection…"), self)
        self.button.setDefault(True)
        self.button.setAccessibleName(self.tr("New connection"))
        self.button.clicked.connect(action.trigger)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(logo)
        layout.addWidget(title)
        layout.addWidget(text)
        layout.addSpacing(self.fontMetrics().height())
        layout.addLayout(row)
        layout.addStretch(3)
        layout.setContentsMargins(size, 0, size, 0)


class ConnectionHeader(QWidget):
    """Above the dashboard: both apps, the name, the status chip and Sync now; under them,
    while the connection syncs, the run's progress with Cancel. When an account needs
    signing in again, a "Sign in again…" button (and the chip itself) asks for it."""

    sync_clicked = Signal()
    sign_in_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.icon_a, self.arrow, self.icon_b = QLabel(self), QLabel(self), QLabel(self)
        self._kinds: tuple[str, str, int] | None = None
        self.title = QLabel(self)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.accounts = QLabel(self)
        self.chip = StatusChip(self)
        self.chip.clicked.connect(self.sign_in_clicked)
        self.sign_in_button = QPushButton(self.tr("Sign &in again…"), self)
        self.sign_in_button.setAccessibleName(self.tr("Sign in to this connection's app again"))
        self.sign_in_button.clicked.connect(self.sign_in_clicked)
        self.sign_in_button.hide()
        self.sync_button = QPushButton(self.tr("S&ync now"), self)
        self.sync_button.setAccessibleName(self.tr("Sync this connection now"))
        self.sync_button.clicked.connect(self.sync_clicked)
        self.progress: RunProgressBar | None = None
        names = QVBoxLayout()
        names.setSpacing(0)
        names.addWidget(self.title)
        names.addWidget(self.accounts)
        row = QHBoxLayout()
        for w in (self.icon_a, self.arrow, self.icon_b):
            row.addWidget(w)
        row.addSpacing(self.fontMetrics().height() // 2)
        row.addLayout(names, 1)
        row.addWidget(self.chip)
        row.addWidget(self.sign_in_button)
        row.addWidget(self.sync_button)
        self.column = QVBoxLayout(self)
        self.column.addLayout(row)

    def attach_progress(self, bar: RunProgressBar) -> None:
        """Show ``bar`` under the header, following the connection shown."""
        self.progress = bar
        bar.setParent(self)
        self.column.addWidget(bar)
        bar.set_connection(self.title.text() or None)

    def show_row(self, row: ConnectionSummary, syncing: int | None) -> None:
        size = self.fontMetrics().height() * 2
        if self._kinds != (row.kind_a, row.kind_b, size):  # progress repaints: no re-render
            self._kinds = (row.kind_a, row.kind_b, size)
            self.icon_a.setPixmap(app_icon(row.kind_a).pixmap(size, size))
            self.icon_b.setPixmap(app_icon(row.kind_b).pixmap(size, size))
            for label, app, kind in (
                (self.icon_a, row.app_a, row.kind_a),
                (self.icon_b, row.app_b, row.kind_b),
            ):
                label.setAccessibleName(app or kind)
                label.setToolTip(label.accessibleName())
        arrow = ARROWS.get(row.direction, "?")
        self.arrow.setText(arrow)
        self.title.setText(row.name)
        self.accounts.setText(f"{row.account_a} {arrow} {row.account_b}")
        self.chip.set_status(row.status, syncing)
        needs_sign_in = row.status.code == "auth" and syncing is None
        self.chip.set_actionable(needs_sign_in, self.tr("Click to sign in again."))
        self.sign_in_button.setVisible(needs_sign_in)
        # Enabled while syncing too: the scheduler queues one follow-up run, which reads
        # what changed after the running one had read (SPEC §9).
        self.sync_button.setEnabled(not row.paused)
        if self.progress is not None:
            self.progress.set_connection(row.name)


def _overview(service: Service) -> list[ConnectionSummary]:
    """The list's query (on a reader thread)."""
    return service.connection_overview()


class MainWindow(QMainWindow):
    sync_requested = Signal(list)
    """Names of the connections to sync now; empty = all that are not paused. Handled by
    the sync control (``set_sync_control``)."""
    sign_in_requested = Signal(str)
    """An account to sign in to again (the header's button, or its chip)."""

    def __init__(
        self,
        service: Service,
        runner: TaskRunner,
        settings: QSettings | None = None,
        reader: Reader | None = None,
    ) -> None:
        super().__init__()
        self.service = service
        self.runner = runner
        self.settings = settings
        self.reader = reader if reader is not None else Reader(runner.factory, self)
        """Reads the database off the GUI thread: the list here, and (``app_wiring``)
        the tray, Health, Activity and the notifier."""
        self._to_select: str | None = None
        """The connection to select once the list's next answer is in (just created,
        imported or renamed)."""
        self.sync_control: SyncControl | None = None
        """Who syncs and pauses (the scheduler); None until ``set_sync_control``: the
        window then offers no syncing at all rather than a second writer."""
        self.on_quit: Callable[[], object] = self.close
        """What Quit does (the app's wiring replaces it: with a tray, closing only hides)."""
        self.wizard: ConnectionWizard | None = None
        self.setWindowTitle(self.tr("Pairsync"))
        self.setWindowIcon(pairsync_icon())

        self._make_actions()
        self.model = ConnectionListModel(self)
        self.list = QListView(self)
        self.list.setModel(self.model)
        self.list.setItemDelegate(ConnectionDelegate(self.list))
        self.list.setAccessibleName(self.tr("Connections"))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setUniformItemSizes(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        self.model.dataChanged.connect(self._rows_changed)
        self.header = ConnectionHeader(self)
        self.header.sync_clicked.connect(self.sync_current)
        self.header.sign_in_clicked.connect(self.sign_in_current)
        self.dashboard = ConnectionDashboard(service, runner, self)
        self.dashboard.changed.connect(self.refresh)
        self.dashboard.deleted.connect(self._deleted)
        self.dashboard.renamed.connect(self._renamed)
        detail = QWidget(self)
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.header)
        detail_layout.addWidget(self.dashboard, 1)
        self.splitter = QSplitter(self)
        self.splitter.addWidget(self.list)
        self.splitter.addWidget(detail)
        self.splitter.setStretchFactor(1, 3)
        em = self.fontMetrics().horizontalAdvance("M")
        self.splitter.setSizes([em * 26, em * 64])
        self.splitter.setChildrenCollapsible(False)
        self.empty = EmptyState(self.new_action, self)
        self.loading = QWidget(self)
        """Shown until the list's first answer: neither the invitation to create a first
        connection nor an empty list, for a user who has connections."""
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.loading)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.splitter)
        central = QWidget(self)
        self.banners = QVBoxLayout()
        """Notices above everything (e.g. "this desktop has no tray"): ``add_banner``."""
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(self.banners)
        column.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.statusBar()
        self.sync_requested.connect(self._sync_requested)
        em = self.fontMetrics().horizontalAdvance("M")
        self.resize(em * 90, self.fontMetrics().height() * 42)
        self.restore_state()
        self.refresh()

    # --- actions -------------------------------------------------------------------------

    def _make_actions(self) -> None:
        self.new_action = QAction(app_icon("app"), self.tr("&New connection…"), self)
        self.new_action.setShortcut(QKeySequence.StandardKey.New)
        self.new_action.triggered.connect(self.new_connection)
        self.sync_all_action = QAction(self.tr("&Sync all now"), self)
        self.sync_all_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.sync_all_action.triggered.connect(self.sync_all)
        self.pause_all_action = QAction(self.tr("&Pause all"), self)
        self.pause_all_action.triggered.connect(self.pause_all)
        self.import_action = QAction(self.tr("&Import connection…"), self)
        self.import_action.setToolTip(
            self.tr("Create a connection from a file exported by Pairsync (File ▸ Export)")
        )
        self.import_action.triggered.connect(self.import_connection)
        self.export_action = QAction(self.tr("E&xport connection…"), self)
        self.export_action.setToolTip(
            self.tr("Save the selected connection's settings, mappings and rules to a file")
        )
        self.export_action.triggered.connect(self.export_current)
        self.settings_action = QAction(self.tr("Se&ttings…"), self)
        self.settings_action.setShortcut(QKeySequence.StandardKey.Preferences)
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.triggered.connect(self.show_settings)
        self.about_action = QAction(self.tr("&About Pairsync"), self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.show_about)
        self.quit_action = QAction(self.tr("&Quit"), self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.quit)

        file_menu = self.menuBar().addMenu(self.tr("&File"))
        file_menu.addAction(self.new_action)
        file_menu.addAction(self.sync_all_action)
        file_menu.addAction(self.pause_all_action)
        file_menu.addSeparator()
        file_menu.addAction(self.import_action)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        help_menu = self.menuBar().addMenu(self.tr("&Help"))
        help_menu.addAction(self.about_action)

        toolbar = QToolBar(self.tr("Main toolbar"), self)
        toolbar.setObjectName("main-toolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setMovable(False)
        for action in (
            self.new_action,
            self.sync_all_action,
            self.pause_all_action,
            self.settings_action,
        ):
            toolbar.addAction(action)
        self.addToolBar(toolbar)

    # --- the list --------------------------------------------------------------------------

    def refresh(self, select: str | None = None) -> None:
        """Re-read the connections and their status on a reader thread (at 100k contacts
        11 ms idle, up to 196 ms during a sync, on the GUI thread before); the list, the
        header and the actions follow when the answer arrives, and only the newest answer
        counts. ``select`` names the connection to show then (else the current one stays)."""
        if select is not None:
            self._to_select = select
        self.reader.read(
            _overview,
            self._show_rows,
            self._not_read,
            slot=("connection list", id(self)),
            owner=self,
        )

    def _show_rows(self, rows: list[ConnectionSummary]) -> None:
        wanted, self._to_select = self._to_select, None
        current = wanted if wanted is not None else self.current_name()
        self.model.set_rows(rows)
        self.stack.setCurrentWidget(self.splitter if rows else self.empty)
        has = bool(rows)
        can_sync = has and self.sync_control is not None
        self.sync_all_action.setEnabled(can_sync and not all(r.paused for r in rows))
        self.pause_all_action.setEnabled(can_sync)
        self.export_action.setEnabled(has)
        all_paused = has and all(r.paused for r in rows)
        self.pause_all_action.setText(
            self.tr("&Resume all") if all_paused else self.tr("&Pause all")
        )
        if has:
            row = self.model.row_of(current) if current else -1
            self.select(rows[max(row, 0)].name)
        else:
            self.dashboard.set_connection(None)
        self._show_header()

    def _not_read(self, message: str) -> None:
        """The database could not be read (locked for longer than SQLite waits, damaged):
        the list stays as it was, and the status bar says why."""
        self.statusBar().showMessage(
            self.tr("Could not read the connections: {reason}").format(reason=message), 15_000
        )

    def current_name(self) -> str | None:
        index = self.list.currentIndex()
        return self.model.rows[index.row()].name if index.isValid() else None

    def select(self, name: str) -> None:
        row = self.model.row_of(name)
        if row >= 0:
            self.list.setCurrentIndex(self.model.index(row))

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        name = self.model.rows[current.row()].name if current.isValid() else None
        self.dashboard.set_connection(name)
        self._show_header()

    def _rows_changed(self, top: QModelIndex, bottom: QModelIndex, *_roles: Any) -> None:
        """A row repainted (a run's progress, a new status): the header may show it."""
        current = self.list.currentIndex()
        if current.isValid() and top.row() <= current.row() <= bottom.row():
            self._show_header()

    def _show_header(self) -> None:
        name = self.current_name()
        row = next((r for r in self.model.rows if r.name == name), None)
        self.header.setVisible(row is not None)
        if row is not None:
            self.header.show_row(row, self.model.syncing.get(row.name))
            if self.sync_control is None:
                self.header.sync_button.setEnabled(False)  # nothing would sync it

    def _renamed(self, old: str, new: str) -> None:
        self.refresh(select=new)
        self.statusBar().showMessage(
            self.tr("Renamed “{old}” to “{new}”.").format(old=old, new=new), 10_000
        )

    def _deleted(self, name: str) -> None:
        self.statusBar().showMessage(
            self.tr("Deleted “{name}”. No contact was changed.").format(name=name), 10_000
        )
        self.refresh()

    # --- commands ----------------------------------------------------------------------------

    def new_connection(self) -> None:
        if self.wizard is not None:
            self.wizard.raise_()
            self.wizard.activateWindow()
            return
        self.wizard = ConnectionWizard(self.service, self.runner, self, dropped=self._list_changed)
        self.wizard.connection_created.connect(self._created)
        self.wizard.finished.connect(self._wizard_closed)
        self.wizard.open()

    def _wizard_closed(self, _result: int) -> None:
        if self.wizard is not None:
            self.wizard.deleteLater()
        self.wizard = None
        self.refresh()

    def ask_import_path(self) -> str | None:
        """The export file to import, or None when the user cancels (tests replace this)."""
        path, _filter = QFileDialog.getOpenFileName(
            self,
            self.tr("Import connection"),
            "",
            self.tr("Pairsync connection (*.json);;All files (*)"),
        )
        return path or None

    def ask_export_path(self, name: str) -> str | None:
        """Where to save the export of ``name``, or None when the user cancels."""
        suggested = "".join(c if c.isalnum() or c in " -_" else "_" for c in name).strip()
        path, _filter = QFileDialog.getSaveFileName(
            self,
            self.tr("Export connection"),
            f"{suggested or 'connection'}.json",
            self.tr("Pairsync connection (*.json);;All files (*)"),
        )
        return path or None

    def import_connection(self) -> None:
        """``pairsync connection import FILE``: the accounts it names are added when missing
        (checked as when added by hand, so off the GUI thread); a connection of the same
        name is kept, the imported one gets "NAME 2"."""
        path = self.ask_import_path()
        if not path:
            return

        def job(svc: Service, ctl: TaskControl) -> str:
            return svc.import_connection_file(path, keep_both=True).name

        self.statusBar().showMessage(self.tr("Importing…"))
        self.runner.start(job, on_done=self._imported, on_error=self._transfer_failed)

    def _imported(self, name: str) -> None:
        self.refresh(select=name)
        self.statusBar().showMessage(
            self.tr(
                "Imported “{name}”. Check its Preview before it syncs; passwords are not in "
                "an export: sign in again if asked."
            ).format(name=name),
            15_000,
        )

    def export_current(self) -> None:
        """``pairsync connection export NAME``, saved to a file the user picks."""
        name = self.current_name()
        if name is None:
            return
        path = self.ask_export_path(name)
        if not path:
            return

        def job(svc: Service, ctl: TaskControl) -> tuple[str, str]:
            return name, str(svc.export_connection_file(name, path))

        self.runner.start(job, on_done=self._exported, on_error=self._transfer_failed)

    def _exported(self, done: tuple[str, str]) -> None:
        name, path = done
        self.statusBar().showMessage(
            self.tr("Exported “{name}” to {path} (no password is in it).").format(
                name=name, path=path
            ),
            15_000,
        )

    def _transfer_failed(self, message: str, code: str) -> None:
        """An import or export that could not be done: the reason, in a sentence."""
        self.statusBar().clearMessage()
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Pairsync"), message, parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.error_box = box
        box.open()

    def _created(self, name: str) -> None:
        """The wizard's Finish: the new connection (still paused) is resumed, which saves
        off the GUI thread and then syncs it (without a sync control: only resumed)."""
        if self.sync_control is not None:
            self.sync_control.resume(name)
        else:

            def job(svc: Service, _ctl: TaskControl) -> None:
                svc.set_paused(name, False)

            self.runner.start(
                job, on_done=self._list_changed, label="resume the connection", cancellable=False
            )
        self.refresh(select=name)

    def _list_changed(self, _result: object) -> None:
        """A save off the GUI thread changed the list (resumed; a draft deleted)."""
        self.refresh()

    def set_sync_control(self, control: SyncControl) -> None:
        """Hand syncing, pausing and intervals to ``control`` (the scheduler)."""
        self.sync_control = control
        self.dashboard.set_sync_control(control)
        self.refresh()

    def _sync_requested(self, names: list[str]) -> None:
        if self.sync_control is None:
            log.warning("sync requested before the window has a sync control: %s", names)
            return
        self.sync_control.sync_now(names or None)

    def sync_current(self) -> None:
        name = self.current_name()
        if name is not None:
            emit(self.sync_requested, [name])

    def sync_all(self) -> None:
        emit(self.sync_requested, [])

    def pause_all(self) -> None:
        """Pause every connection (a running sync stops at its next safe point), or resume
        them all when all are paused (each then syncs at once)."""
        if self.sync_control is None:
            return
        rows = self.model.rows
        if rows and all(r.paused for r in rows):
            self.sync_control.resume_all()
        else:
            self.sync_control.pause_all()
        self.refresh()
        self.dashboard.refresh_state()

    def sign_in_current(self) -> None:
        """Ask to sign in again to the shown connection's account that needs it."""
        name = self.current_name()
        if name is None:
            return

        def job(svc: Service, _ctl: TaskControl) -> tuple[str, ...]:
            # Off the GUI thread: the state counts the connection's failures (25-50 ms at
            # 100k contacts, 250 ms while a sync ran).
            return svc.connection_state(name).sign_in

        self.runner.start(job, on_done=self._sign_in_to, on_error=self._no_sign_in)

    def _sign_in_to(self, accounts: tuple[str, ...]) -> None:
        if accounts:
            emit(self.sign_in_requested, accounts[0])

    def _no_sign_in(self, _message: str, _code: str) -> None:
        """The connection is gone meanwhile: the list refreshes on its own."""

    def add_banner(self, banner: QWidget) -> None:
        """A notice above the list and the dashboard (kept until the app ends)."""
        banner.setParent(self)
        em = self.fontMetrics().height() // 2
        self.banners.setContentsMargins(em, em, em, 0)  # none while there is no banner
        self.banners.addWidget(banner)

    def bring_to_front(self) -> None:
        """Show the window (from the tray, or a second start), restored and raised."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    def quit(self) -> None:
        self.on_quit()

    def show_settings(self) -> None:
        SettingsDialog(self.service, self).open()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            self.tr("About Pairsync"),
            self.tr(
                "<h3>Pairsync {version}</h3><p>Keeps the contacts of two apps in sync, from "
                "your own computer. No server of ours ever sees your contacts; every change "
                "can be previewed, is logged, and nothing is ever deleted.</p>"
            ).format(version=__version__),
        )

    # --- window state ----------------------------------------------------------------------

    def restore_state(self) -> None:
        """Size, position, toolbar and splitter as the user left them (an INI file in
        Pairsync's config folder)."""
        if self.settings is None:
            return
        geometry: Any = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state: Any = self.settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        splitter: Any = self.settings.value("window/splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)

    def save_state(self) -> None:
        if self.settings is None:
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.sync()

    def hideEvent(self, event: QHideEvent) -> None:
        # Hidden to the tray: the app may keep running for days, and a session's end may
        # not let it close properly, so keep the window's state now.
        if not event.spontaneous():
            self.save_state()
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        if self.wizard is not None:
            self.wizard.reject()
        self.runner.cancel_all()
        self.reader.close()
        super().closeEvent(event)
