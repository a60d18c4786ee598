"""The "New connection" wizard (SPEC §1): apps → authorize A → authorize B → configure →
preview → Start syncing.

Accounts added on the authorize pages are kept even if the wizard is cancelled: they are
"connected accounts", offered again next time. The connection itself is created (paused) on
entering Configure and deleted again on Back or Cancel; Finish resumes it and asks for its
first sync (``connection_created``)."""

from __future__ import annotations

import contextlib

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget, QWizard

from app.errors import PairsyncError
from app.model import Side
from app.service import ConnectionSettings, Service
from app.ui.icons import pairsync_icon
from app.ui.signals import emit
from app.ui.tasks import TaskRunner
from app.ui.wizard.account_page import AccountPage
from app.ui.wizard.apps_page import AppsPage
from app.ui.wizard.configure_page import ConfigurePage
from app.ui.wizard.preview_page import PreviewPage

APPS, ACCOUNT_A, ACCOUNT_B, CONFIGURE, PREVIEW = range(5)


class ConnectionWizard(QWizard):
    connection_created = Signal(str)
    """Finish: the new connection's name (resumed, ready for its first sync)."""

    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.runner = runner
        self.draft: str | None = None
        self.draft_accounts: tuple[str, str] | None = None
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
            self.configure_page.show_connection(self.ensure_draft())
        elif id == PREVIEW:
            assert self.draft is not None
            self.draft = self.configure_page.name or self.draft
            self.preview_page.start(self.draft)
        super().initializePage(id)

    def cleanupPage(self, id: int) -> None:
        if id == CONFIGURE:
            self.drop_draft()  # Back to the accounts: they may change
        super().cleanupPage(id)

    def ensure_draft(self) -> str:
        """Create the connection (paused) for the two accounts picked, once."""
        a = self.account_pages[Side.A].account
        b = self.account_pages[Side.B].account
        assert a is not None and b is not None
        if self.draft is not None and self.draft_accounts == (a, b):
            return self.draft
        self.drop_draft()
        # Sync Unsubscribes starts on when either app is a marketing app (its registry says).
        entries = [self.apps_page.entry(s) for s in (Side.A, Side.B)]
        marketing = any(e is not None and e.subscriptions for e in entries)
        name = self.service.suggest_connection_name(a, b)
        self.service.create_connection(name, a, b, ConnectionSettings(unsubscribes=marketing))
        self.service.set_paused(name, True)
        self.draft, self.draft_accounts = name, (a, b)
        return name

    def drop_draft(self) -> None:
        """Delete the connection being set up (it never synced: nothing else to undo)."""
        name, self.draft, self.draft_accounts = self.draft, None, None
        if name is None:
            return
        with contextlib.suppress(PairsyncError):  # already gone
            self.service.delete_connection(name)

    def done(self, result: int) -> None:
        """Finish resumes the connection; Cancel (or closing) deletes it. Either way the
        preview, if still running, is told to stop."""
        self.preview_page.view.cancel()
        for page in self.account_pages.values():
            page.cleanupPage()
        name = self.configure_page.name if self.draft is not None else None
        if result == int(QWizard.DialogCode.Accepted) and name is not None:
            self.service.set_paused(name, False)
            self.draft = None
            super().done(result)
            emit(self.connection_created, name)
            return
        self.drop_draft()
        super().done(result)
