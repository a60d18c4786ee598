"""The rules editor (SPEC §3): the connection's IF/THEN rules read as sentences, top rule
first, each with its on/off, Undo and Other-way toggles and how many contacts it matches now
(counted from the local index, so no app is read). "Add rule" builds one from conditions and
actions; the service checks it against both apps and the mappings and says why it refuses."""

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
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.errors import ConfigError
from app.model import Side
from app.service import (
    FIELD_OPS,
    NO_VALUE_OPS,
    Action,
    ActionKind,
    ConnectionFields,
    FieldInfo,
    Filter,
    FilterKind,
    Join,
    Op,
    RuleDraft,
    RuleInfo,
    Service,
)
from app.ui.dashboard.page import ConnectionPage, MessageLabel
from app.ui.progress_panel import ProgressPanel
from app.ui.signals import emit
from app.ui.tasks import TaskControl, TaskRunner, WorkerJob
from app.ui.words import plural

Index: TypeAlias = QModelIndex | QPersistentModelIndex
ON, RULE, COUNT, UNDO, OTHER = range(5)


class RuleTableModel(QAbstractTableModel):
    """The rules, top first. Toggle columns ask the service; the table shows what it saved."""

    set_requested = Signal(str, str, bool)
    """rule id, "enabled" | "undo" | "other_way", new value."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[RuleInfo] = []
        self.counted = True

    def load(self, rows: list[RuleInfo], counted: bool) -> None:
        self.beginResetModel()
        self.rows = rows
        self.counted = counted
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 5

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or role != Qt.ItemDataRole.DisplayRole:
            return None
        return (
            self.tr("On"),
            self.tr("Rule"),
            self.tr("Matches now"),
            self.tr("Undo"),
            self.tr("Other way"),
        )[section]

    def sentence(self, row: RuleInfo) -> str:
        text = f"{row.position}. {row.sentence}"
        if row.mirror is not None:
            text += "\n" + self.tr("Other way around: {sentence}").format(
                sentence=row.mirror.sentence
            )
        return text

    def count_text(self, row: RuleInfo) -> str:
        if not self.counted or row.count is None:
            return "—"
        text = str(row.count)
        if row.mirror is not None and row.mirror.count is not None:
            text += f"\n{row.mirror.count}"
        return text

    def note(self, row: RuleInfo) -> str:
        notes = []
        if row.ignored:
            notes.append(self.tr("Ignored: {why}").format(why=row.ignored))
        if row.undo_note:
            notes.append(row.undo_note)
        if not self.counted:
            notes.append(self.tr("Contacts are counted after the first sync."))
        return "\n".join(notes)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.CheckStateRole and col in (ON, UNDO, OTHER):
            value = {ON: row.enabled, UNDO: row.undo_effective, OTHER: row.other_way}[col]
            return Qt.CheckState.Checked if value else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DisplayRole:
            if col == RULE:
                return self.sentence(row)
            if col == COUNT:
                return self.count_text(row)
        if role == Qt.ItemDataRole.ForegroundRole and (not row.enabled or row.ignored):
            return QApplication.palette().color(
                QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text
            )
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleDescriptionRole):
            return self.note(row) or None
        if role == Qt.ItemDataRole.AccessibleTextRole:
            if col == RULE:
                return self.sentence(row).replace("\n", ". ")
            if col == COUNT:
                if not self.counted or row.count is None:
                    return self.tr("Counted after the first sync")
                return self.tr("Matches {count} now").format(
                    count=plural(row.count, self.tr("{n} contact"), self.tr("{n} contacts"))
                )
            names = {
                ON: self.tr("Rule on"),
                UNDO: self.tr("Undo"),
                OTHER: self.tr("Other way around"),
            }
            return names.get(col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COUNT:
            return Qt.AlignmentFlag.AlignCenter
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        row = self.rows[index.row()] if index.isValid() else None
        if index.column() in (ON, OTHER):
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        if index.column() == UNDO and row is not None and not row.undo_note:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole:
            return False
        key = {ON: "enabled", UNDO: "undo", OTHER: "other_way"}.get(index.column())
        if key is None:
            return False
        on = Qt.CheckState(value) == Qt.CheckState.Checked
        emit(self.set_requested, self.rows[index.row()].id, key, on)
        return False  # shown once saved (reload)


class RulesEditor(ConnectionPage):
    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(service, runner, parent)
        self.model = RuleTableModel(self)
        self.model.set_requested.connect(self.set_rule)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setAccessibleName(self.tr("Rules"))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        for col in (ON, COUNT, UNDO, OTHER):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(RULE, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        intro = QLabel(
            self.tr(
                "A contact is synced when a rule selects it; its counterpart gets the rule's "
                "actions. When two rules disagree, the higher one wins."
            ),
            self,
        )
        intro.setWordWrap(True)
        self.add_button = QPushButton(self.tr("&Add rule…"), self)
        self.add_button.clicked.connect(self.add_rule)
        self.remove_button = QPushButton(self.tr("Re&move"), self)
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button = QPushButton(self.tr("Move &up"), self)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button = QPushButton(self.tr("Move do&wn"), self)
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        buttons = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(b)
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
        self._selection_changed()

    def reload(self) -> None:
        name = self.name
        if name is None:
            return

        # Counting reads every indexed contact (seconds at 100k): in the sync worker process,
        # so it never holds the window's GIL.
        job = WorkerJob(
            {"kind": "rules", "name": name, "counts": True},
            # The rules cross the worker's pipe as JSON: typed again here.
            lambda result: (
                [RuleInfo.from_json(r) for r in result["rules"]],
                bool(result["counted"]),
            ),
        )
        self.run(job, self._loaded, self.tr("Counting the contacts each rule matches…"))

    def _loaded(self, result: tuple[list[RuleInfo], bool]) -> None:
        rows, counted = result
        selected = self.selected_id()
        self.model.load(rows, counted)
        if selected:
            for i, r in enumerate(rows):
                if r.id == selected:
                    self.table.selectRow(i)
        self._selection_changed()

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.rows[rows[0].row()].id if rows else None

    def _selection_changed(self, *_args: QItemSelection) -> None:
        rows = self.table.selectionModel().selectedRows()
        row = rows[0].row() if rows else -1
        self.remove_button.setEnabled(row >= 0)
        self.up_button.setEnabled(row > 0)
        self.down_button.setEnabled(0 <= row < len(self.model.rows) - 1)

    def _change(self, job: Any, text: str) -> None:
        self.message.clear_message()
        self.run(job, lambda _r: self._saved(), text)

    def _saved(self) -> None:
        self.reload()
        emit(self.changed)

    def set_rule(self, rule_id: str, key: str, on: bool) -> None:
        name = self.name
        if name is None:
            return

        def job(svc: Service, ctl: TaskControl) -> Any:
            return svc.set_rule(name, rule_id, **{key: on})

        self._change(job, self.tr("Saving…"))

    def remove_selected(self) -> None:
        name, rule_id = self.name, self.selected_id()
        if name is None or rule_id is None:
            return

        def job(svc: Service, ctl: TaskControl) -> None:
            svc.remove_rule(name, rule_id)

        self._change(job, self.tr("Removing…"))

    def move_selected(self, step: int) -> None:
        name, rule_id = self.name, self.selected_id()
        rows = self.table.selectionModel().selectedRows()
        if name is None or rule_id is None or not rows:
            return
        position = rows[0].row() + 1 + step

        def job(svc: Service, ctl: TaskControl) -> None:
            svc.move_rule(name, rule_id, position)

        self._change(job, self.tr("Moving…"))

    def add_rule(self) -> None:
        name = self.name
        if name is None:
            return
        dialog = AddRuleDialog(self.service, self.runner, name, self)
        dialog.accepted.connect(self._saved)
        dialog.open()


# --- "Add rule" --------------------------------------------------------------------------------


class SentenceListModel(QAbstractListModel):
    """The conditions or actions added so far, each shown as its part of the sentence."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.items: list[Filter | Action] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return item.sentence("") if isinstance(item, Filter) else item.sentence()
        return None

    def append(self, item: Filter | Action) -> None:
        self.beginInsertRows(QModelIndex(), len(self.items), len(self.items))
        self.items.append(item)
        self.endInsertRows()

    def remove(self, row: int) -> None:
        if 0 <= row < len(self.items):
            self.beginRemoveRows(QModelIndex(), row, row)
            del self.items[row]
            self.endRemoveRows()


SEGMENT, SUBSCRIPTION, EXISTS = "~segment", "~subscription", "~exists"


class AddRuleDialog(QDialog):
    """IF a contact in [app] matches [all|any] of [conditions] THEN … in [other app] and
    [actions]; the sentence below reads the rule back as it will be saved."""

    def __init__(
        self, service: Service, runner: TaskRunner, name: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.runner = runner
        self.name = name
        self.fields: ConnectionFields | None = None
        conn = service.show_connection(name)
        self.accounts = {Side.A: conn.a.account, Side.B: conn.b.account}
        self.setWindowTitle(self.tr("Add rule"))

        self.source = QComboBox(self)
        self.source.setAccessibleName(self.tr("Source app"))
        for side in (Side.A, Side.B):
            self.source.addItem(self.accounts[side], side.value)
        self.source.currentIndexChanged.connect(self._source_changed)
        self.join = QComboBox(self)
        self.join.setAccessibleName(self.tr("How conditions combine"))
        self.join.addItem(self.tr("all of these conditions"), Join.ALL.value)
        self.join.addItem(self.tr("any of these conditions"), Join.ANY.value)
        self.join.currentIndexChanged.connect(self._update_sentence)
        source_label = QLabel(self.tr("&IF a contact in"), self)
        source_label.setBuddy(self.source)
        join_label = QLabel(self.tr("&matches"), self)
        join_label.setBuddy(self.join)

        # Conditions
        self.what = QComboBox(self)
        self.what.setAccessibleName(self.tr("Condition on"))
        self.what.currentIndexChanged.connect(self._what_changed)
        self.op = QComboBox(self)
        self.op.setAccessibleName(self.tr("Condition"))
        self.op.currentIndexChanged.connect(self._op_changed)
        self.value = QComboBox(self)
        self.value.setEditable(True)
        self.value.setAccessibleName(self.tr("Condition value"))
        self.add_filter_button = QPushButton(self.tr("Add &condition"), self)
        self.add_filter_button.clicked.connect(self._add_filter)
        self.filters = SentenceListModel(self)
        self.filter_view = self._list(self.filters, self.tr("Conditions"))
        remove_filter = QPushButton(self.tr("Remove condition"), self)
        remove_filter.clicked.connect(lambda: self._remove(self.filters, self.filter_view))
        if_box = QGroupBox(self.tr("Conditions (none: every contact)"), self)
        grid = QGridLayout(if_box)
        grid.addWidget(self.what, 0, 0)
        grid.addWidget(self.op, 0, 1)
        grid.addWidget(self.value, 0, 2)
        grid.addWidget(self.add_filter_button, 0, 3)
        grid.addWidget(self.filter_view, 1, 0, 1, 3)
        grid.addWidget(remove_filter, 1, 3, Qt.AlignmentFlag.AlignTop)

        # Actions
        self.then_label = QLabel(self)
        self.action_kind = QComboBox(self)
        self.action_kind.setAccessibleName(self.tr("Action"))
        self.action_kind.addItem(self.tr("add to segment"), ActionKind.ADD_SEGMENT.value)
        self.action_kind.addItem(self.tr("remove from segment"), ActionKind.REMOVE_SEGMENT.value)
        self.action_kind.addItem(self.tr("set field"), ActionKind.SET_FIELD.value)
        self.action_kind.currentIndexChanged.connect(self._action_kind_changed)
        self.action_field = QComboBox(self)
        self.action_field.setAccessibleName(self.tr("Field to set"))
        self.action_value = QComboBox(self)
        self.action_value.setEditable(True)
        self.action_value.setAccessibleName(self.tr("Segment or value"))
        self.add_action_button = QPushButton(self.tr("Add ac&tion"), self)
        self.add_action_button.clicked.connect(self._add_action)
        self.action_items = SentenceListModel(self)
        self.action_view = self._list(self.action_items, self.tr("Actions"))
        remove_action = QPushButton(self.tr("Remove action"), self)
        remove_action.clicked.connect(lambda: self._remove(self.action_items, self.action_view))
        then_box = QGroupBox(self.tr("Actions on the counterpart (optional)"), self)
        agrid = QGridLayout(then_box)
        agrid.addWidget(self.action_kind, 0, 0)
        agrid.addWidget(self.action_field, 0, 1)
        agrid.addWidget(self.action_value, 0, 2)
        agrid.addWidget(self.add_action_button, 0, 3)
        agrid.addWidget(self.action_view, 1, 0, 1, 3)
        agrid.addWidget(remove_action, 1, 3, Qt.AlignmentFlag.AlignTop)

        self.undo = QCheckBox(
            self.tr("&Undo: reverse this rule's actions when a contact stops matching"), self
        )
        self.undo.setChecked(conn.settings.direction == "two-way")
        self.undo.setEnabled(conn.settings.direction == "two-way")
        self.other_way = QCheckBox(self.tr("Other wa&y around: also act as the mirror rule"), self)
        for box in (self.undo, self.other_way):
            box.toggled.connect(self._update_sentence)

        self.sentence = QLabel(self)
        self.sentence.setWordWrap(True)
        self.sentence.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sentence.setAccessibleName(self.tr("The rule as a sentence"))
        self.message = MessageLabel(self)
        self.progress = ProgressPanel(self)
        self.buttons = QDialogButtonBox(self)
        self.ok = self.buttons.addButton(
            self.tr("Add rule"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        self.ok.setEnabled(False)

        head = QHBoxLayout()
        head.addWidget(source_label)
        head.addWidget(self.source)
        head.addWidget(join_label)
        head.addWidget(self.join)
        head.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(if_box)
        layout.addWidget(self.then_label)
        layout.addWidget(then_box)
        layout.addWidget(self.undo)
        layout.addWidget(self.other_way)
        layout.addWidget(self.sentence)
        layout.addWidget(self.message)
        layout.addWidget(self.progress)
        layout.addWidget(self.buttons)
        self.resize(
            self.fontMetrics().horizontalAdvance("M") * 62, self.fontMetrics().height() * 36
        )

        def job(svc: Service, ctl: TaskControl) -> ConnectionFields:
            return svc.fields(name)

        task = runner.start(job, on_done=self._fields_loaded, on_error=self._error)
        self.progress.attach(task, self.tr("Reading both apps' fields and segments…"))

    def _list(self, model: SentenceListModel, name: str) -> QListView:
        view = QListView(self)
        view.setModel(model)
        view.setAccessibleName(name)
        view.setMaximumHeight(self.fontMetrics().height() * 6)
        return view

    # --- state ---------------------------------------------------------------------------

    def side(self) -> Side:
        return Side(str(self.source.currentData()))

    def _fields_of(self, side: Side) -> list[FieldInfo]:
        return [] if self.fields is None else list(self.fields.side(side.value).fields)

    def _segments_of(self, side: Side) -> list[str]:
        return [] if self.fields is None else list(self.fields.side(side.value).segments)

    def _fields_loaded(self, fields: ConnectionFields) -> None:
        self.fields = fields
        self.ok.setEnabled(True)
        self._source_changed()

    def _source_changed(self) -> None:
        side = self.side()
        self.what.blockSignals(True)
        self.what.clear()
        for f in self._fields_of(side):
            self.what.addItem(f.label, f.key)
        self.what.insertSeparator(self.what.count())
        self.what.addItem(self.tr("Segment"), SEGMENT)
        self.what.addItem(self.tr("Subscription status"), SUBSCRIPTION)
        self.what.addItem(
            self.tr("Already exists in {app}").format(app=self.accounts[side.other]), EXISTS
        )
        self.what.blockSignals(False)
        self._what_changed()
        self.then_label.setText(
            self.tr("THEN create or update it in {app}, and:").format(app=self.accounts[side.other])
        )
        self.action_field.clear()
        for f in self._fields_of(side.other):
            if f.writable and not f.multi:
                self.action_field.addItem(f.label, f.key)
        self._action_kind_changed()
        # Conditions and actions name one side's fields: start over when the side changes.
        while self.filters.items:
            self.filters.remove(0)
        while self.action_items.items:
            self.action_items.remove(0)
        self._update_sentence()

    def _what_changed(self) -> None:
        what = self.what.currentData()
        self.op.blockSignals(True)
        self.op.clear()
        if what == SEGMENT:
            ops = [Op.HAS, Op.HAS_NOT]
            labels = [self.tr("is in"), self.tr("is not in")]
        elif what == SUBSCRIPTION:
            ops = [Op.SUBSCRIBED, Op.UNSUBSCRIBED]
            labels = [self.tr("is subscribed"), self.tr("is unsubscribed")]
        elif what == EXISTS:
            ops, labels = [Op.EXISTS], [self.tr("(update only, never create)")]
        else:
            ops = list(FIELD_OPS)
            labels = [self.tr(op.value) for op in ops]
        for op, label in zip(ops, labels, strict=True):
            self.op.addItem(label, op.value)
        self.op.blockSignals(False)
        self.value.clear()
        if what == SEGMENT:
            self.value.addItems(self._segments_of(self.side()))
        else:
            spec = next((f for f in self._fields_of(self.side()) if f.key == what), None)
            if spec is not None:
                self.value.addItems(list(spec.choices))
        self.value.setCurrentText("")
        self._op_changed()

    def _op_changed(self) -> None:
        op = self.op.currentData()
        self.value.setEnabled(op is not None and Op(op) not in NO_VALUE_OPS)

    def _action_kind_changed(self) -> None:
        kind = ActionKind(str(self.action_kind.currentData()))
        self.action_field.setVisible(kind is ActionKind.SET_FIELD)
        self.action_value.clear()
        if kind is not ActionKind.SET_FIELD:
            self.action_value.addItems(self._segments_of(self.side().other))
        self.action_value.setCurrentText("")

    def _add_filter(self) -> None:
        what, op = self.what.currentData(), self.op.currentData()
        if what is None or op is None:
            return
        value = self.value.currentText().strip()
        if what == SEGMENT:
            item = Filter(FilterKind.SEGMENT, Op(op), value)
        elif what == SUBSCRIPTION:
            item = Filter(FilterKind.SUBSCRIPTION, Op(op))
        elif what == EXISTS:
            item = Filter(FilterKind.EXISTS, Op.EXISTS)
        else:
            item = Filter(FilterKind.FIELD, Op(op), "" if Op(op) in NO_VALUE_OPS else value, what)
        try:
            Filter.from_json(item.to_json())  # the model's own checks, in its words
        except (ValueError, KeyError) as err:
            self.message.error(str(err).capitalize() + ".")
            return
        self.message.clear_message()
        self.filters.append(item)
        self.value.setCurrentText("")
        self._update_sentence()

    def _add_action(self) -> None:
        kind = ActionKind(str(self.action_kind.currentData()))
        value = self.action_value.currentText().strip()
        field = str(self.action_field.currentData() or "") if kind is ActionKind.SET_FIELD else ""
        item = Action(kind, value, field)
        try:
            Action.from_json(item.to_json())
        except (ValueError, KeyError) as err:
            self.message.error(str(err).capitalize() + ".")
            return
        self.message.clear_message()
        self.action_items.append(item)
        self.action_value.setCurrentText("")
        self._update_sentence()

    def _remove(self, model: SentenceListModel, view: QListView) -> None:
        model.remove(view.currentIndex().row())
        self._update_sentence()

    def draft(self) -> RuleDraft:
        return RuleDraft(
            self.side(),
            Join(str(self.join.currentData())),
            [f for f in self.filters.items if isinstance(f, Filter)],
            [a for a in self.action_items.items if isinstance(a, Action)],
            self.undo.isChecked(),
            self.other_way.isChecked(),
        )

    def _update_sentence(self) -> None:
        side = self.side()
        try:
            rule = self.draft().build("preview")
        except ConfigError as err:
            self.sentence.setText(str(err))
            return
        self.sentence.setText(rule.sentence(self.accounts[side], self.accounts[side.other]))

    def submit(self) -> None:
        name, draft = self.name, self.draft()

        def job(svc: Service, ctl: TaskControl) -> RuleInfo:
            return svc.add_rule(name, draft)

        self.ok.setEnabled(False)
        task = self.runner.start(job, on_done=self._added, on_error=self._error)
        self.progress.attach(task, self.tr("Checking the rule against both apps…"))

    def _added(self, view: RuleInfo) -> None:
        self.added = view
        self.accept()

    def _error(self, message: str, code: str) -> None:
        self.message.error(message)
        self.ok.setEnabled(self.fields is not None)
