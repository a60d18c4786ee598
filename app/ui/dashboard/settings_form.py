"""A connection's settings as a form: direction, winning app and the options (SPEC §1.3,
§2, §4, §6, §7, §8). The wizard's Configure page and the dashboard's Settings tab show the
same form; it only reports what the user changed, its owner saves it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.service import AccountRef, ConnectionView
from app.ui.signals import emit

DIRECTIONS = ("two-way", "a-to-b", "b-to-a")


class ConnectionSettingsForm(QWidget):
    edited = Signal(dict)
    """{setting: new value} for each change the user makes (never for ``load``)."""

    def __init__(self, parent: QWidget | None = None, *, advanced: bool = True) -> None:
        super().__init__(parent)
        self._loading = False
        self.names = ("A", "B")

        direction_box = QGroupBox(self.tr("Direction"), self)
        self.direction = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        box = QVBoxLayout(direction_box)
        for i, key in enumerate(DIRECTIONS):
            radio = QRadioButton(direction_box)
            self.radios[key] = radio
            self.direction.addButton(radio, i)
            box.addWidget(radio)
            radio.toggled.connect(lambda on, key=key: self._direction_toggled(key, on))
        self.direction_note = QLabel(
            self.tr("Changing the direction never deletes anything."), direction_box
        )
        self.direction_note.setWordWrap(True)
        box.addWidget(self.direction_note)

        options = QGroupBox(self.tr("Settings"), self)
        form = QFormLayout(options)
        self.winner = QComboBox(options)
        self.winner.setAccessibleName(self.tr("Winning app"))
        self.winner.activated.connect(lambda i: self._emit("winner", "a" if i == 0 else "b"))
        winner_label = QLabel(self.tr("When both apps changed a field, &keep:"), options)
        winner_label.setBuddy(self.winner)
        form.addRow(winner_label, self.winner)

        self.checks: dict[str, QCheckBox] = {}
        for key, text, help_text in (
            (
                "avoid_duplicates",
                self.tr("&Avoid duplicates"),
                self.tr(
                    "Only contacts with an email address are synced (they are matched on "
                    "email); the others are listed as Excluded “no email”."
                ),
            ),
            (
                "unsubscribes",
                self.tr("Sync &unsubscribes"),
                self.tr(
                    "When a contact unsubscribes in one app, its counterpart is put in the "
                    "segment “Pairsync Unsubscribes”. Nobody is ever re-subscribed."
                ),
            ),
            (
                "trash",
                self.tr("Tra&sh segment for deletions"),
                self.tr(
                    "When a contact is deleted in one app, its counterpart (never deleted) is "
                    "put in the segment “Pairsync Trash” for you to review."
                ),
            ),
            (
                "propagate_clears",
                self.tr("C&lear a field in the other app when it is cleared"),
                self.tr(
                    "A field you empty on purpose is emptied in the other app too (the "
                    "email a contact is matched on is never cleared)."
                ),
            ),
        ):
            check = QCheckBox(text, options)
            check.setToolTip(help_text)
            check.setAccessibleDescription(help_text)
            check.toggled.connect(lambda on, key=key: self._emit(key, on))
            self.checks[key] = check
            form.addRow(check)
            if key == "unsubscribes":
                self._add_subscription_fields(form, options)

        self.advanced = QWidget(options)
        adv = QFormLayout(self.advanced)
        adv.setContentsMargins(0, 0, 0, 0)
        self.guard = QSpinBox(self.advanced)
        self.guard.setRange(1, 1_000_000)
        self.guard.setAccessibleName(self.tr("Mass-change limit"))
        self.guard.editingFinished.connect(
            lambda: self._emit("guard_max_writes", self.guard.value())
        )
        guard_label = QLabel(self.tr("Stop a run that would &write more than:"), self.advanced)
        guard_label.setBuddy(self.guard)
        guard_row = QHBoxLayout()
        guard_row.addWidget(self.guard)
        guard_row.addWidget(QLabel(self.tr("contacts"), self.advanced))
        guard_row.addStretch(1)
        adv.addRow(guard_label, guard_row)
        self.region = QLineEdit(self.advanced)
        self.region.setMaxLength(2)
        self.region.setPlaceholderText(self.tr("e.g. GB"))
        self.region.setAccessibleName(self.tr("Phone region"))
        self.region.editingFinished.connect(self._region_edited)
        region_label = QLabel(self.tr("&Country of phone numbers written without +:"), self)
        region_label.setBuddy(self.region)
        adv.addRow(region_label, self.region)
        form.addRow(self.advanced)
        self.advanced.setVisible(advanced)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(direction_box)
        layout.addWidget(options)
        layout.addStretch(1)
        self._current: dict[str, Any] = {}

    def _add_subscription_fields(self, form: QFormLayout, parent: QWidget) -> None:
        """Where a CSV file or vCard app keeps the subscription status (the CLI's
        ``--set subscription=…``): a column or property name per side, for the apps that
        have no status of their own. Rules read it too ("subscription is unsubscribed")."""
        self.subscription: dict[str, QLineEdit] = {}
        self.subscription_labels: dict[str, QLabel] = {}
        for side in ("a", "b"):
            edit = QLineEdit(parent)
            edit.editingFinished.connect(
                lambda side=side: self._emit(
                    f"subscription_{side}", self.subscription[side].text().strip()
                )
            )
            label = QLabel(parent)
            label.setBuddy(edit)
            self.subscription[side] = edit
            self.subscription_labels[side] = label
            form.addRow(label, edit)
            edit.hide()  # shown by ``load`` for the apps that have the setting
            label.hide()

    def _show_subscription(self, side: str, name: str, account: AccountRef) -> None:
        edit, label = self.subscription[side], self.subscription_labels[side]
        shown = account.subscription is not None
        edit.setVisible(shown)
        label.setVisible(shown)
        if not shown:
            return
        what = self.tr(account.subscription_label or "Subscription field")
        label.setText(self.tr("{what} in {name}:").format(what=what, name=name))
        edit.setPlaceholderText(self.tr(account.subscription_placeholder))
        edit.setAccessibleName(label.text().rstrip(":"))
        tip = self.tr(
            "Values like subscribed/unsubscribed, yes/no, opted in/out are understood. "
            "It is the account's setting: every connection using {name} reads it."
        ).format(name=name)
        edit.setToolTip(tip)
        edit.setAccessibleDescription(tip)
        edit.setText(account.subscription or "")

    def load(self, conn: ConnectionView) -> None:
        """Show a connection (``Service.show_connection``) without emitting ``edited``."""
        self._loading = True
        try:
            self._current = conn.settings.to_json() | {
                "subscription_a": conn.a.subscription or "",
                "subscription_b": conn.b.subscription or "",
            }
            a, b = conn.a.account, conn.b.account
            self._show_subscription("a", a, conn.a)
            self._show_subscription("b", b, conn.b)
            self.names = (a, b)
            self.radios["two-way"].setText(self.tr("&Two-way: {a} ⇄ {b}").format(a=a, b=b))
            self.radios["a-to-b"].setText(self.tr("&One-way: {a} → {b}").format(a=a, b=b))
            self.radios["b-to-a"].setText(self.tr("One-way, &reverse: {b} → {a}").format(a=a, b=b))
            for key, radio in self.radios.items():
                radio.setAccessibleName(radio.text().replace("&", ""))
                radio.setChecked(conn.settings.direction == key)
            self.winner.clear()
            self.winner.addItems([a, b])
            self.winner.setCurrentIndex(0 if conn.settings.winner == "a" else 1)
            self.winner.setEnabled(conn.settings.direction == "two-way")
            self.winner.setToolTip(
                ""
                if conn.settings.direction == "two-way"
                else self.tr("In a one-way connection the source app always wins.")
            )
            for key, check in self.checks.items():
                check.setChecked(bool(getattr(conn.settings, key)))
            self.guard.setValue(int(conn.settings.guard_max_writes))
            self.region.setText(conn.settings.phone_region)
        finally:
            self._loading = False

    def _direction_toggled(self, key: str, on: bool) -> None:
        if on:
            self._emit("direction", key)

    def _region_edited(self) -> None:
        value = self.region.text().strip().upper()
        if value != str(self._current.get("phone_region") or ""):
            self._emit("phone_region", value)

    def _emit(self, key: str, value: Any) -> None:
        if self._loading or self._current.get(key) == value:
            return
        self._current[key] = value
        if key == "direction":
            self.winner.setEnabled(value == "two-way")
        emit(self.edited, {key: value})
