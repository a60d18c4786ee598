"""The HubSpot connector against the HubSpot emulator (every exchange checked against
HubSpot's OpenAPI files by the emulator)."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from app.connectors.hubspot import HubSpotApp
from app.errors import (
    AuthExpired,
    ConfigError,
    Conflict,
    NotFitting,
    NotFound,
    Rejected,
    ValueNotAllowed,
)
from app.model import Address, Create, FieldType, Labeled, Meaning, Record, Update
from tests.connectors.contract import ANN, ConnectorContract
from tests.emulators.hubspot.fixtures import TOKEN, hubspot  # noqa: F401
from tests.emulators.hubspot.server import HubSpotEmulator


def connect(hs: HubSpotEmulator, **kw: object) -> HubSpotApp:
    return HubSpotApp(TOKEN, api_base=hs.url, **kw)  # type: ignore[arg-type]


class TestHubSpotContract(ConnectorContract):
    @pytest.fixture
    def app(self, hubspot: HubSpotEmulator) -> HubSpotApp:  # noqa: F811
        return connect(hubspot)

    @pytest.fixture
    def reopen(self, hubspot: HubSpotEmulator) -> Callable[[], HubSpotApp]:  # noqa: F811
        return lambda: connect(hubspot)

    def fields_for(self, app: HubSpotApp) -> dict:  # type: ignore[override]
        # HubSpot holds one email (its additional emails are its own), phones by property
        # (phone = work, mobilephone = mobile, fax) and no notes.
        out = super().fields_for(app)
        out["emails"] = (Labeled("ann@example.com"),)
        return out

    def supported(self, app: HubSpotApp, key: str) -> bool:  # type: ignore[override]
        # One address without a label: tested in its own test below.
        return key != "addresses" and super().supported(app, key)


def test_ann_reads_back_with_hubspot_shapes(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    assert ANN["phones"] == (Labeled("+44 20 7946 0958", "mobile"),)


# --- schema -------------------------------------------------------------------------------


def test_schema_maps_property_types_options_and_read_only(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    hubspot.portal.add_property(
        "tier", "Customer tier", "enumeration", "select",
        options=[("Gold", "gold_tier"), ("Silver", "silver_tier")],
    )  # fmt: skip
    hubspot.portal.add_property("seats", "Seats", "number", "number")
    hubspot.portal.add_property("vip", "VIP", "bool", "booleancheckbox")
    hubspot.portal.add_property("renewal", "Renewal date", "date", "date")
    hubspot.portal.add_property(
        "interests",
        "Interests",
        "enumeration",
        "checkbox",
        options=[("Golf", "golf"), ("Tea", "tea")],
    )
    hubspot.portal.add_property("score", "Score", "number", "calculation_equation", calculated=True)
    app = connect(hubspot)
    fields = {f.key: f for f in app.fields()}
    assert fields["tier"].type == FieldType.SINGLE_CHOICE
    assert fields["tier"].choices == ("Gold", "Silver")  # labels: what the user sees
    assert fields["seats"].type == FieldType.NUMBER
    assert fields["vip"].type == FieldType.BOOLEAN
    assert fields["renewal"].type == FieldType.DATE
    assert fields["interests"].type == FieldType.MULTI_CHOICE and not fields["interests"].multi
    assert fields["score"].writable is False  # calculated
    assert fields["lifecyclestage"].type == FieldType.SINGLE_CHOICE
    assert "Customer" in fields["lifecyclestage"].choices
    assert fields["num_notes"].writable is False  # HubSpot-defined, read-only value
    assert "hs_email_optout" not in fields  # the subscription status, not a field
    assert "lastmodifieddate" not in fields and "hs_object_id" not in fields
    assert fields["given_name"].meaning == Meaning.GIVEN_NAME
    assert fields["emails"].multi and fields["emails"].unique
    # Custom properties come first (a user's own fields are the ones they look for).
    keys = list(fields)
    assert keys.index("tier") < keys.index("lifecyclestage")


def test_choices_are_written_as_option_values_and_read_as_labels(
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    hubspot.portal.add_property(
        "tier", "Customer tier", "enumeration", "select",
        options=[("Gold", "gold_tier"), ("Silver", "silver_tier")],
    )  # fmt: skip
    hubspot.portal.add_property(
        "interests",
        "Interests",
        "enumeration",
        "checkbox",
        options=[("Golf", "golf"), ("Tea", "tea")],
    )
    app = connect(hubspot)
    [res] = app.write(
        [
            Create(
                "c1",
                {
                    "emails": (Labeled("t@x.com"),),
                    "tier": "Gold",
                    "interests": (Labeled("Golf"), Labeled("Tea")),
                    "lifecyclestage": "Customer",
                },
            )
        ]
    )
    assert res.ok, res.error
    stored = hubspot.portal.contacts[res.record.id].properties  # type: ignore[union-attr]
    assert stored["tier"] == "gold_tier"
    assert stored["interests"] == "golf;tea"
    assert stored["lifecyclestage"] == "customer"
    [got] = connect(hubspot).fetch([res.record.id])  # type: ignore[union-attr]
    assert isinstance(got, Record)
    assert got.fields["tier"] == "Gold"
    assert got.fields["interests"] == (Labeled("Golf"), Labeled("Tea"))


def test_an_unknown_option_fails_that_field_only(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    app = connect(hubspot)
    [res] = app.write(
        [Create("c1", {"emails": (Labeled("u@x.com"),), "title": "CEO", "lifecyclestage": "Gold"})]
    )
    assert res.record is not None, "the contact is created without the bad value"
    assert isinstance(res.error, ValueNotAllowed) and res.error.field == "lifecyclestage"
    assert "Gold" in str(res.error) and "Customer" in str(res.error)
    assert hubspot.portal.contacts[res.record.id].properties["jobtitle"] == "CEO"
    assert hubspot.stats.by_route["batch/create"] == 1, "caught before sending"


@pytest.mark.parametrize("mode", ["per-input", "batch"])
def test_values_hubspot_rejects_are_reported_per_field_and_the_rest_is_written(
    hubspot: HubSpotEmulator,  # noqa: F811
    mode: str,
) -> None:
    """HubSpot refuses a value we could not check ahead (a malformed email): in a 207 for
    that input, or — on portals that do so — a 400 for the whole batch. Either way the other
    contacts are written, and that contact is written without the bad value."""
    hubspot.validation = mode
    app = connect(hubspot)
    ops = [
        Create(f"c{i}", {"emails": (Labeled(f"p{i}@x.com"),), "given_name": f"P{i}"})
        for i in range(6)
    ]
    ops[3] = Create("c3", {"emails": (Labeled("not an email"),), "given_name": "Bad", "title": "T"})
    results = app.write(ops)
    assert [r.op_id for r in results] == [op.op_id for op in ops]
    assert all(r.ok for i, r in enumerate(results) if i != 3)
    bad = results[3]
    assert bad.record is not None and isinstance(bad.error, Rejected)
    assert bad.error.field == "emails" and "not an email" in str(bad.error)
    assert hubspot.portal.contacts[bad.record.id].properties == {
        "firstname": "Bad",
        "jobtitle": "T",
    }
    assert len(hubspot.portal.live()) == 6


def test_409_on_create_binds_to_the_existing_contact(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    old = hubspot.portal.seed({"email": "Ann@X.com", "firstname": "Ann"})
    app = connect(hubspot)
    results = app.write(
        [
            Create("c1", {"emails": (Labeled("new@x.com"),), "given_name": "New"}),
            Create(
                "c2", {"emails": (Labeled("ann@x.com"),), "given_name": "Other", "title": "CEO"}
            ),
        ]
    )
    assert all(r.ok for r in results), [r.error for r in results]
    assert results[1].record is not None and results[1].record.id == old.id
    assert len(hubspot.portal.live()) == 2, "never a duplicate"
    # The existing contact keeps its name; its empty properties are filled.
    assert old.properties["firstname"] == "Ann" and old.properties["jobtitle"] == "CEO"


def test_update_of_an_archived_contact_is_not_found_and_others_are_written(
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    a = hubspot.portal.seed({"email": "a@x.com"})
    b = hubspot.portal.seed({"email": "b@x.com"})
    hubspot.portal.archive(b.id)
    app = connect(hubspot)
    results = app.write([Update("u1", a.id, {"title": "A"}), Update("u2", b.id, {"title": "B"})])
    assert results[0].ok
    assert isinstance(results[1].error, NotFound)
    assert "jobtitle" not in b.properties


def test_deletion_is_confirmed_by_batch_read(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    a = hubspot.portal.seed({"email": "a@x.com"})
    b = hubspot.portal.seed({"email": "b@x.com"})
    app = connect(hubspot)
    assert set(app.list_versions()) == {a.id, b.id}
    hubspot.portal.archive(b.id)
    app = connect(hubspot)
    assert set(app.list_versions()) == {a.id}
    assert app.fetch([b.id]) == []  # archived: gone for Pairsync
    assert hubspot.stats.by_route["batch/read"] == 1


def test_listing_reads_100_a_page_and_fetch_costs_nothing_more(
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    for i in range(250):
        hubspot.portal.seed({"email": f"p{i}@x.com", "firstname": f"P{i}", "jobtitle": "T"})
    app = connect(hubspot)
    versions = app.list_versions()
    assert len(versions) == 250
    assert hubspot.stats.by_route["list"] == 3
    records = app.fetch(list(versions))
    assert len(records) == 250 and hubspot.stats.by_route["batch/read"] == 0
    assert all(isinstance(r, Record) and r.fields["title"] == "T" for r in records)
    # The properties behind fields are asked for (HubSpot sends only a few by default).
    listing = [x[1] for x in hubspot.requests_log if x[1].startswith("/crm/v3/objects/contacts?")]
    assert len(listing) == 3 and all("limit=100" in q for q in listing)
    asked = parse_qs(urlsplit(listing[0]).query)["properties"][0].split(",")
    assert {"jobtitle", "email", "hs_email_optout", "lifecyclestage"} <= set(asked)
    assert "hs_object_id" not in asked


def test_addresses_and_phones_map_to_hubspot_properties(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    app = connect(hubspot)
    addr = (Address("1 Main St", "Springfield", "IL", "62701", "USA"),)
    phones = (Labeled("+1 555 0100", "work"), Labeled("+1 555 0101", "mobile"))
    [res] = app.write(
        [Create("c", {"emails": (Labeled("a@x.com"),), "addresses": addr, "phones": phones})]
    )
    assert res.ok, res.error
    props = hubspot.portal.contacts[res.record.id].properties  # type: ignore[union-attr]
    assert props["city"] == "Springfield" and props["mobilephone"] == "+1 555 0101"
    [got] = connect(hubspot).fetch([res.record.id])  # type: ignore[union-attr]
    assert isinstance(got, Record)
    assert got.fields["addresses"] == addr
    assert got.fields["phones"] == phones
    four = (*phones, Labeled("+1 555 0102", "fax"), Labeled("+1 555 0103", "home"))
    [res2] = app.write([Update("u", got.id, {"phones": four})])
    assert res2.record is not None and isinstance(res2.error, NotFitting)
    assert res2.error.field == "phones" and res2.error.values == ("+1 555 0103",)


def test_read_only_properties_are_never_written(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    c = hubspot.portal.seed({"email": "o@x.com", "hs_email_optout": "true", "num_notes": "3"})
    app = connect(hubspot)
    app.list_versions()
    [rec] = app.fetch([c.id])
    assert isinstance(rec, Record) and rec.subscribed is False
    assert rec.fields["num_notes"] == "3"
    [res] = app.write([Update("u", c.id, {"num_notes": "9", "subscribed": "false", "title": "X"})])
    assert res.record is not None and isinstance(res.error, Rejected)
    assert c.properties["num_notes"] == "3" and c.properties["jobtitle"] == "X"
    assert not any("num_notes" in str(v) for v in hubspot.violations)


# --- segments -----------------------------------------------------------------------------


def test_static_lists_added_and_removed_in_batch_dynamic_ones_read_only(
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    people = [
        hubspot.portal.seed({"email": f"p{i}@x.com", "lifecyclestage": "lead"}) for i in range(5)
    ]
    hubspot.portal.add_list("Customers", "MANUAL", [people[0].id])
    hubspot.portal.add_list(
        "Leads (auto)", "DYNAMIC", predicate=lambda c: c.properties.get("lifecyclestage") == "lead"
    )
    app = connect(hubspot)
    assert set(app.schema().segments) == {"Customers", "Leads (auto)"}
    app.list_versions()
    [first] = app.fetch([people[0].id])
    assert isinstance(first, Record) and first.segments == {"Customers", "Leads (auto)"}
    before = hubspot.stats.by_route["memberships PUT"]
    results = app.write(
        [
            Update(f"u{i}", p.id, {}, add_segments=frozenset({"VIP"}),
                   remove_segments=frozenset({"Customers"}) if i == 0 else frozenset())
            for i, p in enumerate(people)
        ]
    )  # fmt: skip
    assert all(r.ok for r in results), [r.error for r in results]
    assert hubspot.stats.by_route["memberships PUT"] - before == 2  # one add, one remove
    vip = next(x for x in hubspot.portal.lists.values() if x.name == "VIP")
    assert vip.processing_type == "MANUAL" and set(vip.members) == {p.id for p in people}
    [res] = app.write([Update("d", people[1].id, {}, add_segments=frozenset({"Leads (auto)"}))])
    [res] = app.write([Update("d", people[1].id, {}, remove_segments=frozenset({"Leads (auto)"}))])
    assert isinstance(res.error, Rejected) and "dynamic" in str(res.error)


def test_list_membership_changes_the_version(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    c = hubspot.portal.seed({"email": "a@x.com"})
    lst = hubspot.portal.add_list("Customers", "MANUAL")
    before = connect(hubspot).list_versions()[c.id]
    lst.members[c.id] = 1
    assert connect(hubspot).list_versions()[c.id] != before


# --- change feed --------------------------------------------------------------------------


def test_changes_full_then_incremental(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    clock = [1_700_000_000.0]
    hubspot.portal.clock = lambda: clock[0]
    a = hubspot.portal.seed({"email": "a@x.com"})
    clock[0] += 120  # the cursor stays a minute behind the newest change (b)
    b = hubspot.portal.seed({"email": "b@x.com"})
    app = connect(hubspot)
    first = app.changes(None)
    assert first is not None and first.complete and set(first.versions) == {a.id, b.id}
    clock[0] += 3600
    hubspot.portal.edit(b.id, jobtitle="Boss")
    c = hubspot.portal.seed({"email": "c@x.com"})
    nxt = app.changes(first.cursor)
    assert nxt is not None and not nxt.complete
    assert set(nxt.versions) == {b.id, c.id} and nxt.records == []
    again = app.changes(nxt.cursor)
    assert again is not None and set(again.versions) <= {b.id, c.id}


def test_changes_past_the_search_cap_restart_from_the_last_timestamp(
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    """More changes than one search may return (10,000; 600 here): the search starts again
    from the last timestamp seen, and contacts sharing it are not reported twice."""
    hubspot.search_cap = 600
    clock = [1_700_000_000.0]
    hubspot.portal.clock = lambda: clock[0]
    app = connect(hubspot)
    app.api.search_cap = 600
    first = app.changes(None)
    assert first is not None
    clock[0] += 3600
    ids = []
    for i in range(1500):
        if i % 7 == 0:
            clock[0] += 0.001  # several contacts share each millisecond
        ids.append(hubspot.portal.seed({"email": f"p{i}@x.com"}).id)
    got = app.changes(first.cursor)
    assert got is not None and not got.complete
    assert sorted(got.versions) == sorted(ids)  # each once (de-duplicated)
    assert 8 <= hubspot.stats.by_route["search"] <= 9  # 3 searches: 3 + 3 + 2 pages


def test_find_by_email_uses_search(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    c = hubspot.portal.seed({"email": "ann@x.com", "firstname": "Ann"})
    hubspot.portal.seed({"email": "bob@x.com"})
    found = connect(hubspot).find_by_email(["ANN@x.com ", "nobody@x.com"])
    assert [r.id for r in found] == [c.id]


# --- rate limits ----------------------------------------------------------------------------


def test_pacing_under_a_tight_limit_learned_from_the_headers(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    """The emulator allows 10 requests a second; the connector starts out assuming 100 per
    10 s, learns the real limit from the first answer's headers, and stays under it."""
    hubspot.set_rate_limit(10, 1.0)
    for i in range(1500):
        hubspot.portal.seed({"email": f"p{i}@x.com"})
    app = connect(hubspot)
    started = time.monotonic()
    assert len(app.list_versions()) == 1500  # 15 pages + lists
    elapsed = time.monotonic() - started
    assert hubspot.stats.rate_limited <= 1
    assert app.api.window.limit == 10 and app.api.window.interval == 1.0
    assert elapsed > 0.9  # it did wait


def test_429s_are_waited_out_and_the_write_is_sent_again(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    """Another program spends the same token's budget: HubSpot answers 429; the write was
    not processed, so it is sent again after the window frees."""
    hubspot.set_rate_limit(5, 1.0)
    hubspot.retry_after = True
    app = connect(hubspot)
    app.fields()
    for _ in range(5):  # someone else uses the whole window
        hubspot.window.take(time.monotonic())
    [res] = app.write([Create("c", {"emails": (Labeled("a@x.com"),)})])
    assert res.ok, res.error
    assert hubspot.stats.rate_limited >= 1 and app.api.counters.rate_limited >= 1
    assert len(hubspot.portal.live()) == 1


def test_search_is_paced_under_its_own_per_second_limit(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    hubspot.search_window.limit = 4
    app = connect(hubspot)
    app.api.search_window.limit = 4
    for _ in range(10):
        app.find_by_email(["a@x.com"])
    assert hubspot.stats.search_rate_limited == 0


def test_wrong_token_is_auth_expired(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    app = HubSpotApp("pat-wrong", api_base=hubspot.url)
    with pytest.raises(AuthExpired, match="token"):
        app.fields()


def test_plain_http_only_to_loopback() -> None:
    with pytest.raises(ConfigError, match="https"):
        HubSpotApp(TOKEN, api_base="http://api.example.com")


def test_a_stale_read_is_checked_again_by_search_before_writing(
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    """HubSpot has no conditional write: a read older than a minute is checked again just
    before the update — by a search, which does not spend the ten-second budget."""
    a = hubspot.portal.seed({"email": "a@x.com"})
    b = hubspot.portal.seed({"email": "b@x.com"})
    app = connect(hubspot)
    versions = app.list_versions()
    later = time.monotonic() + 120
    app._clock = lambda: later
    time.sleep(0.005)
    hubspot.portal.edit(b.id, jobtitle="Edited in HubSpot meanwhile")
    before = dict(hubspot.stats.by_route)
    results = app.write(
        [
            Update("u1", a.id, {"title": "A"}, expected_version=versions[a.id]),
            Update("u2", b.id, {"title": "B"}, expected_version=versions[b.id]),
        ]
    )
    assert results[0].ok, results[0].error
    assert isinstance(results[1].error, Conflict)
    assert b.properties["jobtitle"] == "Edited in HubSpot meanwhile"
    assert hubspot.stats.by_route["search"] - before.get("search", 0) == 1
    assert hubspot.stats.by_route["batch/read"] == before.get("batch/read", 0)


def test_a_portal_with_many_properties_is_listed_by_id_then_read_by_post(
    hubspot: HubSpotEmulator,  # noqa: F811
) -> None:
    """Too many property names for a URL: the listing asks for ids only and the records are
    read with batch read (properties in the body), 100 a call."""
    for i in range(80):
        hubspot.portal.add_property(f"custom_property_with_a_long_name_{i:02d}", f"Custom {i}")
    for i in range(150):
        hubspot.portal.seed({"email": f"p{i}@x.com", "custom_property_with_a_long_name_07": "x"})
    app = connect(hubspot)
    versions = app.list_versions()
    assert len(versions) == 150
    assert hubspot.stats.by_route["list"] == 2 and hubspot.stats.by_route["batch/read"] == 2
    listing = [x[1] for x in hubspot.requests_log if x[1].startswith("/crm/v3/objects/contacts?")]
    assert all(len(q) < 2000 for q in listing)
    records = app.fetch(list(versions))
    assert hubspot.stats.by_route["batch/read"] == 2  # fetch cost nothing more
    assert all(
        isinstance(r, Record) and r.fields["custom_property_with_a_long_name_07"] == "x"
        for r in records
    )


@pytest.mark.parametrize("lag_ms", [60_000, 0])
def test_the_change_feed_misses_no_write_the_search_index_shows_late(
    hubspot: HubSpotEmulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    lag_ms: int,
) -> None:
    """HubSpot's search sees a write a few seconds after it, not always in the order of
    the writes. Here ``a`` is written first but indexed 30 s later, ``b`` ten seconds after
    ``a`` and indexed at once: a search between the two finds ``b`` only. The cursor stays
    a minute behind the newest change seen, so the next search still finds ``a``; with no
    lag (the parameter 0, for contrast) ``a`` would be lost for good."""
    import app.connectors.hubspot.app as hubspot_app

    monkeypatch.setattr(hubspot_app, "LAG_MS", lag_ms)
    clock = [1_700_000_000.0]
    hubspot.portal.clock = lambda: clock[0]
    hubspot.portal.seed({"email": "old@x.com"})
    app = connect(hubspot)
    first = app.changes(None)
    assert first is not None
    clock[0] += 100
    hubspot.portal.search_delay_ms = 30_000
    a = hubspot.portal.seed({"email": "a@x.com"})
    clock[0] += 10
    hubspot.portal.search_delay_ms = 2_000
    b = hubspot.portal.seed({"email": "b@x.com"})
    clock[0] += 5
    early = app.changes(first.cursor)
    assert early is not None and b.id in early.versions and a.id not in early.versions
    clock[0] += 60
    later = app.changes(early.cursor)
    assert later is not None
    if lag_ms:
        assert a.id in later.versions
    else:
        assert a.id not in later.versions  # what the lag is for


def test_narrowed_reads_ask_for_the_used_properties_only(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    from app.connectors.base import NarrowsReads, ReadHint

    hubspot.portal.add_property("tier", "Tier")
    c = hubspot.portal.seed(
        {"email": "a@x.com", "firstname": "A", "tier": "gold", "hs_email_optout": "true"}
    )
    whole = connect(hubspot)
    [full] = whole.fetch([c.id])
    app = connect(hubspot)
    assert isinstance(app, NarrowsReads)
    app.narrow_reads(ReadHint(frozenset({"emails", "given_name"}), subscription=False))
    hubspot.requests_log.clear()
    versions = app.list_versions()
    [rec] = app.fetch([c.id])
    [(_, path, _)] = [x for x in hubspot.requests_log if "/objects/contacts?" in x[1]]
    asked = set(parse_qs(urlsplit(path).query)["properties"][0].split(","))
    assert asked == {"email", "firstname", "hs_additional_emails"}
    assert isinstance(rec, Record) and set(rec.fields) == {"emails", "given_name"}
    assert rec.subscribed is None and "tier" in full.fields  # type: ignore[union-attr]
    assert versions[c.id] == rec.version != full.version  # another read, another version
    again = connect(hubspot)
    again.narrow_reads(ReadHint(frozenset({"emails", "given_name"}), subscription=True))
    [sub] = again.fetch([c.id])
    assert isinstance(sub, Record) and sub.subscribed is False and sub.version != rec.version
