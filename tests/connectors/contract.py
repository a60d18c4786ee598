"""The connector contract: one suite every app's connector must pass.

A test module subclasses ``ConnectorContract`` and provides two fixtures:

* ``app`` — a fresh, empty connector (the storage lives under ``tmp_path``);
* ``reopen`` — a function returning a *new* connector instance over the same storage, so the
  suite can check that what was written is really stored and read back.

Only the protocol is used here; app-specific behaviour is tested in the app's own module.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from app.connectors.base import ChangeSet, Connector
from app.errors import Conflict
from app.model import (
    Address,
    Create,
    Labeled,
    Record,
    Unreadable,
    Update,
    is_empty_value,
    record_emails,
)


def _create(app: Connector, fields: dict, segments: frozenset[str] = frozenset()) -> Record:
    new_id = uuid.uuid4().hex if app.info.capabilities.chooses_ids else None
    [result] = app.write(
        [Create(op_id="op-" + uuid.uuid4().hex, fields=fields, segments=segments, new_id=new_id)]
    )
    assert result.ok, result.error
    assert result.record is not None
    if new_id is not None:
        assert result.record.id == new_id
    return result.record


def _only_record(items: list[Record | Unreadable]) -> Record:
    assert len(items) == 1
    assert isinstance(items[0], Record)
    return items[0]


ANN = {
    "given_name": "Ann",
    "family_name": "Lee",
    "emails": (Labeled("ann@example.com", "work"), Labeled("ann.lee@home.example", "home")),
    "phones": (Labeled("+44 20 7946 0958", "mobile"),),
    "organization": "Acme Ltd",
    "title": "Director",
    "notes": "Met at the fair.\nLikes tea — and ünïcode.",
}


class ConnectorContract:
    """Subclass and provide the ``app`` and ``reopen`` fixtures."""

    @pytest.fixture
    def reopen(self, app: Connector) -> Callable[[], Connector]:  # pragma: no cover - overridden
        return lambda: app

    def supported(self, app: Connector, key: str) -> bool:
        return app.schema().get(key) is not None

    def fields_for(self, app: Connector) -> dict:
        return {k: v for k, v in ANN.items() if self.supported(app, k)}

    def test_is_a_connector(self, app: Connector) -> None:
        assert isinstance(app, Connector)
        assert app.info.kind and app.info.name
        assert app.info.capabilities.batch_size >= 1

    def test_fields_are_the_schemas_fields(self, app: Connector) -> None:
        app.prepare()
        _create(
            app,
            self.fields_for(app),
            frozenset({"Customers"}) if app.info.capabilities.segments else frozenset(),
        )
        assert app.fields() == app.schema().fields
        keys = [f.key for f in app.fields()]
        assert len(keys) == len(set(keys)), "field keys are unique"

    def test_empty_app_lists_nothing(self, app: Connector) -> None:
        assert app.list_versions() == {}
        assert app.fetch(["no-such-id"]) == []

    def test_create_then_read_back(self, app: Connector, reopen: Callable[[], Connector]) -> None:
        app.prepare()
        rec = _create(app, self.fields_for(app))
        again = reopen()
        listing = again.list_versions()
        assert listing == {rec.id: rec.version}
        got = _only_record(again.fetch([rec.id]))
        for key, value in self.fields_for(app).items():
            assert got.fields.get(key) == value, key
        assert record_emails(got)[0] == "ann@example.com"

    def test_update_changes_version_and_only_given_fields(
        self, app: Connector, reopen: Callable[[], Connector]
    ) -> None:
        app.prepare()
        rec = _create(app, self.fields_for(app))
        [res] = app.write([Update("u1", rec.id, {"title": "CEO"}, expected_version=rec.version)])
        assert res.ok, res.error
        assert res.record is not None and res.record.version != rec.version
        got = _only_record(reopen().fetch([rec.id]))
        assert got.fields["title"] == "CEO"
        assert got.fields["organization"] == "Acme Ltd"
        assert got.version == res.record.version
        assert reopen().list_versions()[rec.id] == got.version

    def test_change_feed(self, app: Connector, reopen: Callable[[], Connector]) -> None:
        """An app with a change feed: ``changes(None)`` is complete and gives a cursor; a
        cursor reports what changed since, with the versions a listing gives (the engine
        compares them with its index: the echo of its own write must be no change), and a
        new instance over the same storage accepts it. A feed may report a record again
        (e.g. a time window that overlaps the last one), never with a stale version, and
        never calls a record it holds deleted."""
        if not app.info.capabilities.change_feed:
            assert app.changes(None) is None
            return

        def reported(cs: ChangeSet) -> dict[str, str]:
            return {r.id: r.version for r in cs.records} | cs.versions

        app.prepare()
        ann = _create(app, self.fields_for(app))
        full = app.changes(None)
        assert full is not None and full.complete and full.cursor
        assert reported(full) == app.list_versions()
        quiet = app.changes(full.cursor)
        assert quiet is not None and not quiet.complete and quiet.cursor
        listing = app.list_versions()
        assert all(listing[rid] == v for rid, v in reported(quiet).items())
        assert not set(quiet.deleted) & set(listing)
        [res] = app.write([Update("u1", ann.id, {"title": "CEO"}, expected_version=ann.version)])
        assert res.ok and res.record is not None
        bob = _create(app, {**self.fields_for(app), "emails": (Labeled("bob@example.com"),)})
        again = reopen()
        delta = again.changes(quiet.cursor)
        assert delta is not None and not delta.complete and delta.cursor
        got = reported(delta)
        assert {ann.id: got.get(ann.id), bob.id: got.get(bob.id)} == {
            ann.id: res.record.version,
            bob.id: bob.version,
        }
        listing = again.list_versions()
        assert listing[ann.id] == res.record.version
        assert all(listing[rid] == v for rid, v in got.items())
        for rec in delta.records:
            if rec.id == ann.id:
                assert isinstance(rec, Record) and rec.fields["title"] == "CEO"
        assert not set(delta.deleted) & set(listing)

    def test_stale_expected_version_is_refused(self, app: Connector) -> None:
        app.prepare()
        rec = _create(app, self.fields_for(app))
        [first] = app.write([Update("u1", rec.id, {"title": "CEO"}, expected_version=rec.version)])
        assert first.ok
        [second] = app.write([Update("u2", rec.id, {"title": "CTO"}, expected_version=rec.version)])
        assert not second.ok
        assert isinstance(second.error, Conflict)
        assert _only_record(app.fetch([rec.id])).fields["title"] == "CEO"

    def test_empty_value_clears_field(
        self, app: Connector, reopen: Callable[[], Connector]
    ) -> None:
        app.prepare()
        rec = _create(app, self.fields_for(app))
        [res] = app.write([Update("u1", rec.id, {"notes": ""})])
        assert res.ok, res.error
        assert is_empty_value(_only_record(reopen().fetch([rec.id])).fields.get("notes"))

    def test_batch_results_in_order_and_one_bad_record_does_not_block(self, app: Connector) -> None:
        app.prepare()
        a = _create(app, {"given_name": "A", "emails": (Labeled("a@example.com", "work"),)})
        ops = [
            Update("x1", a.id, {"title": "One"}),
            Update("x2", "does-not-exist", {"title": "Two"}),
            Create(
                "x3",
                {"given_name": "C", "emails": (Labeled("c@example.com", "work"),)},
                new_id=uuid.uuid4().hex if app.info.capabilities.chooses_ids else None,
            ),
        ]
        results = app.write(ops)
        assert [r.op_id for r in results] == ["x1", "x2", "x3"]
        assert results[0].ok and results[2].ok
        assert not results[1].ok
        assert len(app.list_versions()) == 2

    def test_unchanged_records_keep_their_versions(self, app: Connector) -> None:
        app.prepare()
        a = _create(app, {"given_name": "A", "emails": (Labeled("a@example.com", "work"),)})
        b = _create(app, {"given_name": "B", "emails": (Labeled("b@example.com", "work"),)})
        before = app.list_versions()
        app.write([Update("u", a.id, {"title": "New"})])
        after = app.list_versions()
        assert after[b.id] == before[b.id]
        assert after[a.id] != before[a.id]

    def test_find_by_email_is_case_insensitive(self, app: Connector) -> None:
        app.prepare()
        rec = _create(app, self.fields_for(app))
        found = app.find_by_email([" ANN@Example.com "])
        assert [r.id for r in found] == [rec.id]
        assert app.find_by_email(["nobody@example.com"]) == []

    def test_segments_round_trip(self, app: Connector, reopen: Callable[[], Connector]) -> None:
        if not app.info.capabilities.segments:
            pytest.skip("app has no segments")
        app.prepare()
        rec = _create(app, self.fields_for(app), frozenset({"Customers", "VIP"}))
        got = _only_record(reopen().fetch([rec.id]))
        assert got.segments == {"Customers", "VIP"}
        [res] = app.write(
            [
                Update(
                    "s",
                    rec.id,
                    {},
                    add_segments=frozenset({"Leads"}),
                    remove_segments=frozenset({"VIP"}),
                )
            ]
        )
        assert res.ok, res.error
        assert _only_record(reopen().fetch([rec.id])).segments == {"Customers", "Leads"}
        assert "Leads" in reopen().schema().segments

    def test_addresses_round_trip(self, app: Connector, reopen: Callable[[], Connector]) -> None:
        if not self.supported(app, "addresses"):
            pytest.skip("app has no structured addresses")
        app.prepare()
        addr = (Address("1 Main St", "Springfield", "IL", "62701", "USA", label="work"),)
        rec = _create(
            app,
            {"given_name": "A", "emails": (Labeled("a@example.com", "work"),), "addresses": addr},
        )
        assert _only_record(reopen().fetch([rec.id])).fields["addresses"] == addr

    def test_many_records(self, app: Connector, reopen: Callable[[], Connector]) -> None:
        app.prepare()
        size = app.info.capabilities.batch_size
        ops = [
            Create(
                f"c{i}",
                {"given_name": f"N{i}", "emails": (Labeled(f"n{i}@example.com", "work"),)},
                new_id=uuid.uuid4().hex if app.info.capabilities.chooses_ids else None,
            )
            for i in range(min(size, 50))
        ]
        results = app.write(ops)
        assert all(r.ok for r in results)
        listing = reopen().list_versions()
        assert len(listing) == len(ops)
        fetched = reopen().fetch(list(listing))
        assert {r.id for r in fetched} == set(listing)
