"""Wizard step 4 (SPEC §1.3): configure, in the SPEC's order — direction; rules; settings
(winning app, Avoid Duplicates, Sync Unsubscribes, Trash segment); field mappings.

The connection exists from here on, *paused* (a paused connection reads and writes nothing,
so no scheduler can sync it before the user has seen the preview). The page edits it with
the dashboard's own editors; Cancel deletes it again.

The editors are built when the page is first entered, not with the wizard: they are most of
its widgets, and building them all made opening the wizard stall the window (10-400 ms
under load) for a page the user may never reach."""

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
        self._editors: tuple[SettingsEditor, RulesEditor, MappingsEditor] | None = None
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.setAccessibleName(self.tr("Connection configuration"))
        self.message = MessageLabel(self)
        name_row = QHBoxLayout()
        name_row.addWidget(name_label)
        name_row.addWidget(self.name_edit, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(name_row)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message)

    def editors(self) -> tuple[SettingsEditor, RulesEditor, MappingsEditor]:
        """The settings, rules and mappings editors, built on first use."""
        if self._editors is None:
            settings = SettingsEditor(
                self.service, self.runner, self, advanced=False, confirm_no_email=False
            )
            rules = RulesEditor(self.service, self.runner, self)
            mappings = MappingsEditor(self.service, self.runner, self)
            self.tabs.addTab(settings, self.tr("Direction and settings"))
            self.tabs.addTab(rules, self.tr("Rules"))
            self.tabs.addTab(mappings, self.tr("Field mappings"))
            self._editors = (settings, rules, mappings)
            for page in self._editors:
                page.runner.busy_changed.connect(self.completeChanged)
        return self._editors

    @property
    def settings(self) -> SettingsEditor:
        return self.editors()[0]

    @property
    def rules(self) -> RulesEditor:
        return self.editors()[1]

    @property
    def mappings(self) -> MappingsEditor:
        return self.editors()[2]

    def pages(self) -> tuple[ConnectionPage, ...]:
        """The editors, if built (none has anything pending before)."""
        return self._editors or ()

    def creating(self) -> None:
        """The connection is being created (off the GUI thread): nothing to edit yet."""
        self.editors()  # the page is being entered: its tabs show, disabled
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
        for page in self.editors():
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
