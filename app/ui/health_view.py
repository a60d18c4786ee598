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

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.model import ConflictRow, ContactRow, HealthCounts, NotFittingRow
from app.service import ConnectionState, ConnectionView, Service
from app.ui.health_failed import FailedTab
from app.ui.list_parts import AnyReader, ListTab, read_connection, search_box, table
from app.ui.paged import Column, PagedModel, local_time, value_text
from app.ui.reader import Reader
from app.ui.scheduler import Scheduler
from app.ui.signals import emit
from app.ui.status_chip import StatusChip

__all__ = ["ContactsTab", "FailedTab", "HealthView", "search_box", "table"]


def _tr(text: str) -> str:
    return QCoreApplication.translate("HealthView", text)


class ContactsTab(ListTab):
    """In sync, Excluded (with its reason filter) or Duplicates."""

    def __init__(
        self,
        status: str,
        reasons: bool,
        parent: QWidget | None = None,
        reader: AnyReader | None = None,
    ) -> None:
        super().__init__(parent, reader)
        self.status = status
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
        self.model: PagedModel[ContactRow] = PagedModel(
            columns, key=lambda r: r.key, parent=self, reader=reader
        )
        self.view = table(self, self.model, _tr("Contacts"))
        top = QHBoxLayout()
        top.addWidget(self.search, 2)
        top.addWidget(self.reason, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view)

    def show_connection(self, service: Service, name: str | None, apps: dict[str, str]) -> None:
        if self.with_reasons and name != self.name:
            self._show_reasons([])
        super().show_connection(service, name, apps)
        if self.with_reasons and name is not None and self.reader is not None:
            self.reader.read(
                lambda svc: svc.excluded_reasons(name),
                lambda reasons: self._show_reasons(reasons) if name == self.name else None,
                slot=("reasons", id(self)),
                owner=self,
            )

    def _show_reasons(self, reasons: list[tuple[str, int]]) -> None:
        current = self.reason.currentData()
        self.reason.blockSignals(True)
        self.reason.clear()
        self.reason.addItem(_tr("All reasons"), None)
        for reason, count in reasons:
            self.reason.addItem(f"{reason or _tr('(no reason)')} ({count:,})", reason)
        at = self.reason.findData(current)
        self.reason.setCurrentIndex(max(at, 0))
        self.reason.blockSignals(False)

    def reload(self, keep: bool = True) -> None:
        name = self.name
        if self.service is None or name is None:
            self.model.load(None)
            return
        search = self.search.text()
        reason = self.reason.currentData() if self.with_reasons else None
        status = self.status

        def fetch(svc: Service, after: Any, limit: int) -> Sequence[ContactRow]:
            return svc.contacts_page(
                name, status, search=search, reason=reason, after=after, limit=limit
            )

        self.model.load(fetch, keep=keep)


class NotFittingTab(ListTab):
    """Values an app had no room for (a 4th e-mail into an app that holds 3): not failures,
    the rest of each contact is in sync; named here once."""

    def __init__(self, parent: QWidget | None = None, reader: AnyReader | None = None) -> None:
        super().__init__(parent, reader)
        self.search = search_box(self, self.reload, _tr("not fitting"))
        columns: list[Column[NotFittingRow]] = [
            Column(_tr("App"), lambda r: self.apps.get(r.side, r.side.upper())),
            Column(_tr("Name"), lambda r: r.name),
            Column(_tr("Field"), lambda r: r.field),
            Column(_tr("Not written"), lambda r: ", ".join(r.values)),
        ]
        self.model: PagedModel[NotFittingRow] = PagedModel(
            columns, key=lambda r: r.key, parent=self, reader=reader
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

    def reload(self, keep: bool = True) -> None:
        name = self.name
        if self.service is None or name is None:
            self.model.load(None)
            return
        search = self.search.text()
        found: list[list[NotFittingRow]] = []
        """The whole list, read once with the first page (on a reader thread)."""

        def fetch(svc: Service, after: Any, limit: int) -> Sequence[NotFittingRow]:
            if not found:
                found.append(svc.not_fitting(name, search=search))
            rows = found[0]
            start = (
                0
                if after is None
                else next((n for n, r in enumerate(rows) if r.key > after), len(rows))
            )
            return rows[start : start + limit]

        self.model.load(fetch, keep=keep)


class ConflictsTab(ListTab):
    def __init__(self, parent: QWidget | None = None, reader: AnyReader | None = None) -> None:
        super().__init__(parent, reader)
        self.scheduler: Scheduler | None = None
        self.search = search_box(self, self.reload, _tr("conflicts"))
        columns: list[Column[ConflictRow]] = [
            Column(_tr("Contact"), lambda c: c.name),
            Column(_tr("Field"), self._field),
            Column(_tr("Value in A"), lambda c: self._value(c, "a")),
            Column(_tr("Value in B"), lambda c: self._value(c, "b")),
            Column(_tr("Used"), self._used),
            Column(_tr("When"), lambda c: local_time(c.at)),
        ]
        self.model: PagedModel[ConflictRow] = PagedModel(
            columns, key=lambda c: c.id, parent=self, reader=reader
        )
        self.model.loaded.connect(self._selected)
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

    def show_scheduler(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def show_connection(self, service: Service, name: str | None, apps: dict[str, str]) -> None:
        self.model.columns[2] = Column(
            _tr("Value in {app}").format(app=apps.get("a", "A")), lambda c: self._value(c, "a")
        )
        self.model.columns[3] = Column(
            _tr("Value in {app}").format(app=apps.get("b", "B")), lambda c: self._value(c, "b")
        )
        super().show_connection(service, name, apps)

    def reload(self, keep: bool = True) -> None:
        name = self.name
        if self.service is None or name is None:
            self.model.load(None)
            return
        search = self.search.text()

        def fetch(svc: Service, after: Any, limit: int) -> Sequence[ConflictRow]:
            return svc.conflicts_page(name, search=search, after=after, limit=limit)

        self.model.load(fetch, keep=keep)
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
        self,
        service: Service,
        scheduler: Scheduler,
        parent: QWidget | None = None,
        reader: Reader | None = None,
    ) -> None:
        """``reader``: where the lists, counts and status are read (the window's, shared
        with Activity; default: one of its own over ``service``'s database)."""
        super().__init__(parent)
        self.service = service
        self.scheduler = scheduler
        self.reader = reader or Reader(lambda: Service(service.home), self)
        self._status_for: str | None = None
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
        self.in_sync = ContactsTab("bound", False, self, self.reader)
        self.excluded = ContactsTab("excluded", True, self, self.reader)
        self.duplicates = ContactsTab("duplicate", False, self, self.reader)
        self.failed = FailedTab(self, self.reader)
        self.conflicts = ConflictsTab(self, self.reader)
        self.conflicts.show_scheduler(scheduler)
        self.not_fitting = NotFittingTab(self, self.reader)
        self.failed.retry_requested.connect(self._retry)
        self.failed.failed.connect(self.summary_error)
        self.failed.changed.connect(self.refresh_status)
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
        """Show ``name`` once its apps' names are read (off the GUI thread)."""
        self.name = name
        self.apps = {}
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
        self.refresh()

    def refresh(self) -> None:
        """Re-read the chip, the counts and the visible list (others reload when shown)."""
        self._loaded = set()
        self.refresh_status()
        self._show_tab(self.tabs.currentIndex())

    def refresh_status(self) -> None:
        """Read the chip's status and the tabs' counts (off the GUI thread: counting 100k
        contacts takes a while)."""
        name = self.name
        if name is None:
            self.summary.setText("")
            return

        def read(svc: Service) -> tuple[ConnectionState, HealthCounts]:
            return svc.connection_state(name), svc.health_counts(name)

        self.reader.read(
            read,
            lambda answer: self._show_status(name, *answer),
            lambda _message: None,  # deleted meanwhile: the window refreshes the list
            slot=("status", id(self)),
            owner=self,
        )

    def summary_error(self, message: str) -> None:
        """A read or a change went wrong: say so where the status is."""
        self.summary.setText(message)

    def _show_status(self, name: str, state: ConnectionState, counts: HealthCounts) -> None:
        if name != self.name:
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
        if isinstance(page, ListTab):
            page.show_connection(self.service, self.name, self.apps)

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
