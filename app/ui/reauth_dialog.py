"""Signing in to an account again (SPEC §9 "Needs re-authorization").

A connection whose account's credentials fail shows "Needs re-authorization"; its button
opens this dialog for that account, rendered from the sign-in form the app declares in the
registry (``app.sign_in``): the account's required settings (prefilled) and, for an app with
a password or token, a new one, with where to find it. The check runs off the GUI thread
(a server may be asked); on success ``Service.reauthorize`` keeps every connection of the
account with all its configuration, and ``reauthorized`` lists them so the window can sync
them at once.

An app signed in through the browser (Google) has no password field: "Sign in with Google"
opens the browser and waits (Cancel stops the wait); the new sign-in replaces the old one in
the keyring and the account keeps its settings.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.service import Service
from app.sign_in import plain
from app.ui.signals import emit
from app.ui.tasks import Task, TaskControl, TaskRunner


class ReauthDialog(QDialog):
    reauthorized = Signal(list)
    """The names of the connections using the account (sync them now)."""

    def __init__(
        self, service: Service, runner: TaskRunner, account: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.runner = runner
        self.account = account
        self.info = service.account(account)
        settings = self.info.settings
        self.setWindowTitle(self.tr("Sign in to {account} again").format(account=account))
        self.setAccessibleName(self.windowTitle())
        intro = QLabel(
            self.tr(
                "{app} did not accept Pairsync's sign-in for {account}. Sign in again; every "
                "connection using this account keeps its settings, rules and mappings."
            ).format(app=self.info.app, account=account),
            self,
        )
        intro.setWordWrap(True)
        form = QFormLayout()
        sign_in = self.info.form
        self.fields: dict[str, QLineEdit] = {}
        self.browser = sign_in.browser
        for spec in sign_in.settings if not self.browser else ():
            if spec.key not in self.info.required:
                continue  # what the account may change on signing in again: what it needs
            edit = QLineEdit(settings.get(spec.key, ""), self)
            label = self.tr(plain(spec.label))
            edit.setAccessibleName(label)
            form.addRow(label, edit)
            self.fields[spec.key] = edit
        self.secret = QLineEdit(self)
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        secret = sign_in.secret
        if self.info.needs_secret and not self.browser:
            word = self.tr(plain(secret.label)) if secret else self.tr("Password or token")
            self.secret.setAccessibleName(word)
            form.addRow(word, self.secret)
            if secret is not None and (secret.help or secret.help_url):
                steps = self.tr(secret.help)
                if secret.help_url:
                    steps += ' <a href="{url}">{text}</a>'.format(
                        url=secret.help_url, text=self.tr("Where do I find this?")
                    )
                help_label = QLabel(steps.strip(), self)
                help_label.setWordWrap(True)
                help_label.setOpenExternalLinks(True)
                form.addRow("", help_label)
        else:
            self.secret.setAccessibleName(self.tr("Password or token"))
            self.secret.hide()
        self.error = QLabel(self)
        self.error.setWordWrap(True)
        self.error.setAccessibleName(self.tr("Sign-in problem"))
        self.error.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText(self.tr("Sign in"))
        ok.setAccessibleName(self.tr("Sign in again"))
        if self.browser:
            app = self.info.app.split()[0]
            ok.setText(self.tr("Sign in with {app}").format(app=app))
            ok.setAccessibleName(self.tr("Sign in with {app} in your browser").format(app=app))
        self.buttons.accepted.connect(self.sign_in)
        self.buttons.rejected.connect(self.reject)
        self._task: Task | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def sign_in(self) -> None:
        settings = {k: e.text().strip() for k, e in self.fields.items()}
        secret = self.secret.text() or None
        account = self.account
        self.buttons.setEnabled(False)
        self.error.hide()

        if self.browser:

            def job(svc: Service, control: TaskControl) -> Any:
                return svc.reauthorize_signed_in(account, cancel=control.stop_flag)

            self.error.setText(self.tr("Waiting for the sign-in in your browser…"))
            self.error.show()
            # Cancel stays usable while the browser is open: it stops the wait.
            cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
            self.buttons.setEnabled(True)
            self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
            cancel.setEnabled(True)
        else:

            def job(svc: Service, control: TaskControl) -> Any:
                return svc.reauthorize(account, secret=secret, settings=settings)

        self._task = self.runner.start(
            job, on_done=self._done, on_error=self._failed, label="reauthorize"
        )

    def reject(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        super().reject()

    def _done(self, names: list[str]) -> None:
        self._task = None
        emit(self.reauthorized, list(names))
        self.accept()

    def _failed(self, message: str, code: str) -> None:
        self._task = None
        self.buttons.setEnabled(True)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(True)
        self.error.setText(message)
        self.error.show()
