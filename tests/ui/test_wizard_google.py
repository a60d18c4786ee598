"""The wizard's "Sign in with Google" and the re-authorization dialog, against the Google
emulator, the test playing the browser (clicking Allow on the consent page)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from app.connectors.google import auth as google_auth
from app.model import Side
from app.service import ConnectionSettings, Service
from app.ui.main_window import MainWindow
from app.ui.reauth_dialog import ReauthDialog
from app.ui.tasks import TaskRunner
from tests.emulators.browser import Browser
from tests.emulators.google_people import CLIENT_ID, CLIENT_SECRET, GooglePeopleEmulator
from tests.ui.test_wizard import WAIT, click, next_page, open_wizard, pick


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[GooglePeopleEmulator]:
    """The emulator stands where Google's hosts are."""
    with GooglePeopleEmulator() as emulator:
        monkeypatch.setattr(google_auth, "API_BASE", emulator.url)
        monkeypatch.setattr(google_auth, "AUTHORIZE_URL", emulator.url + "/o/oauth2/v2/auth")
        monkeypatch.setattr(google_auth, "TOKEN_URL", emulator.url + "/token")
        monkeypatch.setattr(google_auth, "REVOKE_URL", emulator.url + "/revoke")
        yield emulator  # type: ignore[misc]
    assert not emulator.spec_errors, emulator.spec_errors


def clients_file(home: Path) -> None:
    (home / "oauth-clients.json").write_text(
        json.dumps({"google": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}})
    )


def test_sign_in_with_google_in_the_wizard(
    qtbot: QtBot,
    window: MainWindow,
    google: GooglePeopleEmulator,
    monkeypatch: pytest.MonkeyPatch,
    pairsync_home: Path,
) -> None:
    vip = google.add_group("VIP")
    google.add_contact({"names": [{"givenName": "Ann"}]}, {vip})
    google.add_contact({"names": [{"givenName": "Bob"}]})
    browser = Browser("allow")
    monkeypatch.setattr("webbrowser.open", browser)
    wizard = open_wizard(qtbot, window)
    pick(qtbot, wizard, Side.A, "gmail")
    pick(qtbot, wizard, Side.B, "vcf")
    assert wizard.apps_page.entry(Side.A).kind == "google"  # type: ignore[union-attr]
    next_page(qtbot, wizard)
    page = wizard.account_pages[Side.A]
    assert page.form is not None and page.form.secret_edit is None  # nothing to paste
    assert page.connect_button.text() == "Sign in with Google"
    # No OAuth client anywhere: the page says what is missing.
    click(qtbot, page.connect_button)
    qtbot.waitUntil(lambda: page.result.text() != "" and page._task is None, timeout=WAIT)
    assert "client id" in page.result.text() and "README" in page.result.text()
    assert not browser.opened
    clients_file(pairsync_home)
    click(qtbot, page.connect_button)
    qtbot.waitUntil(page.isComplete, timeout=WAIT)
    assert browser.opened
    assert page.result.text() == "✓ Connected as user@example.com: 2 contacts, 1 group."
    [acc] = [a for a in window.service.list_accounts() if a.kind == "google"]
    assert acc.settings["account_email"] == "user@example.com" and acc.has_secret


def test_cancel_stops_waiting_for_the_browser(
    qtbot: QtBot,
    window: MainWindow,
    google: GooglePeopleEmulator,
    monkeypatch: pytest.MonkeyPatch,
    pairsync_home: Path,
) -> None:
    clients_file(pairsync_home)
    browser = Browser("none")  # the user never answers
    monkeypatch.setattr("webbrowser.open", browser)
    wizard = open_wizard(qtbot, window)
    pick(qtbot, wizard, Side.A, "gmail")
    pick(qtbot, wizard, Side.B, "vcf")
    next_page(qtbot, wizard)
    page = wizard.account_pages[Side.A]
    click(qtbot, page.connect_button)
    qtbot.waitUntil(lambda: bool(browser.opened), timeout=WAIT)
    page.progress.cancel()
    assert page.result.text() == "Cancelled."
    assert not page.isComplete()
    qtbot.waitUntil(lambda: window.runner.active == 0, timeout=WAIT)
    assert [a for a in window.service.list_accounts() if a.kind == "google"] == []


def test_sign_in_again_with_google(
    qtbot: QtBot,
    service: Service,
    runner: TaskRunner,
    google: GooglePeopleEmulator,
    monkeypatch: pytest.MonkeyPatch,
    pairsync_home: Path,
    books: tuple[Path, Path],
) -> None:
    clients_file(pairsync_home)
    monkeypatch.setattr("webbrowser.open", Browser("allow"))
    service.add_account_signed_in("google", "Work", {})
    service.add_account("vcard-folder", "Phone", {"path": str(books[0])})
    service.create_connection("Main", "Phone", "Work", ConnectionSettings())
    google.revoke_all()
    dialog = ReauthDialog(service, runner, "Work")
    qtbot.addWidget(dialog)
    dialog.show()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok.text() == "Sign in with Google" and not dialog.secret.isVisible()
    with qtbot.waitSignal(dialog.reauthorized, timeout=WAIT) as blocker:
        ok.click()
    assert blocker.args == [["Main"]]
    assert service.show_connection("Main").b.account == "Work"
