"""The mappings editor (SPEC §5): every mapping with its toggle, effective direction and the
reason it is inactive; "Add custom mapping" where picking a field on one side greys the
fields of the other side that cannot go with it, each with its reason; a value table for
choices. Every check is the service's: the editor offers exactly what ``add_mapping``
accepts, and shows its refusal in words when it does not."""

from __future__ import annotations

from typing import Any, TypeAlias

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QItemSelection,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.service import (
    ConnectionFields,
    FieldChoice,
    FieldInfo,
    MappingChoices,
    MappingInfo,
    Service,
)
from app.ui.dashboard.page import ConnectionPage, MessageLabel
from app.ui.progress_panel import ProgressPanel
from app.ui.signals import emit
from app.ui.tasks import TaskControl, TaskRunner

Index: TypeAlias = QModelIndex | QPersistentModelIndex
ARROWS = {"two-way": "⇄", "a-to-b": "→", "b-to-a": "←"}
TYPE_WORDS = {
    "text": "text",
    "long_text": "long text",
    "email": "email",
    "phone": "phone",
    "url": "web address",
    "number": "number",
    "date": "date",
    "datetime": "date and time",
    "boolean": "yes/no",
    "single_choice": "choice",
    "multi_choice": "multiple choice",
    "address": "address",
}


def _disabled_text() -> Any:
    return QApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)


class MappingTableModel(QAbstractTableModel):
    """The connection's mappings; column 0 is the on/off toggle."""

    toggle_requested = Signal(str, bool)

    COLUMNS = 5

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[MappingInfo] = []
        self.labels: dict[str, dict[str, str]] = {"a": {}, "b": {}}
        self.apps = ("A", "B")

    def load(
        self, rows: list[MappingInfo], fields: ConnectionFields, apps: tuple[str, str]
    ) -> None:
        self.beginResetModel()
        self.rows = rows
        self.apps = apps
        self.labels = {
            side: {f.key: f.label for f in fields.side(side).fields} for side in ("a", "b")
        }
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self.COLUMNS

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or role != Qt.ItemDataRole.DisplayRole:
            return None
        return (
            self.tr("On"),
            self.tr("In {app}").format(app=self.apps[0]),
            "",
            self.tr("In {app}").format(app=self.apps[1]),
            self.tr("Note"),
        )[section]

    def _fields(self, row: MappingInfo, side: str) -> str:
        keys = row.a if side == "a" else row.b
        if keys == ("segments",):
            return self.tr("Segments (groups, tags, categories)")
        return " + ".join(self.labels[side].get(k, k) for k in keys)

    def note(self, row: MappingInfo) -> str:
        if row.reason:
            return row.reason
        if row.kind == "custom":
            if row.has_values:
                return self.tr("Custom, with a value table")
            return self.tr("Custom")
        return ""

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.CheckStateRole and col == 0:
            return Qt.CheckState.Checked if row.enabled else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 1:
                return self._fields(row, "a")
            if col == 2:
                return ARROWS.get(row.effective or "", "×")
            if col == 3:
                return self._fields(row, "b")
            if col == 4:
                return self.note(row)
        if role == Qt.ItemDataRole.ForegroundRole and not row.active:
            return _disabled_text()
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleDescriptionRole):
            return self.note(row) or None
        if role == Qt.ItemDataRole.AccessibleTextRole and col == 0:
            state = self.tr("on") if row.enabled else self.tr("off")
            return self.tr("{a} to {b}, {state}").format(
                a=self._fields(row, "a"), b=self._fields(row, "b"), state=state
            )
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return Qt.AlignmentFlag.AlignCenter
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == 0:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or index.column() != 0:
            return False
        on = Qt.CheckState(value) == Qt.CheckState.Checked
        emit(self.toggle_requested, self.rows[index.row()].key, on)
        return False  # shown once the service has saved it (reload)


class MappingsEditor(ConnectionPage):
    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(service, runner, parent)
        self.fields: ConnectionFields | None = None
        self.model = MappingTableModel(self)
        self.model.toggle_requested.connect(self.toggle)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setAccessibleName(self.tr("Field mappings"))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        intro = QLabel(
            self.tr(
                "Fields with the same meaning are paired automatically. Untick a mapping to "
                "stop syncing that field; it is then free for a custom mapping."
            ),
            self,
        )
        intro.setWordWrap(True)
        self.add_button = QPushButton(self.tr("&Add custom mapping…"), self)
        self.add_button.clicked.connect(self.add_mapping)
        self.remove_button = QPushButton(self.tr("Re&move custom mapping"), self)
        self.remove_button.setEnabled(False)
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        self.reload_button = QPushButton(self.tr("Re&load"), self)
        self.reload_button.setToolTip(self.tr("Read both apps again"))
        self.reload_button.clicked.connect(self.reload)
        buttons.addWidget(self.reload_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.footer(layout)

    def reload(self) -> None:
        name = self.name
        if name is None:
            return

        def job(svc: Service, ctl: TaskControl) -> tuple[list[MappingInfo], ConnectionFields]:
            return svc.mappings(name), svc.fields(name)

        self.add_button.setEnabled(False)
        self.run(job, self._loaded, self.tr("Reading both apps' fields…"))

    def _loaded(self, result: tuple[list[MappingInfo], ConnectionFields]) -> None:
        rows, fields = result
        self.fields = fields
        conn = self.service.show_connection(self.name) if self.name else None
        apps = (conn.a.account, conn.b.account) if conn else (fields.a.app, fields.b.app)
        self.model.load(rows, fields, apps)
        self.add_button.setEnabled(True)
        self._selection_changed()

    def toggle(self, key: str, on: bool) -> None:
        name = self.name
        if name is None:
            return

        def job(svc: Service, ctl: TaskControl) -> None:
            svc.toggle_mapping(name, key, on)

        self.message.clear_message()
        self.run(job, lambda _none: self.reload(), self.tr("Saving…"))

    def selected_row(self) -> MappingInfo | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.rows[rows[0].row()] if rows else None

    def _selection_changed(self, *_args: QItemSelection) -> None:
        row = self.selected_row()
        self.remove_button.setEnabled(row is not None and row.kind == "custom")

    def remove_selected(self) -> None:
        row, name = self.selected_row(), self.name
        if row is None or name is None or row.kind != "custom":
            return
        key = row.key

        def job(svc: Service, ctl: TaskControl) -> None:
            svc.remove_mapping(name, key)

        self.run(job, lambda _none: self.reload(), self.tr("Removing…"))

    def add_mapping(self) -> None:
        if self.name is None or self.fields is None:
            return
        dialog = AddMappingDialog(self.service, self.runner, self.name, self.fields, self)
        dialog.accepted.connect(self.reload)
        dialog.open()


# --- "Add custom mapping" ---------------------------------------------------------------------


class FieldListModel(QAbstractListModel):
    """One app's fields; after a field was picked on the other side, each row knows whether
    it can go with it and why not (greyed, reason as tooltip and accessible description)."""

    def __init__(self, fields: tuple[FieldInfo, ...], parent: Any = None) -> None:
        super().__init__(parent)
        self.fields = fields
        self.choices: dict[str, FieldChoice] = {}

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.fields)

    def set_choices(self, choices: tuple[FieldChoice, ...] | None) -> None:
        self.beginResetModel()
        self.choices = {c.key: c for c in choices or ()}
        self.endResetModel()

    def choice(self, row: int) -> FieldChoice | None:
        return self.choices.get(self.fields[row].key)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        f = self.fields[index.row()]
        choice = self.choices.get(f.key)
        if role == Qt.ItemDataRole.DisplayRole:
            kind = self.tr(TYPE_WORDS.get(f.type, f.type))
            if f.multi:
                kind = self.tr("list of {kind}").format(kind=kind)
            if not f.writable:
                kind += ", " + self.tr("read-only")
            return f"{f.label}  ({kind})"
        if role == Qt.ItemDataRole.ForegroundRole and choice is not None and not choice.possible:
            return _disabled_text()
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleDescriptionRole):
            if choice is not None and choice.reason:
                return choice.reason
            return None
        return None


class ValueTableModel(QAbstractTableModel):
    """Rows "value in the source app → value in the other app"; an empty target leaves the
    other app's value unchanged (SPEC §5, S12)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[list[str]] = []
        self.headers = ("", "")
        self.target_choices: list[str] = []

    def reset(self, sources: list[str], headers: tuple[str, str], targets: list[str]) -> None:
        self.beginResetModel()
        self.rows = [[s, ""] for s in sources]
        self.headers = headers
        self.target_choices = targets
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 2

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.EditRole:
            return value
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() == 1 and not value:
                return self.tr("(leave unchanged)")
            return value
        if role == Qt.ItemDataRole.FontRole and index.column() == 1 and not value:
            font = QFont()
            font.setItalic(True)
            return font
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        text = str(value).strip()
        if text == self.tr("(leave unchanged)"):
            text = ""
        self.rows[index.row()][index.column()] = text
        emit(self.dataChanged, index, index)
        return True

    def add_row(self) -> int:
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows))
        self.rows.append(["", ""])
        self.endInsertRows()
        return len(self.rows) - 1

    def remove_row(self, row: int) -> None:
        if 0 <= row < len(self.rows):
            self.beginRemoveRows(QModelIndex(), row, row)
            del self.rows[row]
            self.endRemoveRows()

    def as_text(self) -> str:
        """The table as ``add_mapping`` takes it (``Gold=VIP,Bronze=``)."""
        return ",".join(f"{s}={t}" for s, t in self.rows if s)

    def problem(self) -> str:
        for source, target in self.rows:
            if any(c in v for v in (source, target) for c in ",="):
                return self.tr("A value in the table may not contain “,” or “=”.")
        return ""


class ChoiceDelegate(QStyledItemDelegate):
    """The target column: a drop-down of the other app's options, when it has them."""

    def __init__(self, model: ValueTableModel, parent: Any = None) -> None:
        super().__init__(parent)
        self.model = model

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: Index) -> QWidget:
        if index.column() == 1 and self.model.target_choices:
            combo = QComboBox(parent)
            combo.addItems([self.model.tr("(leave unchanged)"), *self.model.target_choices])
            combo.setAccessibleName(self.model.tr("Value in the other app"))
            return combo
        editor = super().createEditor(parent, option, index)
        editor.setAccessibleName(self.model.tr("Value"))
        return editor

    def setEditorData(self, editor: QWidget, index: Index) -> None:
        if isinstance(editor, QComboBox):
            value = index.data(Qt.ItemDataRole.EditRole) or ""
            at = editor.findText(value) if value else 0
            editor.setCurrentIndex(max(at, 0))
            return
        super().setEditorData(editor, index)

    def setModelData(self, editor: QWidget, model: Any, index: Index) -> None:
        if isinstance(editor, QComboBox):
            model.setData(index, "" if editor.currentIndex() == 0 else editor.currentText())
            return
        super().setModelData(editor, model, index)


class AddMappingDialog(QDialog):
    """Pick a field in A, then a field in B; incompatible ones are greyed with the reason."""

    def __init__(
        self,
        service: Service,
        runner: TaskRunner,
        name: str,
        fields: ConnectionFields,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.runner = runner
        self.name = name
        self.fields = fields
        self.picked: FieldInfo | None = None
        conn = service.show_connection(name)
        self.accounts = (conn.a.account, conn.b.account)
        self.setWindowTitle(self.tr("Add custom mapping"))

        self.model_a = FieldListModel(fields.a.fields, self)
        self.model_b = FieldListModel(fields.b.fields, self)
        self.list_a = self._list(
            self.model_a, self.tr("Fields in {app}").format(app=self.accounts[0])
        )
        self.list_b = self._list(
            self.model_b, self.tr("Fields in {app}").format(app=self.accounts[1])
        )
        self.list_b.setEnabled(False)
        self.list_a.selectionModel().currentChanged.connect(self._picked_a)
        self.list_b.selectionModel().currentChanged.connect(self._picked_b)
        label_a = QLabel(self.tr("&1. A field in {app}:").format(app=self.accounts[0]), self)
        label_a.setBuddy(self.list_a)
        label_b = QLabel(
            self.tr("&2. The field in {app} it maps to:").format(app=self.accounts[1]), self
        )
        label_b.setBuddy(self.list_b)

        self.direction = QComboBox(self)
        self.direction.setAccessibleName(self.tr("Mapping direction"))
        for key, text in (
            ("two-way", self.tr("Both ways")),
            ("a-to-b", self.tr("Only {a} → {b}").format(a=self.accounts[0], b=self.accounts[1])),
            ("b-to-a", self.tr("Only {b} → {a}").format(a=self.accounts[0], b=self.accounts[1])),
        ):
            self.direction.addItem(text, key)
        direction_label = QLabel(self.tr("&Direction:"), self)
        direction_label.setBuddy(self.direction)

        self.pick_label = QLineEdit(self)
        self.pick_label.setPlaceholderText(self.tr("e.g. mobile (default: the primary value)"))
        self.pick_label.setAccessibleName(self.tr("Label of the value to keep"))
        self.pick_label_label = QLabel(self.tr("From the list, &keep the value labelled:"), self)
        self.pick_label_label.setBuddy(self.pick_label)

        self.values_box = QGroupBox(self.tr("&Translate values"), self)
        self.values_box.setCheckable(True)
        self.values_box.setChecked(False)
        self.values = ValueTableModel(self)
        self.values_view = QTableView(self.values_box)
        self.values_view.setModel(self.values)
        self.values_view.setItemDelegate(ChoiceDelegate(self.values, self.values_view))
        self.values_view.setAccessibleName(self.tr("Value table"))
        self.values_view.horizontalHeader().setStretchLastSection(True)
        self.values_view.verticalHeader().hide()
        add_row = QPushButton(self.tr("Add &row"), self.values_box)
        add_row.clicked.connect(self._add_value_row)
        remove_row = QPushButton(self.tr("Remove r&ow"), self.values_box)
        remove_row.clicked.connect(
            lambda: self.values.remove_row(self.values_view.currentIndex().row())
        )
        box = QVBoxLayout(self.values_box)
        explain = QLabel(
            self.tr(
                "Each value on the left becomes the value on the right. A value with no "
                "row fails that field only (listed in Health); the way back uses the "
                "same table reversed."
            ),
            self.values_box,
        )
        explain.setWordWrap(True)
        box.addWidget(explain)
        box.addWidget(self.values_view)
        row_buttons = QHBoxLayout()
        row_buttons.addWidget(add_row)
        row_buttons.addWidget(remove_row)
        row_buttons.addStretch(1)
        box.addLayout(row_buttons)

        self.reason = MessageLabel(self)
        self.progress = ProgressPanel(self)
        self.buttons = QDialogButtonBox(self)
        self.ok = self.buttons.addButton(
            self.tr("Add mapping"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.ok.setEnabled(False)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

        grid = QGridLayout()
        grid.addWidget(label_a, 0, 0)
        grid.addWidget(label_b, 0, 1)
        grid.addWidget(self.list_a, 1, 0)
        grid.addWidget(self.list_b, 1, 1)
        options = QGridLayout()
        options.addWidget(direction_label, 0, 0)
        options.addWidget(self.direction, 0, 1)
        options.addWidget(self.pick_label_label, 1, 0)
        options.addWidget(self.pick_label, 1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(grid, 2)
        layout.addWidget(self.reason)
        layout.addLayout(options)
        layout.addWidget(self.values_box, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.buttons)
        self._show_options(None)
        self.resize(
            self.fontMetrics().horizontalAdvance("M") * 60, self.fontMetrics().height() * 34
        )

    def _list(self, model: FieldListModel, name: str) -> QListView:
        view = QListView(self)
        view.setMinimumHeight(self.fontMetrics().height() * 12)
        view.setModel(model)
        view.setAccessibleName(name)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        return view

    def field_b(self) -> FieldInfo | None:
        index = self.list_b.currentIndex()
        return self.model_b.fields[index.row()] if index.isValid() else None

    def choice_b(self) -> FieldChoice | None:
        index = self.list_b.currentIndex()
        return self.model_b.choice(index.row()) if index.isValid() else None

    def _picked_a(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        key = self.model_a.fields[current.row()].key
        name = self.name
        self.picked = None
        self.model_b.set_choices(None)
        self.list_b.setEnabled(False)
        self.ok.setEnabled(False)
        self.reason.clear_message()

        def job(svc: Service, ctl: TaskControl) -> MappingChoices:
            return svc.mapping_choices(name, "a", key)

        task = self.runner.start(job, on_done=self._choices, on_error=self._error)
        self.progress.attach(task, self.tr("Checking which fields can go with it…"))

    def _choices(self, result: MappingChoices) -> None:
        current = self.list_a.currentIndex()
        if not current.isValid() or self.model_a.fields[current.row()].key != result.field.key:
            return  # an older answer: the user picked another field meanwhile
        self.picked = result.field
        self.model_b.set_choices(result.other)
        self.list_b.setEnabled(True)
        usable = sum(1 for c in result.other if c.possible)
        self.reason.info(
            self.tr(
                "{count} fields of {app} can go with {field}; the greyed ones say why not."
            ).format(count=usable, app=self.accounts[1], field=self.picked.label)
        )

    def _picked_b(self, current: QModelIndex, _previous: QModelIndex) -> None:
        choice = self.choice_b()
        self.ok.setEnabled(False)
        if choice is None or self.picked is None:
            self._show_options(None)
            return
        if not choice.possible:
            self.reason.error(choice.reason)
            self._show_options(None)
            return
        if choice.reason:
            self.reason.info(choice.reason)
        else:
            self.reason.clear_message()
        self.ok.setEnabled(True)
        self._show_options(choice)

    def _show_options(self, choice: FieldChoice | None) -> None:
        """Offer only the directions the types, the apps and the connection allow, the label
        picker for list → single mappings, and the value table (checked when needed)."""
        model = self.direction.model()
        allowed = {
            "two-way": bool(choice and choice.a_to_b and choice.b_to_a),
            "a-to-b": bool(choice and choice.a_to_b),
            "b-to-a": bool(choice and choice.b_to_a),
        }
        for i in range(self.direction.count()):
            item = model.item(i)  # type: ignore[attr-defined]
            item.setEnabled(allowed[self.direction.itemData(i)])
        first = next(
            (i for i in range(self.direction.count()) if allowed[self.direction.itemData(i)]), 0
        )
        if not allowed.get(self.direction.currentData(), False):
            self.direction.setCurrentIndex(first)
        self.direction.setEnabled(choice is not None)
        field_b = self.field_b()
        one_list = bool(choice and self.picked and field_b and (self.picked.multi != field_b.multi))
        self.pick_label.setVisible(one_list)
        self.pick_label_label.setVisible(one_list)
        self.values_box.setVisible(choice is not None)
        if choice is not None and self.picked is not None and field_b is not None:
            self.values.reset(
                list(self.picked.choices),
                (
                    self.tr("Value in {app}").format(app=self.accounts[0]),
                    self.tr("Value in {app}").format(app=self.accounts[1]),
                ),
                list(field_b.choices),
            )
            self.values_box.setChecked(choice.needs_values)

    def _add_value_row(self) -> None:
        row = self.values.add_row()
        self.values_view.setCurrentIndex(self.values.index(row, 0))
        self.values_view.edit(self.values.index(row, 0))

    def submit(self) -> None:
        field_b = self.field_b()
        if self.picked is None or field_b is None:
            return
        values = ""
        if self.values_box.isChecked():
            problem = self.values.problem()
            if problem:
                self.reason.error(problem)
                return
            values = self.values.as_text()
        name, a_key, b_key = self.name, self.picked.key, field_b.key
        direction = str(self.direction.currentData())
        pick = self.pick_label.text().strip() if self.pick_label.isVisible() else ""

        def job(svc: Service, ctl: TaskControl) -> MappingInfo:
            return svc.add_mapping(
                name, a_key, b_key, direction=direction, values=values, pick_label=pick
            )

        self.ok.setEnabled(False)
        task = self.runner.start(job, on_done=self._added, on_error=self._error)
        self.progress.attach(task, self.tr("Adding the mapping…"))

    def _added(self, view: MappingInfo) -> None:
        self.accept()

    def _error(self, message: str, code: str) -> None:
        self.reason.error(message)
        choice = self.choice_b()
        self.ok.setEnabled(choice is not None and choice.possible)
