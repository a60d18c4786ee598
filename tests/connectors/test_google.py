"""Google Contacts connector: the contract suite and Google's own behaviour, against the
People API emulator (its requests and answers checked against the Discovery document)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.connectors.google import GoogleContactsApp, build
from app.connectors.google.api import Pacing
from app.errors import AuthExpired, Conflict, RateLimited, Rejected
from app.model import Address, Create, Labeled, Record, Update, record_emails
from tests.connectors.contract import ConnectorContract
from tests.emulators.google_people import CLIENT_ID, CLIENT_SECRET, GooglePeopleEmulator


@pytest.fixture
def google() -> Iterator[GooglePeopleEmulator]:
    with GooglePeopleEmulator() as emulator:
        yield emulator  # type: ignore[misc]
    assert not emulator.spec_errors, emulator.spec_errors


def settings_for(google: GooglePeopleEmulator) -> dict[str, str]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "api_base": google.url,
        "auth_base": google.url,
    }


@pytest.fixture
def opener(
    google: GooglePeopleEmulator, tmp_path: Path
) -> Iterator[Callable[[], GoogleContactsApp]]:
    refresh = google.issue_refresh_token()
    opened: list[GoogleContactsApp] = []

    def open_app() -> GoogleContactsApp:
        app = build(settings_for(google), refresh, config_dir=None, cache_dir=tmp_path / "cache")
        app.api.pacing = Pacing(backoff=0.01, give_up=2.0)
        opened.append(app)
        return app

    yield open_app
    for app in opened:
        app.close()


class TestGoogleContract(ConnectorContract):
    @pytest.fixture
    def app(self, opener: Callable[[], GoogleContactsApp]) -> GoogleContactsApp:
        return opener()

    @pytest.fixture
    def reopen(
        self, app: GoogleContactsApp, opener: Callable[[], GoogleContactsApp]
    ) -> Callable[[], GoogleContactsApp]:
        def again() -> GoogleContactsApp:
            app.close()  # the mirror is saved, as at the end of a run
            return opener()

        return again


def ann(google: GooglePeopleEmulator, **extra: Any) -> str:
    data = {
        "names": [{"givenName": "Ann", "familyName": "Lee", "phoneticGivenName": "An"}],
        "emailAddresses": [{"value": "ann@example.com", "type": "work"}],
        "phoneNumbers": [
            {"value": "+44 20 7946 0958", "type": "workMobile"},
            {"value": "+44 20 7946 0000", "type": "homeFax"},
        ],
        "organizations": [{"name": "Acme", "title": "Director", "symbol": "ACME"}],
        "userDefined": [{"key": "Customer no", "value": "42"}],
        "events": [{"date": {"year": 2020, "month": 1, "day": 2}, "type": "anniversary"}],
    }
    data.update(extra)
    return google.add_contact(data)


def test_reading_maps_fields_labels_and_groups(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    vip = google.add_group("VIP")
    rid = ann(
        google,
        addresses=[{"streetAddress": "1 Main St", "city": "Leeds", "type": "home"}],
        birthdays=[{"date": {"month": 2, "day": 29}}],
        urls=[{"value": "https://acme.example", "type": "blog"}],
        biographies=[{"value": "Met at the fair", "contentType": "TEXT_PLAIN"}],
        nicknames=[{"value": "Annie"}],
    )
    google.set_groups(rid, {vip, "contactGroups/starred"})
    app = opener()
    [rec] = app.fetch(list(app.list_versions()))
    assert isinstance(rec, Record)
    f = rec.fields
    assert (f["given_name"], f["family_name"], f["full_name"]) == ("Ann", "Lee", "Ann Lee")
    assert f["phones"] == (
        Labeled("+44 20 7946 0958", "mobile"),
        Labeled("+44 20 7946 0000", "fax"),
    )
    assert f["emails"] == (Labeled("ann@example.com", "work"),)
    assert f["addresses"] == (Address("1 Main St", "Leeds", label="home"),)
    assert f["birthday"] == "--02-29" and f["notes"] == "Met at the fair"
    assert f["urls"] == (Labeled("https://acme.example", "blog"),)
    assert (f["organization"], f["title"], f["nickname"]) == ("Acme", "Director", "Annie")
    assert f["custom:Customer no"] == "42"
    assert rec.segments == {"VIP", "Starred"}
    schema = app.schema()
    assert set(schema.segments) == {"VIP", "Starred"}
    assert schema.get("custom:Customer no") is not None


def test_update_mask_names_only_written_fields_and_keeps_the_rest(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    rid = ann(google)
    app = opener()
    [rec] = app.fetch([rid])
    assert isinstance(rec, Record)
    phones = (*rec.fields["phones"], Labeled("+1 555 0100", "work"))  # type: ignore[misc]
    [res] = app.write(
        [Update("u", rid, {"title": "CEO", "phones": phones}, expected_version=rec.version)]
    )
    assert res.ok, res.error
    [body] = [s.body for s in google.requests if s.path.endswith(":batchUpdateContacts")]
    import json

    sent = json.loads(body)
    assert set(sent["updateMask"].split(",")) == {"organizations", "phoneNumbers"}
    c = google.contacts[rid]
    # Unmapped parts of written fields survive; unmapped fields are untouched.
    assert c.data["organizations"] == [{"name": "Acme", "title": "CEO", "symbol": "ACME"}]
    assert [p["type"] for p in c.data["phoneNumbers"]] == ["workMobile", "homeFax", "work"]
    assert c.data["names"][0]["phoneticGivenName"] == "An"
    assert c.data["events"][0]["type"] == "anniversary"
    assert c.data["userDefined"] == [{"key": "Customer no", "value": "42"}]


def test_custom_fields_written_as_user_defined(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    rid = ann(google)
    app = opener()
    app.list_versions()
    [res] = app.write([Update("u", rid, {"custom:Tier": "Gold"})])
    assert res.ok, res.error
    assert google.contacts[rid].data["userDefined"] == [
        {"key": "Customer no", "value": "42"},
        {"key": "Tier", "value": "Gold"},
    ]


def test_stale_etag_is_merged_and_retried_once(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    rid = ann(google)
    app = opener()
    [rec] = app.fetch(list(app.list_versions()))
    assert isinstance(rec, Record)
    # The user edits another field in Google after our read: our etag is stale.
    google.edit_contact(rid, biographies=[{"value": "edited in Google"}])
    [res] = app.write([Update("u", rid, {"title": "CEO"})])
    assert res.ok, res.error
    assert google.contacts[rid].data["organizations"][0]["title"] == "CEO"
    assert google.contacts[rid].data["biographies"] == [{"value": "edited in Google"}]
    failed = [s for s in google.requests if s.path.endswith(":batchUpdateContacts")]
    assert [s.status for s in failed] == [400, 200]
    # The same field edited in Google meanwhile: a conflict, nothing overwritten.
    [rec] = app.fetch([rid])
    google.edit_contact(rid, organizations=[{"name": "Acme", "title": "Owner"}])
    [res] = app.write([Update("u2", rid, {"title": "CTO"})])
    assert isinstance(res.error, Conflict)
    assert google.contacts[rid].data["organizations"][0]["title"] == "Owner"


def test_creates_in_batches_of_200_and_bad_contact_alone_fails(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    app = opener()
    ops = [
        Create(f"c{i}", {"given_name": f"P{i}", "emails": (Labeled(f"p{i}@x.com"),)})
        for i in range(200)
    ]
    results = app.write(ops)
    assert all(r.ok for r in results)
    assert google.count("POST", "batchCreateContacts") == 1
    bad = Create("bad", {"given_name": "X", "custom:": "no key"})
    good = Create("good", {"given_name": "Y"})
    before = google.count("POST", "batchCreateContacts")
    results = app.write([good, bad])
    assert results[0].ok
    assert isinstance(results[1].error, Rejected) and "userDefined" in str(results[1].error)
    # The batch was refused as a whole, then each contact was sent alone.
    assert google.count("POST", "batchCreateContacts") - before == 3


def test_segments_in_bulk_and_groups_created(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    rids = [google.add_contact({"names": [{"givenName": f"P{i}"}]}) for i in range(30)]
    app = opener()
    app.list_versions()
    ops = [
        Update(f"u{i}", rid, {}, add_segments=frozenset({"Customers"}))
        for i, rid in enumerate(rids)
    ]
    results = app.write(ops)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert google.count("POST", "/v1/contactGroups$") == 1  # "Customers" created once
    assert google.count("POST", "members:modify") == 1  # 30 contacts, one request
    group = google.group_named("Customers")
    assert group is not None
    assert all(group.rid in google.contacts[r].groups for r in rids)
    assert all(r.record is not None and r.record.segments == {"Customers"} for r in results)
    listed = opener().list_versions()
    assert all(listed[r.record.id] == r.record.version for r in results if r.record)


def test_incremental_reads_deletions_and_renames(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    a = ann(google)
    b = google.add_contact({"names": [{"givenName": "Bob"}]})
    c = google.add_contact({"names": [{"givenName": "Cy"}]})
    first = opener()
    versions = first.list_versions()
    assert set(versions) == {a, b, c}
    first.close()
    # Nothing changed: one People API request, no contact read again.
    before = google.count(path="^/v1/")
    quiet = opener()
    assert quiet.list_versions() == versions
    assert google.count(path="^/v1/") - before == 1
    assert quiet.fetch([a])[0].version == versions[a]  # type: ignore[union-attr]
    assert google.count(path="^/v1/") - before == 1
    quiet.close()
    google.edit_contact(b, names=[{"givenName": "Bobby"}])
    google.delete_contact(c)
    new_a = google.rename_contact(a)
    app = opener()
    now = app.list_versions()
    assert set(now) == {a, b}  # a keeps its first id; c is gone
    [rec] = app.fetch([a])
    assert rec.id == a
    # Writes go to the new resource name.
    [res] = app.write([Update("u", a, {"title": "CEO"})])
    assert res.ok and res.record is not None and res.record.id == a
    assert google.contacts[new_a].data["organizations"][0]["title"] == "CEO"


def test_change_feed(google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]) -> None:
    a = ann(google)
    b = google.add_contact({"names": [{"givenName": "Bob"}]})
    app = opener()
    full = app.changes(None)
    assert full is not None and full.complete and full.cursor
    assert {r.id for r in full.records} == {a, b}
    google.edit_contact(b, names=[{"givenName": "Bobby"}])
    google.delete_contact(a)
    delta = app.changes(full.cursor)
    assert delta is not None and not delta.complete
    assert [r.id for r in delta.records] == [b]
    assert delta.deleted == [a]
    assert delta.cursor and delta.cursor != full.cursor
    google.expire_sync_tokens()
    again = app.changes(delta.cursor)
    assert again is not None and again.complete and {r.id for r in again.records} == {b}


def test_quota_429_is_waited_out_never_a_failed_contact(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    app = opener()
    google.fail_next(3)
    assert app.list_versions() == {}
    assert app.api.quota_waits == 3 and app.api.pacing.interval > 0
    google.fail_next(2)
    [res] = app.write([Create("c", {"given_name": "Ann"})])
    assert res.ok
    google.fail_next(1000)
    with pytest.raises(RateLimited):
        app.write([Create("c2", {"given_name": "Bo"})])


def test_revoked_sign_in_is_auth_expired(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    app = opener()
    app.list_versions()
    google.revoke_all()  # access and refresh tokens gone
    with pytest.raises(AuthExpired, match="sign in again"):
        opener().list_versions()


def test_expired_access_token_is_renewed(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    app = opener()
    app.list_versions()
    google.expire_access_tokens()
    app._listed = False
    assert app.list_versions() == {}
    assert app.api.tokens.refreshes == 2


def test_merged_contact_keeps_the_first_id_and_the_other_is_reported_gone(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    a = google.add_contact({"names": [{"givenName": "Ann"}]})
    b = google.add_contact(
        {"names": [{"givenName": "Ann"}], "emailAddresses": [{"value": "ann@x.com"}]}
    )
    app = opener()
    full = app.changes(None)
    assert full is not None
    merged = google.merge_contacts(a, b)
    delta = app.changes(full.cursor)
    assert delta is not None
    assert [r.id for r in delta.records] == [a]  # the binding of ``a`` survives the merge
    assert delta.deleted == [b]
    [rec] = app.fetch([a])
    assert isinstance(rec, Record) and record_emails(rec) == ["ann@x.com"]
    [res] = app.write([Update("u", a, {"title": "CEO"})])
    assert res.ok and google.contacts[merged].data["organizations"][0]["title"] == "CEO"


def test_a_client_baked_in_by_the_installer_is_read_from_its_bundled_file(
    tmp_path: Path,
) -> None:
    from app.connectors.google import auth

    assert not auth.BUILT_IN_FILE.exists()  # the repository holds no client of ours
    baked = tmp_path / "built_in_client.json"
    assert auth.built_in_client(baked) == {"client_id": "", "client_secret": ""}
    baked.write_text('{"google": {"client_id": " baked.apps ", "client_secret": "s"}}')
    assert auth.built_in_client(baked) == {"client_id": "baked.apps", "client_secret": "s"}
    baked.write_text("{broken")
    assert auth.built_in_client(baked) == {"client_id": "", "client_secret": ""}


def test_client_id_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.connectors.google import auth
    from app.errors import ConfigError

    assert auth.BUILT_IN_CLIENT == {"client_id": "", "client_secret": ""}  # none of ours
    with pytest.raises(ConfigError, match="client id") as err:
        auth.client_credentials({}, tmp_path)
    assert str(tmp_path / "oauth-clients.json") in str(err.value)
    monkeypatch.setattr(auth, "BUILT_IN_CLIENT", {"client_id": "built", "client_secret": "b"})
    assert auth.client_credentials({}, tmp_path) == ("built", "b")
    (tmp_path / "oauth-clients.json").write_text(
        '{"google": {"client_id": "file", "client_secret": "f"}}'
    )
    assert auth.client_credentials({}, tmp_path) == ("file", "f")
    assert auth.client_credentials({"client_id": "own"}, tmp_path) == ("own", "")
    (tmp_path / "oauth-clients.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read as JSON"):
        auth.client_credentials({}, tmp_path)


def test_run_lock_key_is_the_google_account() -> None:
    from app.connectors.registry import storage_of

    work = storage_of("google", {"account_email": "Ann@example.com"})
    home = storage_of("google", {"account_email": "ann@home.example"})
    assert work != home
    assert work == storage_of("google", {"account_email": "ann@example.com", "client_id": "x"})
    assert "ann@example.com" in work[1]


def test_feed_run_writes_without_reading_contacts_again(
    google: GooglePeopleEmulator, opener: Callable[[], GoogleContactsApp]
) -> None:
    """The engine's feed path: a contact the feed did not mention is updated with one
    request (its etag guards against a change the mirror missed)."""
    a = ann(google)
    first = opener()
    full = first.changes(None)
    assert full is not None
    version = full.records[0].version
    first.close()
    app = opener()
    delta = app.changes(full.cursor)
    assert delta is not None and delta.records == []
    before = google.count(path="^/v1/")
    [res] = app.write([Update("u", a, {"title": "CEO"}, expected_version=version)])
    assert res.ok, res.error
    assert google.count(path="^/v1/") - before == 1  # batchUpdateContacts only
    # Changed in Google behind the mirror's back: the etag catches it, merged, retried.
    google.edit_contact(a, biographies=[{"value": "from Google"}])
    assert res.record is not None
    [res2] = app.write([Update("u2", a, {"title": "CTO"}, expected_version=res.record.version)])
    assert res2.ok, res2.error
    assert google.contacts[a].data["biographies"] == [{"value": "from Google"}]
