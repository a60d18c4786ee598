"""The Health tab (SPEC §10): how one connection is doing, contact by contact.

On top, the status chip (Active · Syncing n% · Paused · Needs re-authorization · Rate limited
until hh:mm · App unreachable · n failed) with, when an account needs signing in again, a
button per account. Below, one tab per list, each with a search box:

* **In sync** — bound pairs (one row per pair);
* **Excluded** — with a reason filter (no rule matches, no email, deleted on the other side…);
* **Duplicates** — contacts sharing a match email, none bound until resolved;
* **Failed** — grouped by reason; each contact with its app, name, reason in words, field,
  the app's raw error on demand, **Retry** (due now, and a run starts) and **Ignore** (out of
  the counts, not retried until the contact changes);
* **Conflicts** — the last 30 days, with **Use the other value**;
* **Not fitting** — values an app had no room for (not failures: the rest of each contact
  syncs), named once.

Every list is a Qt model over paged store queries (``app.ui.paged``), so 100k contacts
scroll smoothly. Writing actions never run here: Retry triggers the scheduler, "use the
other value" is a scheduler job (one run per connection at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from PySide6.QtCore import (
    QAbstractItemModel,
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QTabWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.errors import PairsyncError
from app.model import ConflictRow, ContactRow, FailureRow, HealthCounts, NotFittingRow
from app.service import ConnectionState, Service
from app.ui.paged import PAGE, Column, PagedModel, local_time, value_text
from app.ui.scheduler import Scheduler
from app.ui.signals import emit
from app.ui.status_chip import StatusChip

Index: TypeAlias = QModelIndex | QPersistentModelIndex
SEARCH_DELAY_MS = 250

REASONS = {
    "required_missing": "A required field is missing",
    "value_not_allowed": "A value is not allowed",
    "rejected": "The app refused the change",
    "unreadable": "Could not be read",
    "email_collision": "Email already used by another contact",
    "changed_meanwhile": "Changed while syncing",
    "not_found": "No longer exists",
    "unavailable": "The app could not be reached",
    "read_only": "The file is read-only",
    "error": "Other problems",
}
"""Failure codes (``app.errors``) in words, for the Failed tab's groups."""


def _tr(text: str) -> str:
    return QCoreApplication.translate("HealthView", text)


def reason_group(code: str) -> str:
    return _tr(REASONS.get(code, code.replace("_", " ").capitalize()))


def search_box(parent: QWidget, on_search: Callable[[], None], what: str) -> QLineEdit:
    """A search field that re-queries a moment after the user stops typing."""
    box = QLineEdit(parent)
    box.setPlaceholderText(_tr("Search"))
    box.setClearButtonEnabled(True)
    box.setAccessibleName(_tr("Search {what}").format(what=what))
    timer = QTimer(box)
    timer.setSingleShot(True)
    timer.setInterval(SEARCH_DELAY_MS)
    timer.timeout.connect(on_search)
    box.textChanged.connect(lambda _text: timer.start())
    box.returnPressed.connect(on_search)
    return box


def table(parent: QWidget, model: Any, name: str) -> QTableView:
    view = QTableView(parent)
    view.setModel(model)
    view.setAccessibleName(name)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    # Uniform row heights: the view never measures rows it does not show.
    view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    view.horizontalHeader().setStretchLastSection(True)
    view.setTabKeyNavigation(False)  # Tab leaves the list (keyboard users)
    return view


class ContactsTab(QWidget):
    """In sync, Excluded (with its reason filter) or Duplicates."""

    def __init__(self, status: str, reasons: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = status
        self.service: Service | None = None
        self.name: str | None = None
        self.apps: dict[str, str] = {}
        what = {
            "bound": _tr("in sync"),
            "excluded": _tr("excluded"),
            "duplicate": _tr("duplicates"),
        }
        self.search = search_box(self, self.reload, what.get(status, status))
        self.reason = QComboBox(self)
        self.reason.setAccessibleName(_tr("Reason"))
        self.with_reasons = reasons
        self.reason.setVisible(reasons)
        self.reason.currentIndexChanged.connect(lambda _i: self.reload())
        columns: list[Column[ContactRow]] = []
        if status != "bound":
            columns.append(Column(_tr("App"), lambda r: self.apps.get(r.side, r.side.upper())))
        columns += [Column(_tr("Name"), lambda r: r.name), Column(_tr("Email"), lambda r: r.email)]
        if status != "bound":
            columns.append(Column(_tr("Reason"), lambda r: r.reason))
        self.model: PagedModel[ContactRow] = PagedModel(columns, key=lambda r: r.key, parent=self)
        self.view = table(self, self.model, _tr("Contacts"))
        top = QHBoxLayout()
        top.addWidget(self.search, 2)
        top.addWidget(self.reason, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view)

    def show_connection(self, service: Service, name: str | None, apps: dict[str, str]) -> None:
        self.service, self.name, self.apps = service, name, apps
        if self.with_reasons:
            self._fill_reasons()
        self.reload()

    def _fill_reasons(self) -> None:
        current = self.reason.currentData()
        self.reason.blockSignals(True)
        self.reason.clear()
        self.reason.addItem(_tr("All reasons"), None)
        if self.service is not None and self.name is not None:
            for reason, count in self.service.excluded_reasons(self.name):
                self.reason.addItem(f"{reason or _tr('(no reason)')} ({count:,})", reason)
        at = self.reason.findData(current)
        self.reason.setCurrentIndex(max(at, 0))
        self.reason.blockSignals(False)

    def reload(self) -> None:
        svc, name = self.service, self.name
        if svc is None or name is None:
            self.model.load(None)
            return
        search = self.search.text()
        reason = self.reason.currentData() if self.with_reasons else None
        status = self.status

        def fetch(after: Any, limit: int) -> Sequence[ContactRow]:
            return svc.contacts_page(
                name, status, search=search, reason=reason, after=after, limit=limit
            )

        self.model.load(fetch)


class NotFittingTab(QWidget):
    """Values an app had no room for (a 4th e-mail into an app that holds 3): not failures,
    the rest of each contact is in sync; named here once."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service: Service | None = None
        self.name: str | None = None
        self.apps: dict[str, str] = {}
        self.search = search_box(self, self.reload, _tr("not fitting"))
        columns: list[Column[NotFittingRow]] = [
            Column(_tr("App"), lambda r: self.apps.get(r.side, r.side.upper())),
            Column(_tr("Name"), lambda r: r.name),
            Column(_tr("Field"), lambda r: r.field),
            Column(_tr("Not written"), lambda r: ", ".join(r.values)),
        ]
        self.model: PagedModel[NotFittingRow] = PagedModel(
            columns, key=lambda r: r.key, parent=self
        )
        self.view = table(self, self.model, _tr("Values that did not fit"))
        note = QLabel(
            _tr("The app has no room for these values; everything else of each contact syncs."),
            self,
        )
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.search)
        layout.addWidget(self.view)

    def show_connection(self, service: Service, name: str | None, apps: dict[str, str]) -> None:
        self.service, self.name, self.apps = service, name, apps
        self.reload()

    def reload(self) -> None:
        svc, name = self.service, self.name
        if svc is None or name is None:
            self.model.load(None)
            return
        rows = svc.not_fitting(name, search=self.search.text())

        def fetch(after: Any, limit: int) -> Sequence[NotFittingRow]:
            start = (
                0
                if after is None
                else next((n for n, r in enumerate(rows) if r.key > after), len(rows))
            )
            return rows[start : start + limit]

        self.model.load(fetch)


class FailureTreeModel(QAbstractItemModel):
    """Failed contacts grouped by reason: groups on top, contacts fetched per group, a page
    at a time, as the user expands and scrolls (never all at once)."""

    COLUMNS = ("Contact", "App", "Reason", "Field", "Attempts")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.groups: list[tuple[str, int]] = []
        self.members: list[list[FailureRow]] = []
        self.more: list[bool] = []
        self.apps: dict[str, str] = {}
        self._page: Callable[[str, Any, int], Sequence[FailureRow]] | None = None

    def load(
        self,
        groups: list[tuple[str, int]],
        page: Callable[[str, Any, int], Sequence[FailureRow]] | None,
        apps: dict[str, str],
    ) -> None:
        self.beginResetModel()
        self.groups = groups
        self.members = [[] for _ in groups]
        self.more = [n > 0 for _, n in groups]
        self.apps = apps
        self._page = page
        self.endResetModel()

    # --- structure --------------------------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0)
        return self.createIndex(row, column, parent.row() + 1)

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, 0)

    def _group_of(self, parent: Index) -> int | None:
        """The group a parent index stands for (None: the root or a contact)."""
        if parent.isValid() and parent.internalId() == 0:
            return parent.row()
        return None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self.groups)
        g = self._group_of(parent)
        return 0 if g is None or parent.column() != 0 else len(self.members[g])

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return len(self.COLUMNS)

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        if not parent.isValid():
            return bool(self.groups)
        g = self._group_of(parent)
        return g is not None and parent.column() == 0 and self.groups[g][1] > 0

    def canFetchMore(self, parent: Index) -> bool:
        g = self._group_of(parent)
        return g is not None and self.more[g] and self._page is not None

    def fetchMore(self, parent: Index) -> None:
        g = self._group_of(parent)
        if g is None or not self.more[g] or self._page is None:
            return
        have = self.members[g]
        after = have[-1].key if have else None
        rows = self._page(self.groups[g][0], after, PAGE)
        self.more[g] = len(rows) >= PAGE
        if rows:
            group_index = self.index(g, 0)
            self.beginInsertRows(group_index, len(have), len(have) + len(rows) - 1)
            have.extend(rows)
            self.endInsertRows()

    # --- content ------------------------------------------------------------------------------

    def failure(self, index: Index) -> FailureRow | None:
        if not index.isValid() or index.internalId() == 0:
            return None
        g = index.internalId() - 1
        rows = self.members[g] if 0 <= g < len(self.members) else []
        return rows[index.row()] if 0 <= index.row() < len(rows) else None

    def group_code(self, index: Index) -> str | None:
        if not index.isValid():
            return None
        g = index.row() if index.internalId() == 0 else index.internalId() - 1
        return self.groups[g][0] if 0 <= g < len(self.groups) else None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _tr(self.COLUMNS[section])
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.AccessibleTextRole,
        ):
            return None
        if index.internalId() == 0:
            if index.column() != 0:
                return None
            code, count = self.groups[index.row()]
            return _tr("{reason} ({count})").format(reason=reason_group(code), count=f"{count:,}")
        f = self.failure(index)
        if f is None:
            return None
        values = (
            f.name,
            self.apps.get(f.target_side, f.target_side.upper()),
            f.message,
            f.field,
            str(f.attempts),
        )
        return values[index.column()]


class FailedTab(QWidget):
    retry_requested = Signal()
    """Retry made failures due: the view asks the scheduler for a run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service: Service | None = None
        self.name: str | None = None
        self.apps: dict[str, str] = {}
        self.search = search_box(self, self.reload, _tr("failed contacts"))
        self.show_ignored = QCheckBox(_tr("Show ignored"), self)
        self.show_ignored.setAccessibleName(_tr("Show ignored failures"))
        self.show_ignored.toggled.connect(lambda _on: self.reload())
        self.model = FailureTreeModel(self)
        self.view = QTreeView(self)
        self.view.setModel(self.model)
        self.view.setAccessibleName(_tr("Failed contacts by reason"))
        self.view.setUniformRowHeights(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setAllColumnsShowFocus(True)
        self.retry_button = QPushButton(_tr("Retry"), self)
        self.retry_button.setAccessibleName(_tr("Retry the selected contacts now"))
        self.ignore_button = QPushButton(_tr("Ignore"), self)
        self.ignore_button.setAccessibleName(_tr("Ignore the selected contacts"))
        self.ignore_button.setToolTip(
            _tr("Ignored contacts leave the Failed count and are not retried until they change.")
        )
        self.raw_button = QPushButton(_tr("Show raw error"), self)
        self.raw_button.setAccessibleName(_tr("Show the app's own error message"))
        self.raw_button.setCheckable(True)
        self.raw = QPlainTextEdit(self)
        self.raw.setReadOnly(True)
        self.raw.setAccessibleName(_tr("The app's own error message"))
        self.raw.setMaximumHeight(120)
        self.raw.hide()
        self.retry_button.clicked.connect(self.retry)
        self.ignore_button.clicked.connect(self.ignore)
        self.raw_button.toggled.connect(self._show_raw)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._selected())
        top = QHBoxLayout()
        top.addWidget(self.search, 2)
        top.addWidget(self.show_ignored)
        buttons = QHBoxLayout()
        for b in (self.retry_button, self.ignore_button, self.raw_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view)
        layout.addLayout(buttons)
        layout.addWidget(self.raw)
        self._selected()

    def show_connection(self, service: Service, name: str | None, apps: dict[str, str]) -> None:
        self.service, self.name, self.apps = service, name, apps
        self.reload()

    def reload(self) -> None:
        svc, name = self.service, self.name
        if svc is None or name is None:
            self.model.load([], None, {})
            return
        search = self.search.text()
        ignored = self.show_ignored.isChecked()

        def page(code: str, after: Any, limit: int) -> Sequence[FailureRow]:
            return svc.failures_page(
                name, code, search=search, ignored=ignored, after=after, limit=limit
            )

        self.model.load(svc.failure_groups(name, search=search, ignored=ignored), page, self.apps)
        self.ignore_button.setText(_tr("Stop ignoring") if ignored else _tr("Ignore"))
        self._selected()

    def selected(self) -> tuple[list[int], list[str]]:
        """Selected contacts' failure ids, and the codes of selected whole groups."""
        ids: list[int] = []
        codes: list[str] = []
        for index in self.view.selectionModel().selectedRows(0):
            f = self.model.failure(index)
            if f is not None:
                ids.append(f.id)
            else:
                code = self.model.group_code(index)
                if code is not None:
                    codes.append(code)
        return ids, codes

    def _selected(self) -> None:
        ids, codes = self.selected()
        self.retry_button.setEnabled(bool(ids or codes))
        self.ignore_button.setEnabled(bool(ids or codes))
        self.raw_button.setEnabled(len(ids) == 1)
        if self.raw_button.isChecked():
            self._show_raw(True)

    def _show_raw(self, on: bool) -> None:
        ids, _codes = self.selected()
        if not on or len(ids) != 1 or self.service is None or self.name is None:
            self.raw.hide()
            return
        try:
            text = self.service.failure_raw(self.name, ids[0])
        except PairsyncError as err:
            text = str(err)
        self.raw.setPlainText(text or _tr("The app gave no more details."))
        self.raw.show()

    def retry(self) -> None:
        if self.service is None or self.name is None:
            return
        ids, codes = self.selected()
        if ids:
            self.service.retry_failures(self.name, ids)
        for code in codes:
            self.service.retry_failures(self.name, code=code)
        emit(self.retry_requested)

    def ignore(self) -> None:
        if self.service is None or self.name is None:
            return
        ids, codes = self.selected()
        ignored = not self.show_ignored.isChecked()
        for code in codes:
            more = self.service.failures_page(self.name, code, ignored=not ignored, limit=1_000_000)
            ids.extend(f.id for f in more)
        self.service.ignore_failures(self.name, ids, ignored)
        self.reload()


class ConflictsTab(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service: Service | None = None
        self.scheduler: Scheduler | None = None
        self.name: str | None = None
        self.apps: dict[str, str] = {}
        self.search = search_box(self, self.reload, _tr("conflicts"))
        columns: list[Column[ConflictRow]] = [
            Column(_tr("Contact"), lambda c: c.name),
            Column(_tr("Field"), self._field),
            Column(_tr("Value in A"), lambda c: self._value(c, "a")),
            Column(_tr("Value in B"), lambda c: self._value(c, "b")),
            Column(_tr("Used"), self._used),
            Column(_tr("When"), lambda c: local_time(c.at)),
        ]
        self.model: PagedModel[ConflictRow] = PagedModel(columns, key=lambda c: c.id, parent=self)
        self.view = table(self, self.model, _tr("Conflicts of the last 30 days"))
        self.use_other = QPushButton(_tr("Use the other value"), self)
        self.use_other.setAccessibleName(_tr("Use the other app's value for this conflict"))
        self.use_other.setToolTip(
            _tr("Writes the value that lost to both apps, as a run you can undo.")
        )
        self.use_other.clicked.connect(self.apply_other)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._selected())
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.view)
        row = QHBoxLayout()
        row.addWidget(self.use_other)
        row.addStretch(1)
        layout.addLayout(row)
        self._selected()

    def _field(self, c: ConflictRow) -> str:
        return _tr("Rule conflict") if c.is_rule else c.field

    def _value(self, c: ConflictRow, side: str) -> str:
        if c.is_rule:
            return value_text(c.value_a) if side == c.winner else ""
        return value_text(c.value_a if side == "a" else c.value_b)

    def _used(self, c: ConflictRow) -> str:
        if c.is_rule:
            return _tr("higher rule")
        if c.resolved_run_id is not None:
            loser = "b" if c.winner == "a" else "a"
            return _tr("{app} (changed by you)").format(app=self.apps.get(loser, loser.upper()))
        return self.apps.get(c.winner, c.winner.upper())

    def show_connection(
        self, service: Service, scheduler: Scheduler, name: str | None, apps: dict[str, str]
    ) -> None:
        self.service, self.scheduler, self.name, self.apps = service, scheduler, name, apps
        self.model.columns[2] = Column(
            _tr("Value in {app}").format(app=apps.get("a", "A")), lambda c: self._value(c, "a")
        )
        self.model.columns[3] = Column(
            _tr("Value in {app}").format(app=apps.get("b", "B")), lambda c: self._value(c, "b")
        )
        self.reload()

    def reload(self) -> None:
        svc, name = self.service, self.name
        if svc is None or name is None:
            self.model.load(None)
            return
        search = self.search.text()

        def fetch(after: Any, limit: int) -> Sequence[ConflictRow]:
            return svc.conflicts_page(name, search=search, after=after, limit=limit)

        self.model.load(fetch)
        self._selected()

    def current(self) -> ConflictRow | None:
        rows = self.view.selectionModel().selectedRows(0)
        return self.model.row(rows[0]) if len(rows) == 1 else None

    def _selected(self) -> None:
        c = self.current()
        self.use_other.setEnabled(c is not None and not c.is_rule and c.resolved_run_id is None)

    def apply_other(self) -> None:
        c = self.current()
        if c is None or self.scheduler is None or self.name is None:
            return
        self.use_other.setEnabled(False)
        self.scheduler.use_other_value(self.name, c.id)


class HealthView(QWidget):
    """One connection's Health. A dashboard page: ``set_connection(name)`` shows it.

    ``sign_in_requested(account)`` is emitted by the "Sign in again" buttons; the window
    connects it to its sign-in flow (``app.ui.reauth_dialog.ReauthDialog``, or the wizard's
    authorize page) and syncs the account's connections afterwards.
    """

    sign_in_requested = Signal(str)

    def __init__(
        self, service: Service, scheduler: Scheduler, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.scheduler = scheduler
        self.name: str | None = None
        self.apps: dict[str, str] = {}
        self.state: ConnectionState | None = None
        self.chip = StatusChip(self)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName(_tr("Status"))
        self.sign_in_box = QHBoxLayout()
        self.sign_in_buttons: list[QPushButton] = []
        self.tabs = QTabWidget(self)
        self.tabs.setAccessibleName(_tr("Health lists"))
        self.in_sync = ContactsTab("bound", False, self)
        self.excluded = ContactsTab("excluded", True, self)
        self.duplicates = ContactsTab("duplicate", False, self)
        self.failed = FailedTab(self)
        self.conflicts = ConflictsTab(self)
        self.not_fitting = NotFittingTab(self)
        self.failed.retry_requested.connect(self._retry)
        self._pages: list[tuple[QWidget, str, str]] = [
            (self.in_sync, _tr("In sync"), "in_sync"),
            (self.excluded, _tr("Excluded"), "excluded"),
            (self.duplicates, _tr("Duplicates"), "duplicates"),
            (self.failed, _tr("Failed"), "failed"),
            (self.conflicts, _tr("Conflicts"), "conflicts"),
            (self.not_fitting, _tr("Not fitting"), "not_fitting"),
        ]
        for page, title, _key in self._pages:
            self.tabs.addTab(page, title)
            page.setAccessibleName(title)
        self._loaded: set[int] = set()
        self.tabs.currentChanged.connect(self._show_tab)
        head = QHBoxLayout()
        head.addWidget(self.chip)
        head.addWidget(self.summary, 1)
        head.addLayout(self.sign_in_box)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.tabs)
        scheduler.run_progress.connect(self._progress)
        scheduler.run_finished.connect(self._run_finished)
        scheduler.states_changed.connect(self.refresh_status)

    # --- showing a connection ------------------------------------------------------------

    def set_connection(self, name: str | None) -> None:
        self.name = name
        self.apps = {}
        if name is not None:
            try:
                conn = self.service.show_connection(name)
                self.apps = {"a": conn.a.account, "b": conn.b.account}
            except PairsyncError:
                self.name = None
        self.refresh()

    def refresh(self) -> None:
        """Re-read the chip, the counts and the visible list (others reload when shown)."""
        self._loaded = set()
        self.refresh_status()
        self._show_tab(self.tabs.currentIndex())

    def refresh_status(self) -> None:
        if self.name is None:
            self.summary.setText("")
            return
        try:
            state = self.service.connection_state(self.name)
            counts = self.service.health_counts(self.name)
        except PairsyncError:
            return
        self.state = state
        running = self.scheduler.running() == self.name
        self.chip.set_status(state.status, 0 if running else None)
        for page, title, key in self._pages:
            self.tabs.setTabText(
                self.tabs.indexOf(page),
                _tr("{title} ({count})").format(title=title, count=f"{getattr(counts, key):,}"),
            )
        self.summary.setText(self._summary_text(state, counts))
        self._sign_in_buttons(list(state.sign_in) if state.status.code == "auth" else [])

    def _summary_text(self, state: ConnectionState, counts: HealthCounts) -> str:
        code = state.status.code
        if code == "paused":
            return _tr("Paused: nothing is read or written until you resume it.")
        if code == "auth":
            return _tr("{message} Its settings are kept; sign in again to resume.").format(
                message=state.status.message
            )
        if code == "guard":
            return _tr("Stopped before writing: unusually many changes wait for your decision.")
        if code in ("unavailable", "rate_limited"):
            return state.status.message
        parts = []
        if state.schedule.due_at is not None:
            parts.append(
                _tr("Next sync {time}").format(time=local_time(state.schedule.due_at, "%H:%M"))
            )
        if counts.ignored:
            parts.append(_tr("{n} ignored").format(n=counts.ignored))
        return " · ".join(parts)

    def _sign_in_buttons(self, accounts: list[str]) -> None:
        for b in self.sign_in_buttons:
            self.sign_in_box.removeWidget(b)
            b.deleteLater()
        self.sign_in_buttons = []
        for account in accounts:
            button = QPushButton(_tr("Sign in to {account} again").format(account=account), self)
            button.setAccessibleName(button.text())
            button.setProperty("account", account)
            # A bound method, never a lambda holding ``self``: these buttons are deleted
            # one by one, and a lambda freed with one could drop the view's last reference
            # in the middle of Qt deleting it.
            button.clicked.connect(self._sign_in_clicked)
            self.sign_in_box.addWidget(button)
            self.sign_in_buttons.append(button)

    def _sign_in_clicked(self) -> None:
        button = self.sender()
        if isinstance(button, QPushButton):
            emit(self.sign_in_requested, str(button.property("account")))

    def _show_tab(self, index: int) -> None:
        if index < 0 or index in self._loaded:
            return
        self._loaded.add(index)
        page = self.tabs.widget(index)
        if isinstance(page, ContactsTab | FailedTab | NotFittingTab):
            page.show_connection(self.service, self.name, self.apps)
        elif isinstance(page, ConflictsTab):
            page.show_connection(self.service, self.scheduler, self.name, self.apps)

    # --- scheduler ------------------------------------------------------------------------------

    def _retry(self) -> None:
        if self.name is not None:
            self.scheduler.sync_now([self.name])
        self.refresh_status()

    def _progress(
        self, name: str, phase: str, done: int, total: int, left: float, percent: int
    ) -> None:
        if name == self.name and self.state is not None:
            self.chip.set_status(self.state.status, percent)

    def _run_finished(self, name: str, report: dict[str, Any]) -> None:
        if name == self.name:
            self.refresh()
