"""The wizard's HubSpot page with a token that lacks a scope: one sentence naming it, no
account, Next stays off; with the scope the same token connects."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.model import Side
from app.service import Service
from app.ui.main_window import MainWindow
from tests.emulators.hubspot.fixtures import TOKEN, hubspot  # noqa: F401
from tests.emulators.hubspot.scopes import CRM_SCOPES
from tests.emulators.hubspot.server import HubSpotEmulator
from tests.ui.test_wizard import WAIT, click, next_page, open_wizard, pick


def test_a_missing_scope_is_named_before_next(
    qtbot: QtBot,
    window: MainWindow,
    service: Service,
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    hubspot.scopes = frozenset(CRM_SCOPES) - {"crm.lists.write"}
    wizard = open_wizard(qtbot, window)
    pick(qtbot, wizard, Side.A, "hubspot")
    pick(qtbot, wizard, Side.B, "vcard")
    next_page(qtbot, wizard)
    page = wizard.account_pages[Side.A]
    form = page.form
    assert form is not None and form.secret_edit is not None
    qtbot.keyClicks(form.edits["api_base"], hubspot.url)
    qtbot.keyClicks(form.secret_edit, TOKEN)
    click(qtbot, page.connect_button)
    qtbot.waitUntil(lambda: page.result.text().startswith("⚠"), timeout=WAIT)
    words = page.result.text()
    assert "crm.lists.write" in words and "list members" in words
    assert "Traceback" not in words and "403" not in words
    assert not page.isComplete() and service.list_accounts() == []
    hubspot.scopes = frozenset(CRM_SCOPES)
    click(qtbot, page.connect_button)
    qtbot.waitUntil(page.isComplete, timeout=WAIT)
    assert [a.kind for a in service.list_accounts()] == ["hubspot"]
    wizard.reject()
