"""Wizard step 4 (SPEC §1.3): configure, in the SPEC's order — direction; rules; settings
(winning app, Avoid Duplicates, Sync Unsubscribes, Trash segment); field mappings.

The connection exists from here on, *paused* (a paused connection reads and writes nothing,
so no scheduler can sync it before the user has seen the preview). The page edits it with
the dashboard's own editors; Cancel deletes it again."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from app.errors import PairsyncError
from app.service import Service
from app.ui.dashboard.mappings_editor import MappingsEditor
from app.ui.dashboard.page import ConnectionPage, MessageLabel
from app.ui.dashboard.rules_editor import RulesEditor
from app.ui.dashboard.settings_page import SettingsEditor
from app.ui.tasks import TaskRunner


class ConfigurePage(QWizardPage):
    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.name: str | None = None
        self.setTitle(self.tr("Configure the connection"))
        self.setSubTitle(
            self.tr(
                "The defaults sync every contact both ways with all standard fields. Change "
                "anything now or later; nothing is written before the preview."
            )
        )
        self.name_edit = QLineEdit(self)
        self.name_edit.setAccessibleName(self.tr("Connection name"))
        self.name_edit.textChanged.connect(self.completeChanged)
        name_label = QLabel(self.tr("Connection na&me:"), self)
        name_label.setBuddy(self.name_edit)
        self.settings = SettingsEditor(
            service, runner, self, advanced=False, confirm_no_email=False
        )
        self.rules = RulesEditor(service, runner, self)
        self.mappings = MappingsEditor(service, runner, self)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.settings, self.tr("Direction and settings"))
        self.tabs.addTab(self.rules, self.tr("Rules"))
        self.tabs.addTab(self.mappings, self.tr("Field mappings"))
        self.tabs.setAccessibleName(self.tr("Connection configuration"))
        self.message = MessageLabel(self)
        for page in self.pages():
            page.runner.busy_changed.connect(self.completeChanged)
        name_row = QHBoxLayout()
        name_row.addWidget(name_label)
        name_row.addWidget(self.name_edit, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(name_row)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message)

    def pages(self) -> tuple[ConnectionPage, ...]:
        return (self.settings, self.rules, self.mappings)

    def show_connection(self, name: str) -> None:
        """Edit the (paused, new) connection ``name``."""
        self.name = name
        self.name_edit.setText(name)
        self.message.clear_message()
        for page in self.pages():
            page.set_connection(name)

    def isComplete(self) -> bool:
        return bool(self.name_edit.text().strip()) and not any(p.pending for p in self.pages())

    def validatePage(self) -> bool:
        """Apply a new name (the connection has never synced, so it is simply re-created
        under it)."""
        if self.name is None:
            return False
        wanted = self.name_edit.text().strip()
        if wanted != self.name:
            try:
                self.service.rename_connection(self.name, wanted)
            except PairsyncError as err:
                self.message.error(str(err))
                return False
            self.name = wanted
            for page in self.pages():
                page.name = wanted
        return True
