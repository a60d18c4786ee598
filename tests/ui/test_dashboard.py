"""The connection dashboard over real files: mappings (with refusals and their reasons),
rules (with live counts), settings, pause and delete, and a preview that agrees with
``pairsync sync --dry-run --json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.qtbot import QtBot

from app.cli import main as cli_main
from app.service import MappingInfo, Service
from app.ui.dashboard.dashboard import ConnectionDashboard
from app.ui.dashboard.mappings_editor import AddMappingDialog, MappingsEditor
from app.ui.dashboard.rules_editor import AddRuleDialog, RulesEditor
from app.ui.main_window import MainWindow
from app.ui.tasks import TaskRunner
from tests.ui.contacts import card, read_csv, write_csv
from tests.ui.desktop import WriteLock

WAIT = 20_000


def idle(qtbot: QtBot, runner: TaskRunner) -> None:
    qtbot.waitUntil(lambda: runner.active == 0, timeout=WAIT)


@pytest.fixture
def dashboard(
    qtbot: QtBot, service: Service, runner: TaskRunner, connection: str
) -> ConnectionDashboard:
    board = ConnectionDashboard(service, runner)
    qtbot.addWidget(board)
    board.show()
    board.set_connection(connection)
    idle(qtbot, runner)
    return board


def row_of(rows: list[MappingInfo], key: str) -> int:
    return next(i for i, r in enumerate(rows) if r.key == key)


def find_row(model: Any, key: str) -> QModelIndex:
    return next(model.index(i, 0) for i in range(model.rowCount()) if model.fields[i].key == key)


def test_custom_mapping_greys_incompatible_fields_with_the_reason(
    qtbot: QtBot, dashboard: ConnectionDashboard, runner: TaskRunner, service: Service
) -> None:
    dashboard.setCurrentWidget(dashboard.mappings_editor)
    editor: MappingsEditor = dashboard.mappings_editor
    idle(qtbot, runner)
    model = editor.model
    websites = row_of(model.rows, "urls=urls")
    assert model.rows[websites].enabled is True
    # Untick Websites: it is saved, and the CSV's Web Page column becomes free.
    model.setData(
        model.index(websites, 0), Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole
    )
    qtbot.waitUntil(lambda: not model.rows[row_of(model.rows, "urls=urls")].enabled, timeout=WAIT)
    assert "urls=urls" in service.export_connection("Main")["config"]["mappings"]["off"]

    editor.add_mapping()
    dialog = editor.findChild(AddMappingDialog)
    assert dialog is not None and dialog.isVisible()
    assert not dialog.list_b.isEnabled()  # pick a field in A first
    dialog.list_a.setCurrentIndex(find_row(dialog.model_a, "birthday"))
    qtbot.waitUntil(lambda: dialog.picked is not None, timeout=WAIT)
    assert dialog.list_b.isEnabled()

    # Websites (a web address) cannot hold a date, and says so.
    web = find_row(dialog.model_b, "urls")
    reason = web.data(Qt.ItemDataRole.ToolTipRole)
    assert reason == "Field Birthday is not compatible with field Websites: date vs web address."
    assert web.data(Qt.ItemDataRole.ForegroundRole) is not None  # greyed
    dialog.list_b.setCurrentIndex(web)
    assert not dialog.ok.isEnabled()
    assert reason in dialog.reason.text()
    # Emails is taken by a default mapping.
    taken = find_row(dialog.model_b, "email").data(Qt.ItemDataRole.ToolTipRole)
    assert taken == "E-mail Address in CSV file is already mapped."

    # Score (text) can take a birthday one way only: offered, with the direction limited.
    score = find_row(dialog.model_b, "col:Score")
    dialog.list_b.setCurrentIndex(score)
    assert dialog.ok.isEnabled()
    enabled = {
        dialog.direction.itemData(i): dialog.direction.model().item(i).isEnabled()  # type: ignore[attr-defined]
        for i in range(dialog.direction.count())
    }
    assert enabled == {"two-way": False, "a-to-b": True, "b-to-a": False}
    assert dialog.direction.currentData() == "a-to-b"
    qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT)
    idle(qtbot, runner)
    custom = model.rows[row_of(model.rows, "custom:birthday=col:Score")]
    assert custom.effective == "a-to-b" and custom.kind == "custom"
    keys = [m.key for m in service.mappings("Main")]
    assert "custom:birthday=col:Score" in keys


def test_value_table_is_saved_with_the_mapping(
    qtbot: QtBot, dashboard: ConnectionDashboard, runner: TaskRunner, service: Service
) -> None:
    dashboard.setCurrentWidget(dashboard.mappings_editor)
    editor = dashboard.mappings_editor
    idle(qtbot, runner)
    editor.add_mapping()
    dialog = editor.findChild(AddMappingDialog)
    assert dialog is not None
    dialog.list_a.setCurrentIndex(find_row(dialog.model_a, "nickname"))
    qtbot.waitUntil(lambda: dialog.picked is not None, timeout=WAIT)
    dialog.list_b.setCurrentIndex(find_row(dialog.model_b, "col:Score"))
    dialog.values_box.setChecked(True)
    for source, target in (("Gold", "5"), ("Bronze", "")):
        row = dialog.values.add_row()
        dialog.values.setData(dialog.values.index(row, 0), source)
        dialog.values.setData(dialog.values.index(row, 1), target)
    assert dialog.values.index(1, 1).data() == "(leave unchanged)"
    qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT)
    custom = next(m for m in service.mappings("Main") if m.kind == "custom")
    assert custom.values["a_to_b"] == {"Gold": "5", "Bronze": None}


def test_add_rule_shows_its_sentence_and_live_count(
    qtbot: QtBot, dashboard: ConnectionDashboard, runner: TaskRunner, service: Service
) -> None:
    dashboard.setCurrentWidget(dashboard.rules_editor)
    editor: RulesEditor = dashboard.rules_editor
    idle(qtbot, runner)
    assert editor.model.count_text(editor.model.rows[0]) == "—"  # counted after a first sync
    service.sync(["Main"])
    editor.reload()
    idle(qtbot, runner)
    assert editor.model.count_text(editor.model.rows[0]) == "6"  # every card in A, Eve too

    editor.add_rule()
    dialog = editor.findChild(AddRuleDialog)
    assert dialog is not None
    qtbot.waitUntil(lambda: bool(dialog.fields), timeout=WAIT)
    dialog.what.setCurrentIndex(dialog.what.findData("~segment"))
    assert dialog.value.isEnabled()
    dialog.value.setCurrentText("Customers")
    qtbot.mouseClick(dialog.add_filter_button, Qt.MouseButton.LeftButton)
    dialog.action_kind.setCurrentIndex(dialog.action_kind.findData("add_segment"))
    dialog.action_value.setCurrentText("Customers")
    qtbot.mouseClick(dialog.add_action_button, Qt.MouseButton.LeftButton)
    sentence = dialog.sentence.text()
    assert sentence == (
        "IF a contact in Phone is in segment “Customers” THEN create or update it in Sheet "
        "and add to segment “Customers”"
    )
    qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT)
    idle(qtbot, runner)
    rows = editor.model.rows
    assert len(rows) == 3
    assert rows[2].sentence == sentence
    assert editor.model.count_text(rows[2]) == "2"  # Carol and Dan are customers
    assert "2" in editor.model.index(2, 2).data(Qt.ItemDataRole.AccessibleTextRole)

    # Toggles: Other way around on, then the rule moved to the top, then off.
    index = editor.model.index(2, 4)
    editor.model.setData(index, Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    qtbot.waitUntil(lambda: editor.model.rows[2].other_way, timeout=WAIT)
    assert "Other way around: IF a contact in Sheet is in segment" in editor.model.sentence(
        editor.model.rows[2]
    )
    idle(qtbot, runner)
    editor.table.selectRow(2)
    qtbot.mouseClick(editor.up_button, Qt.MouseButton.LeftButton)
    idle(qtbot, runner)
    assert editor.model.rows[1].sentence == sentence
    assert [r.position for r in service.rules("Main")] == [1, 2, 3]


def test_a_rule_that_fights_a_mapping_is_refused_in_words(
    qtbot: QtBot, dashboard: ConnectionDashboard, runner: TaskRunner
) -> None:
    dashboard.setCurrentWidget(dashboard.rules_editor)
    editor = dashboard.rules_editor
    idle(qtbot, runner)
    editor.add_rule()
    dialog = editor.findChild(AddRuleDialog)
    assert dialog is not None
    qtbot.waitUntil(lambda: bool(dialog.fields), timeout=WAIT)
    dialog.action_kind.setCurrentIndex(dialog.action_kind.findData("set_field"))
    dialog.action_field.setCurrentIndex(dialog.action_field.findData("title"))
    dialog.action_value.setCurrentText("Customer")
    qtbot.mouseClick(dialog.add_action_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "already writes" in dialog.message.text(), timeout=WAIT)
    assert dialog.isVisible() and len(editor.model.rows) == 2


def test_preview_counts_equal_the_cli_dry_run(
    qtbot: QtBot,
    dashboard: ConnectionDashboard,
    runner: TaskRunner,
    service: Service,
    books: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, sheet = books

    def cli_dry_run() -> dict[str, Any]:
        assert cli_main(["sync", "Main", "--dry-run", "--json"]) == 0
        return dict(json.loads(capsys.readouterr().out)[0])

    def ui_preview() -> Any:
        dashboard.setCurrentWidget(dashboard.preview_view)
        view = dashboard.preview_view
        with qtbot.waitSignal(view.finished, timeout=WAIT):
            qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
        assert view.preview is not None
        return view.preview

    keys = ("status", "matched", "created", "updated", "excluded", "duplicates", "conflicts")
    for step in ("first", "after edits"):
        if step == "after edits":
            service.sync(["Main"])
            (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", title="CEO"))
            (folder / "zoe.vcf").write_text(card("zoe", "Zoe Zed", "zoe@x.com"))
            rows = read_csv(sheet)
            rows[1]["Company"] = "Globex"  # Eve, in both apps now
            write_csv(sheet, list(rows[0]), [list(r.values()) for r in rows])
        preview = ui_preview()
        expected = cli_dry_run()
        got = {k: preview.report[k] for k in keys}
        assert got == {k: expected[k] for k in keys}, (step, preview.excluded_by_reason)
        assert sum(preview.excluded_by_reason.values()) == expected["excluded"]
        view = dashboard.preview_view
        assert view.values["matched"].text() == str(expected["matched"])
        assert view.values["create_a"].text() == str(expected["created"]["a"])
        assert view.values["update_b"].text() == str(expected["updated"]["b"])
    assert expected["updated"] == {"a": 1, "b": 1} and expected["created"] == {"a": 0, "b": 1}


def test_preview_can_be_cancelled(
    qtbot: QtBot, dashboard: ConnectionDashboard, runner: TaskRunner
) -> None:
    view = dashboard.preview_view
    dashboard.setCurrentWidget(view)
    with qtbot.waitSignal(view.finished, timeout=WAIT):
        view.start()
        assert view.running and view.progress.isVisible()
        view.progress.cancel_button.click()
        assert not view.progress.isVisible()  # the UI moves on at once
    idle(qtbot, runner)
    # Either the worker stopped at a safe point, or it was already done: never half a state.
    assert view.preview is None or view.preview.status == "ok"
    assert not view.running and view.start_button.isEnabled()


def test_deleting_a_running_connection_waits_for_its_pause(
    qtbot: QtBot,
    window: MainWindow,
    runner: TaskRunner,
    service: Service,
    connection: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Delete pauses the connection first; while another process holds the write lock
    the pause waits off the GUI thread, and the delete starts only once it is saved, so
    no save lands on a connection already gone ("there is no connection…")."""
    window.refresh()
    page = window.dashboard.settings_page
    qtbot.waitUntil(lambda: page.conn is not None and page.conn.name == "Main", timeout=WAIT)
    monkeypatch.setattr(type(page), "confirm_delete", lambda self: True)
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    lock = WriteLock(service.paths.database)
    try:
        qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
        assert not page.delete_button.isEnabled() and not page.pause_button.isEnabled()
        qtbot.wait(300)
        assert [c.name for c in service.list_connections()] == ["Main"]  # behind the lock
    finally:
        lock.release()
    qtbot.waitUntil(lambda: service.list_connections() == [], timeout=WAIT)
    idle(qtbot, runner)
    assert window.stack.currentWidget() is window.empty
    assert not any("no connection" in m for m in messages), messages
    assert not page.message.text().startswith("⚠"), page.message.text()


def test_settings_pause_and_delete(
    qtbot: QtBot,
    window: MainWindow,
    runner: TaskRunner,
    service: Service,
    connection: str,
    books: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window.refresh()
    page = window.dashboard.settings_page
    qtbot.waitUntil(lambda: page.conn is not None and page.conn.name == "Main", timeout=WAIT)
    assert page.form.radios["two-way"].isChecked()
    page.form.radios["a-to-b"].click()
    idle(qtbot, runner)
    assert service.show_connection("Main").settings.direction == "a-to-b"
    assert not page.form.winner.isEnabled()  # one-way: the source always wins
    assert window.model.rows[0].direction == "a-to-b"

    page.form.region.setText("gb")
    page.form.region.editingFinished.emit()
    idle(qtbot, runner)
    assert service.show_connection("Main").settings.phone_region == "GB"

    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    assert page.pause_button.text().replace("&", "") == "Resume syncing"  # shown at once
    assert not page.pause_button.isEnabled()  # while it is saved: no double pause/resume
    idle(qtbot, runner)
    assert page.pause_button.isEnabled()
    assert service.show_connection("Main").paused is True
    assert page.pause_button.text().replace("&", "") == "Resume syncing"
    assert window.header.chip.text() == "Paused"
    assert not window.header.sync_button.isEnabled()

    monkeypatch.setattr(type(page), "confirm_delete", lambda self: True)
    assert "never changes or deletes a contact" in page.note.text()
    before = sorted(p.read_bytes() for p in books[0].glob("*.vcf"))
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert not page.delete_button.isEnabled()  # deleting, off the GUI thread
    idle(qtbot, runner)
    assert service.list_connections() == []
    assert window.stack.currentWidget() is window.empty
    assert sorted(p.read_bytes() for p in books[0].glob("*.vcf")) == before


def test_settings_name_the_subscription_column(
    qtbot: QtBot, dashboard: ConnectionDashboard, runner: TaskRunner, service: Service
) -> None:
    """What ``account add … --set subscription=Newsletter`` does, from the Settings tab: the
    CSV side gets a column field, the vCard folder side a property field."""
    dashboard.setCurrentWidget(dashboard.settings_page)
    form = dashboard.settings_page.form
    qtbot.waitUntil(lambda: dashboard.settings_page.conn is not None, timeout=WAIT)
    conn = service.show_connection("Main")
    kinds = {conn.a.kind: "a", conn.b.kind: "b"}
    csv_side, vcard_side = kinds["csv"], kinds["vcard-folder"]
    assert form.subscription[csv_side].isVisibleTo(form)
    assert "column" in form.subscription_labels[csv_side].text()
    assert "property" in form.subscription_labels[vcard_side].text()

    form.subscription[csv_side].setText("Newsletter")
    form.subscription[csv_side].editingFinished.emit()
    idle(qtbot, runner)
    account = getattr(service.show_connection("Main"), csv_side)
    assert account.subscription == "Newsletter"
    assert service.account(account.account).settings["subscription"] == "Newsletter"

    form.subscription[csv_side].setText("")
    form.subscription[csv_side].editingFinished.emit()
    idle(qtbot, runner)
    assert "subscription" not in service.account(account.account).settings
