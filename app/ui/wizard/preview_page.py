"""Wizard step 5 (SPEC §1.4): the preview. A dry run on a worker thread with a progress bar
and Cancel; Finish ("Start syncing") is only possible once the user has seen what the first
sync will do, and, with Avoid Duplicates off, has said yes to the contacts it will create.

The preview's view is built when the page is first entered, not with the wizard (which
opens faster for it)."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QVBoxLayout, QWidget, QWizardPage

from app.service import Service
from app.ui.dashboard.preview_view import PreviewView
from app.ui.signals import emit
from app.ui.tasks import TaskRunner


class PreviewPage(QWizardPage):
    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.runner = runner
        self._view: PreviewView | None = None
        self.setTitle(self.tr("Preview"))
        self.setSubTitle(
            self.tr(
                "This is what the first sync will do. Nothing has been written yet; press "
                "Start syncing when it looks right."
            )
        )
        self.confirm = QCheckBox(self)
        self.confirm.toggled.connect(self.completeChanged)
        self.confirm.hide()
        self._layout = QVBoxLayout(self)
        self._layout.addWidget(self.confirm)

    @property
    def view(self) -> PreviewView:
        """The preview's view, built on first use."""
        if self._view is None:
            self._view = PreviewView(self.service, self.runner, self)
            self._view.finished.connect(self._finished)
            self._layout.insertWidget(0, self._view, 1)
        return self._view

    def start(self, name: str) -> None:
        self.confirm.hide()
        self.confirm.setChecked(False)
        self.view.set_connection(name)
        self.view.start()
        emit(self.completeChanged)

    def _finished(self, preview: object) -> None:
        p = self.view.preview
        if p is not None and self.view.name is not None:
            conn = self.service.show_connection(self.view.name)
            if not conn.settings.avoid_duplicates:
                self.confirm.setText(
                    self.tr(
                        "Yes, create {a} contacts in {app_a} and {b} in {app_b}, including "
                        "contacts without an email address (they cannot be matched)."
                    ).format(
                        a=p.report["created"]["a"],
                        b=p.report["created"]["b"],
                        app_a=conn.a.account,
                        app_b=conn.b.account,
                    )
                )
                self.confirm.show()
        emit(self.completeChanged)

    def isComplete(self) -> bool:
        view = self._view
        if view is None or view.running or view.preview is None:
            return False
        return self.confirm.isHidden() or self.confirm.isChecked()

    def cleanupPage(self) -> None:
        """Tell a running preview to stop (Back, Cancel, closing)."""
        if self._view is not None:
            self._view.cancel()
