"""A cloud app's sign-in pages come from its registry entry alone: a token app registered here,
for this test only, gets its wizard account page and its "sign in again" dialog — fields,
masked token, where to find it, the check, the keyring — with nothing of it in ``app/ui``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QLabel, QLineEdit
from pytestqt.qtbot import QtBot

from app.connectors.base import Connector
from app.connectors.memory import MemoryApp
from app.connectors.registry import KINDS, AppKind
from app.errors import AuthExpired, ConfigError
from app.model import Record, Side
from app.service import Service
from app.sign_in import SECRET, Field, Input, SignInForm
from app.ui.main_window import MainWindow
from app.ui.reauth_dialog import ReauthDialog
from app.ui.tasks import TaskRunner
from tests.ui.test_wizard import WAIT, click, next_page, open_wizard, pick

TOKEN = "crm-token-good"
SCOPES = "contacts.read and contacts.write"
PORTALS: dict[str, MemoryApp] = {}
"""The fake CRM's portals (its "server"): what a token opens."""


def _check(settings: Mapping[str, str]) -> None:
    if not settings.get("portal_id", "").strip().isdigit():
        raise ConfigError("The portal id is the number in your Example CRM address.")


def _build(settings: Mapping[str, str], secret: str | None) -> Connector:
    if secret != TOKEN:
        raise AuthExpired("Example CRM refused the access token (revoked or mistyped).")
    return PORTALS.setdefault(settings["portal_id"], MemoryApp("Example CRM"))


def _verify(settings: Mapping[str, str], secret: str | None) -> dict[str, str]:
    _build(settings, secret).list_versions()
    return dict(settings)


EXAMPLE = AppKind(
    "example-crm",
    "Example CRM",
    ("example crm",),
    ("portal_id",),
    True,
    _build,
    _check,
    _verify,
    description="A CRM that exists only in this test.",
    form=SignInForm(
        (
            Field("portal_id", "&Portal id", placeholder="the number in your CRM's address"),
            Field(
                SECRET,
                "&Access token",
                Input.TOKEN,
                help=f"In Example CRM: Settings → Developer → Tokens; give it {SCOPES}.",
                help_url="https://crm.example/help/tokens",
            ),
        )
    ),
)


@pytest.fixture
def example_kind(monkeypatch: pytest.MonkeyPatch) -> AppKind:
    PORTALS.clear()
    monkeypatch.setitem(KINDS, EXAMPLE.kind, EXAMPLE)
    return EXAMPLE


def test_a_token_app_registered_with_a_form_gets_its_wizard_page(
    qtbot: QtBot,
    window: MainWindow,
    service: Service,
    books: tuple[Path, Path],
    example_kind: AppKind,
) -> None:
    wizard = open_wizard(qtbot, window)
    pick(qtbot, wizard, Side.A, "example crm")
    pick(qtbot, wizard, Side.B, "vcard")
    assert wizard.apps_page.entry(Side.A).kind == "example-crm"  # type: ignore[union-attr]
    next_page(qtbot, wizard)
    page = wizard.account_pages[Side.A]
    form = page.form
    assert form is not None and form.secret_edit is not None
    assert list(form.edits) == ["portal_id"]
    assert form.edits["portal_id"].accessibleName() == "Portal id"
    assert form.edits["portal_id"].placeholderText() == "the number in your CRM's address"
    assert form.secret_edit.echoMode() == QLineEdit.EchoMode.Password
    assert form.secret_edit.accessibleName() == "Access token"
    assert form.secret_help is not None and SCOPES in form.secret_help.text()
    links = [label.text() for label in form.findChildren(QLabel) if "href" in label.text()]
    assert links and "https://crm.example/help/tokens" in links[0]

    qtbot.keyClicks(form.edits["portal_id"], "42")
    qtbot.keyClicks(form.secret_edit, "crm-token-typo")
    click(qtbot, page.connect_button)
    qtbot.waitUntil(lambda: page.result.text().startswith("⚠"), timeout=WAIT)
    assert "refused the access token" in page.result.text()
    assert not page.isComplete() and service.list_accounts() == []

    PORTALS["42"] = MemoryApp("Example CRM")
    PORTALS["42"].records["c1"] = Record("c1", "1", {"email": "ann@x.com"})
    form.secret_edit.clear()
    qtbot.keyClicks(form.secret_edit, TOKEN)
    click(qtbot, page.connect_button)
    qtbot.waitUntil(page.isComplete, timeout=WAIT)
    assert "1 contact, " in page.result.text()
    [account] = service.list_accounts()
    assert account.kind == "example-crm" and account.settings == {"portal_id": "42"}
    assert service._secrets.get(account.name) == TOKEN  # the token is in the keyring only
    wizard.reject()


def test_its_sign_in_again_dialog_comes_from_the_same_form(
    qtbot: QtBot, service: Service, runner: TaskRunner, example_kind: AppKind
) -> None:
    service.add_account("example-crm", "CRM", {"portal_id": "7"}, TOKEN)
    dialog = ReauthDialog(service, runner, "CRM")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.fields["portal_id"].text() == "7"
    assert dialog.fields["portal_id"].accessibleName() == "Portal id"
    assert dialog.secret.isVisible() and dialog.secret.accessibleName() == "Access token"
    words = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert SCOPES in words and "https://crm.example/help/tokens" in words
    dialog.secret.setText("crm-token-old")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(dialog.error.isVisible, timeout=WAIT)
    assert "refused the access token" in dialog.error.text()
    dialog.secret.setText(TOKEN)
    with qtbot.waitSignal(dialog.reauthorized, timeout=WAIT):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def test_the_cli_names_what_is_missing_with_the_same_form(
    service: Service, example_kind: AppKind
) -> None:
    """``account add`` checks an account with the same declaration: a missing setting is
    named by its label, a missing token with where to find it."""
    with pytest.raises(ConfigError, match=r"needs --set portal_id=\.\.\. \(portal id\)\."):
        service.add_account("example-crm", "CRM", {})
    with pytest.raises(ConfigError) as missing:
        service.add_account("example-crm", "CRM", {"portal_id": "7"})
    assert str(missing.value) == (
        "An Example CRM account needs its access token: use --secret-env VAR. "
        "Where to find it: https://crm.example/help/tokens"
    )


def test_account_kinds_prints_the_add_line_from_the_same_form(
    capsys: pytest.CaptureFixture[str], example_kind: AppKind
) -> None:
    from app.cli import main

    assert main(["account", "kinds"]) == 0
    out = capsys.readouterr().out
    assert "example-crm (Example CRM): A CRM that exists only in this test." in out
    assert "pairsync account add example-crm NAME --set portal_id=PORTAL-ID --secret-env VAR" in out
    assert "holding the access token" in out and "https://crm.example/help/tokens" in out
    assert main(["account", "kinds", "--json"]) == 0
    kinds = {k["kind"]: k for k in json.loads(capsys.readouterr().out)}
    assert kinds["google"]["add"].endswith("[--set client_secret=CLIENT-SECRET]")
    assert kinds["csv"]["add"] == "pairsync account add csv NAME --set path=FILE"
