"""The main window: the list of connections (or, before the first one, an invitation to
create it), the selected connection's dashboard, and the app's menu and toolbar.

"Sync now" and "Sync all now" go through one seam, ``sync_requested(names)`` (an empty list
means all). Until the background scheduler takes that signal over, the window's own handler
runs ``Service.sync`` on a one-thread task runner, so runs never overlap and a second request
for a connection already queued or running is coalesced (SPEC §9)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QByteArray, QModelIndex, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
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
from app.catalogue import entry
from app.engine.sync import RunReport
from app.service import Service
from app.status import ConnectionSummary
from app.ui.connection_list import ARROWS, ConnectionDelegate, ConnectionListModel
from app.ui.dashboard.dashboard import ConnectionDashboard
from app.ui.icons import app_icon, pairsync_icon
from app.ui.settings_dialog import SettingsDialog
from app.ui.status_chip import StatusChip
from app.ui.tasks import RunProgress, TaskControl, TaskRunner
from app.ui.wizard.wizard import ConnectionWizard


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
    """Above the dashboard: both apps, the name, the status chip and Sync now."""

    sync_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.icon_a, self.arrow, self.icon_b = QLabel(self), QLabel(self), QLabel(self)
        self.title = QLabel(self)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.accounts = QLabel(self)
        self.chip = StatusChip(self)
        self.sync_button = QPushButton(self.tr("S&ync now"), self)
        self.sync_button.setAccessibleName(self.tr("Sync this connection now"))
        self.sync_button.clicked.connect(self.sync_clicked)
        names = QVBoxLayout()
        names.setSpacing(0)
        names.addWidget(self.title)
        names.addWidget(self.accounts)
        layout = QHBoxLayout(self)
        for w in (self.icon_a, self.arrow, self.icon_b):
            layout.addWidget(w)
        layout.addSpacing(self.fontMetrics().height() // 2)
        layout.addLayout(names, 1)
        layout.addWidget(self.chip)
        layout.addWidget(self.sync_button)

    def show_row(self, row: ConnectionSummary, syncing: int | None) -> None:
        size = self.fontMetrics().height() * 2
        self.icon_a.setPixmap(app_icon(row.kind_a).pixmap(size, size))
        self.icon_b.setPixmap(app_icon(row.kind_b).pixmap(size, size))
        for label, kind in ((self.icon_a, row.kind_a), (self.icon_b, row.kind_b)):
            app = entry(kind)
            label.setAccessibleName(app.name if app is not None else kind)
            label.setToolTip(label.accessibleName())
        arrow = ARROWS.get(row.direction, "?")
        self.arrow.setText(arrow)
        self.title.setText(row.name)
        self.accounts.setText(f"{row.account_a} {arrow} {row.account_b}")
        self.chip.set_status(row.status, syncing)
        self.sync_button.setEnabled(not row.paused and syncing is None)


class MainWindow(QMainWindow):
    sync_requested = Signal(list)
    """Names of the connections to sync now; empty = all. See ``run_sync``."""

    def __init__(
        self,
        service: Service,
        runner: TaskRunner,
        settings: QSettings | None = None,
        sync_runner: TaskRunner | None = None,
    ) -> None:
        super().__init__()
        self.service = service
        self.runner = runner
        self.sync_runner = sync_runner or TaskRunner(runner.factory, self, max_threads=1)
        self.settings = settings
        self.queued: set[str] = set()
        """Connections with a sync queued or running (requests for them coalesce)."""
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
        self.header = ConnectionHeader(self)
        self.header.sync_clicked.connect(self.sync_current)
        self.dashboard = ConnectionDashboard(service, runner, self)
        self.dashboard.changed.connect(self.refresh)
        self.dashboard.deleted.connect(self._deleted)
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
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.splitter)
        self.setCentralWidget(self.stack)
        self.statusBar()
        self.sync_requested.connect(self.run_sync)
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
        self.sync_all_action.triggered.connect(lambda: self.sync_requested.emit([]))
        self.pause_all_action = QAction(self.tr("&Pause all"), self)
        self.pause_all_action.triggered.connect(self.pause_all)
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
        self.quit_action.triggered.connect(self.close)

        file_menu = self.menuBar().addMenu(self.tr("&File"))
        file_menu.addAction(self.new_action)
        file_menu.addAction(self.sync_all_action)
        file_menu.addAction(self.pause_all_action)
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

    def refresh(self) -> None:
        """Re-read the connections and their status (database only: quick)."""
        current = self.current_name()
        rows = self.service.connection_overview()
        self.model.set_rows(rows)
        self.stack.setCurrentWidget(self.splitter if rows else self.empty)
        has = bool(rows)
        self.sync_all_action.setEnabled(has)
        self.pause_all_action.setEnabled(has)
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

    def _show_header(self) -> None:
        name = self.current_name()
        row = next((r for r in self.model.rows if r.name == name), None)
        self.header.setVisible(row is not None)
        if row is not None:
            self.header.show_row(row, self.model.syncing.get(row.name))

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
        self.wizard = ConnectionWizard(self.service, self.runner, self)
        self.wizard.connection_created.connect(self._created)
        self.wizard.finished.connect(self._wizard_closed)
        self.wizard.open()

    def _wizard_closed(self, _result: int) -> None:
        if self.wizard is not None:
            self.wizard.deleteLater()
        self.wizard = None
        self.refresh()

    def _created(self, name: str) -> None:
        self.refresh()
        self.select(name)
        self.sync_requested.emit([name])

    def sync_current(self) -> None:
        name = self.current_name()
        if name is not None:
            self.sync_requested.emit([name])

    def pause_all(self) -> None:
        rows = self.model.rows
        pause = not all(r.paused for r in rows)
        for r in rows:
            if r.paused != pause:
                self.service.set_paused(r.name, pause)
        self.refresh()
        self.dashboard.refresh()

    def run_sync(self, names: list[str]) -> None:
        """The default handler of ``sync_requested``: one run per connection, one at a time,
        each with its progress in the list's status chip."""
        targets = names or [r.name for r in self.model.rows if not r.paused]
        for name in targets:
            if name in self.queued:
                continue  # already queued or running: coalesce
            self.queued.add(name)
            self.model.set_syncing(name, 0)
            progress = RunProgress()

            def job(svc: Service, ctl: TaskControl, name: str = name) -> list[RunReport]:
                return svc.sync([name], progress=ctl.progress)

            task = self.sync_runner.start(job, on_done=self._synced, on_error=self._sync_failed)
            task.signals.progress.connect(
                lambda phase, done, total, name=name, progress=progress: self._sync_progress(
                    name, progress.update(phase, done, total)
                )
            )
            task.signals.finished.connect(lambda name=name: self._sync_finished(name))
        self._show_header()

    def _sync_progress(self, name: str, percent: int) -> None:
        self.model.set_syncing(name, percent)
        if name == self.current_name():
            self._show_header()

    def _synced(self, reports: list[RunReport]) -> None:
        for r in reports:
            if r.status not in ("ok", "paused"):
                self.statusBar().showMessage(f"{r.connection}: {r.message or r.status}", 15_000)

    def _sync_failed(self, message: str, code: str) -> None:
        self.statusBar().showMessage(message, 15_000)

    def _sync_finished(self, name: str) -> None:
        self.queued.discard(name)
        self.model.set_syncing(name, None)
        self.refresh()
        if name == self.current_name():
            self.dashboard.refresh()

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

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        if self.wizard is not None:
            self.wizard.reject()
        self.runner.cancel_all()
        super().closeEvent(event)
