"""The Activity tab (SPEC §10, §11): what each run did, and undoing it.

* A chart (QtCharts) of contacts created, updated and failed per run over time.
* The runs, newest first, with their counts and duration (a paged list).
* For the selected run, the journal of every field it wrote (app, contact, field, before,
  after), searchable, optionally only the contacts it created; with **Undo this run** and
  **Undo this contact** (both apps' records of the selected contact).

An undo is itself a journaled run (it appears in the list and can be undone); it runs on
the scheduler's worker like any sync. It puts back only what still holds the run's value
(a field changed since is left alone and reported), and it never deletes a contact: the
ones the run created are kept and put in the segment "Pairsync Trash" for the user to
review — the view says so before asking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCharts import QChart, QChartView, QDateTimeAxis, QLineSeries, QValueAxis
from PySide6.QtCore import QCoreApplication, QDateTime, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.model import JournalRowView, RunRow
from app.service import ConnectionView, Service
from app.ui.list_parts import read_connection, search_box, table
from app.ui.paged import Column, PagedModel, local_time, value_text
from app.ui.reader import Reader
from app.ui.scheduler import Scheduler
from app.ui.signals import emit

CHART_RUNS = 100
"""Runs drawn in the chart (the newest ones)."""
KINDS = {"sync": "Sync", "undo": "Undo", "use_other": "Other value used"}
STATUSES = {
    "ok": "OK",
    "failed": "Some failed",
    "guard": "Stopped (too many changes)",
    "auth": "Needs sign-in",
    "unavailable": "App unreachable",
    "rate_limited": "Rate limited",
    "cancelled": "Cancelled",
    "running": "Running",
}
TRASH_NOTE = (
    "Undo never deletes: contacts this run created are kept and put in the segment "
    "“Pairsync Trash” for you to review in the app."
)


def _tr(text: str) -> str:
    return QCoreApplication.translate("ActivityView", text)


def _total(counts: dict[str, Any], key: str) -> int:
    value = counts.get(key, 0)
    if isinstance(value, dict):
        return sum(int(v or 0) for v in value.values())
    return int(value or 0)


def run_counts(run: RunRow) -> tuple[int, int, int]:
    """(created, updated, failed) of a run, both apps together."""
    return (
        _total(run.counts, "created"),
        _total(run.counts, "updated"),
        _total(run.counts, "failed"),
    )


def duration_text(run: RunRow) -> str:
    if run.finished_at is None:
        return ""
    seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
    if seconds < 60:
        return _tr("{s:.1f} s").format(s=seconds)
    return _tr("{m} min {s} s").format(m=int(seconds // 60), s=int(seconds % 60))


def time_axis_format(first: QDateTime, last: QDateTime, ticks: int) -> str:
    """The x axis's label format for a span ``first``..``last`` cut into ``ticks`` labels:
    seconds when ticks are under a minute apart (two runs seconds apart), and the day only
    when the span crosses one, so that no two labels read the same."""
    step = (last.toMSecsSinceEpoch() - first.toMSecsSinceEpoch()) / max(1, ticks - 1)
    time = "HH:mm:ss" if step < 60_000 else "HH:mm"
    return time if first.date() == last.date() else f"dd MMM {time}"


def _msecs(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


class RunChart(QChartView):
    """Created / updated / failed per run over time (one point per run)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        chart = QChart()
        chart.setTitle(_tr("Contacts per run"))
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        super().__init__(chart, parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setAccessibleName(_tr("Chart of created, updated and failed contacts per run"))
        self.setMinimumHeight(180)
        self.series = {
            "created": QLineSeries(),
            "updated": QLineSeries(),
            "failed": QLineSeries(),
        }
        names = {"created": _tr("Created"), "updated": _tr("Updated"), "failed": _tr("Failed")}
        self.x_axis = QDateTimeAxis()
        self.x_axis.setFormat("dd MMM HH:mm")  # set_runs picks one that fits the span
        self.y_axis = QValueAxis()
        self.y_axis.setLabelFormat("%d")
        chart.addAxis(self.x_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.y_axis, Qt.AlignmentFlag.AlignLeft)
        for key, series in self.series.items():
            series.setName(names[key])
            series.setPointsVisible(True)
            chart.addSeries(series)
            series.attachAxis(self.x_axis)
            series.attachAxis(self.y_axis)

    def set_runs(self, runs: Sequence[RunRow]) -> None:
        """``runs``: newest first (as listed); drawn oldest to newest."""
        ordered = sorted((r for r in runs if r.kind == "sync"), key=lambda r: r.id)
        top = 1
        for series in self.series.values():
            series.clear()
        for run in ordered:
            x = _msecs(run.started_at)
            for key, value in zip(("created", "updated", "failed"), run_counts(run), strict=True):
                self.series[key].append(x, value)
                top = max(top, value)
        # Whole numbers of contacts: a tick every ``step`` (at most 5 ticks), from 0.
        step = max(1, -(-top // 4))
        self.y_axis.setTickType(QValueAxis.TickType.TicksDynamic)
        self.y_axis.setTickAnchor(0)
        self.y_axis.setTickInterval(step)
        self.y_axis.setRange(0, step * -(-top // step))
        if ordered:
            first, last = _msecs(ordered[0].started_at), _msecs(ordered[-1].started_at)
            if last - first < 60_000:
                first, last = first - 30_000, last + 30_000
            start, end = QDateTime.fromMSecsSinceEpoch(first), QDateTime.fromMSecsSinceEpoch(last)
            self.x_axis.setFormat(time_axis_format(start, end, self.x_axis.tickCount()))
            self.x_axis.setRange(start, end)

    def tick_labels(self) -> list[str]:
        """The x axis's labels as drawn: ``tickCount`` evenly spaced times from its min to
        its max, in its format (tests)."""
        first = self.x_axis.min().toMSecsSinceEpoch()
        last = self.x_axis.max().toMSecsSinceEpoch()
        n = self.x_axis.tickCount()
        return [
            QDateTime.fromMSecsSinceEpoch(first + (last - first) * i // (n - 1)).toString(
                self.x_axis.format()
            )
            for i in range(n)
        ]

    def points(self, key: str) -> list[tuple[int, float]]:
        """The drawn points of one series (tests, accessibility)."""
        return [(int(p.x()), p.y()) for p in self.series[key].points()]


class ActivityView(QWidget):
    """One connection's Activity. A dashboard page: ``set_connection(name)`` shows it."""

    def __init__(
        self,
        service: Service,
        scheduler: Scheduler,
        parent: QWidget | None = None,
        reader: Reader | None = None,
    ) -> None:
        """``reader``: where the runs and the journal are read (the window's, shared with
        Health; default: one of its own over ``service``'s database)."""
        super().__init__(parent)
        self.service = service
        self.scheduler = scheduler
        self.reader = reader or Reader(lambda: Service(service.home), self)
        self.name: str | None = None
        self.apps: dict[str, str] = {}
        self._run_numbers: dict[int, int] = {}
        """Run id → run number, for "Undo of #n" (asked once per run shown)."""
        self._select_run: int | None = None
        """The run to select once the runs are in (the one selected before a refresh)."""
        self._journal_of: int | None = None
        self.confirm: Callable[[str, str], bool] = self._ask
        """Asks before an undo (tests replace it)."""
        self.chart = RunChart(self)
        run_columns: list[Column[RunRow]] = [
            Column(_tr("Run"), lambda r: f"#{r.run_no}"),
            Column(_tr("Kind"), self._kind),
            Column(_tr("Started"), lambda r: local_time(r.started_at)),
            Column(_tr("Duration"), duration_text),
            Column(_tr("Status"), lambda r: _tr(STATUSES.get(r.status, r.status))),
            Column(_tr("Created"), lambda r: f"{run_counts(r)[0]:,}"),
            Column(_tr("Updated"), lambda r: f"{run_counts(r)[1]:,}"),
            Column(_tr("Failed"), lambda r: f"{run_counts(r)[2]:,}"),
            Column(_tr("Message"), lambda r: r.message),
        ]
        self.runs: PagedModel[RunRow] = PagedModel(
            run_columns, key=lambda r: r.id, parent=self, reader=self.reader
        )
        self.runs.loaded.connect(self._runs_loaded)
        self.runs.rowsInserted.connect(lambda *_: self._ask_run_numbers())
        self.runs_view = table(self, self.runs, _tr("Runs"))
        self.runs_view.setSelectionMode(self.runs_view.SelectionMode.SingleSelection)
        journal_columns: list[Column[JournalRowView]] = [
            Column(_tr("App"), lambda j: self.apps.get(j.side, j.side.upper())),
            Column(_tr("Contact"), lambda j: j.name),
            Column(_tr("Change"), lambda j: _tr("created") if j.action == "create" else ""),
            Column(_tr("Field"), lambda j: j.field),
            Column(_tr("Before"), lambda j: value_text(j.before)),
            Column(_tr("After"), lambda j: value_text(j.after)),
        ]
        self.journal: PagedModel[JournalRowView] = PagedModel(
            journal_columns, key=lambda j: j.id, parent=self, reader=self.reader
        )
        self.journal.loaded.connect(self._buttons)
        self.runs.failed.connect(self._read_failed)
        self.journal.failed.connect(self._read_failed)
        self.journal_view = table(self, self.journal, _tr("Field changes of the selected run"))
        self.journal_view.setSelectionMode(self.journal_view.SelectionMode.SingleSelection)
        self.search = search_box(self, self.load_journal, _tr("field changes"))
        self.created_only = QCheckBox(_tr("Only contacts it created"), self)
        self.created_only.setAccessibleName(_tr("Show only the contacts this run created"))
        self.created_only.toggled.connect(lambda _on: self.load_journal())
        self.undo_run_button = QPushButton(_tr("Undo this run"), self)
        self.undo_run_button.setAccessibleName(_tr("Undo the selected run"))
        self.undo_contact_button = QPushButton(_tr("Undo this contact"), self)
        self.undo_contact_button.setAccessibleName(
            _tr("Undo the selected contact's changes in this run")
        )
        self.undo_run_button.clicked.connect(self.undo_run)
        self.undo_contact_button.clicked.connect(self.undo_contact)
        note = QLabel(_tr(TRASH_NOTE), self)
        note.setWordWrap(True)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setAccessibleName(_tr("Undo result"))
        self.runs_view.selectionModel().selectionChanged.connect(lambda *_: self.load_journal())
        self.journal_view.selectionModel().selectionChanged.connect(lambda *_: self._buttons())

        journal_box = QWidget(self)
        jl = QVBoxLayout(journal_box)
        jl.setContentsMargins(0, 0, 0, 0)
        filters = QHBoxLayout()
        filters.addWidget(self.search, 2)
        filters.addWidget(self.created_only)
        jl.addLayout(filters)
        jl.addWidget(self.journal_view)
        buttons = QHBoxLayout()
        buttons.addWidget(self.undo_run_button)
        buttons.addWidget(self.undo_contact_button)
        buttons.addStretch(1)
        jl.addLayout(buttons)
        jl.addWidget(note)
        jl.addWidget(self.status)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.chart)
        split.addWidget(self.runs_view)
        split.addWidget(journal_box)
        # Proportions, not minimum heights: the chart gets room for its axes' labels
        # without making the whole window taller than it must be.
        line = self.fontMetrics().height()
        split.setSizes([line * 14, line * 8, line * 14])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        scheduler.run_finished.connect(self._run_finished)
        scheduler.job_failed.connect(self._job_failed)
        self._buttons()

    def _kind(self, run: RunRow) -> str:
        kind = _tr(KINDS.get(run.kind, run.kind))
        if run.undo_of is None or self.name is None:
            return kind
        number = self._run_numbers.get(run.undo_of)
        return _tr("{kind} of #{n}").format(kind=kind, n=number) if number else kind

    def _ask_run_numbers(self) -> None:
        """Find the numbers of the runs the listed undos undid: among the listed runs, else
        read them (off the GUI thread; the Kind column shows them when they are in)."""
        shown = {r.id: r.run_no for r in self.runs.rows}
        missing: set[int] = set()
        for r in self.runs.rows:
            if r.undo_of is not None and r.undo_of not in self._run_numbers:
                if r.undo_of in shown:
                    self._run_numbers[r.undo_of] = shown[r.undo_of]
                else:
                    missing.add(r.undo_of)
        self._kinds_changed()
        name = self.name
        if not missing or name is None:
            return

        def read(svc: Service) -> dict[int, int]:
            found = {i: svc.run(name, i) for i in missing}
            return {i: r.run_no if r else 0 for i, r in found.items()}

        self.reader.read(read, lambda numbers: self._numbers_in(name, numbers), owner=self)

    def _numbers_in(self, name: str, numbers: dict[int, int]) -> None:
        if name == self.name:
            self._run_numbers.update(numbers)
            self._kinds_changed()

    def _kinds_changed(self) -> None:
        if self.runs.rowCount():
            last = self.runs.rowCount() - 1
            emit(self.runs.dataChanged, self.runs.index(0, 1), self.runs.index(last, 1))

    # --- loading ---------------------------------------------------------------------------

    def set_connection(self, name: str | None) -> None:
        """Show ``name`` once its apps' names are read (off the GUI thread)."""
        self.name = name
        self.apps = {}
        self._run_numbers = {}
        if name is None:
            self._connection_in(None, None)
            return
        read_connection(self.reader, self, name, self._connection_in)

    def _connection_in(self, name: str | None, conn: ConnectionView | None) -> None:
        if name != self.name:
            return
        if conn is None:
            self.name = None
        else:
            self.apps = {"a": conn.a.account, "b": conn.b.account}
        self.status.setText("")
        self.refresh()

    def refresh(self) -> None:
        """Read the runs and the chart again (off the GUI thread); the selected run stays
        selected once they are in."""
        name = self.name
        if name is None:
            self.runs.load(None)
            self.chart.set_runs([])
            self.load_journal()
            return

        def fetch(svc: Service, after: Any, limit: int) -> Sequence[RunRow]:
            return svc.runs_page(name, before=after, limit=limit)

        selected = self.selected_run()
        self._select_run = selected.id if selected is not None else None
        self.runs.load(fetch, keep=selected is not None)
        self.reader.read(
            lambda svc: svc.runs_page(name, limit=CHART_RUNS),
            lambda runs: self.chart.set_runs(runs) if name == self.name else None,
            slot=("chart", id(self)),
            owner=self,
        )

    def _runs_loaded(self) -> None:
        self._ask_run_numbers()
        wanted = self._select_run
        row = next((i for i, r in enumerate(self.runs.rows) if r.id == wanted), 0)
        if self.runs.rows:
            self.runs_view.selectRow(row)  # the reset cleared the selection: loads the journal
        else:
            self.load_journal()

    def _read_failed(self, message: str) -> None:
        self.status.setText(message)

    def selected_run(self) -> RunRow | None:
        rows = self.runs_view.selectionModel().selectedRows(0)
        return self.runs.row(rows[0]) if rows else None

    def selected_change(self) -> JournalRowView | None:
        rows = self.journal_view.selectionModel().selectedRows(0)
        return self.journal.row(rows[0]) if rows else None

    def load_journal(self) -> None:
        run, name = self.selected_run(), self.name
        if run is None or name is None:
            self._journal_of = None
            self.journal.load(None)
            self._buttons()
            return
        search = self.search.text()
        created = self.created_only.isChecked()
        run_id = run.id

        def fetch(svc: Service, after: Any, limit: int) -> Sequence[JournalRowView]:
            return svc.journal_page(
                name, run_id, search=search, created_only=created, after=after, limit=limit
            )

        same = run_id == self._journal_of
        self._journal_of = run_id
        self.journal.load(fetch, keep=same)
        self._buttons()

    def _buttons(self) -> None:
        run = self.selected_run()
        busy = self.name is not None and self.scheduler.running() == self.name
        has_changes = run is not None and bool(self.journal.rows)
        self.undo_run_button.setEnabled(has_changes and not busy)
        self.undo_contact_button.setEnabled(
            has_changes and self.selected_change() is not None and not busy
        )

    # --- undo --------------------------------------------------------------------------------

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def undo_run(self) -> None:
        run = self.selected_run()
        if run is None or self.name is None:
            return
        text = _tr(
            "Put back what run #{n} wrote, in both apps? Fields changed since are left alone. "
        ).format(n=run.run_no) + _tr(TRASH_NOTE)
        if not self.confirm(_tr("Undo this run"), text):
            return
        self.status.setText(_tr("Undoing run #{n}…").format(n=run.run_no))
        self.scheduler.undo(self.name, run.id)
        self._buttons()

    def undo_contact(self) -> None:
        run, change = self.selected_run(), self.selected_change()
        if run is None or change is None or self.name is None:
            return
        text = _tr("Put back what run #{n} wrote to {contact}, in both apps? ").format(
            n=run.run_no, contact=change.name
        ) + _tr(TRASH_NOTE)
        if not self.confirm(_tr("Undo this contact"), text):
            return
        self.status.setText(_tr("Undoing {contact}…").format(contact=change.name))
        self.scheduler.undo(self.name, run.id, record=(change.side, change.record_id))
        self._buttons()

    def _run_finished(self, name: str, report: dict[str, Any]) -> None:
        if name != self.name:
            return
        if report.get("kind") in ("undo", "use_other"):
            self.status.setText(str(report.get("message", "")))
        self.refresh()

    def _job_failed(self, name: str, kind: str, message: str) -> None:
        if name == self.name:
            self.status.setText(message)
            self._buttons()
