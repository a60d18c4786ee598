"""The HubSpot emulator itself: HubSpot's rules, its limits, and running it alone."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from tests.emulators.hubspot.fixtures import TOKEN, hubspot  # noqa: F401
from tests.emulators.hubspot.server import HubSpotEmulator


def session(token: str = TOKEN) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


def test_batch_limit_paging_limit_and_search_cap(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    hubspot.search_cap = 300
    for i in range(350):
        hubspot.portal.seed({"email": f"p{i}@x.com"})
    s = session()
    url = hubspot.url + "/crm/v3/objects/contacts"
    too_many = {"inputs": [{"properties": {"email": f"n{i}@x.com"}} for i in range(101)]}
    r = s.post(url + "/batch/create", json=too_many)
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    assert s.get(url, params={"limit": 101}).status_code == 400
    page = s.get(url, params={"limit": 100}).json()
    assert len(page["results"]) == 100 and page["paging"]["next"]["after"]
    body = {"limit": 200, "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]}
    first = s.post(url + "/search", json=body).json()
    assert first["total"] == 350 and first["paging"]["next"]["after"] == "200"
    r = s.post(url + "/search", json={**body, "after": "200"})
    assert r.status_code == 400 and "300" in r.json()["message"]


def test_409_duplicate_email_and_unknown_option(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    old = hubspot.portal.seed({"email": "ann@x.com"})
    s = session()
    url = hubspot.url + "/crm/v3/objects/contacts/batch/create"
    r = s.post(url, json={"inputs": [{"properties": {"email": "ANN@x.com"}}]})
    assert r.status_code == 409
    assert r.json()["message"] == f"Contact already exists. Existing ID: {old.id}"
    inputs = [
        {"properties": {"email": "a@x.com", "lifecyclestage": "gold"}, "objectWriteTraceId": "t1"},
        {"properties": {"email": "b@x.com", "lifecyclestage": "lead"}, "objectWriteTraceId": "t2"},
    ]
    r = s.post(url, json={"inputs": inputs})
    assert r.status_code == 207
    data = r.json()
    assert [x["objectWriteTraceId"] for x in data["results"]] == ["t2"]
    [error] = data["errors"]
    assert error["category"] == "VALIDATION_ERROR"
    assert error["context"] == {"propertyName": ["lifecyclestage"], "objectWriteTraceId": ["t1"]}
    assert "INVALID_OPTION" in error["message"]
    r = s.post(
        hubspot.url + "/crm/v3/objects/contacts/batch/update",
        json={"inputs": [{"id": old.id, "properties": {"hs_email_optout": "true"}}]},
    )
    assert r.status_code == 207 and "read only" in r.json()["errors"][0]["message"]


def test_rate_limit_headers_and_429s(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    hubspot.set_rate_limit(3, 1.0)
    s = session()
    url = hubspot.url + "/crm/v3/objects/contacts"
    answers = [s.get(url) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert answers[0].headers["X-HubSpot-RateLimit-Remaining"] == "2"
    assert answers[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
    assert answers[3].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    time.sleep(1.05)
    assert s.get(url).status_code == 200
    assert s.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_dynamic_lists_refuse_edits(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    c = hubspot.portal.seed({"email": "a@x.com"})
    lst = hubspot.portal.add_list("Auto", "DYNAMIC", predicate=lambda _: True)
    s = session()
    r = s.put(f"{hubspot.url}/crm/v3/lists/{lst.list_id}/memberships/add", json=[c.id])
    assert r.status_code == 400 and "DYNAMIC" in r.json()["message"]
    r = s.get(f"{hubspot.url}/crm/v3/lists/{lst.list_id}/memberships")
    assert [m["recordId"] for m in r.json()["results"]] == [c.id]


def test_spec_violations_are_caught(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    """A request the spec forbids (batch read with ids that are not objects) is recorded."""
    s = session()
    s.post(hubspot.url + "/crm/v3/objects/contacts/batch/read", json={"inputs": ["1"]})
    assert hubspot.violations and "batch/read" in hubspot.violations[0]
    hubspot.violations.clear()


def test_runs_alone_and_prints_its_url_first() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.hubspot", "--port", "0", "--access-token", "tok"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        r = session("tok").get(url + "/crm/v3/properties/contacts")
        assert r.status_code == 200 and any(p["name"] == "email" for p in r.json()["results"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("path", ["/crm/v3/objects/contacts", "/crm/v3/properties/contacts"])
def test_every_route_needs_the_token(hubspot: HubSpotEmulator, path: str) -> None:  # noqa: F811
    assert requests.get(hubspot.url + path, timeout=10).status_code == 401


# --- scopes -------------------------------------------------------------------------------


def _spec_alternatives(method: str, spec_path: str) -> list[set[str]]:
    import json as _json

    from tests.emulators.common import find_spec
    from tests.emulators.hubspot.spec import FILES

    for prefix, filename in FILES:
        if spec_path.startswith(prefix):
            data = _json.loads(find_spec(f"hubspot/{filename}").read_text(encoding="utf-8"))
            op = data["paths"][spec_path][method.lower()]
            return [set(alt.get("oauth2", [])) for alt in op["security"]]
    raise AssertionError(f"no spec for {spec_path}")


def test_the_scope_table_is_the_specs() -> None:
    """Every alternative the emulator accepts is one the vendor's files list for the route."""
    from tests.emulators.hubspot.scopes import ROUTES

    batch_writes = ("create", "update", "archive")
    for method, pattern, spec_path, alternatives in ROUTES:
        paths = [spec_path or pattern]
        if pattern.endswith(r"batch/\w+"):
            paths = [f"/crm/v3/objects/contacts/batch/{a}" for a in batch_writes]
        for path in paths:
            listed = _spec_alternatives(method, path)
            for alt in alternatives:
                assert set(alt) in listed, (method, path, alt)


def test_a_missing_scope_is_hubspots_403() -> None:
    from tests.emulators.hubspot.fixtures import TOKEN as T
    from tests.emulators.hubspot.scopes import CRM_SCOPES

    scopes = [s for s in CRM_SCOPES if s != "crm.lists.write"]
    with HubSpotEmulator(access_token=T, scopes=scopes, search_delay=0) as hs:
        s = session(T)
        body = {"offset": 0, "count": 20, "additionalProperties": []}
        assert s.post(hs.url + "/crm/v3/lists/search", json=body).status_code == 200
        r = s.put(hs.url + "/crm/v3/lists/1/memberships/add", json=["1"])
        assert r.status_code == 403
        body = r.json()
        assert body["category"] == "MISSING_SCOPES"
        assert body["message"].startswith("This app hasn't been granted all required scopes")
        assert body["errors"][0]["context"]["requiredGranularScopes"] == [
            "crm.lists.read",
            "crm.lists.write",
        ]
        r = s.post(
            hs.url + "/communication-preferences/v4/statuses/batch/unsubscribe-all/read",
            params={"channel": "EMAIL"},
            json={"inputs": ["a@x.com"]},
        )
        assert r.status_code == 403
        assert r.json()["errors"][0]["context"]["requiredGranularScopes"] == [
            "communication_preferences.statuses.batch.read"
        ]
        assert hs.violations == []


# --- communication preferences ---------------------------------------------------------------


def test_opt_outs_by_address_and_no_way_back_through_the_api() -> None:
    from tests.emulators.hubspot.fixtures import TOKEN as T
    from tests.emulators.hubspot.scopes import ALL_SCOPES

    with HubSpotEmulator(access_token=T, scopes=ALL_SCOPES, search_delay=0) as hs:
        ann = hs.portal.seed({"email": "ann@x.com"})
        before = ann.updated
        s = session(T)
        url = hs.url + "/communication-preferences/v4/statuses/batch/unsubscribe-all"
        q = {"channel": "EMAIL"}
        r = s.post(url + "/read", params=q, json={"inputs": ["ann@x.com", "bob@x.com", "nope"]})
        assert r.status_code == 207 and r.json()["numErrors"] == 1
        assert [x["wideStatuses"] for x in r.json()["results"]] == [[], []]
        time.sleep(0.002)
        r = s.post(url, params=q, json={"inputs": ["ann@x.com", "bob@x.com"]})
        assert r.status_code == 200
        statuses = r.json()["results"][0]["statuses"]
        assert {x["status"] for x in statuses} == {"UNSUBSCRIBED"}
        assert ann.properties["hs_email_optout"] == "true" and ann.updated > before
        bob = hs.portal.seed({"email": "BOB@x.com"})  # an address that opted out before
        assert bob.properties["hs_email_optout"] == "true"
        r = s.post(url + "/read", params=q, json={"inputs": ["ann@x.com"]})
        [wide] = r.json()["results"][0]["wideStatuses"]
        assert wide["status"] == "UNSUBSCRIBED" and wide["wideStatusType"] == "PORTAL_WIDE"
        r = s.get(hs.url + "/communication-preferences/v4/statuses/ann@x.com/unsubscribe-all",
                  params=q)  # fmt: skip
        assert r.status_code == 200 and r.json()["results"][0]["status"] == "UNSUBSCRIBED"
        assert s.post(url, params=q, json={"inputs": ["x@x.com"] * 0}).status_code == 400
        assert s.post(url, params=q, json={"inputs": ["bad"]}).status_code == 400
        assert hs.violations == []


# --- search indexing delay -------------------------------------------------------------------


def test_search_sees_a_write_only_after_the_delay() -> None:
    from tests.emulators.hubspot.fixtures import TOKEN as T

    with HubSpotEmulator(access_token=T, search_delay=0.3) as hs:
        s = session(T)
        url = hs.url + "/crm/v3/objects/contacts"
        r = s.post(url + "/batch/create", json={"inputs": [{"properties": {"email": "a@x.com"}}]})
        rid = r.json()["results"][0]["id"]
        assert s.get(f"{url}/{rid}").status_code == 200  # reads by id see it at once
        body = {"filterGroups": [], "properties": ["jobtitle"]}
        assert s.post(url + "/search", json=body).json()["total"] == 0
        time.sleep(0.35)
        assert s.post(url + "/search", json=body).json()["total"] == 1
        s.post(url + "/batch/update",
               json={"inputs": [{"id": rid, "properties": {"jobtitle": "CEO"}}]})  # fmt: skip
        [old] = s.post(url + "/search", json=body).json()["results"]
        assert "jobtitle" not in old["properties"]  # the index still has the old values
        time.sleep(0.35)
        [new] = s.post(url + "/search", json=body).json()["results"]
        assert new["properties"]["jobtitle"] == "CEO"
        assert hs.violations == []
