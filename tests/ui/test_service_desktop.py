"""The service calls the desktop app adds (Qt-free): the app list, checking accounts,
names, the connection overview with its status, mapping choices and the preview's
breakdown; plus the status chip's rules and the run-progress arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.app_list import app_list
from app.engine.context import SideRead
from app.engine.plan import PlannedCreate, SyncPlan
from app.errors import ConfigError
from app.model import FieldSpec, Record, Side, Unreadable
from app.preview import summarize
from app.rules.model import RuleDraft
from app.run_progress import RunProgress
from app.service import ConnectionSettings, Service
from app.status import connection_status


def test_app_list_finds_apps_by_alias_and_marks_what_is_coming() -> None:
    names = {e.name: e for e in app_list()}
    working_names = {n for n, e in names.items() if e.available}
    assert {"vCard folder", "CSV file", "CardDAV", "Google Contacts", "HubSpot"} <= working_names
    soon = {n for n, e in names.items() if not e.available}
    assert soon == {"Outlook", "Mailchimp"}
    assert [e.name for e in app_list("gmail")] == ["Google Contacts"]
    assert [e.name for e in app_list("Office 365")] == ["Outlook"]
    assert [e.name for e in app_list("hotmail")] == ["Outlook"]
    assert [e.name for e in app_list("iCloud")] == ["CardDAV"]
    assert [e.name for e in app_list("nextcloud")] == ["CardDAV"]
    assert app_list("no such app") == []
    first = app_list()
    working = sum(e.available for e in first)
    assert working == 6  # vCard folder and file, CSV file, CardDAV, Google, HubSpot; then the rest
    assert all(e.available for e in first[:working])
    assert not any(e.available for e in first[working:])
    assert [e.name for e in app_list("vcf file")] == ["vCard file"]
    assert names["vCard file"].auth == "file"
    assert names["vCard folder"].auth == "folder" and names["CSV file"].auth == "file"
    assert names["CardDAV"].auth == "password" and names["CardDAV"].needs_secret
    assert names["HubSpot"].auth == "token" and names["HubSpot"].help_url
    assert names["Google Contacts"].auth == "oauth" and names["Google Contacts"].needs_secret
    assert names["HubSpot"].needs_secret and "Private Apps" in names["HubSpot"].secret_help
    assert [e.name for e in app_list("crm")] == ["HubSpot"]


def test_check_new_account_reads_the_app_or_says_why_not(
    service: Service, books: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, sheet = books
    check = service.check_new_account("vcard-folder", {"path": str(folder)})
    assert (check.contacts, check.app) == (5, "vCard folder")
    assert set(check.segments) == {"Customers", "Leads"}
    assert service.list_accounts() == []  # checking stores nothing
    assert service.check_new_account("csv", {"path": str(sheet)}).contacts == 4
    new_file = service.check_new_account("csv", {"path": str(tmp_path / "new.csv")})
    assert new_file.contacts == 0  # created at the first sync
    with pytest.raises(ConfigError, match="does not exist"):
        service.check_new_account("vcard-folder", {"path": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="needs: path"):
        service.check_new_account("csv", {})
    with pytest.raises(ConfigError, match="password"):
        service.check_new_account(
            "carddav", {"url": "https://dav.example.org", "username": "ann"}, None
        )
    phases: list[str] = []
    service.check_new_account(
        "vcard-folder", {"path": str(folder)}, progress=lambda p, d, t: phases.append(p)
    )
    assert phases == ["Connecting to vCard folder", "Reading vCard folder"]


def test_names_and_overview(service: Service, connection: str) -> None:
    assert service.suggest_account_name("csv", {"path": "/x/contacts.csv"}) == "contacts"
    assert service.suggest_account_name("vcard-folder", {"path": "/x/cards/"}) == "cards"
    assert service.suggest_account_name("carddav", {"url": "https://dav.example.org/x"}) == (
        "dav.example.org"
    )
    service.add_account("csv", "contacts", {"path": "/tmp/c.csv"})
    assert service.suggest_account_name("csv", {"path": "/y/contacts.csv"}) == "contacts 2"
    assert service.suggest_connection_name("Phone", "Sheet") == "Phone ⇄ Sheet"

    [row] = service.connection_overview()
    assert (row.name, row.kind_a, row.kind_b, row.status.code) == (
        "Main",
        "vcard-folder",
        "csv",
        "new",
    )
    service.sync(["Main"])
    assert service.connection_overview()[0].status.code == "ok"
    service.set_paused("Main", True)
    assert service.connection_overview()[0].status.code == "paused"


def test_rename_keeps_everything_but_the_name(service: Service, connection: str) -> None:
    service.set_paused("Main", True)
    service.add_rule("Main", RuleDraft(Side.A))
    renamed = service.rename_connection("Main", "Phone and sheet")
    assert renamed.name == "Phone and sheet" and renamed.paused is True
    assert [c.name for c in service.list_connections()] == ["Phone and sheet"]
    assert len(service.rules("Phone and sheet", counts=False)) == 3
    with pytest.raises(ConfigError):
        service.rename_connection("Phone and sheet", " ")
    service.set_paused("Phone and sheet", False)
    [first] = service.sync(["Phone and sheet"])
    assert first.status == "ok"
    # A connection that has synced can be renamed too: its history and state go with it.
    service.rename_connection("Phone and sheet", "Other")
    assert [c.name for c in service.list_connections()] == ["Other"]
    [again] = service.sync(["Other"])
    assert again.status == "ok"
    assert again.created == {"a": 0, "b": 0} and again.updated == {"a": 0, "b": 0}
    assert len(service.runs_page("Other")) == 2  # the history came along
    service.add_account("csv", "Third", {"path": str(Path(service.paths.data) / "t.csv")})
    service.create_connection("Taken", "Third", "Sheet", ConnectionSettings())
    with pytest.raises(ConfigError, match="already exists"):
        service.rename_connection("Other", "Taken")


def test_mapping_choices_agree_with_add_mapping(service: Service, connection: str) -> None:
    choices = service.mapping_choices("Main", "a", "birthday")
    assert choices.field.label == "Birthday"
    other = {c.key: c for c in choices.other}
    assert other["email"].possible is False and "already mapped" in other["email"].reason
    assert other["col:Score"].possible is True
    assert (other["col:Score"].a_to_b, other["col:Score"].b_to_a) == (True, False)
    for key, c in other.items():
        if c.possible:
            continue
        with pytest.raises(ConfigError):
            service.add_mapping("Main", "birthday", key, direction="a-to-b")
    service.update_connection("Main", direction="b-to-a")
    other = {c.key: c for c in service.mapping_choices("Main", "a", "birthday").other}
    assert other["col:Score"].possible is False  # date → text only, and nothing flows A→B
    with pytest.raises(ConfigError):
        service.mapping_choices("Main", "a", "nope")


def test_preview_breaks_the_dry_run_down(service: Service, connection: str) -> None:
    preview = service.preview("Main")
    report = service.sync(["Main"], dry_run=True)[0].as_json()
    for key in ("matched", "created", "updated", "excluded", "duplicates"):
        assert preview.report[key] == report[key], key
    assert preview.excluded_by_reason == {"no email": 1}
    assert preview.report["duplicates"] == 3  # Dave twice in the CSV, once in the folder
    assert preview.failure_count == 0
    stop = service.preview("Main", should_stop=lambda: True)
    assert stop.status == "cancelled"


def test_predicted_failures_include_required_fields_and_unreadable() -> None:
    ann = Record("1", "v1", {"full_name": "Ann Lee"})
    plan = SyncPlan(
        creates=[PlannedCreate("op", Side.A, ann, {"full_name": "Ann Lee"}, frozenset(), {})]
    )
    reads = {Side.A: SideRead(), Side.B: SideRead()}
    reads[Side.A].unreadable.append(Unreadable("bad.vcf", "v", "Not a vCard."))
    required = (FieldSpec("family_name", "Last name", required=True),)
    preview = summarize(
        {"status": "ok"},
        plan,
        reads,
        {Side.A: "Phone", Side.B: "CRM"},
        {Side.A: (), Side.B: required},
    )
    assert preview.failure_count == 2
    assert preview.failure_reasons == {
        "Not a vCard.": 1,
        "Required field last name is missing in CRM.": 1,
    }
    assert preview.failures[1].name == "Ann Lee" and preview.failures[1].side == "b"


def test_status_chip_rules() -> None:
    assert connection_status(True, {"status": "failed"}).code == "paused"
    assert connection_status(False, None).code == "new"
    assert connection_status(False, {"status": "ok", "counts": {}}).code == "ok"
    failed = connection_status(False, {"status": "failed", "counts": {"failed": 3}})
    assert (failed.code, failed.failed) == ("failed", 3)
    assert connection_status(False, {"status": "auth"}).code == "auth"
    when = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    limited = connection_status(
        False, {"status": "rate_limited", "counts": {"retry_after": 90}, "finished_at": when}
    )
    assert limited.until == datetime(2026, 1, 1, 12, 1, 30, tzinfo=UTC)
    assert connection_status(False, {"status": "cancelled", "counts": {}}).code == "ok"
    assert limited.severity < connection_status(False, {"status": "auth"}).severity


def test_run_progress_is_one_rising_percentage() -> None:
    clock = iter(float(i) for i in range(100))
    progress = RunProgress(clock=lambda: next(clock))
    seen = [
        progress.update("Reading vCard folder", 0, 0),
        progress.update("Reading vCard folder", 50, 100),
        progress.update("Reading vCard folder", 100, 100),
        progress.update("Reading CSV file", 100, 100),
        progress.update("Matching", 0, 0),
        progress.update("Planning", 10, 10),
        progress.update("Writing", 5, 10),
        progress.update("Writing", 10, 10),
    ]
    assert seen == [0, 17, 35, 70, 70, 80, 90, 100]
    assert seen == sorted(seen)
    assert progress.seconds_left() == 0
