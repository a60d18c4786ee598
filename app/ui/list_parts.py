"""What the Health and Activity lists share: a search box that waits for the user to stop
typing, a table that never measures rows it does not show, and ``ListTab``, a list page that
reads its rows through a reader (``app.ui.reader``) rather than on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from PySide6.QtCore import QCoreApplication, QObject, QTimer
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLineEdit, QTableView, QWidget

from app.service import ConnectionView, Service
from app.ui.reader import ImmediateReader, Reader

AnyReader: TypeAlias = Reader | ImmediateReader
SEARCH_DELAY_MS = 250


def _tr(text: str) -> str:
    return QCoreApplication.translate("HealthView", text)


def read_connection(
    reader: AnyReader,
    owner: QObject,
    name: str,
    done: Callable[[str, ConnectionView | None], None],
) -> None:
    """Read connection ``name`` off the GUI thread; ``done(name, view)`` gets None when it
    is gone (deleted meanwhile). Only the newest read of ``owner`` is answered."""
    reader.read(
        lambda svc: svc.show_connection(name),
        lambda conn: done(name, conn),
        lambda _message: done(name, None),
        slot=("connection", id(owner)),
        owner=owner,
    )


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


class ListTab(QWidget):
    """A Health list: the connection it shows, and the reader its pages come from."""

    def __init__(self, parent: QWidget | None, reader: AnyReader | None) -> None:
        super().__init__(parent)
        self.reader = reader
        self.service: Service | None = None
        self.name: str | None = None
        self.apps: dict[str, str] = {}

    def show_connection(self, service: Service, name: str | None, apps: dict[str, str]) -> None:
        """Show ``name``'s list; the rows shown stay until the new ones are in when it is
        the same connection (a refresh after a run), not when it is another."""
        same = name is not None and name == self.name
        self.service, self.name, self.apps = service, name, apps
        self.reload(keep=same)

    def reload(self, keep: bool = True) -> None:
        """Read the list again (subclasses)."""
