"""The connection wizard, clicked through like a user would: offscreen, over a real vCard
folder and a real CSV file, with the real service on worker threads."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QWizard
from pytestqt.qtbot import QtBot

from app.app_list import AppEntry
from app.model import Side
from app.service import Service
from app.ui.app_wiring import Wiring
from app.ui.dashboard.preview_view import PreviewView
from app.ui.main_window import MainWindow
from app.ui.wizard.account_page import AccountForm
from app.ui.wizard.apps_page import EntryRole
from app.ui.wizard.wizard import ACCOUNT_A, ACCOUNT_B, APPS, CONFIGURE, PREVIEW, ConnectionWizard
from tests.dav import PASSWORD, USER, DavServer
from tests.emulators.hubspot.fixtures import TOKEN, hubspot  # noqa: F401
from tests.emulators.hubspot.server import HubSpotEmulator
from tests.ui.contacts import card, read_csv
from tests.ui.desktop import settle

WAIT = 20_000


def click(qtbot: QtBot, widget: object) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)  # type: ignore[arg-type]


def open_wizard(qtbot: QtBot, window: MainWindow) -> ConnectionWizard:
    assert window.stack.currentWidget() is window.empty  # the first thing a new user sees
    click(qtbot, window.empty.button)
    wizard = window.wizard
    assert wizard is not None and wizard.isVisible()
    return wizard


def pick(qtbot: QtBot, wizard: ConnectionWizard, side: Side, typed: str) -> None:
    picker = wizard.apps_page.pickers[side]
    qtbot.keyClicks(picker.search, typed)
    qtbot.keyClick(picker.search, Qt.Key.Key_Return)  # Enter picks the first app that works


def connect_path(
    qtbot: QtBot, wizard: ConnectionWizard, side: Side, path: Path, *, enter: bool = False
) -> str:
    page = wizard.account_pages[side]
    assert page.form is not None
    edit = page.form.edits["path"]
    edit.clear()
    qtbot.keyClicks(edit, str(path))
    if enter:
        qtbot.keyClick(edit, Qt.Key.Key_Return)  # Enter in the field connects
    else:
        click(qtbot, page.connect_button)
    qtbot.waitUntil(page.isComplete, timeout=WAIT)
    return page.result.text()


def next_page(qtbot: QtBot, wizard: ConnectionWizard) -> None:
    button = wizard.button(QWizard.WizardButton.NextButton)
    # A page's save (the draft connection, its rename) lands off the GUI thread: Next is
    # enabled once it has, as the user sees it.
    qtbot.waitUntil(button.isEnabled, timeout=WAIT)
    click(qtbot, button)


def test_wizard_vcard_folder_to_csv_end_to_end(
    qtbot: QtBot, wiring: Wiring, service: Service, books: tuple[Path, Path]
) -> None:
    window = wiring.window
    wiring.start()  # syncing runs as in the app: the draft connection is paused until Finish
    folder, sheet = books
    wizard = open_wizard(qtbot, window)
    # Opening builds what the first pages show: Configure's editors (most of the wizard's
    # widgets) and the preview are built when their page is entered.
    assert wizard.configure_page.pages() == ()
    assert wizard.preview_page.findChild(PreviewView) is None

    # 1. Apps, found by alias as the user types.
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    pick(qtbot, wizard, Side.A, "vcf")
    pick(qtbot, wizard, Side.B, "excel")
    assert wizard.apps_page.entry(Side.A).kind == "vcard-folder"  # type: ignore[union-attr]
    assert wizard.apps_page.entry(Side.B).kind == "csv"  # type: ignore[union-attr]
    next_page(qtbot, wizard)
    assert wizard.currentId() == ACCOUNT_A

    # 2. Authorize A: a wrong folder is refused in words, the right one is read.
    page_a = wizard.account_pages[Side.A]
    assert page_a.add_new.isChecked()  # no connected account yet
    assert page_a.form is not None
    qtbot.keyClicks(page_a.form.edits["path"], str(folder.parent / "nope"))
    click(qtbot, page_a.connect_button)
    qtbot.waitUntil(lambda: "does not exist" in page_a.result.text(), timeout=WAIT)
    assert not page_a.isComplete()
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    text = connect_path(qtbot, wizard, Side.A, folder)
    assert "5 contacts" in text and "“cards”" in text
    edit = page_a.form.edits["path"]
    edit.setText(str(folder.parent))  # changed after the check: not proven any more
    assert not page_a.isComplete()
    edit.setText(str(folder))
    assert page_a.isComplete()
    next_page(qtbot, wizard)

    # 3. Authorize B.
    assert wizard.currentId() == ACCOUNT_B
    text = connect_path(qtbot, wizard, Side.B, sheet, enter=True)
    assert "4 contacts" in text
    next_page(qtbot, wizard)

    # 4. Configure: the connection exists, paused, with the defaults shown.
    assert wizard.currentId() == CONFIGURE
    configure = wizard.configure_page
    qtbot.waitUntil(configure.isComplete, timeout=WAIT)  # created off the GUI thread
    name = configure.name_edit.text()
    assert name == "cards ⇄ contacts"
    assert service.show_connection(name).paused is True
    assert [r.id for r in configure.rules.model.rows] == ["ra", "rb"]
    assert any(r.key == "emails=email" for r in configure.mappings.model.rows)
    configure.settings.form.checks["trash"].click()  # saved at once, off the GUI thread
    qtbot.waitUntil(configure.isComplete, timeout=WAIT)
    assert service.show_connection(name).settings.trash is True
    configure.name_edit.setText("Phone and sheet")
    next_page(qtbot, wizard)  # renamed off the GUI thread, then on to the preview
    qtbot.waitUntil(lambda: wizard.currentId() == PREVIEW, timeout=WAIT)

    # 5. Preview: counts from a dry run; nothing written yet.
    preview_page = wizard.preview_page
    qtbot.waitUntil(preview_page.isComplete, timeout=WAIT)
    preview = preview_page.view.preview
    assert preview is not None
    assert preview.report["created"] == {"a": 1, "b": 2}  # Eve into A; Carol, Dan into B
    assert preview.report["matched"] == 1  # Ann
    assert preview_page.view.values["create_b"].text() == "2"
    assert preview.excluded_by_reason.get("no email") == 1  # Bob
    assert len(read_csv(sheet)) == 4  # the preview wrote nothing
    assert [c.name for c in service.list_connections()] == ["Phone and sheet"]

    # Finish: the connection is resumed and its first sync runs.
    finish = wizard.button(QWizard.WizardButton.FinishButton)
    assert finish.text().replace("&", "") == "Start syncing"
    assert finish.isEnabled()
    assert wiring.scheduler.running() is None  # nothing synced the draft meanwhile
    with qtbot.waitSignal(wiring.scheduler.run_finished, timeout=WAIT) as blocker:
        click(qtbot, finish)
    assert blocker.args[0] == "Phone and sheet" and blocker.args[1]["status"] == "ok"
    qtbot.waitUntil(lambda: window.wizard is None, timeout=WAIT)
    settle(window.reader)  # the list reads the connections off the GUI thread
    assert window.model.row_of("Phone and sheet") == 0
    assert window.current_name() == "Phone and sheet"
    emails = {r["E-mail Address"].lower() for r in read_csv(sheet)}
    assert {"carol@x.com", "dan@x.com"} <= emails
    assert (folder / "ann.vcf").exists() and len(list(folder.glob("*.vcf"))) == 6  # + Eve
    row = window.model.rows[0]
    assert row.paused is False and row.status.code == "ok"
    qtbot.waitUntil(lambda: window.header.chip.text() == "Active", timeout=WAIT)
    # One first sync: the schedule did not start one of its own while the resume was being
    # saved (the resume's sync then ran again as a follow-up, for nothing).
    qtbot.wait(500)
    scheduler = wiring.scheduler
    qtbot.waitUntil(lambda: scheduler.running() is None and not scheduler.queued(), timeout=WAIT)
    assert len(service.runs_page("Phone and sheet")) == 1


def test_coming_soon_apps_are_listed_but_never_picked(qtbot: QtBot, window: MainWindow) -> None:
    wizard = open_wizard(qtbot, window)
    picker = wizard.apps_page.pickers[Side.A]
    qtbot.keyClicks(picker.search, "hotmail")
    assert picker.proxy.rowCount() == 1
    index = picker.proxy.index(0, 0)
    assert index.data(EntryRole).name == "Outlook"
    assert "coming soon" in index.data()
    assert not index.flags() & Qt.ItemFlag.ItemIsEnabled
    qtbot.keyClick(picker.search, Qt.Key.Key_Return)
    picker.view.setCurrentIndex(index)
    assert picker.entry() is None
    picker.search.clear()
    qtbot.keyClicks(picker.search, "gmail")  # Google Contacts works now
    assert picker.proxy.index(0, 0).data(EntryRole).name == "Google Contacts"
    assert "coming soon" not in picker.proxy.index(0, 0).data()
    picker.search.clear()
    qtbot.keyClicks(picker.search, "nextcloud")
    assert picker.proxy.index(0, 0).data(EntryRole).kind == "carddav"
    picker.search.clear()
    qtbot.keyClicks(picker.search, "zzz")
    assert picker.proxy.rowCount() == 0 and picker.empty.isVisible()
    assert not wizard.apps_page.isComplete()


def test_cancel_deletes_the_draft_and_keeps_connected_accounts(
    qtbot: QtBot, window: MainWindow, service: Service, books: tuple[Path, Path]
) -> None:
    folder, sheet = books
    wizard = open_wizard(qtbot, window)
    pick(qtbot, wizard, Side.A, "vcard")
    pick(qtbot, wizard, Side.B, "csv")
    next_page(qtbot, wizard)
    connect_path(qtbot, wizard, Side.A, folder)
    next_page(qtbot, wizard)
    connect_path(qtbot, wizard, Side.B, sheet)
    next_page(qtbot, wizard)
    qtbot.waitUntil(wizard.configure_page.isComplete, timeout=WAIT)
    assert len(service.list_connections()) == 1
    click(qtbot, wizard.button(QWizard.WizardButton.CancelButton))
    qtbot.waitUntil(lambda: window.wizard is None, timeout=WAIT)
    qtbot.waitUntil(lambda: service.list_connections() == [], timeout=WAIT)  # off the GUI thread
    assert sorted(a.name for a in service.list_accounts()) == ["cards", "contacts"]
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.empty, timeout=WAIT)

    # Next time, the connected accounts are offered (and checked at once).
    wizard = open_wizard(qtbot, window)
    pick(qtbot, wizard, Side.A, "vcard")
    pick(qtbot, wizard, Side.B, "csv")
    next_page(qtbot, wizard)
    page = wizard.account_pages[Side.A]
    assert page.use_existing.isChecked() and page.existing.currentText() == "cards"
    qtbot.waitUntil(page.isComplete, timeout=WAIT)
    assert "5 contacts" in page.result.text()
    assert wizard.currentId() == ACCOUNT_A and APPS == 0


def test_carddav_asks_for_address_user_and_password_and_checks_them(
    qtbot: QtBot, window: MainWindow, service: Service, radicale: DavServer
) -> None:
    book = radicale.new_book()
    radicale.put(f"{book}bea.vcf", card("bea", "Bea Bo", "bea@x.com"))
    wizard = open_wizard(qtbot, window)
    pick(qtbot, wizard, Side.A, "icloud")  # an alias of CardDAV
    pick(qtbot, wizard, Side.B, "csv")
    next_page(qtbot, wizard)
    page = wizard.account_pages[Side.A]
    assert page.form is not None
    assert set(page.form.edits) == {"url", "username", "addressbook"}
    assert page.form.secret_edit is not None
    assert page.form.secret_edit.echoMode() == QLineEdit.EchoMode.Password
    qtbot.keyClicks(page.form.edits["url"], radicale.url)
    qtbot.keyClicks(page.form.edits["username"], USER)
    qtbot.keyClicks(page.form.edits["addressbook"], book)
    qtbot.keyClicks(page.form.secret_edit, "wrong password")
    click(qtbot, page.connect_button)
    qtbot.waitUntil(lambda: page.result.text().startswith("⚠"), timeout=WAIT)
    assert not page.isComplete() and service.list_accounts() == []
    page.form.secret_edit.clear()
    qtbot.keyClicks(page.form.secret_edit, PASSWORD)
    click(qtbot, page.connect_button)
    qtbot.waitUntil(page.isComplete, timeout=WAIT)
    assert "1 contact, " in page.result.text()  # not "1 contacts"
    [account] = service.list_accounts()
    assert account.kind == "carddav" and account.has_secret is True
    assert PASSWORD not in json.dumps(account.as_json())  # the password is in the keyring only
    assert service._secrets.get(account.name) == PASSWORD


def test_a_token_app_gets_its_settings_a_token_field_and_where_to_find_it(qtbot: QtBot) -> None:
    """The form is built from the registry's data: an app that registers with a setting
    and a secret (like the token apps to come) gets those fields and its help link."""
    token_app = AppEntry(
        "example-crm",
        "Example CRM",
        (),
        "",
        "token",
        True,
        settings=("portal_id",),
        needs_secret=True,
        help_url="https://example.org/where-is-my-token",
    )
    form = AccountForm(token_app)
    qtbot.addWidget(form)
    assert list(form.edits) == ["portal_id"]
    assert form.secret_edit is not None
    assert form.secret_edit.accessibleName() == "API key or token"
    links = [label.text() for label in form.findChildren(QLabel) if "href" in label.text()]
    assert links and "https://example.org/where-is-my-token" in links[0]
    assert "Where do I find this?" in links[0]
    qtbot.keyClicks(form.edits["portal_id"], "42")
    qtbot.keyClicks(form.secret_edit, "tok")
    assert (form.values(), form.secret()) == ({"portal_id": "42"}, "tok")


def test_a_vcard_file_is_picked_connected_and_previewed(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, books: tuple[Path, Path]
) -> None:
    """A single .vcf export (the vCard file app): its own picker words, its contacts read on
    Connect, and counted in the preview."""
    from tests.ui.desktop import card

    _, sheet = books
    export = tmp_path / "iCloud export.vcf"
    export.write_text(
        card("zoe", "Zoe Zed", "zoe@x.com") + card("ann", "Ann Lee", "ann@x.com"),
        encoding="utf-8",
    )
    wizard = open_wizard(qtbot, window)
    pick(qtbot, wizard, Side.A, "vcf file")
    pick(qtbot, wizard, Side.B, "excel")
    assert wizard.apps_page.entry(Side.A).kind == "vcard-file"  # type: ignore[union-attr]
    next_page(qtbot, wizard)
    page = wizard.account_pages[Side.A]
    title, filters, hint = page.form.file_words()  # type: ignore[union-attr]
    assert title == "Choose the vCard file" and "*.vcf" in filters and "iCloud" in hint
    assert "2 contacts" in connect_path(qtbot, wizard, Side.A, export)
    next_page(qtbot, wizard)
    assert "4 contacts" in connect_path(qtbot, wizard, Side.B, sheet)
    next_page(qtbot, wizard)
    qtbot.waitUntil(wizard.configure_page.isComplete, timeout=WAIT)
    next_page(qtbot, wizard)
    qtbot.waitUntil(wizard.preview_page.isComplete, timeout=WAIT)
    preview = wizard.preview_page.view.preview
    assert preview is not None and preview.report["matched"] == 1  # Ann
    assert preview.report["created"]["b"] == 1  # Zoe into the sheet
    wizard.reject()


def test_hubspot_asks_for_a_masked_token_says_where_to_find_it_and_checks_it(
    qtbot: QtBot,
    window: MainWindow,
    service: Service,
    books: tuple[Path, Path],
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    hubspot.portal.seed({"email": "ann@x.com", "firstname": "Ann"})
    hubspot.portal.add_list("Customers", "MANUAL")
    folder, _ = books
    wizard = open_wizard(qtbot, window)
    pick(qtbot, wizard, Side.A, "hubspot")
    pick(qtbot, wizard, Side.B, "vcard")
    next_page(qtbot, wizard)
    page = wizard.account_pages[Side.A]
    form = page.form
    assert form is not None and form.secret_edit is not None and form.secret_help is not None
    assert form.secret_edit.echoMode() == QLineEdit.EchoMode.Password
    assert form.secret_edit.accessibleName() == "Access token"
    words = form.secret_help.text()
    assert "Settings → Integrations → Private Apps" in words
    for scope in ("crm.objects.contacts.read", "crm.objects.contacts.write",
                  "crm.schemas.contacts.read", "crm.lists.read", "crm.lists.write"):  # fmt: skip
        assert scope in words
    qtbot.keyClicks(form.edits["api_base"], hubspot.url)
    qtbot.keyClicks(form.secret_edit, "pat-na1-wrong")
    click(qtbot, page.connect_button)
    qtbot.waitUntil(lambda: page.result.text().startswith("⚠"), timeout=WAIT)
    assert "token" in page.result.text()
    assert not page.isComplete() and service.list_accounts() == []
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    form.secret_edit.clear()
    qtbot.keyClicks(form.secret_edit, TOKEN)
    click(qtbot, page.connect_button)
    qtbot.waitUntil(page.isComplete, timeout=WAIT)
    assert "1 contact, " in page.result.text()
    [account] = service.list_accounts()
    assert account.kind == "hubspot" and account.has_secret is True
    assert TOKEN not in json.dumps(account.as_json())  # the token is in the keyring only
    assert service._secrets.get(account.name) == TOKEN
    next_page(qtbot, wizard)
    connect_path(qtbot, wizard, Side.B, folder)
