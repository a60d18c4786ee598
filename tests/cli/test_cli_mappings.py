"""Mappings through the CLI: list, toggle, custom mappings with value tables (SPEC §5)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import vobject

from app.cli import main


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def sync(capsys: pytest.CaptureFixture[str], name: str = "c") -> tuple[int, dict[str, Any]]:
    code, out, err = cli(capsys, "sync", name, "--json")
    assert "Traceback" not in err
    return code, json.loads(out)[0]


@pytest.fixture
def two_sheets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csv(
        a,
        ["Name", "Email", "Tier", "Company", "Birthday"],
        [["Ann Lee", "ann@x.com", "Gold", "Acme", "1/31/1980"]],
    )
    write_csv(b, ["First Name", "Last Name", "E-mail Address", "Level", "Company", "Born"], [])
    cli(capsys, "account", "add", "csv", "A", "--set", f"path={a}")
    cli(capsys, "account", "add", "csv", "B", "--set", f"path={b}")
    assert cli(capsys, "connection", "create", "c", "--a", "A", "--b", "B")[0] == 0
    return a, b


def mappings(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    code, out, _ = cli(capsys, "connection", "mappings", "c", "--json")
    assert code == 0
    return {m["key"]: m for m in json.loads(out)}


def test_defaults_listed_and_toggled(two_sheets, capsys) -> None:  # type: ignore[no-untyped-def]
    views = mappings(capsys)
    assert views["organization=organization"]["kind"] == "default"
    assert views["organization=organization"]["effective"] == "two-way"
    assert views["full_name=given_name+family_name"]["enabled"] is True
    assert cli(capsys, "connection", "toggle", "c", "organization=organization", "off")[0] == 0
    views = mappings(capsys)
    assert views["organization=organization"]["enabled"] is False
    assert views["organization=organization"]["reason"] == "Turned off."
    _, b = two_sheets
    sync(capsys)
    assert read_csv(b)[0]["Company"] == ""  # the mapping is off: Company did not flow
    code, _, err = cli(capsys, "connection", "toggle", "c", "nope", "on")
    assert code == 2 and "No mapping 'nope'" in err


def test_s12_value_table_then_value_not_allowed(two_sheets, capsys) -> None:  # type: ignore[no-untyped-def]
    a, b = two_sheets
    code, out, _ = cli(
        capsys,
        "connection",
        "map",
        "c",
        "--a-field",
        "col:Tier",
        "--b-field",
        "col:Level",
        "--values",
        "Gold=VIP",
    )
    assert code == 0 and "custom:col:Tier=col:Level" in out
    code, report = sync(capsys)
    assert code == 0 and read_csv(b)[0]["Level"] == "VIP"
    rows = read_csv(a)
    rows[0]["Tier"], rows[0]["Company"] = "Silver", "Acme Ltd"
    write_csv(a, list(rows[0]), [list(rows[0].values())])
    code, report = sync(capsys)
    assert code == 1 and report["failed"] == 1
    row = read_csv(b)[0]
    assert row["Level"] == "VIP" and row["Company"] == "Acme Ltd"  # other fields still sync
    code, out, _ = cli(capsys, "health", "c", "--json")
    [failure] = json.loads(out)["failed"]
    assert failure["code"] == "value_not_allowed" and "Silver" in failure["reason"]
    assert failure["fields"] == ["col:Level"]


def test_reverse_table_and_leave_unchanged(two_sheets, capsys) -> None:  # type: ignore[no-untyped-def]
    a, b = two_sheets
    cli(
        capsys,
        "connection",
        "map",
        "c",
        "--a-field",
        "col:Tier",
        "--b-field",
        "col:Level",
        "--values",
        "Gold=VIP,Bronze=",
    )
    sync(capsys)
    rows = read_csv(b)
    rows[0]["Level"] = "VIP"
    write_csv(b, list(rows[0]), [list(rows[0].values())])
    rows = read_csv(a)
    rows[0]["Tier"] = "Bronze"  # "leave unchanged": B keeps VIP, no failure
    write_csv(a, list(rows[0]), [list(rows[0].values())])
    code, _report = sync(capsys)
    assert code == 0 and read_csv(b)[0]["Level"] == "VIP"


def test_incompatible_or_taken_fields_refused_with_reason(two_sheets, capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(
        capsys, "connection", "map", "c", "--a-field", "organization", "--b-field", "col:Level"
    )
    assert code == 2 and "already mapped" in err
    code, _, err = cli(
        capsys, "connection", "map", "c", "--a-field", "col:Nope", "--b-field", "col:Level"
    )
    assert code == 2 and "has no field 'col:Nope'" in err
    code, _, err = cli(
        capsys, "connection", "map", "c", "--a-field", "col:Tier", "--b-field", "email"
    )
    assert code == 2 and "already mapped" in err
    assert cli(capsys, "connection", "toggle", "c", "email=email", "off")[0] == 0
    code, _, err = cli(
        capsys, "connection", "map", "c", "--a-field", "birthday", "--b-field", "email"
    )
    assert code == 2 and "not compatible" in err and "date vs email" in err
    # Text into an email field is refused one way; the other way (email → text) is offered.
    code, out, _ = cli(
        capsys, "connection", "map", "c", "--a-field", "col:Tier", "--b-field", "email"
    )
    assert code == 0 and "b-to-a" in out


def test_date_mapping_compares_formats_not_text(two_sheets, capsys) -> None:  # type: ignore[no-untyped-def]
    a, b = two_sheets
    code, _, _ = cli(
        capsys,
        "connection",
        "map",
        "c",
        "--a-field",
        "birthday",
        "--b-field",
        "col:Born",
        "--direction",
        "a-to-b",
    )
    assert code == 0
    sync(capsys)
    assert read_csv(b)[0]["Born"] == "1/31/1980"
    rows = read_csv(b)
    rows[0]["Born"] = "1980-01-31"  # same date, other spelling; and a one-way mapping anyway
    write_csv(b, list(rows[0]), [list(rows[0].values())])
    code, report = sync(capsys)
    assert report["updated"] == {"a": 0, "b": 0}
    assert read_csv(a)[0]["Birthday"] == "1/31/1980"


def test_mappings_round_trip_through_export_import(two_sheets, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli(
        capsys,
        "connection",
        "map",
        "c",
        "--a-field",
        "col:Tier",
        "--b-field",
        "col:Level",
        "--values",
        "Gold=VIP,Silver=Premium",
        "--values-back",
        "VIP=Gold",
    )
    cli(capsys, "connection", "toggle", "c", "organization=organization", "off")
    code, out, _ = cli(capsys, "connection", "export", "c")
    exported = json.loads(out)
    assert exported["config"]["mappings"]["off"] == ["organization=organization"]
    (tmp_path / "c.json").write_text(out)
    assert cli(capsys, "connection", "import", str(tmp_path / "c.json"), "--name", "d")[0] == 0
    code, out, _ = cli(capsys, "connection", "export", "d")
    assert json.loads(out)["config"] == exported["config"]
    code, out, _ = cli(capsys, "connection", "mappings", "d", "--json")
    custom = next(m for m in json.loads(out) if m["kind"] == "custom")
    assert custom["values"]["a_to_b"] == {"Gold": "VIP", "Silver": "Premium"}
    assert cli(capsys, "connection", "unmap", "d", custom["key"])[0] == 0
    broken = dict(exported, config={"mappings": {"custom": [{"a": "x"}]}})
    (tmp_path / "bad.json").write_text(json.dumps(broken))
    code, _, err = cli(capsys, "connection", "import", str(tmp_path / "bad.json"), "--name", "e")
    assert code == 2 and "malformed" in err


def card(uid: str, body: str) -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\n{body}END:VCARD\r\n"


def test_labels_and_unmapped_properties_survive_vcard_csv_vcard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    sheet = tmp_path / "middle.csv"
    body = (
        "FN:Ann Lee\r\nN:Lee;Ann;;;\r\n"
        "EMAIL;TYPE=INTERNET,WORK:ann@work.com\r\nEMAIL;TYPE=INTERNET,HOME:ann@home.com\r\n"
        "TEL;TYPE=CELL:+44 7700 900123\r\nTEL;TYPE=WORK:+44 20 7946 0958\r\n"
        "TEL;TYPE=HOME:+44 20 7946 0000\r\n"
        "item1.X-ABRELATEDNAMES:Bob\r\nX-CUSTOM-THING:keep me\r\n"
        "PHOTO;ENCODING=b;TYPE=JPEG:aGVsbG8=\r\n"
    )
    (first / "ann.vcf").write_text(card("ann", body))
    original = (first / "ann.vcf").read_bytes()
    for name, path, kind in (
        ("One", first, "vcard-folder"),
        ("Sheet", sheet, "csv"),
        ("Two", second, "vcard-folder"),
    ):
        cli(capsys, "account", "add", kind, name, "--set", f"path={path}")
    cli(capsys, "connection", "create", "left", "--a", "One", "--b", "Sheet")
    cli(capsys, "connection", "create", "right", "--a", "Sheet", "--b", "Two")
    assert sync(capsys, "left")[0] == 0
    assert sync(capsys, "right")[0] == 0
    [copy] = list(second.glob("*.vcf"))
    got = vobject.readOne(copy.read_text())

    def labelled(component: Any, name: str) -> set[tuple[str, str]]:
        out = set()
        for line in component.contents[name]:
            types = {
                t.lower()
                for t in line.params.get("TYPE", [])
                if t.lower() not in ("internet", "pref")
            }
            out.add((line.value, ",".join(sorted(types))))
        return out

    src = vobject.readOne(original.decode())
    assert labelled(got, "email") == labelled(src, "email")
    assert labelled(got, "tel") == labelled(src, "tel")
    # The source card was never rewritten: nothing changed there, so nothing was written.
    assert (first / "ann.vcf").read_bytes() == original
    for name in ("left", "right", "left", "right"):
        _code, report = sync(capsys, name)
        assert report["updated"] == {"a": 0, "b": 0} and report["created"] == {"a": 0, "b": 0}


def test_a_synced_connection_can_be_renamed_and_keeps_its_state(  # type: ignore[no-untyped-def]
    two_sheets, capsys
) -> None:
    _, b = two_sheets
    assert sync(capsys)[1]["created"] == {"a": 0, "b": 1}
    code, out, _ = cli(capsys, "connection", "rename", "c", "Sheets")
    assert code == 0 and "Renamed 'c' to 'Sheets'" in out
    code, report = sync(capsys, "Sheets")  # nothing new: its bindings came along
    assert code == 0 and report["created"] == {"a": 0, "b": 0}
    assert report["updated"] == {"a": 0, "b": 0}
    assert len(read_csv(b)) == 1
    code, _, err = cli(capsys, "connection", "rename", "Sheets", " ")
    assert code == 2 and "needs a name" in err
    code, _, err = cli(capsys, "connection", "rename", "c", "x")
    assert code == 2 and "no connection named 'c'" in err
