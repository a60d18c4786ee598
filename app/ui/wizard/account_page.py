"""Wizard steps 2 and 3 (SPEC §1.2): authorize each app. Pick a connected account or add one
with the sign-in form the app declares in the registry (``app.sign_in``) — a folder or file
picker for local apps, server address, user name and password for CardDAV, a token (with
"where do I find this?") for token apps, a browser sign-in for OAuth apps. "Connect" proves
it works by connecting and reading the app's schema on a worker thread; a failure is said in
words, and the page cannot be left until it works.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from app.errors import ConfigError
from app.model import Side
from app.service import AccountCheck, AppEntry, Service
from app.sign_in import Field, Input, plain
from app.ui.dashboard.page import MessageLabel
from app.ui.progress_panel import ProgressPanel
from app.ui.signals import emit
from app.ui.tasks import Job, Task, TaskControl, TaskRunner, WorkerJob
from app.ui.words import plural


class AccountForm(QWidget):
    """The fields for a new account of one app kind, rendered from the sign-in form its
    registry entry declares (``AppEntry.form``, plain data): text and address fields,
    pickers for folders and files, a masked password or token with where to find it, or the
    browser sign-in's words. Nothing here is particular to one app."""

    changed = Signal()
    submitted = Signal()
    """Enter in a field: connect now."""

    def __init__(self, entry: AppEntry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry = entry
        self.sign_in = entry.form
        self.edits: dict[str, QLineEdit] = {}
        self.secret_edit: QLineEdit | None = None
        self.secret_help: QLabel | None = None
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.form = form
        for spec in self.sign_in.settings:
            self._add_setting(spec)
        secret = self.sign_in.secret
        if self.sign_in.browser:
            sign_in_note = QLabel(
                self.tr(
                    "Pairsync opens your browser to sign in with {app}: you approve there and "
                    "never type a password here. The sign-in is kept only in your system's "
                    "keyring."
                ).format(app=entry.name.split()[0]),
                self,
            )
            sign_in_note.setWordWrap(True)
            form.addRow("", sign_in_note)
        elif secret is not None:
            self._add_secret(secret)
        if self.sign_in.note:
            hint = QLabel(self.tr(self.sign_in.note), self)
            hint.setWordWrap(True)
            form.addRow("", hint)

    def _label(self, spec: Field) -> str:
        text = self.tr(spec.label)
        return text + (self.tr(" (optional):") if not spec.required else ":")

    def _add_setting(self, spec: Field) -> None:
        edit = QLineEdit(self)
        edit.setPlaceholderText(self.tr(spec.placeholder))
        label_text = self._label(spec)
        edit.setAccessibleName(plain(label_text).rstrip(":"))
        edit.textChanged.connect(self.changed)
        edit.returnPressed.connect(self.submitted)
        self.edits[spec.key] = edit
        label = QLabel(label_text, self)
        label.setBuddy(edit)
        if spec.input in (Input.FOLDER, Input.FILE):
            browse = QPushButton(self.tr("B&rowse…"), self)
            what = self.tr("folder") if spec.input is Input.FOLDER else self.tr("file")
            browse.setAccessibleName(self.tr("Browse for the {what}").format(what=what))
            browse.clicked.connect(lambda _=False, spec=spec: self.browse(spec))
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(browse)
            self.form.addRow(label, row)
        else:
            self.form.addRow(label, edit)

    def _add_secret(self, spec: Field) -> None:
        secret = QLineEdit(self)
        secret.setEchoMode(QLineEdit.EchoMode.Password)
        word = self._label(spec)
        secret.setAccessibleName(plain(word).rstrip(":"))
        secret.textChanged.connect(self.changed)
        secret.returnPressed.connect(self.submitted)
        self.secret_edit = secret
        label = QLabel(word, self)
        label.setBuddy(secret)
        self.form.addRow(label, secret)
        if spec.help:
            steps = QLabel(self.tr(spec.help), self)
            steps.setWordWrap(True)
            steps.setAccessibleName(
                self.tr("Where to find the {what}").format(what=plain(spec.label).lower())
            )
            self.secret_help = steps
            self.form.addRow("", steps)
        note = self.tr("Kept only in your system's keyring, never in Pairsync's files.")
        if spec.help_url:
            note += ' <a href="{url}">{text}</a>'.format(
                url=spec.help_url, text=self.tr("Where do I find this?")
            )
        help_label = QLabel(note, self)
        help_label.setWordWrap(True)
        help_label.setOpenExternalLinks(True)
        self.form.addRow("", help_label)

    def browse(self, spec: Field | None = None) -> None:
        if spec is None:  # the first folder or file field
            spec = next(f for f in self.sign_in.settings if f.input in (Input.FOLDER, Input.FILE))
        edit = self.edits[spec.key]
        start = edit.text().strip() or str(Path.home())
        if spec.input is Input.FOLDER:
            path = QFileDialog.getExistingDirectory(self, self.tr("Choose the folder"), start)
        else:
            title, filters, _ = self.file_words()
            path, _ = QFileDialog.getSaveFileName(
                self, title, start, filters, options=QFileDialog.Option.DontConfirmOverwrite
            )
        if path:
            edit.setText(path)

    def file_words(self) -> tuple[str, str, str]:
        """The file picker's title and filter, and the hint under the field, for this kind."""
        spec = next((f for f in self.sign_in.settings if f.input is Input.FILE), None)
        filters = self.tr("All files (*)")
        if spec is not None and spec.file_filter:
            filters = self.tr(spec.file_filter) + ";;" + filters
        title = self.tr("Choose the {app}").format(app=self.entry.name)
        return title, filters, self.tr(self.sign_in.note)

    def values(self) -> dict[str, str]:
        return {k: e.text().strip() for k, e in self.edits.items() if e.text().strip()}

    def secret(self) -> str | None:
        if self.secret_edit is None:
            return None
        return self.secret_edit.text() or None

    def first_edit(self) -> QWidget | None:
        return next(iter(self.edits.values()), self.secret_edit)


class AccountPage(QWizardPage):
    """Authorize one side. ``account`` is the working account once connected."""

    def __init__(
        self, service: Service, runner: TaskRunner, side: Side, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.runner = runner
        self.side = side
        self.entry: AppEntry | None = None
        self.other_account: str | None = None
        self.account: str | None = None
        self.check: AccountCheck | None = None
        self.created: str | None = None
        """An account this page added (removed again if the user connects another one)."""
        self._checked_for: tuple[Any, ...] | None = None
        self._task: Task | None = None
        self._task_inputs: tuple[Any, ...] | None = None
        """What the running check was started for (the user may type on meanwhile)."""
        self._name_edited = False

        self.use_existing = QRadioButton(self.tr("Use a &connected account:"), self)
        self.add_new = QRadioButton(self.tr("Add a ne&w account"), self)
        self.mode = QButtonGroup(self)
        self.mode.addButton(self.use_existing)
        self.mode.addButton(self.add_new)
        self.mode.buttonToggled.connect(self._mode_changed)
        self.existing = QComboBox(self)
        self.existing.setAccessibleName(self.tr("Connected accounts"))
        self.existing.currentIndexChanged.connect(self._existing_changed)
        self.form_holder = QVBoxLayout()
        self.form: AccountForm | None = None
        self.name_edit = QLineEdit(self)
        self.name_edit.setAccessibleName(self.tr("Account name"))
        self.name_edit.textEdited.connect(self._name_typed)
        self.name_edit.textChanged.connect(self._inputs_changed)
        self.name_label = QLabel(self.tr("Account na&me:"), self)
        self.name_label.setBuddy(self.name_edit)
        self.connect_button = QPushButton(self.tr("C&onnect"), self)
        self.connect_button.setAccessibleName(self.tr("Connect and read the app's fields"))
        self.connect_button.clicked.connect(self.connect_account)
        self.progress = ProgressPanel(self)
        self.progress.cancelled.connect(self._cancelled)
        self.result = MessageLabel(self)

        existing_row = QHBoxLayout()
        existing_row.addWidget(self.use_existing)
        existing_row.addWidget(self.existing, 1)
        name_row = QHBoxLayout()
        name_row.addWidget(self.name_label)
        name_row.addWidget(self.name_edit, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(existing_row)
        layout.addWidget(self.add_new)
        layout.addLayout(self.form_holder)
        layout.addLayout(name_row)
        connect_row = QHBoxLayout()
        connect_row.addStretch(1)
        connect_row.addWidget(self.connect_button)
        layout.addLayout(connect_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.result)
        layout.addStretch(1)

    # --- set-up ----------------------------------------------------------------------------

    def prepare(self, entry: AppEntry, other_account: str | None) -> None:
        """Show the page for ``entry`` (called by the wizard before the page is entered)."""
        same_kind = self.entry is not None and self.entry.kind == entry.kind
        self.entry = entry
        self.other_account = other_account
        which = self.tr("first") if self.side is Side.A else self.tr("second")
        self.setTitle(self.tr("Connect {app}").format(app=entry.name))
        self.setSubTitle(
            self.tr(
                "The {which} app. Pairsync connects and reads its fields to check it works."
            ).format(which=which)
        )
        if not same_kind:
            self._build_form(entry)
        accounts = [
            a.name
            for a in self.service.list_accounts()
            if a.kind == entry.kind and a.name != other_account
        ]
        self.existing.blockSignals(True)
        current = self.existing.currentText()
        self.existing.clear()
        self.existing.addItems(accounts)
        if current in accounts:
            self.existing.setCurrentText(current)
        self.existing.blockSignals(False)
        has_accounts = bool(accounts)
        self.use_existing.setEnabled(has_accounts)
        self.existing.setEnabled(has_accounts)
        if not has_accounts:
            self.add_new.setChecked(True)
        elif self.account is None or self.account not in accounts:
            self.use_existing.setChecked(True)
        self._mode_changed()

    def _build_form(self, entry: AppEntry) -> None:
        if self.form is not None:
            self.form.deleteLater()
        self.account = None
        self.check = None
        self._checked_for = None
        self.form = AccountForm(entry, self)
        self.form.changed.connect(self._inputs_changed)
        self.form.submitted.connect(self._submitted)
        self.form_holder.addWidget(self.form)
        self._name_edited = False
        self.name_edit.clear()
        self.result.clear_message()

    # --- state -------------------------------------------------------------------------------

    def existing_mode(self) -> bool:
        return self.use_existing.isChecked()

    def inputs(self) -> tuple[Any, ...]:
        """What the current check must have been made for."""
        if self.existing_mode():
            return ("existing", self.existing.currentText())
        assert self.form is not None
        return (
            "new",
            tuple(sorted(self.form.values().items())),
            self.form.secret() or "",
            self.name_edit.text().strip(),
        )

    def isComplete(self) -> bool:
        return (
            self.account is not None
            and self._checked_for is not None
            and self._checked_for == self.inputs()
            and self._task is None
        )

    def _oauth(self) -> bool:
        return self.entry is not None and self.entry.form.browser

    def _button_words(self) -> None:
        if self._oauth() and not self.existing_mode() and self.entry is not None:
            text = self.tr("Sign in with {app}").format(app=self.entry.name.split()[0])
            self.connect_button.setText(text)
            self.connect_button.setAccessibleName(
                self.tr("Sign in with {app} in your browser").format(app=self.entry.name.split()[0])
            )
        else:
            self.connect_button.setText(self.tr("C&onnect"))
            self.connect_button.setAccessibleName(self.tr("Connect and read the app's fields"))

    def _mode_changed(self, *_args: Any) -> None:
        self._button_words()
        new = not self.existing_mode()
        if self.form is not None:
            self.form.setEnabled(new)
        self.name_edit.setEnabled(new)
        self.name_label.setEnabled(new)
        self.existing.setEnabled(not new and self.existing.count() > 0)
        self._inputs_changed()
        if not new and self._checked_for != self.inputs():
            self.connect_account()  # a connected account is checked at once

    def _existing_changed(self) -> None:
        if self.existing_mode():
            self._inputs_changed()
            self.connect_account()

    def _name_typed(self, _text: str) -> None:
        self._name_edited = True

    def _inputs_changed(self, *_args: Any) -> None:
        if (
            not self._name_edited
            and not self.existing_mode()
            and self.entry is not None
            and self.form is not None
        ):
            suggestion = self.service.suggest_account_name(
                self.entry.kind, self.form.values(), replacing=self.created or ""
            )
            if suggestion != self.name_edit.text():
                self.name_edit.blockSignals(True)
                self.name_edit.setText(suggestion)
                self.name_edit.blockSignals(False)
        if self._checked_for is not None and self._checked_for != self.inputs():
            self.result.clear_message()
        emit(self.completeChanged)

    # --- connecting --------------------------------------------------------------------------

    def _submitted(self) -> None:
        if not self.isComplete() and self._task is None:
            self.connect_account()

    def connect_account(self) -> None:
        """Connect and read the schema (adding the account if new) in the sync worker
        process, where reading a 100k-contact file or folder costs the window nothing (on a
        thread it stalled the window 120-450 ms); an app signed in to in the browser or with
        a secret is read on a task thread (the secret never leaves this process)."""
        if self.entry is None:
            return
        if self._task is not None:
            self._task.cancel()
        inputs = self.inputs()
        kind = self.entry.kind
        job: Job
        if self.existing_mode():
            name = self.existing.currentText()
            if not name:
                return
            job = WorkerJob({"kind": "check_account", "name": name}, AccountCheck.from_json)

        elif self._oauth():
            assert self.form is not None
            settings = self.form.values()
            wanted, previous = self.name_edit.text().strip(), self.created
            waiting = self.tr("Waiting for the sign-in in your browser")

            def sign_in(svc: Service, ctl: TaskControl) -> AccountCheck:
                # The browser sign-in (Cancel stops the wait), then the same reading as
                # for a connected account.
                if previous is not None:
                    with contextlib.suppress(ConfigError):  # this page's earlier, unused try
                        svc.remove_account(previous)
                name = wanted or svc.suggest_account_name(kind, settings)
                ctl.progress(waiting, 0, 0)
                svc.add_account_signed_in(kind, name, settings, cancel=ctl.stop_flag)
                ctl.check()
                return replace(svc.check_account(name, progress=ctl.progress), account=name)

            job = sign_in

        elif not self.entry.needs_secret and self.form is not None and not self.form.secret():
            message = {
                "kind": "connect_account",
                "name": self.name_edit.text().strip(),
                "app": kind,
                "settings": self.form.values(),
                "previous": self.created,
            }
            job = WorkerJob(message, AccountCheck.from_json)

        else:
            assert self.form is not None
            settings, secret = self.form.values(), self.form.secret()
            wanted, previous = self.name_edit.text().strip(), self.created

            def check_and_add(svc: Service, ctl: TaskControl) -> AccountCheck:
                check = svc.check_new_account(kind, settings, secret, progress=ctl.progress)
                ctl.check()
                if previous is not None:
                    with contextlib.suppress(ConfigError):  # this page's earlier, unused try
                        svc.remove_account(previous)
                name = wanted or svc.suggest_account_name(kind, check.settings)
                svc.add_account(kind, name, check.settings, secret)
                return replace(check, account=name)

            job = check_and_add

        self.result.clear_message()
        self.account = None
        self.connect_button.setEnabled(False)
        task = self.runner.start(
            job,
            on_done=self._connected,
            on_error=self._failed,
            on_finished=self._finished,
            label="connect",
        )
        self._task, self._task_inputs = task, inputs
        self.progress.attach(task, self.tr("Connecting to {app}…").format(app=self.entry.name))
        emit(self.completeChanged)

    def _from_current(self) -> bool:
        return self._task is not None and self.sender() is self._task.signals

    def _connected(self, check: AccountCheck) -> None:
        if not self._from_current():
            return
        inputs = self._task_inputs
        self._settle()
        self.check = check
        self.account = check.account
        self._checked_for = inputs
        if inputs is not None and inputs[0] == "new":
            self.created = check.account
            if inputs[3] != check.account and self.inputs() == inputs:
                # The name field was blank: show the name the account was stored under.
                self.name_edit.blockSignals(True)
                self.name_edit.setText(check.account)
                self.name_edit.blockSignals(False)
                self._checked_for = self.inputs()
        self.result.success(self.summary(check))
        emit(self.completeChanged)

    def summary(self, check: AccountCheck) -> str:
        who = check.settings.get("account_email", "")
        if self._oauth() and who:
            return self.tr("Connected as {who}: {contacts}, {groups}.").format(
                who=who,
                contacts=plural(check.contacts, self.tr("{n} contact"), self.tr("{n} contacts")),
                groups=plural(len(check.segments), self.tr("{n} group"), self.tr("{n} groups")),
            )
        text = self.tr("Connected to “{account}”: {contacts}, {fields}").format(
            account=check.account,
            contacts=plural(check.contacts, self.tr("{n} contact"), self.tr("{n} contacts")),
            fields=plural(check.fields, self.tr("{n} field"), self.tr("{n} fields")),
        )
        if check.segments:
            text += ", " + plural(
                len(check.segments), self.tr("{n} segment"), self.tr("{n} segments")
            )
        text += "."
        path = check.settings.get("path", "")
        if (
            self.entry is not None
            and self.entry.auth == "file"
            and path
            and not Path(path).exists()
        ):
            text += " " + self.tr("The file does not exist yet: it is created at the first sync.")
        return text

    def _failed(self, message: str, code: str) -> None:
        if self._from_current():
            self._settle()
            self.result.error(message)
            emit(self.completeChanged)

    def _cancelled(self) -> None:
        """Cancel: the page is usable again at once; the worker's late answer is ignored."""
        self._settle()
        self.result.info(self.tr("Cancelled."))
        emit(self.completeChanged)

    def _settle(self) -> None:
        """The current try is over (its answer is in): the page is usable again at once,
        without waiting for the worker's last signal."""
        self._task = None
        self.connect_button.setEnabled(True)

    def _finished(self) -> None:
        if self._from_current():  # ended without an answer (cancelled)
            self._settle()
            emit(self.completeChanged)

    def cleanupPage(self) -> None:
        """Back: keep what was typed and connected (the user may come straight back)."""
        if self._task is not None:
            self.progress.cancel()
