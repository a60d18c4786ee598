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

from app.service import Service
from app.ui.dashboard.mappings_editor import MappingsEditor
from app.ui.dashboard.page import ConnectionPage, MessageLabel
from app.ui.dashboard.rules_editor import RulesEditor
from app.ui.dashboard.settings_page import SettingsEditor
from app.ui.signals import emit
from app.ui.tasks import TaskControl, TaskRunner
from app.ui.wizard.draft import Draft


class ConfigurePage(QWizardPage):
    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.runner = runner
        self.name: str | None = None
        self.draft: Draft | None = None
        self.renaming = False
        """A new name is being saved: Next waits for it."""
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

    def creating(self) -> None:
        """The connection is being created (off the GUI thread): nothing to edit yet."""
        self.name, self.draft = None, None
        self.name_edit.clear()
        self.name_edit.setEnabled(False)
        self.tabs.setEnabled(False)
        self.message.info(self.tr("Creating the connection…"))
        emit(self.completeChanged)

    def create_failed(self, message: str, code: str) -> None:
        self.message.error(message)

    def show_connection(self, name: str, draft: Draft | None = None) -> None:
        """Edit the (paused, new) connection ``name``; ``draft`` renames it."""
        self.name, self.draft = name, draft
        self.name_edit.setText(name)
        self.name_edit.setEnabled(True)
        self.tabs.setEnabled(True)
        self.message.clear_message()
        for page in self.pages():
            page.set_connection(name)
        emit(self.completeChanged)

    def isComplete(self) -> bool:
        return (
            self.name is not None
            and not self.renaming
            and bool(self.name_edit.text().strip())
            and not any(p.pending for p in self.pages())
        )

    def validatePage(self) -> bool:
        """Apply a new name (the connection has never synced, so only its name changes),
        off the GUI thread: Next goes on once it is saved (``_renamed``)."""
        if self.name is None or self.renaming:
            return False
        wanted = self.name_edit.text().strip()
        if wanted == self.name:
            return True
        draft, current = self.draft, self.name

        def job(svc: Service, _ctl: TaskControl) -> str | None:
            if draft is not None:
                return draft.rename(svc, wanted)
            return svc.rename_connection(current, wanted).name

        self.renaming = True
        self.message.info(self.tr("Renaming…"))
        emit(self.completeChanged)
        self.runner.start(
            job,
            on_done=self._renamed,
            on_error=self._rename_failed,
            label="rename the connection",
            cancellable=False,
        )
        return False

    def _renamed(self, new: str | None) -> None:
        self.renaming = False
        self.message.clear_message()
        if new is None:  # the draft was dropped meanwhile (Back, Cancel)
            return
        self.name = new
        for page in self.pages():
            page.name = new
        emit(self.completeChanged)
        wizard = self.wizard()
        if wizard is not None and wizard.currentPage() is self:
            wizard.next()

    def _rename_failed(self, message: str, code: str) -> None:
        self.renaming = False
        self.message.error(message)
        emit(self.completeChanged)
