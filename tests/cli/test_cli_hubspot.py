"""End-to-end: the ``pairsync`` CLI with HubSpot accounts on the HubSpot emulator (every
exchange checked against HubSpot's OpenAPI files), a vCard folder on the other side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from tests.emulators.hubspot.fixtures import TOKEN, hubspot  # noqa: F401
from tests.emulators.hubspot.server import HubSpotEmulator


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def sync(capsys: pytest.CaptureFixture[str], name: str = "main") -> tuple[int, dict[str, Any]]:
    code, out, err = cli(capsys, "sync", name, "--json")
    assert out, err
    return code, json.loads(out)[0]


def card(uid: str, fn: str, email: str, *extra: str) -> str:
    given, _, family = fn.partition(" ")
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{fn}", f"N:{family};{given};;;"]
    if email:
        lines.append(f"EMAIL;TYPE=INTERNET:{email}")
    return "\r\n".join([*lines, *extra, "END:VCARD"]) + "\r\n"


def add_hubspot(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hs: HubSpotEmulator,
    name: str = "HS",
) -> tuple[int, str, str]:
    monkeypatch.setenv("HUBSPOT_TOKEN", hs.access_token)
    return cli(
        capsys,
        *("account", "add", "hubspot", name, "--set", f"api_base={hs.url}"),
        *("--secret-env", "HUBSPOT_TOKEN"),
    )


def by_email(hs: HubSpotEmulator) -> dict[str, dict[str, str]]:
    return {c.properties.get("email", ""): c.properties for c in hs.portal.live()}


@pytest.fixture
def folder_and_hubspot(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hubspot: HubSpotEmulator,  # noqa: F811
) -> Path:
    folder = tmp_path / "cards"
    folder.mkdir()
    (folder / "ann.vcf").write_text(
        card("ann", "Ann Lee", "ann@x.com", "TITLE:CEO", "X-NEWSLETTER:yes")
    )
    (folder / "bob.vcf").write_text(card("bob", "Bob Bee", "bob@x.com", "X-NEWSLETTER:yes"))
    hubspot.portal.seed(
        {"email": "cy@x.com", "firstname": "Cy", "lastname": "Cee", "hs_email_optout": "true"}
    )
    hubspot.portal.seed({"email": "ann@x.com", "firstname": "Ann", "phone": "+44 20 7946 0958"})
    assert cli(capsys, "account", "add", "vcard-folder", "Phone", "--set", f"path={folder}",
               "--set", "subscription=X-NEWSLETTER")[0] == 0  # fmt: skip
    code, _, err = add_hubspot(capsys, monkeypatch, hubspot)
    assert code == 0, err
    assert cli(capsys, "connection", "create", "main", "--a", "Phone", "--b", "HS")[0] == 0
    return folder


def test_account_add_proves_the_token(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-na1-wrong")
    code, _, err = cli(
        capsys,
        *("account", "add", "hubspot", "HS", "--set", f"api_base={hubspot.url}"),
        *("--secret-env", "HUBSPOT_TOKEN"),
    )
    assert code == 3 and "token" in err
    code, _, err = cli(
        capsys, "account", "add", "hubspot", "HS", "--set", "api_base=http://hubspot.example.com"
    )
    assert code == 2 and "https" in err
    code, out, err = add_hubspot(capsys, monkeypatch, hubspot)
    assert code == 0, err
    code, out, _ = cli(capsys, "account", "list", "--json")
    [acc] = [a for a in json.loads(out) if a["name"] == "HS"]
    assert acc["kind"] == "hubspot" and acc["has_secret"] is True
    assert TOKEN not in out  # the token lives in the keyring only


def test_two_way_sync_s8_unsubscribes_and_s17(
    folder_and_hubspot: Path,
    capsys: pytest.CaptureFixture[str],
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    folder = folder_and_hubspot
    assert cli(capsys, "connection", "set", "main", "--unsubscribes", "on")[0] == 0
    code, report = sync(capsys)
    assert code == 0, report
    assert report["created"] == {"a": 1, "b": 1}
    people = by_email(hubspot)
    assert set(people) == {"ann@x.com", "bob@x.com", "cy@x.com"}
    assert people["ann@x.com"]["jobtitle"] == "CEO"
    assert people["bob@x.com"]["lastname"] == "Bee"
    ann = (folder / "ann.vcf").read_text()
    assert "+44 20 7946 0958" in ann
    # S8: Cy opted out in HubSpot: the card made for Cy carries the review segment.
    cy = next(p.read_text() for p in folder.glob("*.vcf") if "cy@x.com" in p.read_text())
    assert "Pairsync Unsubscribes" in cy
    # Bob unsubscribes on the phone: HubSpot's copy joins the static list, nobody is
    # re-subscribed and HubSpot's own opt-out stays HubSpot's.
    bob = folder / "bob.vcf"
    bob.write_text(bob.read_text().replace("X-NEWSLETTER:yes", "X-NEWSLETTER:no"))
    code, report = sync(capsys)
    assert code == 0, report
    [lst] = [x for x in hubspot.portal.lists.values() if x.name == "Pairsync Unsubscribes"]
    assert lst.processing_type == "MANUAL"
    bob_id = next(c.id for c in hubspot.portal.live() if c.properties["email"] == "bob@x.com")
    assert set(lst.members) == {bob_id}
    assert "hs_email_optout" not in by_email(hubspot)["bob@x.com"]
    # S17: nothing to do, and nothing is written.
    writes = sum(n for route, n in hubspot.stats.by_route.items() if "create" in route
                 or "update" in route or "PUT" in route)  # fmt: skip
    code, report = sync(capsys)
    assert code == 0 and report["created"] == {"a": 0, "b": 0}
    assert report["updated"] == {"a": 0, "b": 0}
    after = sum(n for route, n in hubspot.stats.by_route.items() if "create" in route
                or "update" in route or "PUT" in route)  # fmt: skip
    assert after == writes
    # An edit in HubSpot comes back to the folder.
    hubspot.portal.edit(bob_id, jobtitle="Engineer")
    code, report = sync(capsys)
    assert code == 0 and report["updated"] == {"a": 1, "b": 0}
    assert "Engineer" in bob.read_text()


def test_s9_a_value_hubspot_rejects_fails_that_field_then_syncs_when_fixed(
    folder_and_hubspot: Path,
    capsys: pytest.CaptureFixture[str],
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    folder = folder_and_hubspot
    (folder / "dee.vcf").write_text(card("dee", "Dee Dee", "dee@x", "TITLE:Boss"))
    code, report = sync(capsys)
    assert code == 1 and report["failed"] == 1
    code, out, _ = cli(capsys, "health", "main", "--json")
    [failure] = json.loads(out)["failed"]
    assert failure["fields"] == ["emails"] and "dee@x" in failure["reason"]
    assert "invalid" in failure["reason"]
    dee = [c for c in hubspot.portal.live() if c.properties.get("firstname") == "Dee"]
    assert len(dee) == 1 and dee[0].properties["jobtitle"] == "Boss"  # the rest was written
    # The user fixes the address in the folder: the next run writes it, no duplicate.
    (folder / "dee.vcf").write_text(card("dee", "Dee Dee", "dee@x.com", "TITLE:Boss"))
    code, report = sync(capsys)
    assert code == 0, report
    dee = [c for c in hubspot.portal.live() if c.properties.get("firstname") == "Dee"]
    assert len(dee) == 1 and dee[0].properties["email"] == "dee@x.com"
    code, out, _ = cli(capsys, "health", "main", "--json")
    assert json.loads(out)["counts"]["failed"] == 0


def test_s12_value_table_into_a_hubspot_drop_down(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    """Two HubSpot portals: A's "Tier" drop-down (Gold, Silver) maps to B's "Level"
    drop-down (VIP, Premium) through a value table; B stores the option's value."""
    hubspot.portal.add_property(
        "tier", "Tier", "enumeration", "select", options=[("Gold", "gold"), ("Silver", "silver")]
    )
    ann = hubspot.portal.seed({"email": "ann@x.com", "firstname": "Ann", "tier": "gold"})
    with HubSpotEmulator(
        access_token=TOKEN, rate_limit=1000, search_per_second=50, search_delay=0.0
    ) as other:
        other.portal.add_property(
            "level", "Level", "enumeration", "radio",
            options=[("VIP", "vip_level"), ("Premium", "premium_level")],
        )  # fmt: skip
        assert add_hubspot(capsys, monkeypatch, hubspot, "A")[0] == 0
        assert add_hubspot(capsys, monkeypatch, other, "B")[0] == 0
        assert cli(capsys, "connection", "create", "main", "--a", "A", "--b", "B")[0] == 0
        code, out, err = cli(
            capsys, "connection", "map", "main", "--a-field", "tier", "--b-field", "level",
            "--values", "Gold=VIP",
        )  # fmt: skip
        assert code == 0, err
        code, report = sync(capsys)
        assert code == 0, report
        assert by_email(other)["ann@x.com"]["level"] == "vip_level"  # the value, not the label
        hubspot.portal.edit(ann.id, tier="silver", jobtitle="Director")
        code, report = sync(capsys)
        assert code == 1 and report["failed"] == 1
        b_ann = by_email(other)["ann@x.com"]
        assert b_ann["level"] == "vip_level" and b_ann["jobtitle"] == "Director"
        code, out, _ = cli(capsys, "health", "main", "--json")
        [failure] = json.loads(out)["failed"]
        assert failure["code"] == "value_not_allowed" and "Silver" in failure["reason"]
        assert failure["fields"] == ["level"]
        assert other.violations == []


def test_a_second_email_does_not_fit_and_is_no_failure(
    folder_and_hubspot: Path,
    capsys: pytest.CaptureFixture[str],
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    folder = folder_and_hubspot
    (folder / "eve.vcf").write_text(
        card("eve", "Eve Ex", "eve@x.com", "EMAIL;TYPE=HOME:eve@home.example")
    )
    code, report = sync(capsys)
    assert code == 0 and report["failed"] == 0
    assert by_email(hubspot)["eve@x.com"]["firstname"] == "Eve"
    code, out, _ = cli(capsys, "health", "main", "--json")
    health = json.loads(out)
    assert health["counts"]["not_fitting"] == 1
    [row] = health["not_fitting"]
    assert row["field"] == "emails" and row["values"] == ["eve@home.example"]
    code, report = sync(capsys)  # nothing retried, nothing rewritten
    assert code == 0 and report["updated"] == {"a": 0, "b": 0}
    assert "eve@home.example" in (folder / "eve.vcf").read_text()  # never taken for a removal


def test_s8_opt_out_written_into_hubspot_where_the_token_may(
    folder_and_hubspot: Path,
    capsys: pytest.CaptureFixture[str],
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    """With "also set the app's own opt-out": without the communication-preferences scope
    the opt-out is refused for that contact with the scope named; once the private app has
    it, the next run opts the contact out in HubSpot. Nobody is re-subscribed."""
    from tests.emulators.hubspot.scopes import ALL_SCOPES

    folder = folder_and_hubspot
    assert cli(capsys, "connection", "set", "main", "--unsubscribes", "on",
               "--unsubscribe-opt-out", "on")[0] == 0  # fmt: skip
    assert sync(capsys)[0] == 0
    bob = folder / "bob.vcf"
    bob.write_text(bob.read_text().replace("X-NEWSLETTER:yes", "X-NEWSLETTER:no"))
    code, report = sync(capsys)
    assert code == 1 and report["failed"] == 1, report
    [failure] = json.loads(cli(capsys, "health", "main", "--json")[1])["failed"]
    assert "communication_preferences.statuses.batch.write" in failure["reason"]
    assert "hs_email_optout" not in by_email(hubspot)["bob@x.com"]
    hubspot.scopes = frozenset(ALL_SCOPES)
    code, report = sync(capsys)
    assert code == 0, report
    assert by_email(hubspot)["bob@x.com"]["hs_email_optout"] == "true"
    assert hubspot.portal.wide["bob@x.com"].status == "UNSUBSCRIBED"
    assert json.loads(cli(capsys, "health", "main", "--json")[1])["counts"]["failed"] == 0
    # Cy opted out in HubSpot long ago; Bob opts in again on the phone: nothing changes
    # in HubSpot, where only Bob can undo his opt-out.
    bob.write_text(bob.read_text().replace("X-NEWSLETTER:no", "X-NEWSLETTER:yes"))
    code, report = sync(capsys)
    assert by_email(hubspot)["bob@x.com"]["hs_email_optout"] == "true"
    assert by_email(hubspot)["cy@x.com"]["hs_email_optout"] == "true"
    prefs = [(p, s) for m, p, s in hubspot.requests_log if "unsubscribe-all?" in p]
    assert [s for _, s in prefs] == [403, 200]  # refused once without the scope, then done


def test_a_missing_scope_is_one_sentence_at_account_add_and_in_a_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    from tests.emulators.hubspot.scopes import CRM_SCOPES

    hubspot.scopes = frozenset(CRM_SCOPES) - {"crm.lists.read"}
    code, _, err = add_hubspot(capsys, monkeypatch, hubspot)
    assert code == 3 and "crm.lists.read" in err and "read HubSpot lists" in err
    assert len(err.strip().splitlines()) == 1
    hubspot.scopes = frozenset(CRM_SCOPES)
    assert add_hubspot(capsys, monkeypatch, hubspot)[0] == 0
    folder = tmp_path / "cards"
    folder.mkdir()
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com"))
    assert cli(capsys, "account", "add", "vcard-folder", "Phone", "--set", f"path={folder}")[0] == 0
    assert cli(capsys, "connection", "create", "main", "--a", "Phone", "--b", "HS")[0] == 0
    # Someone takes the write scope away from the private app.
    hubspot.scopes = frozenset(CRM_SCOPES) - {"crm.objects.contacts.write"}
    code, report = sync(capsys)
    assert code == 3 and report["status"] == "auth", report
    assert "crm.objects.contacts.write" in report["message"]
    assert "Traceback" not in report["message"]
    out = cli(capsys, "activity", "main")[1]  # what the window's Activity tab lists
    assert "crm.objects.contacts.write" in out


def test_only_the_properties_a_sync_uses_are_read_and_a_field_mapped_later_is_read_for_all(
    folder_and_hubspot: Path,
    capsys: pytest.CaptureFixture[str],
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    """HubSpot portals have hundreds of properties; a sync asks for those behind its
    mappings (and matching) only. Mapping another property later reads it for every
    contact — its values are HubSpot's, not assumed empty."""
    from urllib.parse import parse_qs, urlsplit

    folder = folder_and_hubspot
    hubspot.portal.add_property(
        "tier", "Tier", "enumeration", "select", options=[("Gold", "gold"), ("Silver", "silver")]
    )
    for i in range(60):
        hubspot.portal.add_property(f"custom_{i}", f"Custom {i}")
    ann = next(c for c in hubspot.portal.live() if c.properties["email"] == "ann@x.com")
    hubspot.portal.edit(ann.id, tier="gold", custom_7="unused")

    def asked() -> set[str]:
        names: set[str] = set()
        for method, path, _ in hubspot.requests_log:
            if method == "GET" and urlsplit(path).path == "/crm/v3/objects/contacts":
                for v in parse_qs(urlsplit(path).query).get("properties", []):
                    names |= set(v.split(","))
        hubspot.requests_log.clear()
        return names

    asked()
    assert sync(capsys)[0] == 0
    names = asked()
    assert {"email", "firstname", "lastname", "jobtitle", "phone"} <= names
    assert "tier" not in names and not any(n.startswith("custom_") for n in names)
    assert "hs_email_optout" not in names  # unsubscribes are off for this connection
    code, _, err = cli(capsys, "connection", "map", "main", "--a-field", "notes",
                       "--b-field", "tier")  # fmt: skip
    assert code == 0, err
    code, report = sync(capsys)
    assert code == 0, report
    assert "tier" in asked()
    assert "Gold" in (folder / "ann.vcf").read_text()


def test_an_edit_the_search_index_shows_late_is_synced_by_a_later_run(
    folder_and_hubspot: Path,
    capsys: pytest.CaptureFixture[str],
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    """HubSpot's search finds a write seconds after it: a run right after an edit does not
    see it yet (nothing is lost or guessed), a run after the index caught up syncs it."""
    import time

    folder = folder_and_hubspot
    assert sync(capsys)[0] == 0
    hubspot.portal.search_delay_ms = 1500
    bob_id = next(c.id for c in hubspot.portal.live() if c.properties["email"] == "bob@x.com")
    hubspot.portal.edit(bob_id, jobtitle="Engineer")
    code, report = sync(capsys)
    assert code == 0 and report["updated"] == {"a": 0, "b": 0}
    time.sleep(1.6)
    code, report = sync(capsys)
    assert code == 0 and report["updated"] == {"a": 1, "b": 0}, report
    assert "Engineer" in (folder / "bob.vcf").read_text()
