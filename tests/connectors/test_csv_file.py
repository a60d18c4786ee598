"""The CSV connector: the contract suite, then CSV specifics (formats, encodings, ids)."""

from __future__ import annotations

import csv
import io
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from app.connectors.csv import CsvApp
from app.connectors.csv import app as csv_file
from app.errors import Conflict, NotFound, Rejected, Unavailable
from app.model import Address, Create, Labeled, Record, Unreadable, Update
from tests.connectors.contract import ConnectorContract


class TestCsvContract(ConnectorContract):
    @pytest.fixture
    def app(self, tmp_path: Path) -> CsvApp:
        return CsvApp(tmp_path / "contacts.csv")

    @pytest.fixture
    def reopen(self, app: CsvApp) -> Callable[[], CsvApp]:
        return lambda: CsvApp(app.path)


# --- app-specific behaviour --------------------------------------------------------------

DATA = Path(__file__).resolve().parent.parent / "data" / "csv"


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copyfile(DATA / name, target)
    return target


def _records(app: CsvApp) -> list[Record]:
    items = app.fetch(list(app.list_versions()))
    return [r for r in items if isinstance(r, Record)]


def _by_given(app: CsvApp) -> dict[str, Record]:
    return {str(r.fields.get("given_name") or r.fields.get("full_name")): r for r in _records(app)}


def _rows(path: Path, encoding: str = "utf-8", delimiter: str = ",") -> list[list[str]]:
    text = path.read_bytes().decode(encoding)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_outlook_export_cp1252(tmp_path: Path) -> None:
    app = CsvApp(_copy(tmp_path, "outlook_cp1252.csv"))
    assert app.schema().segments == ("Clients", "Suppliers", "VIP")
    people = _by_given(app)
    assert set(people) == {"José", "Françoise", "Zoë"}
    jose = people["José"].fields
    assert jose["family_name"] == "Müller"
    assert jose["name_prefix"] == "Dr."
    assert jose["organization"] == "Société Générale"
    assert jose["title"] == "Directeur"
    assert jose["birthday"] == "3/14/1975"
    assert jose["notes"] == "Préfère le café.\r\nAppeler le matin."
    assert jose["emails"] == (Labeled("jose.muller@example.fr"), Labeled("jose@home.example"))
    assert jose["phones"] == (
        Labeled("+33 6 12 34 56 78", "mobile"),
        Labeled("+33 1 42 00 00 00", "work"),
        Labeled("+33 1 43 00 00 00", "home"),
    )
    assert jose["addresses"] == (
        Address("12 Rue de la Paix", "Paris", "", "75002", "France", label="work"),
    )
    assert jose["col:User 1"] == "gold"
    assert people["José"].segments == {"Clients", "VIP"}
    zoe = people["Zoë"].fields
    assert "birthday" not in zoe  # Outlook's 0/0/00 means empty
    assert zoe["phones"] == (
        Labeled("+44 20 7946 0001", "other"),
        Labeled("+44 20 7946 0000", "fax"),
    )
    assert people["Françoise"].fields["addresses"] == (
        Address("Storgatan 1", "Malmö", "", "211 34", "Sweden", label="home"),
    )
    spec = app.schema().get("emails")
    assert spec is not None and spec.multi


def test_google_current_export(tmp_path: Path) -> None:
    app = CsvApp(_copy(tmp_path, "google_current.csv"))
    assert app.schema().segments == ("Customers", "VIP")  # system labels are not segments
    ann = _by_given(app)["Ann"]
    assert ann.segments == {"Customers", "VIP"}
    assert ann.fields["emails"] == (
        Labeled("ann@acme.example", "work"),
        Labeled("ann.lee@acme.example", "work"),
        Labeled("ann@home.example", "home"),
    )
    assert ann.fields["phones"] == (
        Labeled("+44 7700 900123", "mobile"),
        Labeled("+44 20 7946 0999", "fax"),
    )
    assert ann.fields["addresses"] == (
        Address("1 Main St", "London", "", "EC1 1AA", "UK", label="work"),
    )
    assert ann.fields["urls"] == (Labeled("https://acme.example/ann", "Profile"),)
    assert ann.fields["notes"] == 'Met at the fair, "Expo".'
    assert ann.fields["col:Custom Field 1 - Value"] == "38"
    assert app.find_by_email(["ANN.LEE@acme.example"])[0].id == ann.id


def test_google_legacy_export(tmp_path: Path) -> None:
    app = CsvApp(_copy(tmp_path, "google_legacy.csv"))
    [carla] = _records(app)
    assert carla.fields["full_name"] == "Carla Gómez"
    assert carla.fields["given_name"] == "Carla"
    assert carla.fields["organization"] == "Telefónica"
    assert carla.fields["title"] == "Ingeniera"
    assert carla.fields["emails"] == (Labeled("carla@example.es", "home"),)
    assert carla.fields["phones"] == (
        Labeled("+34 600 000 000", "mobile"),
        Labeled("+34 910 000 000", "work"),
        Labeled("+34 910 000 001", "work"),
    )
    assert carla.segments == {"Friends"}


def test_utf16_tab_generic_with_single_email_and_phone(tmp_path: Path) -> None:
    path = _copy(tmp_path, "generic_utf16.txt")
    app = CsvApp(path)
    schema = app.schema()
    email, phone = schema.get("email"), schema.get("phone")
    assert email is not None and not email.multi and email.meaning == "email"
    assert phone is not None and not phone.multi and phone.meaning == "phone"
    assert schema.get("emails") is None and schema.get("phones") is None
    assert schema.get("given_name") is None and schema.get("family_name") is None
    assert schema.get("col:Shoe size") is not None
    people = _by_given(app)
    assert people["Łukasz Żółć"].fields["email"] == "lukasz@example.pl"
    assert people["Łukasz Żółć"].fields["phone"] == "+48 600 100 200"
    assert people["Łukasz Żółć"].segments == {"Friends", "Poland"}
    assert people["李小龍"].fields == {"full_name": "李小龍", "email": "bruce@example.hk"}
    assert [r.id for r in app.find_by_email(["EVE@example.fr"])] == [people["Ève Noël"].id]

    # Written back as UTF-16 LE with BOM, tabs and CRLF.
    app.prepare()
    eve = _by_given(app)["Ève Noël"]
    [res] = app.write([Update("u", eve.id, {"phone": "", "email": "eve@new.example"})])
    assert res.ok, res.error
    data = path.read_bytes()
    assert data.startswith(b"\xff\xfe")
    text = data[2:].decode("utf-16-le")
    assert text.startswith("Name\tE-mail\tPhone\tCompany\tTags\tShoe size\tPairsync ID\r\n")
    assert "Ève Noël\teve@new.example\t\t\tFriends\t38\t" + eve.id + "\r\n" in text
    assert _by_given(CsvApp(path))["Ève Noël"].fields["email"] == "eve@new.example"


def test_generic_name_only_and_several_emails(tmp_path: Path) -> None:
    path = _write_text(
        tmp_path / "a.csv", "Name,Email,Email 2,Mobile,Notes\nAl,a@x.com,al@y.com,123,n\n"
    )
    schema = CsvApp(path).schema()
    keys = {f.key for f in schema.fields}
    assert {"full_name", "emails", "phone", "notes"} <= keys
    assert not {"given_name", "family_name", "email", "phones"} & keys
    [al] = _records(CsvApp(path))
    assert al.fields["emails"] == (Labeled("a@x.com"), Labeled("al@y.com"))
    assert al.fields["phone"] == "123"


def test_update_keeps_unknown_columns_and_untouched_rows_byte_for_byte(tmp_path: Path) -> None:
    path = _copy(tmp_path, "outlook_cp1252.csv")
    app = CsvApp(path)
    app.prepare()
    before = path.read_bytes()
    jose = _by_given(app)["José"]
    [res] = app.write(
        [Update("u", jose.id, {"title": "Président", "emails": (Labeled("j@new.example"),)})]
    )
    assert res.ok, res.error
    after = path.read_bytes()
    old_lines, new_lines = before.split(b"\r\n"), after.split(b"\r\n")
    # Row 2 (José) spans two physical lines because his notes hold a line break.
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    assert changed == [1]
    new_cells = _rows(path, "cp1252")  # the file as now written
    assert new_cells[1][new_cells[0].index("Job Title")] == "Président"
    assert new_cells[1][new_cells[0].index("E-mail Address")] == "j@new.example"
    assert new_cells[1][new_cells[0].index("E-mail 2 Address")] == ""
    assert new_cells[1][new_cells[0].index("E-mail Display Name")] == (
        "José Müller (jose.muller@example.fr)"
    )
    assert new_cells[1][new_cells[0].index("User 1")] == "gold"
    assert new_lines[1].startswith('"Dr.","José","","Müller"'.encode("cp1252"))  # quote-all kept
    assert len(new_cells[1]) == len(new_cells[0])


def test_encoding_bom_delimiter_and_line_ends_preserved(tmp_path: Path) -> None:
    # Excel in a German locale: BOM, a "sep=" line, semicolons, LF line ends.
    text = 'sep=;\nVorname;Nachname;E-Mail;Telefon;Firma\nJürgen;Groß;j@x.de;+49 1;"M & S; GmbH"\n'
    path = tmp_path / "de.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    app = CsvApp(path)
    app.prepare()
    [res] = app.write(
        [Create("c", {"col:Vorname": "Zoë", "col:Nachname": "Ä;B", "email": "z@x.de"}, new_id="n1")]
    )
    assert res.ok, res.error
    data = path.read_bytes()
    assert data.startswith(
        b"\xef\xbb\xbfsep=;\nVorname;Nachname;E-Mail;Telefon;Firma;Pairsync ID\n"
    )
    assert b"\r\n" not in data
    assert data.decode("utf-8-sig").endswith('Zoë;"Ä;B";z@x.de;;;n1\n')
    firms = {r.fields.get("col:Firma") for r in _records(CsvApp(path))}
    assert firms == {"M & S; GmbH", None}
    assert "Jürgen;Groß;j@x.de;+49 1;" in data.decode("utf-8")


def test_cp1252_written_back_as_cp1252_and_unencodable_text_rejected(tmp_path: Path) -> None:
    path = _copy(tmp_path, "outlook_cp1252.csv")
    app = CsvApp(path)
    app.prepare()
    zoe = _by_given(app)["Zoë"]
    [ok, bad] = app.write(
        [
            Update("u1", zoe.id, {"family_name": "Brontë-Sørensen"}),
            Update("u2", zoe.id, {"department": "🙂"}),
        ]
    )
    assert ok.ok, ok.error
    assert isinstance(bad.error, Rejected) and "cannot hold" in str(bad.error)
    data = path.read_bytes()
    assert "Brontë-Sørensen".encode("cp1252") in data
    assert _by_given(CsvApp(path))["Zoë"].fields["family_name"] == "Brontë-Sørensen"


def test_ids_survive_reordering_rows(tmp_path: Path) -> None:
    path = _copy(tmp_path, "google_current.csv")
    app = CsvApp(path)
    app.prepare()
    listing = app.list_versions()
    names = {r.id: r.fields["given_name"] for r in _records(app)}
    rows = _rows(path)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([rows[0], *reversed(rows[1:])])
    path.write_text(buf.getvalue(), newline="")
    again = CsvApp(path)
    assert again.list_versions() == listing
    assert {r.id: r.fields["given_name"] for r in _records(again)} == names


def test_dry_run_ids_are_stable_and_distinct_for_identical_rows(tmp_path: Path) -> None:
    path = _write_text(tmp_path / "a.csv", "Name,Email\nAl,a@x.com\nAl,a@x.com\nBo,b@x.com\n")
    first = CsvApp(path).list_versions()
    assert len(first) == 3 and all(rid.startswith("row-") for rid in first)
    assert CsvApp(path).list_versions() == first
    assert path.read_text() == "Name,Email\nAl,a@x.com\nAl,a@x.com\nBo,b@x.com\n"  # not written


def test_prepare_stamps_ids_once_and_is_idempotent(tmp_path: Path) -> None:
    path = _write_text(tmp_path / "a.csv", "Name,Email\r\nAl,a@x.com\r\nBo,b@x.com\r\n")
    app = CsvApp(path)
    dry = app.list_versions()
    app.prepare()
    rows = _rows(path)
    assert rows[0] == ["Name", "Email", "Pairsync ID"]
    ids = [r[2] for r in rows[1:]]
    # The ids it was read under become permanent (a run's plan stays valid across a write).
    assert set(ids) == set(dry)
    listing = CsvApp(path).list_versions()
    assert listing == dry
    assert sorted(listing.values()) == sorted(dry.values())  # versions ignore the id cell
    data, mtime = path.read_bytes(), path.stat().st_mtime_ns
    CsvApp(path).prepare()
    app.prepare()
    assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime
    # A row added later by the user without an id gets one on the next prepare only.
    path.write_bytes(data + b"Cy,c@x.com,\r\n")
    CsvApp(path).prepare()
    rows = _rows(path)
    assert [r[2] for r in rows[1:3]] == ids and rows[3][2].startswith("row-")


def test_write_before_prepare_keeps_the_derived_id(tmp_path: Path) -> None:
    path = _write_text(tmp_path / "a.csv", "Name,Email\nAl,a@x.com\nBo,b@x.com\n")
    app = CsvApp(path)
    al = next(r for r in _records(app) if r.fields["full_name"] == "Al")
    [res] = app.write([Update("u", al.id, {"email": "al@x.com"}, expected_version=al.version)])
    assert res.ok and res.record is not None and res.record.id == al.id
    bo = next(r for r in _records(app) if r.fields["full_name"] == "Bo")
    # A real write makes every row's id permanent, each the id it was read under.
    assert path.read_text() == (
        f"Name,Email,Pairsync ID\nAl,al@x.com,{al.id}\nBo,b@x.com,{bo.id}\n"
    )
    assert CsvApp(path).fetch([al.id])[0] == res.record
    assert CsvApp(path).fetch([bo.id])[0] == bo


def test_row_with_too_many_cells_is_unreadable_and_kept(tmp_path: Path) -> None:
    text = "Name,Email,Phone\nAl,a@x.com,1\nBo,b@x.com,2,extra,more\nCy,c@x.com,3\n"
    path = _write_text(tmp_path / "a.csv", text)
    app = CsvApp(path)
    items = app.fetch(list(app.list_versions()))
    bad = [i for i in items if isinstance(i, Unreadable)]
    good = [i for i in items if isinstance(i, Record)]
    assert [i.message for i in bad] == ["Row 3 has 5 cells but the header has 3."]
    assert sorted(str(r.fields["full_name"]) for r in good) == ["Al", "Cy"]
    app.prepare()
    assert "Bo,b@x.com,2,extra,more\n" in path.read_text()
    [res] = CsvApp(path).write([Update("u", bad[0].id, {"full_name": "B"})])
    assert isinstance(res.error, Rejected)


def test_undecodable_row_is_unreadable_and_its_bytes_survive(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"Name,Email\nJos\xc3\xa9,j@x.com\nBad \xff\xfe name,b@x.com\nCy,c@x.com\n")
    app = CsvApp(path)
    items = app.fetch(list(app.list_versions()))
    [bad] = [i for i in items if isinstance(i, Unreadable)]
    assert bad.message == "Row 3 contains bytes that are not valid UTF-8 text."
    assert {str(r.fields["full_name"]) for r in items if isinstance(r, Record)} == {"José", "Cy"}
    app.prepare()
    assert b"Bad \xff\xfe name,b@x.com\n" in path.read_bytes()


def test_duplicate_ids_are_reported_not_merged(tmp_path: Path) -> None:
    rid = uuid.uuid4().hex
    path = _write_text(
        tmp_path / "a.csv", f"Pairsync ID,Name\n{rid},Al\n{rid},Al copy\n{rid},Al again\n"
    )
    app = CsvApp(path)
    listing = app.list_versions()
    assert len(listing) == 3
    items = app.fetch(list(listing))
    assert [i.fields["full_name"] for i in items if isinstance(i, Record)] == ["Al"]
    bad = [i for i in items if isinstance(i, Unreadable)]
    assert len(bad) == 2
    assert "Row 3 repeats the Pairsync ID of row 2" in bad[0].message
    app.prepare()  # copies are left for the user to sort out
    assert path.read_text().count(rid) == 3


def test_google_packed_values_and_system_labels_survive_writes(tmp_path: Path) -> None:
    path = _copy(tmp_path, "google_current.csv")
    app = CsvApp(path)
    app.prepare()
    ann = _by_given(app)["Ann"]
    emails = (
        Labeled("a1@acme.example", "work"),
        Labeled("a2@acme.example", "work"),
        Labeled("a3@home.example", "home"),
        Labeled("a4@else.example", "other"),
    )
    [res] = app.write(
        [
            Update(
                "u",
                ann.id,
                {"emails": emails},
                add_segments=frozenset({"Leads"}),
                remove_segments=frozenset({"VIP"}),
            )
        ]
    )
    assert res.ok, res.error
    rows = _rows(path)
    header, row = rows[0], rows[1]
    assert row[header.index("Labels")] == "* myContacts ::: Customers ::: * starred ::: Leads"
    assert row[header.index("E-mail 1 - Label")] == "* Work"  # original label text kept
    assert row[header.index("E-mail 1 - Value")] == "a1@acme.example ::: a2@acme.example"
    assert row[header.index("E-mail 2 - Value")] == "a3@home.example ::: a4@else.example"
    again = _by_given(CsvApp(path))["Ann"]
    assert again.segments == {"Customers", "Leads"}
    assert [e.value for e in again.fields["emails"]] == [e.value for e in emails]  # type: ignore[union-attr]


def test_outlook_overflow_is_rejected_and_named(tmp_path: Path) -> None:
    path = _copy(tmp_path, "outlook_cp1252.csv")
    app = CsvApp(path)
    app.prepare()
    zoe = _by_given(app)["Zoë"]
    emails = tuple(Labeled(f"z{i}@x.example") for i in range(1, 5))
    [res] = app.write([Update("u", zoe.id, {"emails": emails, "title": "Poet"})])
    assert isinstance(res.error, Rejected)
    assert res.error.field == "emails"
    assert str(res.error) == (
        "Outlook CSV holds at most 3 emails; the 4th (z4@x.example) was not written."
    )
    assert res.record is not None  # what was stored, so the engine knows the new version
    again = CsvApp(path).fetch([zoe.id])[0]
    assert isinstance(again, Record)
    assert again.fields["emails"] == emails[:3] and again.fields["title"] == "Poet"
    assert again.version == res.record.version


def test_outlook_phones_go_to_columns_by_label(tmp_path: Path) -> None:
    path = _copy(tmp_path, "outlook_cp1252.csv")
    app = CsvApp(path)
    app.prepare()
    zoe = _by_given(app)["Zoë"]
    phones = (
        Labeled("1", "work"),
        Labeled("2", "mobile"),
        Labeled("3", "work"),
        Labeled("4", "fax"),
        Labeled("5", "home"),
    )
    [res] = app.write([Update("u", zoe.id, {"phones": phones})])
    assert res.ok, res.error
    rows = _rows(path, "cp1252")
    header, row = rows[0], rows[3]
    cell = {h: row[i] for i, h in enumerate(header)}
    assert (cell["Business Phone"], cell["Business Phone 2"], cell["Mobile Phone"]) == (
        "1",
        "3",
        "2",
    )
    assert (cell["Business Fax"], cell["Home Phone"], cell["Other Phone"]) == ("4", "5", "")


def test_invalid_email_is_still_written_and_unknown_field_rejected(tmp_path: Path) -> None:
    app = CsvApp(tmp_path / "c.csv")
    [res] = app.write(
        [Create("c", {"given_name": "X", "emails": (Labeled("not an email"),), "nickname": "x"})]
    )
    assert isinstance(res.error, Rejected) and res.error.field == "nickname"
    assert res.record is not None
    assert res.record.fields["emails"] == (Labeled("not an email", "other"),)


def test_missing_folder_is_unavailable(tmp_path: Path) -> None:
    app = CsvApp(tmp_path / "nope" / "contacts.csv")
    with pytest.raises(Unavailable, match="does not exist"):
        app.list_versions()
    with pytest.raises(Unavailable):
        app.write([Create("c", {"given_name": "X"})])


def test_conflict_and_not_found(tmp_path: Path) -> None:
    path = _write_text(tmp_path / "a.csv", "Name,Email\nAl,a@x.com\n")
    app = CsvApp(path)
    app.prepare()
    [al] = _records(app)
    path.write_text(path.read_text().replace("Al,", "Alan,"))  # the user edits the file
    [stale, gone] = CsvApp(path).write(
        [
            Update("u", al.id, {"email": "z@x.com"}, expected_version=al.version),
            Update("v", "nope", {"email": "z@x.com"}),
        ]
    )
    assert isinstance(stale.error, Conflict) and isinstance(gone.error, NotFound)


def test_list_versions_and_fetch_parse_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(tmp_path, "google_current.csv")
    calls = []
    real = csv_file._parse
    monkeypatch.setattr(csv_file, "_parse", lambda data: calls.append(1) or real(data))
    app = CsvApp(path)
    app.fetch(list(app.list_versions()))
    app.schema()
    app.find_by_email(["x@y"])
    assert len(calls) == 1
    app.prepare()  # writes; the cache follows our own write
    app.list_versions()
    assert len(calls) == 1
