"""The facade hands out typed values; the ones that cross the sync worker's pipe (rules) or
are printed as JSON (health, mappings, fields, rules) keep their exact JSON shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.model import Side
from app.service import (
    Action,
    ActionKind,
    ConnectionFields,
    ConnectionSettings,
    HealthReport,
    Join,
    MappingInfo,
    RuleDraft,
    RuleInfo,
    Service,
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service()
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(
        "First Name,Last Name,Email,Tier\n"
        "Ann,Lee,ann@x.com,Gold\nAnn,Lee,ann@x.com,Gold\nBo,Ng,bo@x.com,Bronze\n",
        encoding="utf-8",
    )
    b.write_text("First Name,Last Name,Email,Level\n", encoding="utf-8")
    svc.add_account("csv", "A", {"path": str(a)})
    svc.add_account("csv", "B", {"path": str(b)})
    svc.create_connection("main", "A", "B", ConnectionSettings())
    yield svc
    svc.close()


def test_rules_cross_the_pipe_unchanged(service: Service) -> None:
    draft = RuleDraft(Side.A, Join.ALL, [], [Action(ActionKind.ADD_SEGMENT, "Leads")])
    added = service.add_rule("main", draft)
    assert isinstance(added, RuleInfo) and added.count is None  # "—" before the first sync
    service.set_rule("main", added.id, other_way=True)
    service.sync(["main"])
    rules = service.rules("main")
    assert any(r.mirror is not None for r in rules)
    assert all(r.count is not None for r in rules)
    piped = [RuleInfo.from_json(json.loads(json.dumps(r.as_json()))) for r in rules]
    assert piped == rules


def test_mappings_and_fields_are_typed_with_their_json_shape(service: Service) -> None:
    view = service.add_mapping("main", "col:Tier", "col:Level", values="Gold=VIP")
    assert isinstance(view, MappingInfo) and view.kind == "custom" and view.has_values
    assert view.as_json()["values"] == {"a_to_b": {"Gold": "VIP"}, "b_to_a": {}}
    plain = next(m for m in service.mappings("main") if m.kind != "custom")
    assert "values" not in plain.as_json() and isinstance(plain.a, tuple)
    fields = service.fields("main")
    assert isinstance(fields, ConnectionFields)
    tier = fields.side("a").field("col:Tier")
    assert tier is not None and tier.label
    assert fields.as_json()["a"]["fields"][0].keys() == {
        "key", "label", "type", "multi", "writable", "required", "choices"
    }  # fmt: skip
    choices = service.mapping_choices("main", "a", "col:Tier")
    assert choices.field == tier
    assert {c.key for c in choices.other} == {f.key for f in fields.side("b").fields}


def test_health_report_prints_what_the_store_reports(service: Service) -> None:
    service.sync(["main"])
    report = service.health("main")
    assert isinstance(report, HealthReport)
    assert report.counts.duplicates == len(report.duplicates) == 2  # Ann twice in A
    stored = service._health.report(service._connections.connection("main"))
    assert report.to_json() == stored
    assert list(report.to_json()) == list(stored)  # same keys, same order: same --json bytes


def test_health_report_round_trips_every_list() -> None:
    contact = {"side": "a", "record_id": "1", "name": "Ann", "reason": "deleted in B"}
    data = {
        "connection": "main",
        "paused": False,
        "counts": {
            "in_sync": 1, "excluded": 1, "duplicates": 1, "failed": 1, "ignored": 0,
            "deleted_other_side": 1, "rule_conflicts": 1, "not_fitting": 1,
        },
        "failed": [
            {
                "id": 3, "side": "a", "record_id": "1", "name": "Ann", "app_side": "b",
                "code": "rejected", "reason": "No.", "fields": ["email"], "attempts": 2,
                "raw": None,
            }
        ],
        "not_fitting": [
            {"side": "b", "record_id": "2", "name": "Bo", "field": "phones", "values": ["1"],
             "reason": "full"}
        ],
        "excluded": [contact],
        "duplicates": [contact],
        "deleted_other_side": [contact],
        "conflicts": [
            {"id": 1, "field": "email", "value_a": ["a@x"], "value_b": "b@x", "winner": "a",
             "at": "2026-01-01T00:00:00", "binding": 4}
        ],
        "rule_conflicts": [
            {"about": "r1", "message": "Two rules.", "side": "b",
             "at": "2026-01-01T00:00:00", "binding": None}
        ],
        "journal_entries": 7,
        "runs": [
            {"run": 1, "dry_run": False, "status": "ok", "started_at": "2026-01-01T00:00:00",
             "counts": {"created": 1}, "message": ""}
        ],
    }  # fmt: skip
    report = HealthReport.from_json(data)
    assert report.failed[0].fields == ("email",)
    assert json.dumps(report.to_json()) == json.dumps(data)
