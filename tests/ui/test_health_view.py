"""The Health tab over a real vCard folder and CSV file: status chip, lists with search and
reason filter, Failed with Retry / Ignore / raw error, Conflicts with "use the other value",
paging, and signing in again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtWidgets import QDialogButtonBox

from app.service import ConnectionSettings, Service
from app.ui.health_view import HealthView
from app.ui.reauth_dialog import ReauthDialog
from app.ui.tasks import TaskRunner
from tests.ui.desktop import Desk, desk, settle, write_csv

__all__ = ["desk"]


@pytest.fixture
def task_runner(qapp: Any) -> Iterator[TaskRunner]:
    """Outlives the test's call phase: queued results of its workers still find it."""
    tasks = TaskRunner(Service)
    yield tasks
    tasks.cancel_all()
    assert tasks.wait(30_000)


def health(desk: Desk, qtbot: Any) -> HealthView:
    view = HealthView(desk.service, desk.scheduler)
    qtbot.addWidget(view)
    view.set_connection(desk.name)
    view.show()
    return view


def tab_texts(view: HealthView) -> list[str]:
    settle(view.reader)
    return [view.tabs.tabText(i) for i in range(view.tabs.count())]


def cells(model: Any, column: int) -> list[str]:
    settle(model.reader)
    return [model.index(r, column).data() for r in range(model.rowCount())]


def search(box: Any, qtbot: Any, text: str) -> None:
    box.setText(text)
    box.returnPressed.emit()


def broken_card(desk: Desk, uid: str, fn: str, junk: str = "this is not a property") -> None:
    """A card the vCard folder cannot read: a failure of that contact alone (a value that
    does not fit is no failure since issue 12: it is listed under Not fitting)."""
    (desk.folder / f"{uid}.vcf").write_text(
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\n{junk}\r\nEND:VCARD\r\n",
        encoding="utf-8",
    )


def test_a_failed_contact_shows_and_goes_after_its_fix_and_retry(desk: Desk, qtbot: Any) -> None:
    broken_card(desk, "ann", "Ann Lee")
    desk.put_card("bo", "Bo Bee", "bo@x.com")
    view = health(desk, qtbot)
    desk.sync(qtbot)
    assert "Failed (1)" in tab_texts(view)  # settles the reads
    assert view.chip.text() == "1 failed"
    view.tabs.setCurrentWidget(view.failed)
    model = view.failed.model
    settle(view.reader)
    [(_code, count)] = model.groups
    assert count == 1
    group = model.index(0, 0)
    assert model.data(group).startswith("Could not be read (1)")
    view.failed.view.expand(group)
    qtbot.waitUntil(lambda: model.rowCount(group) == 1)
    row = [model.index(0, c, group).data() for c in range(5)]
    assert row[0] == "ann" and row[1] == "Phone" and "not a valid vCard" in row[2]
    # The raw error, on demand.
    sel = view.failed.view.selectionModel()
    sel.select(
        model.index(0, 0, group),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    assert view.failed.raw_button.isEnabled()
    view.failed.raw_button.click()
    qtbot.waitUntil(view.failed.raw.isVisible)
    assert view.failed.raw.isVisible() and "this is not a property" in view.failed.raw.toPlainText()
    # The user fixes the contact in the source app, then clicks Retry.
    desk.put_card("ann", "Ann Lee", "ann@x.com", "ann2@x.com")
    with qtbot.waitSignal(desk.scheduler.run_finished, timeout=20_000) as blocker:
        view.failed.retry_button.click()
    assert blocker.args[1]["status"] == "ok"
    qtbot.waitUntil(lambda: "Failed (0)" in tab_texts(view))
    assert view.failed.model.groups == [] and view.chip.text() == "Active"
    assert desk.rows()["ann@x.com"]["E-mail 2 Address"] == "ann2@x.com"


def test_values_that_do_not_fit_are_listed_not_failed(desk: Desk, qtbot: Any) -> None:
    """Issue 12: a 3rd e-mail into a sheet with two e-mail columns is no failure; the
    Not fitting tab names it, and the rest of the contact is in sync."""
    desk.put_card("ann", "Ann Lee", "ann@x.com", "ann2@x.com", "ann3@x.com")
    view = health(desk, qtbot)
    report = desk.sync(qtbot)
    assert report["status"] == "ok" and report["not_fitting"] == 1
    assert "Failed (0)" in tab_texts(view) and "Not fitting (1)" in tab_texts(view)
    assert view.chip.text() == "Active"
    view.tabs.setCurrentWidget(view.not_fitting)
    model = view.not_fitting.model
    qtbot.waitUntil(lambda: model.rowCount() == 1)
    assert [model.index(0, c).data() for c in range(4)] == [
        "Sheet",
        "Ann Lee",
        "emails",
        "ann3@x.com",
    ]
    search(view.not_fitting.search, qtbot, "nobody")
    qtbot.waitUntil(lambda: model.rowCount() == 0)
    assert desk.rows()["ann@x.com"]["E-mail 2 Address"] == "ann2@x.com"


def test_ignore_takes_a_failure_out_of_the_counts_until_the_contact_changes(
    desk: Desk, qtbot: Any
) -> None:
    card = desk.put_card("ann", "Ann Lee", "ann@x.com")
    view = health(desk, qtbot)
    desk.sync(qtbot)
    # The card file is marked read-only: the sheet's edit cannot be written there.
    card.chmod(0o444)
    rows = list(desk.rows().values())
    rows[0]["Job Title"] = "CEO"
    write_csv(desk.sheet, rows, list(rows[0]))
    desk.sync(qtbot)
    view.refresh()
    assert "Failed (1)" in tab_texts(view)
    view.tabs.setCurrentWidget(view.failed)
    tab = view.failed
    settle(view.reader)
    group = tab.model.index(0, 0)
    tab.view.selectionModel().select(
        group,
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    tab.ignore_button.click()  # a whole group at once
    settle(view.reader)
    assert "Failed (0)" in tab_texts(view) and view.chip.text() == "Active"
    assert desk.service.health_counts(desk.name).ignored == 1
    assert desk.service.health(desk.name).counts.failed == 0  # the CLI agrees
    tab.show_ignored.setChecked(True)
    settle(view.reader)
    assert tab.model.groups and tab.ignore_button.text() == "Stop ignoring"
    # Not retried while ignored: later runs leave it alone.
    desk.sync(qtbot)
    [row] = desk.service.failures_page(desk.name, tab.model.groups[0][0], ignored=True)
    assert row.attempts == 1 and "ann.vcf is read-only" in row.message
    # Once the contact changes (and still fails), it counts again.
    card.chmod(0o644)
    desk.put_card("ann", "Ann Lee", "ann@x.com", phone="+44 7700 900123")
    card.chmod(0o444)
    desk.sync(qtbot)
    assert desk.service.health_counts(desk.name).failed == 1


def test_lists_page_search_and_filter_by_reason(desk: Desk, qtbot: Any) -> None:
    for i in range(450):
        desk.put_card(f"p{i:03}", f"Person {i:03}", f"p{i:03}@x.com")
    desk.put_card("bob", "Bob NoMail")
    write_csv(
        desk.sheet,
        [
            {"First Name": "Dave", "Last Name": "One", "E-mail Address": "dave@x.com"},
            {"First Name": "Dave", "Last Name": "Two", "E-mail Address": "dave@x.com"},
        ],
    )
    view = health(desk, qtbot)
    desk.sync(qtbot)
    texts = tab_texts(view)
    assert texts[:3] == ["In sync (450)", "Excluded (1)", "Duplicates (2)"]
    model = view.in_sync.model
    assert model.rowCount() == 200 and model.canFetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    model.fetchMore(QModelIndex())  # one page at a time: this one waits for the first
    settle(view.reader)
    assert model.rowCount() == 400
    model.fetchMore(QModelIndex())
    settle(view.reader)
    assert model.rowCount() == 450 and not model.canFetchMore(QModelIndex())
    assert cells(model, 0)[:2] == ["Person 000", "Person 001"]  # by name, no gaps
    assert len(set(cells(model, 0))) == 450
    search(view.in_sync.search, qtbot, "p123@")  # by email
    assert cells(view.in_sync.model, 0) == ["Person 123"]
    search(view.in_sync.search, qtbot, "person 44")  # by name, any case
    assert len(cells(view.in_sync.model, 0)) == 10
    view.tabs.setCurrentWidget(view.excluded)
    settle(view.reader)
    combo = view.excluded.reason
    assert [combo.itemText(i) for i in range(combo.count())] == ["All reasons", "no email (1)"]
    combo.setCurrentIndex(1)
    assert cells(view.excluded.model, 1) == ["Bob NoMail"]
    assert cells(view.excluded.model, 0) == ["Phone"]
    view.tabs.setCurrentWidget(view.duplicates)
    assert sorted(cells(view.duplicates.model, 1)) == ["Dave One", "Dave Two"]


def test_use_the_other_value_from_the_conflicts_tab(desk: Desk, qtbot: Any) -> None:
    desk.put_card("ann", "Ann Lee", "ann@x.com", title="CTO")
    desk.sync(qtbot)
    desk.put_card("ann", "Ann Lee", "ann@x.com", title="CEO")
    rows = desk.rows()
    rows["ann@x.com"]["Job Title"] = "Chief"
    write_csv(desk.sheet, list(rows.values()), header=list(rows["ann@x.com"]))
    view = health(desk, qtbot)
    report = desk.sync(qtbot)
    assert report["conflicts"] == 1 and desk.rows()["ann@x.com"]["Job Title"] == "CEO"
    view.tabs.setCurrentWidget(view.conflicts)
    tab = view.conflicts
    settle(view.reader)
    assert tab.model.rowCount() == 1
    assert [tab.model.index(0, c).data() for c in range(5)] == [
        "Ann Lee",
        "title=title",
        "CEO",
        "Chief",
        "Phone",
    ]
    assert tab.model.headerData(2, Qt.Orientation.Horizontal) == "Value in Phone"
    assert not tab.use_other.isEnabled()
    tab.view.selectRow(0)
    assert tab.use_other.isEnabled()
    with qtbot.waitSignal(desk.scheduler.run_finished, timeout=20_000) as blocker:
        tab.use_other.click()
    assert blocker.args[1]["kind"] == "use_other" and blocker.args[1]["status"] == "ok"
    assert desk.rows()["ann@x.com"]["Job Title"] == "Chief"
    assert "TITLE:Chief" in (desk.folder / "ann.vcf").read_text()
    settle(view.reader)
    assert tab.model.index(0, 4).data() == "Sheet (changed by you)"
    tab.view.selectRow(0)
    assert not tab.use_other.isEnabled()
    assert desk.sync(qtbot)["updated"] == {"a": 0, "b": 0}  # S17


def test_health_pages_stay_fast_over_many_contacts(desk: Desk, qtbot: Any) -> None:
    """5,000 indexed contacts (CI size; tests/perf/bench_health.py measures 100k): the
    first page and any later page each cost one short query."""
    from tests.perf.bench_health import fill_index

    cid = desk.service._connections.connection(desk.name).id
    fill_index(desk.service, cid, 5_000)
    view = health(desk, qtbot)
    model = view.in_sync.model
    assert "In sync (5,000)" in tab_texts(view) and model.rowCount() == 200
    slowest = 0.0
    while model.canFetchMore(QModelIndex()):
        start = time.perf_counter()
        model.fetchMore(QModelIndex())
        settle(view.reader)
        slowest = max(slowest, time.perf_counter() - start)
    assert model.rowCount() == 5_000
    assert slowest < 0.25, f"a page took {slowest * 1000:.0f} ms"


@pytest.mark.slow
def test_needs_sign_in_then_signing_in_again_resumes(
    desk: Desk, qtbot: Any, radicale: Any, task_runner: TaskRunner
) -> None:
    from tests.dav import PASSWORD, USER

    book = radicale.new_book()
    desk.service.add_account(
        "carddav", "Server", {"url": radicale.url, "username": USER, "addressbook": book}, PASSWORD
    )
    desk.service.create_connection("Cloud", "Phone", "Server", ConnectionSettings())
    desk.service.delete_connection(desk.name)
    desk.name = "Cloud"
    desk.put_card("ann", "Ann Lee", "ann@x.com")
    assert desk.sync(qtbot)["status"] == "ok"
    desk.service._secrets.set("Server", "an-old-password")  # the password changed meanwhile
    view = health(desk, qtbot)
    report = desk.sync(qtbot)
    assert report["status"] == "auth"
    settle(view.reader)
    assert view.chip.text() == "Needs re-authorization"
    [button] = view.sign_in_buttons
    assert button.text() == "Sign in to Server again"
    asked: list[str] = []
    view.sign_in_requested.connect(asked.append)
    button.click()
    assert asked == ["Server"]
    dialog = ReauthDialog(desk.service, task_runner, "Server")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.reauthorized.connect(lambda names: desk.scheduler.sync_now(names))
    dialog.secret.setText("wrong")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=20_000)  # refused: still asks
    assert "refused the user name or password" in dialog.error.text()
    dialog.secret.setText(PASSWORD)
    with qtbot.waitSignal(desk.scheduler.run_finished, timeout=30_000) as blocker:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert blocker.args[1]["status"] == "ok"
    qtbot.waitUntil(lambda: view.chip.text() == "Active", timeout=5_000)
    assert view.sign_in_buttons == []
    assert desk.service.show_connection("Cloud").settings.direction == "two-way"  # config kept
