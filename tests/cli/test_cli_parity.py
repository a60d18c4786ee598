"""The CLI offers what the window offers: the sync interval, Retry / Ignore of a failed
contact, and "Use the other value" of a conflict (over a real vCard folder and CSV file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli_scenarios import OUTLOOK, card, cli, read_csv, setup, sync, write_csv

__all__ = ["setup"]  # the fixture, shared with the scenario tests


def _health(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = cli("health", "main", "--json", capsys=capsys)
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_interval_is_set_shown_exported_and_checked(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    _folder, _sheet, connect = setup
    connect(header=OUTLOOK)
    code, out, _ = cli("connection", "set", "main", "--interval", "15", capsys=capsys)
    assert code == 0 and "interval_minutes=15" in out
    code, out, _ = cli("connection", "show", "main", "--json", capsys=capsys)
    assert json.loads(out)["interval_minutes"] == 15
    code, out, _ = cli("connection", "export", "main", capsys=capsys)
    assert json.loads(out)["interval_minutes"] == 15
    code, _, err = cli("connection", "set", "main", "--interval", "0", capsys=capsys)
    assert code == 2 and "between 1 and 60 minutes" in err
    code, out, _ = cli("connection", "show", "main", capsys=capsys)
    assert "interval_minutes: 15" in out


def test_retry_and_ignore_a_failed_contact(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, _sheet, connect = setup
    (folder / "ok.vcf").write_text(card("ok", "Ok Person", "ok@x.com"))
    (folder / "broken.vcf").write_bytes(b"BEGIN:VCARD\r\nthis is not a property\r\n\xff\xfe junk")
    connect()
    code, _report = sync(capsys)
    assert code == 1
    [failure] = _health(capsys)["failed"]
    number = failure["id"]
    code, out, _ = cli("health", "main", capsys=capsys)
    assert f"(#{number})" in out

    code, out, _ = cli("health", "main", "ignore", str(number), capsys=capsys)
    assert code == 0 and "1 failed contact ignored" in out
    report = _health(capsys)
    assert report["counts"]["failed"] == 0 and report["counts"]["ignored"] == 1

    code, out, _ = cli("health", "main", "retry", f"#{number}", capsys=capsys)
    assert code == 0 and "1 failed contact will be retried" in out
    assert _health(capsys)["counts"]["failed"] == 1  # retrying stops ignoring it

    code, out, _ = cli("health", "main", "retry", "all", capsys=capsys)
    assert code == 0 and "1 failed contact will be retried" in out
    code, _, err = cli("health", "main", "ignore", "999999", capsys=capsys)
    assert code == 2 and "no failed contact" in err
    code, _, err = cli("health", "main", "ignore", "x", capsys=capsys)
    assert code == 2 and "#numbers" in err
    code, _, err = cli("health", "main", "retry", capsys=capsys)
    assert code == 2 and "needs the #numbers" in err


def test_use_the_other_value_of_a_conflict(setup, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, sheet, connect = setup
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", title="CEO"))
    connect(header=OUTLOOK, rows=[["Ann", "Lee", "ann@x.com", "", "", "", "", "CEO", "", ""]])
    sync(capsys)
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", title="Chair"))
    rows = read_csv(sheet)
    rows[0]["Job Title"] = "Founder"
    write_csv(sheet, list(rows[0]), [list(r.values()) for r in rows])
    code, report = sync(capsys)
    assert code == 0 and report["conflicts"] == 1
    assert read_csv(sheet)[0]["Job Title"] == "Chair"  # A wins by default

    code, out, _ = cli("conflicts", "main", "--json", capsys=capsys)
    [conflict] = json.loads(out)
    assert (conflict["value_a"], conflict["value_b"]) == ("Chair", "Founder")
    assert _health(capsys)["conflicts"][0]["id"] == conflict["id"]
    code, out, _ = cli("conflicts", "main", capsys=capsys)
    assert f"#{conflict['id']}" in out and "Founder" in out

    code, out, err = cli("conflicts", "main", "use-other", str(conflict["id"]), capsys=capsys)
    assert code == 0, err
    assert f"main: conflict #{conflict['id']}:" in out
    assert read_csv(sheet)[0]["Job Title"] == "Founder"
    assert "TITLE:Founder" in (folder / "ann.vcf").read_text()
    code, out, _ = cli("conflicts", "main", capsys=capsys)
    assert "(other value used)" in out

    code, _, err = cli("conflicts", "main", "use-other", capsys=capsys)
    assert code == 2 and "needs a conflict" in err


def test_sign_in_again_keeps_the_connection(setup, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``account reauth``: what the window's "Sign in again…" does (here a moved file)."""
    folder, sheet, connect = setup
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com"))
    connect(header=OUTLOOK)
    sync(capsys)
    moved = tmp_path / "moved.csv"
    sheet.rename(moved)
    code, out, err = cli("account", "reauth", "Sheet", "--set", f"path={moved}", capsys=capsys)
    assert code == 0, err
    assert "Signed in to 'Sheet' again. Connections using it: main." in out
    code, report = sync(capsys)
    assert code == 0 and report["created"] == {"a": 0, "b": 0}  # the same contacts, still bound
    gone = tmp_path / "gone" / "x.csv"
    code, _, err = cli("account", "reauth", "Sheet", "--set", f"path={gone}", capsys=capsys)
    assert code == 2 and "does not exist" in err  # checked like account add: nothing stored
    assert json.loads(cli("account", "list", "--json", capsys=capsys)[1])[1]["settings"] == {
        "path": str(moved.resolve())
    }


def test_activity_lists_runs_and_a_runs_field_changes(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, _sheet, connect = setup
    connect(header=OUTLOOK)
    code, out, _ = cli("activity", "main", capsys=capsys)
    assert code == 0 and "no runs yet" in out
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", title="Chef"))
    assert sync(capsys)[0] == 0
    code, out, _ = cli("activity", "main", capsys=capsys)
    assert code == 0 and "#1 " in out and "sync  ok: 1 created, 0 updated, 0 failed" in out
    code, out, _ = cli("activity", "main", "--json", capsys=capsys)
    [run] = json.loads(out)
    assert (run["run"], run["kind"], run["status"]) == (1, "sync", "ok")
    # The field changes, as the Activity tab lists them: Ann created in the sheet.
    code, out, _ = cli("activity", "main", "1", "--json", capsys=capsys)
    changes = json.loads(out)
    assert code == 0 and {c["side"] for c in changes} == {"b"}
    assert any(c["after"] == "Chef" for c in changes)
    code, out, _ = cli("activity", "main", "1", capsys=capsys)
    assert "B Ann Lee" in out and "'Chef'" in out
    # An undo is a run of its own, named after the run it undid.
    assert cli("undo", "main", "1", capsys=capsys)[0] == 0
    code, out, _ = cli("activity", "main", capsys=capsys)
    assert "undo of #1" in out
    code, _, err = cli("activity", "main", "9", capsys=capsys)
    assert code == 2 and "no run number 9" in err
