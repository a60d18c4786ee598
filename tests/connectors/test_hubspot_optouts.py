"""HubSpot opt-outs (communication preferences v4) and token scopes, against the emulator
(every exchange checked against HubSpot's OpenAPI files)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.connectors.hubspot import HubSpotApp
from app.connectors.hubspot.api import MissingScopes
from app.errors import AuthExpired, Rejected
from app.model import Create, Labeled, Record, Update
from tests.emulators.hubspot.fixtures import TOKEN
from tests.emulators.hubspot.scopes import ALL_SCOPES, COMM_PREFS_SCOPES, CRM_SCOPES
from tests.emulators.hubspot.server import HubSpotEmulator


def emulator(scopes: tuple[str, ...]) -> HubSpotEmulator:
    return HubSpotEmulator(
        access_token=TOKEN, rate_limit=1000, search_per_second=50, search_delay=0.0, scopes=scopes
    )


@pytest.fixture
def full() -> Iterator[HubSpotEmulator]:
    """A token with the communication-preferences scopes too."""
    with emulator(ALL_SCOPES) as hs:
        yield hs
        assert hs.violations == [], "\n".join(hs.violations[:5])


@pytest.fixture
def crm_only() -> Iterator[HubSpotEmulator]:
    """A token with only the five scopes the wizard asks for."""
    with emulator(CRM_SCOPES) as hs:
        yield hs
        assert hs.violations == [], "\n".join(hs.violations[:5])


def connect(hs: HubSpotEmulator) -> HubSpotApp:
    return HubSpotApp(TOKEN, api_base=hs.url)


def read(app: HubSpotApp, *ids: str) -> list[Record]:
    app.list_versions()
    out = app.fetch(list(ids))
    assert all(isinstance(r, Record) for r in out)
    return out  # type: ignore[return-value]


# --- reading the status ---------------------------------------------------------------------


def test_status_comes_from_communication_preferences_where_the_token_may(
    full: HubSpotEmulator,
) -> None:
    """HubSpot keeps consent by address: an opt-out it holds for the address counts even
    where the contact's hs_email_optout does not show it; one batch read per 100."""
    out = full.portal.seed({"email": "out@x.com"})
    back = full.portal.seed({"email": "back@x.com"})
    plain = full.portal.seed({"email": "plain@x.com"})
    full.portal.opt_out("out@x.com", set_property=False)
    full.portal.opt_out("back@x.com")
    full.portal.resubscribe("back@x.com")
    a, b, c = read(connect(full), out.id, back.id, plain.id)
    assert (a.subscribed, b.subscribed, c.subscribed) == (False, True, None)
    assert full.stats.by_route["prefs read"] == 1


def test_without_the_scope_hs_email_optout_is_the_status(crm_only: HubSpotEmulator) -> None:
    """One refused request (403 MISSING_SCOPES) for the whole run, then the property."""
    out = crm_only.portal.seed({"email": "out@x.com"})
    flagged = crm_only.portal.seed({"email": "flag@x.com", "hs_email_optout": "true"})
    crm_only.portal.opt_out("out@x.com", set_property=False)
    app = connect(crm_only)
    a, b = read(app, out.id, flagged.id)
    assert (a.subscribed, b.subscribed) == (None, False)
    read(app, out.id)
    assert crm_only.stats.by_route["prefs read"] == 1
    assert [s for _, p, s in crm_only.requests_log if "communication-preferences" in p] == [403]


# --- writing opt-outs -------------------------------------------------------------------------


def test_an_opt_out_is_written_and_the_version_is_fresh(full: HubSpotEmulator) -> None:
    ann = full.portal.seed({"email": "ann@x.com", "firstname": "Ann"})
    app = connect(full)
    [before] = read(app, ann.id)
    [res] = app.write(
        [
            Update(
                "u1",
                ann.id,
                {"subscribed": "false", "title": "CEO"},
                expected_version=before.version,
            )
        ]
    )
    assert res.ok and res.record is not None and res.record.subscribed is False
    assert full.portal.wide["ann@x.com"].status == "UNSUBSCRIBED"
    assert ann.properties["hs_email_optout"] == "true" and ann.properties["jobtitle"] == "CEO"
    [now] = read(connect(full), ann.id)
    assert now.subscribed is False and now.version == res.record.version


def test_opt_outs_of_many_contacts_cost_one_call_per_100(full: HubSpotEmulator) -> None:
    ids = [full.portal.seed({"email": f"p{i}@x.com"}).id for i in range(150)]
    app = connect(full)
    app.list_versions()
    results: list = []
    for start in (0, 100):
        chunk = ids[start : start + 100]
        results += app.write([Update(f"u{i}", i, {"subscribed": "false"}) for i in chunk])
    assert all(r.ok and r.record.subscribed is False for r in results)
    assert full.stats.by_route["prefs write"] == 2
    assert all(c.properties.get("hs_email_optout") == "true" for c in full.portal.live())


def test_a_new_contact_is_created_then_opted_out(full: HubSpotEmulator) -> None:
    app = connect(full)
    app.list_versions()
    [res] = app.write([Create("c1", {"emails": (Labeled("new@x.com"),), "subscribed": "false"})])
    assert res.ok and res.record is not None and res.record.subscribed is False
    assert full.portal.by_email("new@x.com").properties["hs_email_optout"] == "true"  # type: ignore[union-attr]


def test_nobody_is_ever_subscribed(full: HubSpotEmulator) -> None:
    """Legal: only the contact undoes an opt-out. The rest of the contact is written."""
    out = full.portal.seed({"email": "out@x.com"})
    full.portal.opt_out("out@x.com")
    app = connect(full)
    read(app, out.id)
    [res] = app.write([Update("u", out.id, {"subscribed": "true", "title": "Boss"})])
    assert isinstance(res.error, Rejected) and res.error.field == "subscribed"
    assert "only be undone by the contact" in str(res.error)
    assert out.properties["hs_email_optout"] == "true" and out.properties["jobtitle"] == "Boss"
    assert full.portal.wide["out@x.com"].status == "UNSUBSCRIBED"
    assert full.stats.by_route["prefs write"] == 0


def test_an_opt_out_without_the_scope_is_refused_per_contact_naming_it(
    crm_only: HubSpotEmulator,
) -> None:
    a = crm_only.portal.seed({"email": "a@x.com"})
    b = crm_only.portal.seed({"email": "b@x.com"})
    app = connect(crm_only)
    read(app, a.id, b.id)
    ra, rb = app.write(
        [
            Update("ua", a.id, {"subscribed": "false", "title": "X"}),
            Update("ub", b.id, {"subscribed": "false"}),
        ]
    )
    for res in (ra, rb):
        assert isinstance(res.error, Rejected) and res.error.field == "subscribed"
        assert "communication_preferences.statuses.batch.write" in str(res.error)
        assert res.record is not None
    assert a.properties["jobtitle"] == "X"  # the rest of the contact was written
    assert "hs_email_optout" not in a.properties and crm_only.portal.wide == {}
    app.write([Update("ub2", b.id, {"subscribed": "false"})])
    assert crm_only.stats.by_route["prefs write"] == 1  # the refusal is remembered


def test_a_contact_without_email_cannot_be_opted_out(full: HubSpotEmulator) -> None:
    nameless = full.portal.seed({"firstname": "Nomail"})
    app = connect(full)
    read(app, nameless.id)
    [res] = app.write([Update("u", nameless.id, {"subscribed": "false"})])
    assert isinstance(res.error, Rejected) and "email address" in str(res.error)


# --- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lacking", "words"),
    [
        ("crm.objects.contacts.read", "read HubSpot contacts"),
        ("crm.lists.read", "read HubSpot lists"),
    ],
)
def test_account_check_names_the_missing_scope(lacking: str, words: str) -> None:
    scopes = tuple(s for s in CRM_SCOPES if s != lacking) + COMM_PREFS_SCOPES
    with emulator(scopes) as hs:
        with pytest.raises(MissingScopes) as caught:
            connect(hs).check()
        assert isinstance(caught.value, AuthExpired)
        assert lacking in str(caught.value) and words in str(caught.value)
        assert str(caught.value).count(".") <= 6  # one sentence or two, no dump
        assert hs.violations == []


def test_account_check_proves_the_write_scopes_without_writing() -> None:
    with emulator(("crm.objects.contacts.read", "crm.lists.read", "crm.lists.write")) as hs:
        hs.portal.seed({"email": "a@x.com"})
        with pytest.raises(MissingScopes, match=r"crm\.objects\.contacts\.write"):
            connect(hs).check()
        assert [c.properties for c in hs.portal.live()] == [{"email": "a@x.com"}]
    with emulator(
        ("crm.objects.contacts.read", "crm.objects.contacts.write", "crm.lists.read")
    ) as hs:
        with pytest.raises(MissingScopes, match=r"crm\.lists\.write"):
            connect(hs).check()
        assert hs.portal.lists == {}
    with emulator(CRM_SCOPES) as hs:
        connect(hs).check()  # the optional opt-out scopes are not required
        assert hs.violations == []


def test_a_scope_missing_during_a_run_stops_it_with_the_sentence() -> None:
    with emulator(
        ("crm.objects.contacts.read", "crm.objects.contacts.write", "crm.lists.read")
    ) as hs:
        a = hs.portal.seed({"email": "a@x.com"})
        app = connect(hs)
        app.list_versions()
        with pytest.raises(MissingScopes, match=r"crm\.lists\.write.*change HubSpot list members"):
            app.write([Update("u", a.id, {}, add_segments=frozenset({"VIP"}))])
