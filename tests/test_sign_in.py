"""Every registered app declares a sign-in form the fronts can render without knowing the app:
it asks for every required setting, fills only settings the app knows, and has a secret field
exactly when the app needs a secret and is not signed in through the browser."""

from __future__ import annotations

import pytest

from app.connectors.registry import KINDS, AppKind
from app.sign_in import SECRET, Input, SignInForm, plain


@pytest.mark.parametrize("spec", KINDS.values(), ids=list(KINDS))
def test_each_apps_form_matches_what_its_account_needs(spec: AppKind) -> None:
    form = spec.sign_in
    assert spec.form is not None, f"{spec.kind}: declare its sign-in form in the registry"
    keys = [f.key for f in form.settings]
    assert set(spec.settings) <= set(keys), "the form asks for every required setting"
    assert set(keys) <= {*spec.settings, *spec.optional}, "the form fills known settings only"
    for f in form.settings:
        assert f.required == (f.key in spec.settings)
        assert not f.input.secret
    assert (form.secret is not None) == (spec.needs_secret and spec.oauth is None)
    assert form.browser == (spec.oauth is not None)
    if form.secret is not None:
        assert form.secret.input.secret
    assert spec.description
    # The window asks where the subscription status is kept in the app's own words.
    assert (spec.subscription_field is not None) == ("subscription" in spec.optional)


def test_a_kind_without_a_form_gets_the_generic_one() -> None:
    form = SignInForm.generic(("portal_id",), True, help_url="https://x.example/token")
    assert [f.key for f in form.fields] == ["portal_id", SECRET]
    assert form.auth == "token" and form.secret is not None
    assert form.secret.input is Input.TOKEN and plain(form.secret.label) == "API key or token"
    assert SignInForm.generic((), False).auth == "settings"


def test_shortcut_marks_are_dropped_from_plain_labels() -> None:
    assert plain("Server &address") == "Server address"
    assert plain("Tom && Jerry") == "Tom & Jerry"


def test_marketing_apps_say_so_in_the_registry() -> None:
    """The wizard turns Sync Unsubscribes on for a marketing app from its registry entry."""
    from app.app_list import app_entry

    hubspot, csv = app_entry("hubspot"), app_entry("csv")
    assert hubspot is not None and hubspot.subscriptions
    assert csv is not None and not csv.subscriptions


def test_no_app_is_named_in_the_window_code() -> None:
    """What the window shows of an app comes from its registry entry: no module of
    ``app/ui`` compares a kind with an app's name (docstrings and comments aside)."""
    import ast
    from pathlib import Path

    kinds = set(KINDS) | {"mailchimp", "outlook"}
    ui = Path(__file__).resolve().parent.parent / "app" / "ui"
    named = []
    for path in ui.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in kinds:
                named.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert named == []
