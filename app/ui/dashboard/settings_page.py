"""The dashboard's Settings tab: the connection's settings, Pause/Resume and Delete."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import PairsyncError
from app.model import DEFAULT_INTERVAL, MAX_INTERVAL, MIN_INTERVAL
from app.service import ConnectionView, Service
from app.ui.dashboard.page import ConnectionPage
from app.ui.dashboard.settings_form import ConnectionSettingsForm
from app.ui.scheduler import SyncControl
from app.ui.signals import emit
from app.ui.tasks import TaskControl, TaskRunner


class SettingsEditor(ConnectionPage):
    """The settings form, saved as the user edits it (the wizard's Configure page uses this;
    the dashboard's tab adds Pause/Resume and Delete)."""

    def __init__(
        self,
        service: Service,
        runner: TaskRunner,
        parent: QWidget | None = None,
        *,
        advanced: bool = True,
        confirm_no_email: bool = True,
    ) -> None:
        super().__init__(service, runner, parent)
        self.ask_no_email = confirm_no_email
        self.conn: ConnectionView | None = None
        self.form = ConnectionSettingsForm(self, advanced=advanced)
        self.form.edited.connect(self.apply)
        # Scrolls rather than growing the window when the form is taller than the tab.
        scroll = QScrollArea(self)
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.column = QVBoxLayout(self)
        self.column.setContentsMargins(0, 0, 0, 0)
        self.column.addWidget(scroll, 1)
        self.footer(self.column)

    def reload(self) -> None:
        if self.name is None:
            return
        try:
            self.conn = self.service.show_connection(self.name)
        except PairsyncError as err:
            self.message.error(str(err))
            return
        self.form.load(self.conn)

    def apply(self, changes: dict[str, Any]) -> None:
        """Save what the user changed (off the GUI thread: a direction change re-checks the
        rules against both apps' fields)."""
        name = self.name
        if name is None:
            return
        if (
            changes.get("avoid_duplicates") is False
            and self.ask_no_email
            and not self.confirm_no_email()
        ):
            self.reload()
            return

        def job(svc: Service, ctl: TaskControl) -> ConnectionView:
            conn = None
            for side in ("a", "b"):
                if f"subscription_{side}" in changes:
                    field = str(changes[f"subscription_{side}"])
                    conn = svc.set_subscription_field(name, side, field)
            rest = {k: v for k, v in changes.items() if not k.startswith("subscription_")}
            if rest or conn is None:
                conn = svc.update_connection(name, **rest)
            return conn

        self.run(job, self._applied, self.tr("Saving…"))

    def _applied(self, conn: ConnectionView) -> None:
        self.conn = conn
        self.form.load(conn)
        self.message.success(self.tr("Saved. The next sync uses the new settings."))
        emit(self.changed)

    def on_error(self, message: str, code: str) -> None:
        super().on_error(message, code)
        self.reload()

    def confirm_no_email(self) -> bool:
        """SPEC §4: before contacts without an email are created across, say so."""
        answer = QMessageBox.question(
            self,
            self.tr("Sync contacts without an email?"),
            self.tr(
                "With Avoid duplicates off, contacts without an email address cannot be "
                "matched: each one is created in the other app. Open the Preview tab to see "
                "how many before the next sync.\n\nTurn Avoid duplicates off?"
            ),
        )
        return answer == QMessageBox.StandardButton.Yes


class SettingsPage(SettingsEditor):
    """The dashboard's Settings tab: the settings form, how often to sync, Pause/Resume
    and Delete. Syncing, pausing and the interval go through the sync control (the
    scheduler), so a running sync stops at its next safe point when paused."""

    deleted = Signal(str)
    renamed = Signal(str, str)
    """old name, new name"""

    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(service, runner, parent)
        self.paused = False
        self._delete_after_save: str | None = None
        """A connection to delete once its pause is saved."""
        self.sync_control: SyncControl | None = None
        self.interval = QSpinBox(self)
        self.interval.setRange(MIN_INTERVAL, MAX_INTERVAL)
        self.interval.setValue(DEFAULT_INTERVAL)
        self.interval.setSuffix(self.tr(" min"))
        self.interval.setKeyboardTracking(False)  # one save per change, not per keystroke
        self.interval.setAccessibleName(self.tr("Sync every (minutes)"))
        self.interval.setToolTip(
            self.tr("While Pairsync runs, this connection syncs this often (1–60 minutes).")
        )
        self.interval.valueChanged.connect(self.set_interval)
        interval_label = QLabel(self.tr("Sync e&very:"), self)
        interval_label.setBuddy(self.interval)
        self.pause_button = QPushButton(self)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.rename_button = QPushButton(self.tr("Re&name…"), self)
        self.rename_button.setAccessibleName(self.tr("Rename connection"))
        self.rename_button.setToolTip(
            self.tr("Give the connection another name; its settings and history stay.")
        )
        self.rename_button.clicked.connect(self.rename)
        self.delete_button = QPushButton(self.tr("&Delete connection…"), self)
        self.delete_button.setAccessibleName(self.tr("Delete connection"))
        self.delete_button.clicked.connect(self.delete)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        buttons = QHBoxLayout()  # when it syncs (interval, pause) … and Delete, apart
        buttons.addWidget(interval_label)
        buttons.addWidget(self.interval)
        buttons.addSpacing(self.fontMetrics().height())
        buttons.addWidget(self.pause_button)
        buttons.addStretch(1)
        buttons.addWidget(self.rename_button)
        buttons.addWidget(self.delete_button)
        self.column.setContentsMargins(9, 9, 9, 9)
        self.column.addLayout(buttons)
        self.column.addWidget(self.note)
        self._enable()

    def set_sync_control(self, control: SyncControl) -> None:
        self.sync_control = control
        control.saved.connect(self._saved)
        self._enable()

    def _enable(self) -> None:
        """Without a sync control (the scheduler) nothing here may pause or sync."""
        on = self.sync_control is not None
        self.pause_button.setEnabled(on)
        self.interval.setEnabled(on)

    def reload(self) -> None:
        super().reload()
        if self.conn is None:
            return
        conn = self.conn
        self._show_paused(bool(conn.paused))
        self._show_interval()
        self.note.setText(
            self.tr(
                "Deleting the connection forgets its settings, rules, mappings and history. "
                "It never changes or deletes a contact in {a} or in {b}."
            ).format(a=conn.a.account, b=conn.b.account)
        )

    def refresh_state(self) -> None:
        """Re-read pause and interval only (they change from the tray and the menu too);
        the form is left as the user has it."""
        if self.name is None or self.conn is None:
            return
        control = self.sync_control
        try:
            paused = control.paused(self.name) if control else self.service.is_paused(self.name)
        except PairsyncError:
            return  # deleted meanwhile: the window refreshes the list
        self._show_paused(paused)
        # One save at a time from here: a double click never pauses and resumes at once.
        self.pause_button.setEnabled(control is not None and not control.saving(self.name))
        if not self.interval.hasFocus() and not (control and control.saving(self.name)):
            self._show_interval()

    def _show_paused(self, paused: bool) -> None:
        self.paused = paused
        self.pause_button.setText(self.tr("R&esume syncing") if paused else self.tr("&Pause"))
        self.pause_button.setAccessibleName(self.pause_button.text().replace("&", ""))

    def _show_interval(self) -> None:
        if self.name is None:
            return
        try:
            # The connection's own row, not its state: counting 100k contacts' failures
            # on the GUI thread just to show a number took 80 ms.
            minutes = self.service.show_connection(self.name).settings.interval_minutes
        except PairsyncError:
            return
        self.interval.blockSignals(True)
        self.interval.setValue(minutes)
        self.interval.blockSignals(False)

    def set_interval(self, minutes: int) -> None:
        """Save the interval (off the GUI thread, through the sync control); ``_saved``
        says how it went."""
        if self.name is None or self.sync_control is None:
            return
        try:
            self.sync_control.set_interval(self.name, minutes)
        except PairsyncError as err:
            self.message.error(str(err))
            self._show_interval()
            return
        self.message.info(self.tr("Saving…"))

    def _saved(self, name: str, what: str, error: str) -> None:
        """A pause, resume or interval of some connection was saved (or refused)."""
        waiting = self._delete_after_save
        if name == waiting and self.sync_control and not self.sync_control.saving(name):
            self._delete_after_save = None
            if error:
                self.delete_button.setEnabled(True)
                self.message.error(error)
            else:
                self._start_delete(name)
            return
        if name != self.name:
            return
        if error:
            self.message.error(error)
            self._show_interval()
        elif what == "interval":
            self.message.success(
                self.tr("Saved. {name} syncs every {n} min while Pairsync runs.").format(
                    name=name, n=self.interval.value()
                )
            )
        self.refresh_state()

    def toggle_pause(self) -> None:
        """Pause (a running sync stops at its next safe point) or resume (a full read at
        once, SPEC §9). The button shows the new state at once and stays off until it is
        saved."""
        if self.name is None or self.sync_control is None or not self.pause_button.isEnabled():
            return
        if self.paused:
            self.sync_control.resume(self.name)
        else:
            self.sync_control.pause(self.name)
        self.refresh_state()
        emit(self.changed)

    def confirm_delete(self) -> bool:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(self.tr("Delete connection"))
        box.setText(self.tr("Delete the connection “{name}”?").format(name=self.name))
        box.setInformativeText(self.note.text())
        delete = box.addButton(self.tr("Delete"), QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is delete

    def ask_new_name(self) -> str | None:
        """The new name, or None when the user cancels (tests replace this)."""
        text, ok = QInputDialog.getText(
            self,
            self.tr("Rename connection"),
            self.tr("New name for “{name}”:").format(name=self.name),
            text=self.name or "",
        )
        return text if ok else None

    def rename(self) -> None:
        name = self.name
        if name is None:
            return
        if self.sync_control is not None and self.sync_control.running() == name:
            self.message.error(
                self.tr("“{name}” is syncing right now: rename it when the run has ended.").format(
                    name=name
                )
            )
            return
        wanted = self.ask_new_name()
        if wanted is None or wanted.strip() == name:
            return

        def job(svc: Service, ctl: TaskControl) -> tuple[str, str]:
            # Off the GUI thread: a write waits for SQLite's lock while a sync of another
            # connection commits a batch.
            return name, svc.rename_connection(name, wanted).name

        self.rename_button.setEnabled(False)  # one rename at a time
        self.run(
            job,
            self._renamed,
            self.tr("Renaming…"),
            on_error=self._rename_failed,
            cancellable=False,
        )

    def _renamed(self, names: tuple[str, str]) -> None:
        self.rename_button.setEnabled(True)
        old, new = names
        emit(self.renamed, old, new)

    def _rename_failed(self, message: str, code: str) -> None:
        self.rename_button.setEnabled(True)
        self.message.error(message)

    def delete(self) -> None:
        name = self.name
        if name is None:
            return
        if self.sync_control is not None and self.sync_control.running() == name:
            self.message.error(
                self.tr(
                    "“{name}” is syncing right now. Pause it first (the run stops at a safe "
                    "point), then delete it."
                ).format(name=name)
            )
            return
        if not self.confirm_delete():
            return
        self.delete_button.setEnabled(False)
        control = self.sync_control
        if control is not None and not self.paused:
            # Paused first, so no scheduled run starts while it is being deleted.
            control.pause(name)
            self.refresh_state()
        if control is not None and control.saving(name):
            # Deleted once its pause is saved: a save landing after the delete would only
            # say "there is no connection" (``_saved`` starts it).
            self._delete_after_save = name
            return
        self._start_delete(name)

    def _start_delete(self, name: str) -> None:
        def job(svc: Service, ctl: TaskControl) -> str:
            # Off the GUI thread: forgetting 100k contacts' sync state took 9 s.
            svc.delete_connection(name)
            return name

        text = self.tr("Deleting “{name}”…").format(name=name)
        self.run(job, self._deleted, text, on_error=self._delete_failed, cancellable=False)

    def _deleted(self, name: str) -> None:
        self.delete_button.setEnabled(True)
        emit(self.deleted, name)

    def _delete_failed(self, message: str, code: str) -> None:
        self.delete_button.setEnabled(True)
        self.on_error(message, code)
