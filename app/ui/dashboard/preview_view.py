"""The preview (SPEC §1.4): a dry run on a worker thread with a progress bar and Cancel, then
what the next sync would do — matched, to create in each app, to update, excluded by reason,
and the failures that are predictable now. Nothing is written to either app.

The wizard's last page and the dashboard's Preview tab show this same view."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.service import Preview, Service
from app.ui.dashboard.page import ConnectionPage
from app.ui.rows_model import RowsModel
from app.ui.signals import emit
from app.ui.tasks import TaskRunner, WorkerJob
from app.ui.words import plural

COUNTS = ("matched", "create_a", "create_b", "update_a", "update_b", "conflicts", "duplicates")


class PreviewView(ConnectionPage):
    finished = Signal(object)
    """The ``Preview`` when a dry run completed, else None (failed or cancelled)."""

    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(service, runner, parent)
        self.preview: Preview | None = None
        self.progress.run_phases = True
        self.intro = QLabel(
            self.tr(
                "A dry run: Pairsync reads both apps and shows what the next sync would do. "
                "Nothing is written."
            ),
            self,
        )
        self.intro.setWordWrap(True)
        self.start_button = QPushButton(self.tr("&Preview now"), self)
        self.start_button.clicked.connect(self.start)

        self.results = QGroupBox(self.tr("What the next sync would do"), self)
        form = QFormLayout(self.results)
        self.values: dict[str, QLabel] = {}
        self.labels: dict[str, QLabel] = {}
        bold = QFont(self.font())
        bold.setBold(True)
        for key in COUNTS:
            label, value = QLabel(self.results), QLabel(self.results)
            value.setFont(bold)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setBuddy(value)
            self.labels[key], self.values[key] = label, value
            form.addRow(label, value)
        self.excluded_label = QLabel(self.results)
        self.excluded = RowsModel([self.tr("Excluded because"), self.tr("Contacts")], self)
        self.excluded_view = self._table(self.excluded, self.tr("Excluded contacts by reason"))
        form.addRow(self.excluded_label)
        form.addRow(self.excluded_view)
        self.failures_label = QLabel(self.results)
        self.failures = RowsModel([self.tr("App"), self.tr("Contact"), self.tr("Reason")], self)
        self.failures_view = self._table(self.failures, self.tr("Predictable failures"))
        form.addRow(self.failures_label)
        form.addRow(self.failures_view)
        self.results.hide()

        head = QHBoxLayout()
        head.addWidget(self.intro, 1)
        head.addWidget(self.start_button)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        self.footer(layout)
        layout.addWidget(self.results)
        layout.addStretch(1)

    def _table(self, model: RowsModel, name: str) -> QTableView:
        view = QTableView(self.results)
        view.setModel(model)
        view.setAccessibleName(name)
        view.verticalHeader().hide()
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        view.horizontalHeader().setStretchLastSection(True)
        view.setMaximumHeight(self.fontMetrics().height() * 8)
        return view

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.runner.worker.warm_up()  # the preview runs there: have it ready for the click

    def reload(self) -> None:
        """A new connection: forget the last preview (it described another one)."""
        self.preview = None
        self.results.hide()

    @property
    def running(self) -> bool:
        return self.pending > 0

    def start(self) -> None:
        name = self.name
        if name is None or self.running:
            return

        # In the sync worker process: a big preview never holds the window's GIL.
        job = WorkerJob({"kind": "preview", "name": name}, Preview.from_json)
        self.message.clear_message()
        self.start_button.setEnabled(False)
        self.preview = None
        self.run(
            job,
            self._done,
            self.tr("Reading both apps…"),
            on_error=self._failed,
            on_cancelled=self._cancelled,
        )

    def cancel(self) -> None:
        if self.running:
            self.progress.cancel()

    def _done(self, preview: Preview) -> None:
        self.show_preview(preview)
        self.preview = preview if preview.status in ("ok", "failed") else None

    def _failed(self, message: str, code: str) -> None:
        self.message.error(message)

    def _cancelled(self) -> None:
        self.message.info(self.tr("Preview cancelled. Nothing was written."))

    def _finished(self) -> None:
        """The task is over, whatever its outcome: only now is the view idle again."""
        super()._finished()
        self.start_button.setEnabled(True)
        emit(self.finished, self.preview)

    def show_preview(self, preview: Preview) -> None:
        r = preview.report
        a, b = preview.apps["a"], preview.apps["b"]
        if self.name is not None:
            conn = self.service.show_connection(self.name)
            a, b = conn.a.account, conn.b.account
        status = preview.status
        if status not in ("ok", "failed"):
            self.results.hide()
            text = r.get("message") or status
            if status == "cancelled":
                text = self.tr("Preview cancelled. Nothing was written.")
            self.message.error(text)
            return
        texts = {
            "matched": (self.tr("Matched (same email in both)"), r["matched"]),
            "create_a": (self.tr("To create in {app}").format(app=a), r["created"]["a"]),
            "create_b": (self.tr("To create in {app}").format(app=b), r["created"]["b"]),
            "update_a": (self.tr("To update in {app}").format(app=a), r["updated"]["a"]),
            "update_b": (self.tr("To update in {app}").format(app=b), r["updated"]["b"]),
            "conflicts": (self.tr("Conflicts (the winning app's value is kept)"), r["conflicts"]),
            "duplicates": (self.tr("Duplicates (left alone until resolved)"), r["duplicates"]),
        }
        for key, (label, value) in texts.items():
            self.labels[key].setText(label + ":")
            self.values[key].setText(str(value))
            self.values[key].setAccessibleName(f"{label}: {value}")
        self.excluded_label.setText(
            self.tr("Excluded: {count}").format(
                count=plural(int(r["excluded"]), self.tr("{n} contact"), self.tr("{n} contacts"))
            )
        )
        self.excluded.set_rows(sorted(preview.excluded_by_reason.items(), key=lambda kv: -kv[1]))
        self.excluded_view.setVisible(bool(preview.excluded_by_reason))
        self.failures_label.setText(
            self.tr("Predictable failures: {count}").format(count=preview.failure_count)
            if preview.failure_count
            else self.tr("Predictable failures: none")
        )
        side_names = {"a": a, "b": b}
        self.failures.set_rows(
            [(side_names.get(f.side, f.side), f.name, f.reason) for f in preview.failures]
        )
        self.failures_view.setVisible(bool(preview.failures))
        self.results.show()
        self.message.success(self.tr("Preview ready. Nothing was written."))
