"""The Activity tab over a real vCard folder and CSV file: runs, the chart, the journal, and
undo (a whole run, one contact, created contacts kept in "Pairsync Trash")."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex

from app.ui.activity_view import TRASH_NOTE, ActivityView
from tests.ui.desktop import Desk, desk, settle, write_csv

__all__ = ["desk"]


def activity(desk: Desk, qtbot: Any) -> tuple[ActivityView, list[str]]:
    view = ActivityView(desk.service, desk.scheduler)
    qtbot.addWidget(view)
    asked: list[str] = []

    def yes(title: str, text: str) -> bool:
        asked.append(text)
        return True

    view.confirm = yes
    view.set_connection(desk.name)
    view.show()
    return view, asked


def column(model: Any, col: int) -> list[str]:
    settle(model.reader)
    return [model.index(r, col).data() for r in range(model.rowCount())]


def undo(view: ActivityView, qtbot: Any, desk: Desk, button: Any) -> dict[str, Any]:
    with qtbot.waitSignal(desk.scheduler.run_finished, timeout=20_000) as blocker:
        button.click()
    report: dict[str, Any] = blocker.args[1]
    return report


def test_undoing_a_run_restores_the_previous_values_in_both_apps(desk: Desk, qtbot: Any) -> None:
    card = desk.put_card("ann", "Ann Lee", "ann@x.com", title="CTO", phone="+44 7700 900001")
    write_csv(
        desk.sheet,
        [
            {
                "First Name": "Ann",
                "Last Name": "Lee",
                "E-mail Address": "ann@x.com",
                "Company": "Acme",
            }
        ],
    )
    before_card, before_sheet = card.read_text(), desk.rows()["ann@x.com"]
    view, asked = activity(desk, qtbot)
    report = desk.sync(qtbot)
    assert report["updated"] == {"a": 1, "b": 1}  # each app got what the other had
    assert "ORG:Acme" in card.read_text()
    assert desk.rows()["ann@x.com"]["Job Title"] == "CTO"
    # The run, its counts and the chart.
    assert column(view.runs, 0) == ["#1"] and column(view.runs, 6) == ["2"]
    assert view.chart.points("updated")[0][1] == 2
    # Its journal, field by field, in both apps.
    changes = {(r.side, r.field) for r in view.journal.rows}
    assert ("a", "organization") in changes and ("b", "title") in changes
    assert view.undo_run_button.isEnabled()
    result = undo(view, qtbot, desk, view.undo_run_button)
    assert result["kind"] == "undo" and result["status"] == "ok" and not result["skipped"]
    assert TRASH_NOTE in asked[0]  # the user was told nothing is deleted
    # Both apps hold what they held before the run.
    assert "ORG" not in card.read_text() and "TITLE:CTO" in card.read_text()
    after = desk.rows()["ann@x.com"]
    assert (after["Job Title"], after["Mobile Phone"]) == ("", "")
    assert after["Company"] == before_sheet["Company"] == "Acme"
    assert before_card.count("TEL") == card.read_text().count("TEL")
    # The undo is a run of its own, listed; and the next run writes nothing (S17).
    qtbot.waitUntil(lambda: column(view.runs, 0) == ["#2", "#1"])
    assert column(view.runs, 1)[0] == "Undo of #1"
    assert "put back" in view.status.text()
    report = desk.sync(qtbot)
    assert report["updated"] == {"a": 0, "b": 0} and report["created"] == {"a": 0, "b": 0}


def test_undo_one_contact_leaves_the_others(desk: Desk, qtbot: Any) -> None:
    desk.put_card("ann", "Ann Lee", "ann@x.com", title="CTO")
    desk.put_card("bo", "Bo Bee", "bo@x.com", title="Dev")
    view, _asked = activity(desk, qtbot)
    desk.sync(qtbot)
    desk.put_card("ann", "Ann Lee", "ann@x.com", title="CEO")
    desk.put_card("bo", "Bo Bee", "bo@x.com", title="Lead")
    desk.sync(qtbot)
    qtbot.waitUntil(lambda: view.runs.rowCount() == 2)
    view.runs_view.selectRow(0)
    names = column(view.journal, 1)
    assert sorted(names) == ["Ann Lee", "Bo Bee"]
    view.journal_view.selectRow(names.index("Ann Lee"))
    assert view.undo_contact_button.isEnabled()
    result = undo(view, qtbot, desk, view.undo_contact_button)
    assert result["restored"] == 1
    rows = desk.rows()
    assert rows["ann@x.com"]["Job Title"] == "CTO"  # put back
    assert rows["bo@x.com"]["Job Title"] == "Lead"  # untouched
    assert desk.sync(qtbot)["updated"] == {"a": 0, "b": 0}


def test_undo_keeps_created_contacts_and_marks_them_for_review(desk: Desk, qtbot: Any) -> None:
    desk.put_card("carl", "Carl Cox", "carl@x.com")
    view, _asked = activity(desk, qtbot)
    desk.sync(qtbot)
    view.created_only.setChecked(True)
    assert set(column(view.journal, 2)) == {"created"}
    assert "Carl Cox" in column(view.journal, 1)
    result = undo(view, qtbot, desk, view.undo_run_button)
    assert result["trashed"] == {"a": 0, "b": 1}
    assert "Pairsync Trash" in result["message"]
    row = desk.rows()["carl@x.com"]
    assert row["Categories"] == "Pairsync Trash" and row["First Name"] == "Carl"
    assert (desk.folder / "carl.vcf").exists()
    assert "Pairsync Trash" not in (desk.folder / "carl.vcf").read_text()  # not synced back
    assert desk.sync(qtbot)["updated"] == {"a": 0, "b": 0}


def test_nothing_to_undo_is_said_not_done(desk: Desk, qtbot: Any) -> None:
    desk.put_card("ann", "Ann Lee", "ann@x.com")
    view, _asked = activity(desk, qtbot)
    desk.sync(qtbot)
    desk.sync(qtbot)  # nothing changed: a run that wrote nothing
    qtbot.waitUntil(lambda: view.runs.rowCount() == 2)
    view.runs_view.selectRow(0)
    settle(view.reader)
    assert view.journal.rowCount() == 0 and not view.undo_run_button.isEnabled()
    with qtbot.waitSignal(desk.scheduler.job_failed, timeout=20_000):
        desk.scheduler.undo(desk.name, view.runs.rows[0].id)
    assert "nothing to undo" in view.status.text()
    assert view.runs.canFetchMore(QModelIndex()) is False
