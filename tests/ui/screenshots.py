"""Screenshots of the desktop app: the main window, every wizard page, the dashboard with its
Health and Activity tabs, the window on a desktop without a system tray, in the light and
dark palettes and at 200 % scaling.

    python -m tests.ui.screenshots OUTDIR            # offscreen (no display needed)
    xvfb-run python -m tests.ui.screenshots OUTDIR   # or under Xvfb, when it is installed

It drives the real app (the window wired by ``app.ui.app_wiring.wire``, syncing through its
scheduler) over sample address books in a temporary PAIRSYNC_HOME with an in-memory keyring
(nothing of yours is read or written), the way the tests do, and saves ``QWidget.grab()``
images. The desktop is taken to have a system tray, except for the one image that shows the
banner of a desktop without one. The README shows the ones in ``resources/screenshots/``.
Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring
from PySide6.QtCore import QEventLoop, QItemSelectionModel, Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget, QWizard

from app.model import Side
from app.service import Service
from app.ui import tray
from app.ui.app_wiring import Wiring, wire
from app.ui.dashboard.mappings_editor import AddMappingDialog
from app.ui.dashboard.rules_editor import AddRuleDialog
from app.ui.main import create_app
from app.ui.main_window import MainWindow
from app.ui.tasks import TaskRunner
from tests.conftest import MemoryKeyring
from tests.ui.contacts import address_books, card, read_csv, write_csv
from tests.ui.desktop import settle as settle_reads


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Let the event loop run until ``condition`` holds (workers deliver their results)."""
    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(20)

    def check() -> None:
        if condition() or time.monotonic() > deadline:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    if not condition():
        raise TimeoutError("the app did not get there in time")


def settle(ms: int = 50) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def dark_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#2b2b2e",
        QPalette.ColorRole.WindowText: "#e8e8ea",
        QPalette.ColorRole.Base: "#1f1f22",
        QPalette.ColorRole.AlternateBase: "#29292d",
        QPalette.ColorRole.Text: "#e8e8ea",
        QPalette.ColorRole.Button: "#35353a",
        QPalette.ColorRole.ButtonText: "#e8e8ea",
        QPalette.ColorRole.Highlight: "#2f6fb5",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: "#35353a",
        QPalette.ColorRole.ToolTipText: "#e8e8ea",
        QPalette.ColorRole.PlaceholderText: "#9a9aa0",
        QPalette.ColorRole.Link: "#7fb2ff",
        QPalette.ColorRole.Light: "#4a4a50",
        QPalette.ColorRole.Midlight: "#404046",
        QPalette.ColorRole.Mid: "#5a5a60",
        QPalette.ColorRole.Dark: "#141416",
        QPalette.ColorRole.Shadow: "#000000",
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.ButtonText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#707075"))
    return p


class Shooter:
    def __init__(self, out: Path, suffix: str) -> None:
        self.out = out
        self.suffix = suffix
        self.saved: list[Path] = []

    def __call__(self, widget: QWidget, name: str) -> None:
        settle()
        path = self.out / f"{name}{self.suffix}.png"
        widget.grab().save(str(path))
        self.saved.append(path)


def idle(wiring: Wiring) -> bool:
    return wiring.scheduler.running() is None and not wiring.scheduler.queued()


def count_runs(wiring: Wiring) -> list[str]:
    """The connections whose runs finished, in order. ``idle`` alone does not tell that a
    run happened: a new connection's first sync starts once its resume is saved, a moment
    after the wizard closes, so the window looks idle before it (a shot taken then shows
    "Starting (step 1 of 5)" and the next ones a run still going)."""
    finished: list[str] = []
    wiring.scheduler.run_finished.connect(lambda name, _report: finished.append(name))
    return finished


def wired_window(service: Service, runner: TaskRunner, with_tray: bool) -> Wiring:
    tray.system_tray_available = lambda: with_tray  # type: ignore[assignment]
    window = MainWindow(service, runner)
    wiring = wire(window, service, runner, quit_app=lambda: None)
    window.resize(1100, 720)
    window.show()
    return wiring


def some_changes(folder: Path, sheet: Path) -> None:
    """After the first sync, as a user's week goes: a new customer and a changed title in
    the folder, a new row and a changed phone in the CSV (the Preview's pending work)."""
    (folder / "fay.vcf").write_text(card("fay", "Fay Green", "fay@x.com", categories="Customers"))
    carol = (folder / "carol.vcf").read_text()
    (folder / "carol.vcf").write_text(carol.replace("END:VCARD", "TITLE:Buyer\r\nEND:VCARD"))
    rows = read_csv(sheet)
    header = list(rows[0])  # every column, also those Pairsync added
    for row in rows:
        if row["E-mail Address"] == "eve@x.com":
            row["Mobile Phone"] = "+44 7700 900456"
    gil = dict.fromkeys(header, "")
    gil.update({"First Name": "Gil", "Last Name": "Moss", "E-mail Address": "gil@x.com"})
    write_csv(sheet, header, [[r[c] for c in header] for r in [*rows, gil]])


def some_trouble(folder: Path, sheet: Path) -> None:
    """After the first sync: a card cut off (unreadable), a contact with two emails (the
    CSV holds one), and Ann's job title changed in both apps (a conflict)."""
    (folder / "gus.vcf").write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Gus Cut\r\n")
    text = card("hal", "Hal Two", "hal@x.com").replace(
        "END:VCARD", "EMAIL;TYPE=INTERNET:hal@home.example\r\nEND:VCARD"
    )
    (folder / "hal.vcf").write_text(text)
    ann = (folder / "ann.vcf").read_text()
    (folder / "ann.vcf").write_text(ann.replace("END:VCARD", "TITLE:CEO\r\nEND:VCARD"))
    rows = read_csv(sheet)
    for row in rows:
        if row["E-mail Address"] == "ann@x.com":
            row["Job Title"] = "Founder"
    header = list(rows[0])  # every column, also those Pairsync added
    write_csv(sheet, header, [[r[c] for c in header] for r in rows])


def run(out: Path, suffix: str, only_main: bool) -> list[Path]:
    keyring.set_keyring(MemoryKeyring())
    home = Path(tempfile.mkdtemp(prefix="pairsync-shots-"))
    os.environ["PAIRSYNC_HOME"] = str(home / "pairsync")
    app = create_app([])
    app.setStyle("Fusion")
    folder, sheet = address_books(home)
    service = Service()
    runner = TaskRunner(Service)
    wiring = wired_window(service, runner, with_tray=True)
    window = wiring.window
    wiring.start()
    shot = Shooter(out, suffix)
    finished = count_runs(wiring)

    shot(window, "01-main-window-empty")
    window.new_action.trigger()
    wizard = window.wizard
    assert wizard is not None
    wizard.resize(900, 680)
    wizard.apps_page.pickers[Side.A].search.setText("vcard")
    wizard.apps_page.pickers[Side.A].pick_first()
    wizard.apps_page.pickers[Side.B].select("csv")
    if not only_main:
        shot(wizard, "02-wizard-apps")
    wizard.next()
    page_a = wizard.account_pages[Side.A]
    assert page_a.form is not None
    page_a.form.edits["path"].setText(str(folder))
    page_a.connect_account()
    wait_until(page_a.isComplete)
    if not only_main:
        shot(wizard, "03-wizard-connect-first-app")
    wizard.next()
    page_b = wizard.account_pages[Side.B]
    assert page_b.form is not None
    page_b.form.edits["path"].setText(str(sheet))
    page_b.connect_account()
    wait_until(page_b.isComplete)
    if not only_main:
        shot(wizard, "04-wizard-connect-second-app")
    wizard.next()
    wait_until(wizard.configure_page.isComplete)
    wizard.configure_page.name_edit.setText("Phone and sheet")
    if not only_main:
        shot(wizard, "05-wizard-configure")
        wizard.configure_page.tabs.setCurrentIndex(2)
        shot(wizard, "05b-wizard-configure-mappings")
        wizard.configure_page.tabs.setCurrentIndex(0)
    wizard.next()
    wait_until(wizard.preview_page.isComplete)
    if not only_main:
        shot(wizard, "06-wizard-preview")
    wizard.button(QWizard.WizardButton.FinishButton).click()
    wait_until(lambda: window.wizard is None and len(finished) >= 1 and idle(wiring), 120)
    settle_reads(wiring.reader)
    board = window.dashboard
    shot(window, "07-main-window-dashboard")
    if only_main:
        finish(wiring, runner, service)
        return shot.saved

    board.setCurrentWidget(board.rules_editor)
    wait_until(lambda: runner.active == 0)
    shot(window, "08-dashboard-rules")
    board.rules_editor.add_rule()
    rule_dialog = board.rules_editor.findChild(AddRuleDialog)
    assert rule_dialog is not None
    wait_until(lambda: bool(rule_dialog.fields))
    rule_dialog.what.setCurrentIndex(rule_dialog.what.findData("~segment"))
    rule_dialog.value.setCurrentText("Customers")
    rule_dialog.add_filter_button.click()
    rule_dialog.action_value.setCurrentText("Customers")
    rule_dialog.add_action_button.click()
    shot(rule_dialog, "09-dashboard-add-rule")
    rule_dialog.ok.click()
    wait_until(lambda: not rule_dialog.isVisible() and runner.active == 0)
    shot(window, "10-dashboard-rules-with-counts")

    board.setCurrentWidget(board.mappings_editor)
    wait_until(lambda: runner.active == 0)
    model = board.mappings_editor.model
    websites = next(i for i, r in enumerate(model.rows) if r.key == "urls=urls")
    model.setData(model.index(websites, 0), 0, Qt.ItemDataRole.CheckStateRole)  # Websites off
    wait_until(lambda: runner.active == 0 and not model.rows[websites].enabled)
    shot(window, "11-dashboard-mappings")
    board.mappings_editor.add_mapping()
    map_dialog = board.mappings_editor.findChild(AddMappingDialog)
    assert map_dialog is not None
    row = next(i for i, f in enumerate(map_dialog.model_a.fields) if f.key == "birthday")
    map_dialog.list_a.setCurrentIndex(map_dialog.model_a.index(row))
    wait_until(lambda: map_dialog.picked is not None)
    row = next(i for i, f in enumerate(map_dialog.model_b.fields) if f.key == "urls")
    map_dialog.list_b.setCurrentIndex(map_dialog.model_b.index(row))
    shot(map_dialog, "12-dashboard-add-mapping-refused")
    map_dialog.reject()

    some_changes(folder, sheet)
    board.setCurrentWidget(board.preview_view)
    board.preview_view.start()
    wait_until(lambda: not board.preview_view.running)
    shot(window, "13-dashboard-preview")

    # Health and Activity, after a second sync (those changes) that met some trouble.
    some_trouble(folder, sheet)
    board.setCurrentWidget(board.settings_page)
    window.header.sync_button.click()
    wait_until(lambda: len(finished) >= 2 and idle(wiring), 120)
    health = wiring.health
    board.setCurrentWidget(health)
    health.tabs.setCurrentWidget(health.failed)
    failed = health.failed
    # Health reads on reader threads (app.ui.reader): its groups arrive as answers, and a
    # group's rows are read when it is expanded.
    settle_reads(wiring.reader)
    wait_until(lambda: failed.model.rowCount() > 0)
    for row in range(failed.model.rowCount()):
        failed.view.expand(failed.model.index(row, 0))
    wait_until(lambda: failed.model.rowCount(failed.model.index(0, 0)) > 0)
    settle_reads(wiring.reader)
    failed.view.selectionModel().select(
        failed.model.index(0, 0, failed.model.index(0, 0)),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    for column in range(failed.model.columnCount()):
        failed.view.resizeColumnToContents(column)
    shot(window, "16-dashboard-health-failed")
    board.setCurrentWidget(wiring.activity)
    settle_reads(wiring.reader)
    wait_until(lambda: wiring.activity.runs_view.model().rowCount() > 0)
    wiring.activity.runs_view.selectRow(0)
    settle_reads(wiring.reader)
    shot(window, "17-dashboard-activity")
    board.setCurrentWidget(board.settings_page)

    # A desktop without a system tray: the window says syncing runs while it is open.
    no_tray = wired_window(service, runner, with_tray=False)
    shot(no_tray.window, "18-main-window-no-tray")
    finish(no_tray, runner, service, close_service=False)

    app.setPalette(dark_palette())
    shot(window, "14-dark-main-window")
    board.setCurrentWidget(board.rules_editor)
    shot(window, "15-dark-dashboard-rules")
    finish(wiring, runner, service)
    return shot.saved


def finish(
    wiring: Wiring, runner: TaskRunner, service: Service, close_service: bool = True
) -> None:
    """Quit as the app does: the scheduler first, then the window, workers, service."""
    wiring.shutdown()
    wiring.window.close()
    runner.wait()
    if close_service:
        service.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--only-main", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--suffix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--no-scaled", action="store_true", help="skip the 200 %% images")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    saved = run(args.outdir, args.suffix, args.only_main)
    QApplication.processEvents()
    if not args.only_main and not args.no_scaled:
        # 200 %: its own process, since the scale factor is read when Qt starts.
        env = os.environ | {"QT_SCALE_FACTOR": "2"}
        env.pop("PAIRSYNC_HOME", None)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.ui.screenshots",
                str(args.outdir),
                "--only-main",
                "--suffix=-200-percent",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        saved += sorted(args.outdir.glob("*-200-percent.png"))
    for path in saved:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
