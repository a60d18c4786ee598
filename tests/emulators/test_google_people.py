"""The Google People emulator itself: its answers follow the Discovery document, and it
behaves as Google describes (paging, sync tokens and their expiry, deleted people, etags,
batch limits, groups, quota errors)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.emulators.common import DiscoveryValidator, SpecError
from tests.emulators.google_people import SPEC, GooglePeopleEmulator

TOKEN = "test-token"
H = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def google() -> Iterator[GooglePeopleEmulator]:
    with GooglePeopleEmulator(access_token=TOKEN) as emulator:
        yield emulator  # type: ignore[misc]
    assert not emulator.spec_errors, emulator.spec_errors


def get(google: GooglePeopleEmulator, path: str, **params: Any) -> requests.Response:
    return requests.get(google.url + path, params=params, headers=H, timeout=10)


def post(google: GooglePeopleEmulator, path: str, body: Any) -> requests.Response:
    return requests.post(google.url + path, json=body, headers=H, timeout=10)


def listing(google: GooglePeopleEmulator, **params: Any) -> dict[str, Any]:
    params.setdefault("personFields", "names,emailAddresses")
    r = get(google, "/v1/people/me/connections", **params)
    assert r.status_code == 200, r.text
    return r.json()


def test_validator_catches_unknown_fields_and_wrong_types() -> None:
    v = DiscoveryValidator(SPEC)
    v.check("Person", {"names": [{"givenName": "Ann"}], "emailAddresses": [{"value": "a@x"}]})
    with pytest.raises(SpecError, match="emails"):
        v.check("Person", {"emails": []})
    with pytest.raises(SpecError, match="givenName"):
        v.check("Person", {"names": [{"givenName": 3}]})
    with pytest.raises(SpecError, match="pageSize"):
        v.check_query("people.connections.list", {"personFields": ["names"], "pageSize": ["x"]})
    with pytest.raises(SpecError, match="sortOrder"):
        v.check_query(
            "people.connections.list", {"personFields": ["names"], "sortOrder": ["RANDOM"]}
        )
    with pytest.raises(SpecError, match="unknown query parameter"):
        v.check_query("people.connections.list", {"personFields": ["names"], "limit": ["5"]})


def test_no_token_is_401(google: GooglePeopleEmulator) -> None:
    r = requests.get(google.url + "/v1/people/me/connections?personFields=names", timeout=5)
    assert r.status_code == 401
    assert r.json()["error"]["status"] == "UNAUTHENTICATED"


def test_person_fields_required_and_page_size_capped(google: GooglePeopleEmulator) -> None:
    r = get(google, "/v1/people/me/connections")
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    google.spec_errors.clear()
    r = get(google, "/v1/people/me/connections", personFields="names", pageSize=1001)
    assert r.status_code == 400


def test_paging_and_sync_tokens(google: GooglePeopleEmulator) -> None:
    rids = [google.add_contact({"names": [{"givenName": f"P{i}"}]}) for i in range(5)]
    first = listing(google, pageSize=2, requestSyncToken="true")
    assert len(first["connections"]) == 2 and "nextSyncToken" not in first
    seen = [p["resourceName"] for p in first["connections"]]
    token = first["nextPageToken"]
    while token:
        page = listing(google, pageSize=2, requestSyncToken="true", pageToken=token)
        seen += [p["resourceName"] for p in page.get("connections", [])]
        token = page.get("nextPageToken")
    assert seen == rids and page["totalItems"] == 5
    sync = page["nextSyncToken"]
    # A page token replayed with other parameters is refused.
    r = get(
        google, "/v1/people/me/connections", personFields="names", pageToken=first["nextPageToken"]
    )
    assert r.status_code == 400
    # Nothing changed: an empty incremental answer with a new token.
    quiet = listing(google, syncToken=sync, requestSyncToken="true")
    assert "connections" not in quiet and quiet["nextSyncToken"]
    google.edit_contact(rids[1], names=[{"givenName": "Changed"}])
    google.delete_contact(rids[2])
    new_name = google.rename_contact(rids[3])
    delta = listing(google, syncToken=sync, requestSyncToken="true")
    by_name = {p["resourceName"]: p for p in delta["connections"]}
    assert set(by_name) == {rids[1], rids[2], new_name}
    assert by_name[rids[2]]["metadata"]["deleted"] is True
    assert by_name[new_name]["metadata"]["previousResourceNames"] == [rids[3]]
    assert by_name[rids[1]]["names"][0]["givenName"] == "Changed"
    # Full listings leave deleted people out.
    assert rids[2] not in {p["resourceName"] for p in listing(google)["connections"]}


def test_expired_sync_token(google: GooglePeopleEmulator) -> None:
    google.add_contact({"names": [{"givenName": "A"}]})
    sync = listing(google, requestSyncToken="true")["nextSyncToken"]
    google.expire_sync_tokens()
    r = get(google, "/v1/people/me/connections", personFields="names", syncToken=sync)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["status"] == "FAILED_PRECONDITION"
    assert error["details"][0]["reason"] == "EXPIRED_SYNC_TOKEN"
    # Seven days later a fresh token expires too.
    sync = listing(google, requestSyncToken="true")["nextSyncToken"]
    google.clock_offset += 7 * 86400 + 1
    r = get(google, "/v1/people/me/connections", personFields="names", syncToken=sync)
    assert r.json()["error"]["details"][0]["reason"] == "EXPIRED_SYNC_TOKEN"


def test_batch_create_update_etags_and_limits(google: GooglePeopleEmulator) -> None:
    too_many = {"contacts": [{"contactPerson": {}}] * 201, "readMask": "names"}
    assert post(google, "/v1/people:batchCreateContacts", too_many).status_code == 400
    body = {
        "contacts": [
            {"contactPerson": {"names": [{"givenName": "Ann"}], "urls": [{"value": "x"}]}}
        ],
        "readMask": "names,urls,metadata",
    }
    r = post(google, "/v1/people:batchCreateContacts", body)
    assert r.status_code == 200, r.text
    person = r.json()["createdPeople"][0]["person"]
    rid = person["resourceName"]
    source = person["metadata"]["sources"][0]
    update = {
        "contacts": {
            rid: {
                "names": [{"givenName": "Anne"}],
                "metadata": {"sources": [{"type": "CONTACT", "etag": source["etag"]}]},
            }
        },
        "updateMask": "names",
        "readMask": "names,urls",
    }
    r = post(google, "/v1/people:batchUpdateContacts", update)
    assert r.status_code == 200, r.text
    after = r.json()["updateResult"][rid]["person"]
    assert after["names"][0]["givenName"] == "Anne"
    assert after["urls"][0]["value"] == "x"  # not in the mask: untouched
    # The same etag again is stale now.
    r = post(google, "/v1/people:batchUpdateContacts", update)
    assert r.status_code == 400 and r.json()["error"]["status"] == "FAILED_PRECONDITION"
    # Two names on one contact: a singleton field.
    fresh = after["metadata"]["sources"][0]["etag"]
    update["contacts"][rid] = {
        "names": [{"givenName": "A"}, {"givenName": "B"}],
        "metadata": {"sources": [{"type": "CONTACT", "etag": fresh}]},
    }
    assert post(google, "/v1/people:batchUpdateContacts", update).status_code == 400
    # An unknown field name is refused as Google does.
    update["contacts"][rid] = {"nick": [], "metadata": {"sources": [{"type": "CONTACT"}]}}
    assert post(google, "/v1/people:batchUpdateContacts", update).status_code == 400
    google.spec_errors.clear()


def test_groups_and_membership(google: GooglePeopleEmulator) -> None:
    rid = google.add_contact({"names": [{"givenName": "Ann"}]})
    r = post(google, "/v1/contactGroups", {"contactGroup": {"name": "VIP"}})
    assert r.status_code == 200, r.text
    group = r.json()["resourceName"]
    assert post(google, "/v1/contactGroups", {"contactGroup": {"name": "VIP"}}).status_code == 409
    before = get(google, f"/v1/{rid}", personFields="memberships").json()
    r = post(google, f"/v1/{group}/members:modify", {"resourceNamesToAdd": [rid, "people/c1"]})
    assert r.json() == {"notFoundResourceNames": ["people/c1"]}
    after = get(google, f"/v1/{rid}", personFields="memberships").json()
    assert after["etag"] != before["etag"]
    groups = {m["contactGroupMembership"]["contactGroupResourceName"] for m in after["memberships"]}
    assert groups == {group, "contactGroups/myContacts"}
    listed = get(google, "/v1/contactGroups", pageSize=1000).json()["contactGroups"]
    vip = next(g for g in listed if g["resourceName"] == group)
    assert vip["memberCount"] == 1 and vip["groupType"] == "USER_CONTACT_GROUP"
    over = {"resourceNamesToAdd": [f"people/c{i}" for i in range(1001)]}
    assert post(google, f"/v1/{group}/members:modify", over).status_code == 400
    r = post(google, "/v1/contactGroups/friends/members:modify", {"resourceNamesToAdd": [rid]})
    assert r.status_code == 400


def test_quota_errors_on_demand(google: GooglePeopleEmulator) -> None:
    google.fail_next(1)
    r = get(google, "/v1/people/me/connections", personFields="names")
    assert r.status_code == 429
    assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert get(google, "/v1/people/me/connections", personFields="names").status_code == 200


def test_runs_alone_and_prints_its_address() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.emulators.google_people",
            "--port",
            "0",
            "--auto-consent",
            "--access-token",
            "fixed",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        r = requests.get(
            url + "/v1/people/me/connections",
            params={"personFields": "names"},
            headers={"Authorization": "Bearer fixed"},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["totalItems"] == 0
    finally:
        proc.terminate()
        proc.wait(10)
