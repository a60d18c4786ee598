"""The connection dashboard: one connection's Settings, Rules, Field mappings and Preview as
tabs. ``add_page`` lets other parts of the app (Health, Activity) join as further tabs; a page
that has ``set_connection(name)`` is told which connection is shown.

Tabs load lazily: a tab that reads the apps (mappings, rule counts) does so the first time
it is shown for a connection, not for every connection the user clicks past."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QTabWidget, QWidget

from app.service import Service
from app.ui.dashboard.mappings_editor import MappingsEditor
from app.ui.dashboard.preview_view import PreviewView
from app.ui.dashboard.rules_editor import RulesEditor
from app.ui.dashboard.settings_page import SettingsPage
from app.ui.scheduler import SyncControl
from app.ui.signals import emit
from app.ui.tasks import TaskRunner


class ConnectionDashboard(QTabWidget):
    changed = Signal()
    """Something the connection list shows changed (settings, pause, rules)."""
    deleted = Signal(str)
    renamed = Signal(str, str)

    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName(self.tr("Connection dashboard"))
        self.setDocumentMode(True)
        self.name: str | None = None
        self._shown: set[int] = set()
        self.settings_page = SettingsPage(service, runner, self)
        self.rules_editor = RulesEditor(service, runner, self)
        self.mappings_editor = MappingsEditor(service, runner, self)
        self.preview_view = PreviewView(service, runner, self)
        self.settings_page.changed.connect(self._changed)
        self.settings_page.deleted.connect(self.deleted)
        self.settings_page.renamed.connect(self.renamed)
        self.rules_editor.changed.connect(self._changed)
        self.add_page(self.settings_page, self.tr("Settings"))
        self.add_page(self.rules_editor, self.tr("Rules"))
        self.add_page(self.mappings_editor, self.tr("Field mappings"))
        self.add_page(self.preview_view, self.tr("Preview"))
        self.currentChanged.connect(self._show_tab)

    def add_page(self, widget: QWidget, title: str) -> int:
        """Add a tab; it is told the connection (``set_connection``) when first shown."""
        index = self.addTab(widget, title)
        widget.setAccessibleName(title)
        return index

    def set_connection(self, name: str | None) -> None:
        if name == self.name:
            return
        self.name = name
        self._shown = set()
        self._show_tab(self.currentIndex())

    def set_sync_control(self, control: SyncControl) -> None:
        """Pause/Resume and the interval go through ``control`` (the scheduler)."""
        self.settings_page.set_sync_control(control)

    def refresh(self) -> None:
        """Reload the visible tab (after a sync: counts and status changed)."""
        self._shown = set()
        self._show_tab(self.currentIndex())

    def refresh_state(self) -> None:
        """Pause state or interval changed (from the tray, the menu…): show it without
        reloading anything the user may be editing."""
        self.settings_page.refresh_state()

    def after_run(self, name: str) -> None:
        """A run of ``name`` ended. Runs happen every few minutes in the background, so the
        visible tab is not reloaded under the user (a preview shown, a mapping being read);
        the other tabs reload when next shown. The Rules tab's counts come from the local
        index, so it is recounted at once. Health and Activity follow the scheduler
        themselves."""
        if name != self.name:
            return
        self._shown = {self.currentIndex()}
        if self.currentWidget() is self.rules_editor:
            self.rules_editor.reload()

    def _show_tab(self, index: int) -> None:
        if index < 0 or index in self._shown:
            return
        self._shown.add(index)
        page: Any = self.widget(index)
        if hasattr(page, "set_connection"):
            page.set_connection(self.name)

    def _changed(self) -> None:
        # Another tab may show what just changed (e.g. direction greys rules): reload those
        # when they are next shown.
        self._shown = {self.currentIndex()}
        emit(self.changed)
