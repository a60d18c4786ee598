"""The desktop app put together: the background scheduler and everything that follows it
(progress, tray, notifications, the mass-change guard's question, Health, Activity,
signing in again), wired into the main window.

``wire(window, service, runner)`` is what ``app.ui.main`` runs, and what the tests run, so
the tests drive the app a user gets. After it:

* **One writer.** Every sync, pause and interval change of the window goes through the
  scheduler (``MainWindow.set_sync_control``): Sync now, Sync all now, Pause all / Resume
  all, the dashboard's Pause/Resume and interval, the wizard's "Start syncing", Retry in
  Health, undo in Activity, the tray's menu and "Continue" in the guard's dialog.
* **Progress** shows in the list ("Syncing n%" and a thin bar), and under the dashboard's
  header with Cancel.
* **Tray**: closing the window hides it and syncing goes on; Quit (tray or menu) stops a
  running sync at its next safe point, then ends the app. Without a tray the window is
  the app: a banner says so, and notifications go to its status bar.
* **Shutdown** (``shutdown``) stops the scheduler before the caller closes the service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt
from PySide6.QtWidgets import QLabel

from app.errors import PairsyncError
from app.service import Service
from app.sync_worker import WorkerOptions
from app.ui.activity_view import ActivityView
from app.ui.guard_dialog import GuardPrompt
from app.ui.health_view import HealthView
from app.ui.main_window import MainWindow
from app.ui.notifications import Notifier
from app.ui.progress import ProgressDelegate, RunProgressBar, SyncProgress
from app.ui.reader import Reader
from app.ui.reauth_dialog import ReauthDialog
from app.ui.scheduler import TICK_MS, Clock, Scheduler, utc_now
from app.ui.tasks import TaskRunner
from app.ui.tray import CloseToTray, Tray, no_tray_notice

log = logging.getLogger(__name__)

MESSAGE_MS = 15_000
"""How long a message stays in the window's status bar."""


class Wiring(QObject):
    """The parts ``wire`` made, kept alive by the window (its parent). See the module
    docstring; ``start`` once the window is up, ``shutdown`` before closing the service."""

    def __init__(
        self,
        window: MainWindow,
        service: Service,
        runner: TaskRunner,
        *,
        worker: WorkerOptions | None = None,
        quit_app: Callable[[], None] | None = None,
        tick_ms: int = TICK_MS,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.service = service
        self.runner = runner
        self.quit_app = quit_app or QCoreApplication.quit
        """Ends the event loop (``QApplication.quit`` in the app; tests record the call)."""
        self.quitting = False
        self.scheduler = Scheduler(
            service, worker=worker, tick_ms=tick_ms, clock=clock, runner=runner, parent=self
        )
        window.set_sync_control(self.scheduler)
        window.on_quit = self.quit

        self.progress = SyncProgress(self.scheduler, self)
        self.progress.attach_list(window.model)
        old = window.list.itemDelegate()
        window.list.setItemDelegate(ProgressDelegate(self.progress, window.list))
        old.deleteLater()
        self.progress_bar = RunProgressBar(self.progress, self.scheduler)
        window.header.attach_progress(self.progress_bar)

        self.tray = Tray(service, self.scheduler, window.bring_to_front, self.quit, self)
        self.tray.message.connect(self._show_message)
        self.tray.message_clicked.connect(window.bring_to_front)
        self.close_to_tray: CloseToTray | None = None
        self.banner: QLabel | None = None
        if self.tray.available:
            self.close_to_tray = CloseToTray(self.tray, window)
        else:
            self.banner = no_tray_notice(window)
            window.add_banner(self.banner)
        # Health, Activity and the notifier read the database on threads of their own,
        # never the GUI's.
        self.reader = Reader(runner.factory, self)
        self.notifier = Notifier(service, self.scheduler, self.tray, self, reader=self.reader)
        self.guard = GuardPrompt(service, self.scheduler, parent_widget=window, parent=self)

        self.health = HealthView(service, self.scheduler, reader=self.reader)
        self.activity = ActivityView(service, self.scheduler, reader=self.reader)
        window.dashboard.add_page(self.health, self.tr("Health"))
        window.dashboard.add_page(self.activity, self.tr("Activity"))
        self.sign_in_dialogs: dict[str, ReauthDialog] = {}
        self.health.sign_in_requested.connect(self.sign_in)
        window.sign_in_requested.connect(self.sign_in)

        self.scheduler.states_changed.connect(self._states_changed)
        self.scheduler.run_finished.connect(self._run_finished)
        self.scheduler.job_failed.connect(self._job_failed)

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start syncing: whatever is due runs at once (e.g. missed while the app was off)."""
        self.scheduler.start()

    def quit(self) -> None:
        """Quit Pairsync (the tray's or the menu's Quit): hide the window, stop a running
        sync at its next safe point (what is written stays, nothing is half-done), then end
        the event loop."""
        if self.quitting:
            return
        self.quitting = True
        self.window.hide()
        self.shutdown()
        self.quit_app()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop the scheduler (waiting for its worker) and let the window close for real.
        Call before closing the service; safe to call twice."""
        if self.close_to_tray is not None:
            self.window.removeEventFilter(self.close_to_tray)
        if self.tray.icon is not None:
            self.tray.icon.hide()
        stopped = self.scheduler.shutdown(timeout_ms)
        self.reader.close()
        return stopped

    # --- signing in again ---------------------------------------------------------------------

    def sign_in(self, account: str) -> None:
        """Open the sign-in dialog for ``account`` (one per account); once it is accepted,
        the account's connections sync at once."""
        dialog = self.sign_in_dialogs.pop(account, None)
        if dialog is not None and shiboken6.isValid(dialog) and dialog.isVisible():
            self.sign_in_dialogs[account] = dialog
            dialog.raise_()
            dialog.activateWindow()
            return
        try:
            dialog = ReauthDialog(self.service, self.runner, account, self.window)
        except PairsyncError as err:
            self._show_message(self.tr("Sign in again"), str(err))
            return
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        # Bound methods, not lambdas: the dialog deletes itself when closed.
        dialog.reauthorized.connect(self._reauthorized)
        self.sign_in_dialogs[account] = dialog
        dialog.open()

    def _reauthorized(self, names: list[str]) -> None:
        self.scheduler.sync_now(names)

    # --- from the scheduler ---------------------------------------------------------------------

    def _states_changed(self) -> None:
        self.window.refresh()
        self.window.dashboard.refresh_state()

    def _run_finished(self, name: str, report: dict[str, Any]) -> None:
        self.window.dashboard.after_run(name)
        if report.get("kind", "sync") != "sync":
            return  # an undo's result shows in Activity
        status = str(report.get("status", ""))
        if status in ("ok", "paused", "guard", "failed"):
            return  # the chip says it; the guard asks; rising failures notify
        if status == "cancelled":
            text = self.tr(
                "stopped at a safe point. What was written stays; the next sync goes on from there."
            )
        else:  # unreachable, rate limited, sign-in: the engine's own words
            text = str(report.get("message") or status)
        self.window.statusBar().showMessage(f"{name}: {text}", MESSAGE_MS)

    def _job_failed(self, name: str, kind: str, message: str) -> None:
        self.window.statusBar().showMessage(f"{name}: {message}", MESSAGE_MS)

    def _show_message(self, title: str, text: str) -> None:
        """A notification without a tray to show it: the window's status bar."""
        self.window.statusBar().showMessage(f"{title}: {text}", MESSAGE_MS)


def wire(
    window: MainWindow,
    service: Service,
    runner: TaskRunner,
    *,
    worker: WorkerOptions | None = None,
    quit_app: Callable[[], None] | None = None,
    tick_ms: int = TICK_MS,
    clock: Clock = utc_now,
) -> Wiring:
    """Wire the scheduler, progress, tray, notifications, guard dialog, Health, Activity
    and signing in again into ``window``. ``worker`` says how to start the sync worker
    process (default: the same folders and keyring policy as ``service``). ``tick_ms`` and
    ``clock`` are the scheduler's (tests move the clock instead of waiting minutes)."""
    return Wiring(
        window,
        service,
        runner,
        worker=worker,
        quit_app=quit_app,
        tick_ms=tick_ms,
        clock=clock,
    )
