"""The "New connection" wizard (SPEC §1): apps → authorize A → authorize B → configure →
preview → Start syncing.

Accounts added on the authorize pages are kept even if the wizard is cancelled: they are
"connected accounts", offered again next time. The connection itself is created (paused) on
entering Configure and deleted again on Back or Cancel, off the GUI thread
(``app.ui.wizard.draft``); Finish hands it to the window (``connection_created``), which
resumes it and starts its first sync."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget, QWizard

from app.model import Side
from app.service import ConnectionSettings, Service
from app.ui.icons import pairsync_icon
from app.ui.signals import emit
from app.ui.tasks import TaskControl, TaskRunner
from app.ui.wizard.account_page import AccountPage
from app.ui.wizard.apps_page import AppsPage
from app.ui.wizard.configure_page import ConfigurePage
from app.ui.wizard.draft import Draft
from app.ui.wizard.preview_page import PreviewPage

APPS, ACCOUNT_A, ACCOUNT_B, CONFIGURE, PREVIEW = range(5)


class ConnectionWizard(QWizard):
    connection_created = Signal(str)
    """Finish: the new connection's name (resumed, ready for its first sync)."""

    def __init__(
        self,
        service: Service,
        runner: TaskRunner,
        parent: QWidget | None = None,
        *,
        dropped: Callable[[object], None] | None = None,
    ):
        """``dropped``: called (in the GUI thread) once a cancelled draft is deleted, even
        after the wizard is gone (the window re-reads its list)."""
        super().__init__(parent)
        self.dropped = dropped
        self.service = service
        self.runner = runner
        self.draft: str | None = None
        """The draft connection's name, once created."""
        self._box: Draft | None = None
        self.setWindowTitle(self.tr("New connection"))
        self.setWindowIcon(pairsync_icon())
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.HaveHelpButton, False)
        self.setButtonText(QWizard.WizardButton.FinishButton, self.tr("&Start syncing"))
        self.apps_page = AppsPage(service.app_list(), self)
        self.account_pages = {
            Side.A: AccountPage(service, runner, Side.A, self),
            Side.B: AccountPage(service, runner, Side.B, self),
        }
        self.configure_page = ConfigurePage(service, runner, self)
        self.preview_page = PreviewPage(service, runner, self)
        self.setPage(APPS, self.apps_page)
        self.setPage(ACCOUNT_A, self.account_pages[Side.A])
        self.setPage(ACCOUNT_B, self.account_pages[Side.B])
        self.setPage(CONFIGURE, self.configure_page)
        self.setPage(PREVIEW, self.preview_page)
        self.setStartId(APPS)
        em = self.fontMetrics().horizontalAdvance("M")
        self.resize(em * 64, self.fontMetrics().height() * 40)

    def initializePage(self, id: int) -> None:
        if id in (ACCOUNT_A, ACCOUNT_B):
            side = Side.A if id == ACCOUNT_A else Side.B
            entry = self.apps_page.entry(side)
            assert entry is not None
            other = self.account_pages[Side.A].account if side is Side.B else None
            self.account_pages[side].prepare(entry, other)
        elif id == CONFIGURE:
            self.ensure_draft()
        elif id == PREVIEW:
            assert self.draft is not None
            self.draft = self.configure_page.name or self.draft
            self.preview_page.start(self.draft)
        super().initializePage(id)

    def cleanupPage(self, id: int) -> None:
        if id == CONFIGURE:
            self.drop_draft()  # Back to the accounts: they may change
        super().cleanupPage(id)

    def ensure_draft(self) -> None:
        """Create the connection (paused) for the two accounts picked, once, on a task
        thread; Configure shows it when it is there (``_draft_created``)."""
        a = self.account_pages[Side.A].account
        b = self.account_pages[Side.B].account
        assert a is not None and b is not None
        box = self._box
        if box is not None and box.accounts == (a, b) and self.draft is not None:
            self.configure_page.show_connection(self.draft, box)
            return
        self.drop_draft()
        # Sync Unsubscribes starts on when either app is a marketing app (its registry says).
        entries = [self.apps_page.entry(s) for s in (Side.A, Side.B)]
        marketing = any(e is not None and e.subscriptions for e in entries)
        settings = ConnectionSettings(unsubscribes=marketing)
        box = self._box = Draft(a, b)

        def job(svc: Service, _ctl: TaskControl) -> str | None:
            return box.create(svc, settings)

        self.configure_page.creating()
        self.runner.start(
            job,
            on_done=self._draft_created,
            on_error=self.configure_page.create_failed,
            label="create the connection",
            cancellable=False,
        )

    def _draft_created(self, name: str | None) -> None:
        box = self._box
        if name is None or box is None or box.name != name:
            return  # let go of meanwhile (Back, Cancel): it deleted itself
        self.draft = name
        self.configure_page.show_connection(name, box)

    def drop_draft(self) -> None:
        """Delete the connection being set up, on a task thread (it never synced: nothing
        else to undo). A creation still running deletes its own."""
        box, self._box = self._box, None
        self.draft = None
        if box is None or not box.abandon():
            return

        def job(svc: Service, _ctl: TaskControl) -> None:
            box.delete(svc)

        self.runner.start(
            job, on_done=self.dropped, label="delete the draft connection", cancellable=False
        )

    def done(self, result: int) -> None:
        """Finish keeps the connection (the window resumes it and starts its first sync);
        Cancel (or closing) deletes it. Either way the preview, if still running, is told
        to stop."""
        self.preview_page.cleanupPage()
        for page in self.account_pages.values():
            page.cleanupPage()
        name = self.configure_page.name if self.draft is not None else None
        if result == int(QWizard.DialogCode.Accepted) and name is not None:
            if self._box is not None:
                self._box.keep()
            self._box, self.draft = None, None
            super().done(result)
            emit(self.connection_created, name)
            return
        self.drop_draft()
        super().done(result)
