from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import vobject

from app.connectors.base import Connector
from app.connectors.vcard_folder import VCardFolderApp
from app.errors import BadData, Conflict, NotFound, Unavailable
from app.model import OPT_OUT_FIELD, Address, Create, Labeled, Record, Unreadable, Update
from tests.connectors.contract import ConnectorContract

DATA = Path(__file__).resolve().parent.parent / "data" / "vcard"


class TestVCardFolderContract(ConnectorContract):
    @pytest.fixture
    def app(self, tmp_path: Path) -> VCardFolderApp:
        folder = tmp_path / "contacts"
        folder.mkdir()
        return VCardFolderApp(folder)

    @pytest.fixture
    def reopen(self, app: VCardFolderApp) -> Callable[[], Connector]:
        return lambda: VCardFolderApp(app.path)


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(DATA, target)
    return target


def read(app: VCardFolderApp, rid: str) -> Record:
    [item] = app.fetch([rid])
    assert isinstance(item, Record), item
    return item


def write_ok(app: VCardFolderApp, op: Create | Update) -> Record:
    [res] = app.write([op])
    assert res.ok, res.error
    assert res.record is not None
    return res.record


def props(path: Path, skip: tuple[str, ...] = ()) -> list[tuple[str, str | None, str, str]]:
    """Every property as vobject parses it (name, group, params, value), for comparisons."""
    card = vobject.readOne(path.read_text("utf-8"), transform=False, allowQP=True)
    out = []
    for line in card.getChildren():
        if line.name in skip:
            continue
        params = repr(sorted((k, sorted(v)) for k, v in line.params.items()))
        params += repr(sorted(line.singletonparams))
        out.append((line.name, line.group, params, str(line.value)))
    return out


def raw_lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines()


def make_card(folder: Path, rid: str, body: str, version: str = "3.0") -> Path:
    path = folder / f"{rid}.vcf"
    text = f"BEGIN:VCARD\r\nVERSION:{version}\r\n" + body.strip().replace("\n", "\r\n")
    path.write_bytes((text + "\r\nEND:VCARD\r\n").encode("utf-8"))
    return path


# --- reading ------------------------------------------------------------------------------


def test_reads_apple_card(folder: Path) -> None:
    rec = read(VCardFolderApp(folder), "apple-3.0")
    f = rec.fields
    assert f["full_name"] == "Mr. Johnny Q Appleseed Jr."
    assert (f["given_name"], f["family_name"], f["middle_name"]) == ("Johnny", "Appleseed", "Q")
    assert (f["name_prefix"], f["name_suffix"]) == ("Mr.", "Jr.")
    assert f["organization"] == "Apple Inc." and f["department"] == "Engineering"
    assert f["emails"] == (
        Labeled("johnny@example.com", "other"),  # TYPE=pref first; label from X-ABLabel
        Labeled("j.appleseed@apple.example", "work"),
    )
    assert f["phones"] == (
        Labeled("+1 (408) 555-0100", "mobile"),
        Labeled("+1 408 555 0199", "fax"),
    )
    assert f["addresses"] == (
        Address("1 Infinite Loop", "Cupertino", "CA", "95014", "United States", label="home"),
    )
    assert f["urls"] == (Labeled("http://www.example.com", "homepage"),)
    assert f["birthday"] == "1984-01-24"
    assert f["notes"] == "Line one\nLine two, with comma"
    assert rec.segments == {"Friends", "Apple"}


def test_reads_google_card(folder: Path) -> None:
    f = read(VCardFolderApp(folder), "google-3.0").fields
    assert f["emails"] == (
        Labeled("grace@home.example", "home"),
        Labeled("grace.hopper@navy.example", "work"),
    )
    assert [p.label for p in f["phones"]] == ["mobile", "home", ""]  # type: ignore[union-attr]
    assert f["urls"] == (Labeled("https://en.wikipedia.org/wiki/Grace_Hopper", "profile"),)


def test_reads_vcard_4_with_pref(folder: Path) -> None:
    f = read(VCardFolderApp(folder), "rfc-4.0").fields
    assert f["emails"] == (Labeled("ada@work.example", "work"), Labeled("ada@home.example", "home"))
    assert f["phones"] == (
        Labeled("+44-20-7946-0001", "work"),
        Labeled("+44-20-7946-0000", "mobile"),
    )
    assert f["birthday"] == "--1210"
    assert f["name_prefix"] == "Countess"


def test_reads_vcard_2_1_quoted_printable(folder: Path) -> None:
    f = read(VCardFolderApp(folder), "legacy-2.1").fields
    assert f["full_name"] == "Jürgen Müller"
    assert f["family_name"] == "Müller"
    assert f["notes"] == "Erste Zeile\nZweite Zeile mit einem sehr langen Text, der umbrochen wird."
    assert f["phones"] == (Labeled("+49 170 1234567", "mobile"), Labeled("+49 30 1234568", "fax"))
    assert f["emails"] == (Labeled("juergen@example.de", "home"),)


def test_reads_folded_lines(folder: Path) -> None:
    f = read(VCardFolderApp(folder), "folded-3.0").fields
    assert f["notes"] == (
        "This is a rather long note that has been folded over several physical lines as "
        "RFC 2425 requires for lines longer than seventy-five octets, and it must come back "
        "as one line."
    )
    email = "folded.person.with.a.really.long.address@extremely-long-domain-name.example.com"
    assert f["emails"] == (Labeled(email, "work"),)


def test_non_utf8_file_is_readable(folder: Path) -> None:
    f = read(VCardFolderApp(folder), "cp1252").fields
    assert f["full_name"] == "Zoë Ångström"
    assert f["notes"] == "Café – naïve"


def test_broken_files_are_unreadable_and_others_still_read(folder: Path) -> None:
    (folder / "junk.vcf").write_bytes(bytes(range(256)))
    (folder / "text.vcf").write_text("Just some notes, not a card.\n")
    (folder / "empty.vcf").write_bytes(b"")
    (folder / "unclosed.vcf").write_text("BEGIN:VCARD\nVERSION:3.0\nFN:Half\n")
    app = VCardFolderApp(folder)
    items = {i.id: i for i in app.fetch(sorted(app.list_versions()))}
    for rid in ("broken", "junk", "text", "empty", "unclosed"):
        bad = items[rid]
        assert isinstance(bad, Unreadable), rid
        assert bad.message.startswith(f"The file {rid}.vcf is not a valid vCard"), bad.message
        assert bad.version == app.list_versions()[rid]
        assert len(bad.raw) <= 500
    broken = items["broken"]
    assert isinstance(broken, Unreadable)
    assert "line 3" in broken.message and broken.raw.startswith("BEGIN:VCARD")
    assert isinstance(items["google-3.0"], Record)
    assert isinstance(items["apple-3.0"], Record)
    # An update of a broken card is refused for that record only.
    [res] = app.write([Update("u", "broken", {"title": "X"})])
    assert isinstance(res.error, BadData)


def test_a_card_file_over_the_size_limit_fails_alone_unread(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.connectors.vcard_folder as vcard_folder

    monkeypatch.setattr(vcard_folder, "MAX_CARD_BYTES", 2_000)
    note = "x" * 5_000
    (folder / "huge.vcf").write_text(
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Huge\r\nNOTE:{note}\r\nEND:VCARD\r\n"
    )
    app = VCardFolderApp(folder)
    items = {i.id: i for i in app.fetch(sorted(app.list_versions()))}
    huge = items["huge"]
    assert isinstance(huge, Unreadable)
    assert huge.message.startswith("The file huge.vcf is 0 MB, larger than the 0.002 MB"), (
        huge.message
    )
    assert huge.version == app.list_versions()["huge"]
    assert isinstance(items["google-3.0"], Record)
    [res] = app.write([Update("u", "huge", {"title": "X"})])
    assert not res.ok
    assert (folder / "huge.vcf").read_text().count("x") == 5_000  # never rewritten


def test_listing_ignores_other_files(tmp_path: Path) -> None:
    make_card(tmp_path, "a", "FN:A\nN:;A;;;")
    (tmp_path / ".a.vcf.tmp").write_text("x")
    (tmp_path / ".hidden.vcf").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub.vcf").mkdir()
    st = os.stat(tmp_path / "a.vcf")
    assert VCardFolderApp(tmp_path).list_versions() == {
        "a": f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"
    }


def test_missing_folder_is_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    app = VCardFolderApp(missing)
    calls: list[Callable[[], object]] = [
        app.list_versions,
        lambda: app.fetch(["a"]),
        app.prepare,
        lambda: app.write([Create("c", {"given_name": "A"}, new_id="a")]),
    ]
    for call in calls:
        with pytest.raises(Unavailable) as info:
            call()
        assert str(missing) in str(info.value)
        assert str(info.value).endswith(".")


def test_find_by_email(folder: Path) -> None:
    app = VCardFolderApp(folder)
    found = app.find_by_email(["GRACE.hopper@Navy.example "])
    assert [r.id for r in found] == ["google-3.0"]


def test_schema(folder: Path) -> None:
    schema = VCardFolderApp(folder).schema()
    assert {"Friends", "Apple", "myContacts"} <= set(schema.segments)
    keys = [f.key for f in schema.fields]
    for key in ("full_name", "emails", "department", "urls", "birthday", "name_suffix"):
        assert key in keys


# --- writing ------------------------------------------------------------------------------


def test_update_title_keeps_everything_else(folder: Path) -> None:
    app = VCardFolderApp(folder)
    path = folder / "apple-3.0.vcf"
    before_props = props(path, skip=("TITLE",))
    before_lines = raw_lines(path)
    rec = read(app, "apple-3.0")
    new = write_ok(
        app, Update("u", "apple-3.0", {"title": "Senior Engineer"}, expected_version=rec.version)
    )
    assert new.fields["title"] == "Senior Engineer"
    assert props(path, skip=("TITLE",)) == before_props
    after_lines = raw_lines(path)
    assert [line for line in after_lines if not line.startswith("TITLE")] == [
        line for line in before_lines if not line.startswith("TITLE")
    ]
    assert "TITLE:Senior Engineer" in after_lines
    assert path.read_bytes().count(b"\r\n") == len(after_lines)  # CRLF kept
    assert {k: v for k, v in new.fields.items() if k != "title"} == {
        k: v for k, v in rec.fields.items() if k != "title"
    }


def test_update_keeps_unchanged_multi_values_and_their_params(folder: Path) -> None:
    app = VCardFolderApp(folder)
    path = folder / "apple-3.0.vcf"
    rec = read(app, "apple-3.0")
    emails = (*rec.fields["emails"], Labeled("new@example.com", "home"))  # type: ignore[misc]
    new = write_ok(app, Update("u", "apple-3.0", {"emails": emails}))
    assert new.fields["emails"] == emails
    lines = raw_lines(path)
    assert "item1.EMAIL;type=INTERNET;type=pref:johnny@example.com" in lines
    assert "item1.X-ABLabel:_$!<Other>!$_" in lines
    assert "EMAIL;type=INTERNET;type=WORK:j.appleseed@apple.example" in lines
    assert "EMAIL;TYPE=HOME:new@example.com" in lines
    # Removing the grouped email drops its orphaned Apple label too.
    write_ok(app, Update("u2", "apple-3.0", {"emails": emails[1:]}))
    lines = raw_lines(path)
    assert not any(line.startswith("item1.") for line in lines)
    assert any(line.startswith("item3.X-ABLabel") for line in lines)
    first = read(app, "apple-3.0").fields["emails"]
    assert first == (emails[1], emails[2])
    assert "EMAIL;TYPE=INTERNET,WORK,PREF:j.appleseed@apple.example" in raw_lines(path)


def test_update_keeps_version_4(folder: Path) -> None:
    app = VCardFolderApp(folder)
    path = folder / "rfc-4.0.vcf"
    phones = (Labeled("+44 1", "mobile"), Labeled("+44 2", "fax"))
    new = write_ok(app, Update("u", "rfc-4.0", {"phones": phones, "title": "Mathematician"}))
    assert new.fields["phones"] == phones
    lines = raw_lines(path)
    assert "VERSION:4.0" in lines
    assert "TEL;TYPE=cell;PREF=1:+44 1" in lines
    assert "TEL;TYPE=fax:+44 2" in lines
    assert "X-CUSTOM;X-PARAM=keep:keep me" in lines
    assert b"\r\n" not in path.read_bytes()  # LF-only file stays LF-only
    card = vobject.readOne(path.read_text("utf-8"))
    assert card.version.value == "4.0"


def test_update_of_2_1_card_writes_quoted_printable(folder: Path) -> None:
    app = VCardFolderApp(folder)
    path = folder / "legacy-2.1.vcf"
    new = write_ok(
        app,
        Update(
            "u", "legacy-2.1", {"title": "Geschäftsführer", "phones": (Labeled("+49 1", "work"),)}
        ),
    )
    assert new.fields["title"] == "Geschäftsführer"
    assert new.fields["phones"] == (Labeled("+49 1", "work"),)
    lines = raw_lines(path)
    assert "VERSION:2.1" in lines
    assert "TEL;WORK:+49 1" in lines
    assert "TITLE;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Gesch=C3=A4ftsf=C3=BChrer" in lines
    assert read(VCardFolderApp(folder), "legacy-2.1").fields["notes"] == (
        "Erste Zeile\nZweite Zeile mit einem sehr langen Text, der umbrochen wird."
    )


def test_new_card_is_vcard_3_with_uid(tmp_path: Path) -> None:
    app = VCardFolderApp(tmp_path)
    rec = write_ok(
        app,
        Create(
            "c",
            {
                "full_name": "Mary Ann Smith",
                "phones": (Labeled("+1 555", "mobile"),),
                "urls": (Labeled("https://example.com/a,b", "work"),),
                "notes": "Semi; colon, comma\nnew line \\ backslash",
                "addresses": (Address("1 Main St", "Town", label="home"),),
            },
            segments=frozenset({"VIP"}),
            new_id="abc",
        ),
    )
    path = tmp_path / "abc.vcf"
    card = vobject.readOne(path.read_text("utf-8"))
    assert card.version.value == "3.0"
    assert card.uid.value == "abc"
    assert card.fn.value == "Mary Ann Smith"
    assert card.n.value.family == "Smith" and card.n.value.given == "Mary Ann"
    assert rec.fields["given_name"] == "Mary Ann" and rec.fields["family_name"] == "Smith"
    assert rec.fields["notes"] == "Semi; colon, comma\nnew line \\ backslash"
    assert rec.fields["urls"] == (Labeled("https://example.com/a,b", "work"),)
    assert "TEL;TYPE=CELL:+1 555" in raw_lines(path)  # single value: no PREF added
    assert rec.segments == {"VIP"}
    assert all(len(line.encode()) <= 75 for line in raw_lines(path))


def test_create_without_id_uses_uuid(tmp_path: Path) -> None:
    rec = write_ok(VCardFolderApp(tmp_path), Create("c", {"given_name": "X"}))
    assert (tmp_path / f"{rec.id}.vcf").is_file()
    assert f"UID:{rec.id}" in raw_lines(tmp_path / f"{rec.id}.vcf")


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    make_card(tmp_path, "taken", "FN:Someone\nN:;Someone;;;")
    before = (tmp_path / "taken.vcf").read_bytes()
    [res] = VCardFolderApp(tmp_path).write([Create("c", {"given_name": "X"}, new_id="taken")])
    assert isinstance(res.error, Conflict)
    assert (tmp_path / "taken.vcf").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["taken.vcf"]  # no temp file left


def test_fn_falls_back_to_org_then_email(tmp_path: Path) -> None:
    app = VCardFolderApp(tmp_path)
    rec = write_ok(app, Create("c", {"organization": "Acme"}, new_id="org"))
    assert rec.fields["full_name"] == "Acme"
    rec = write_ok(app, Create("c", {"emails": (Labeled("x@example.com"),)}, new_id="mail"))
    assert rec.fields["full_name"] == "x@example.com"
    rec = write_ok(app, Update("u", "mail", {"full_name": ""}))
    assert rec.fields["full_name"] == "x@example.com"


def test_full_name_change_updates_consistent_n(tmp_path: Path) -> None:
    make_card(tmp_path, "a", "FN:Ann Lee\nN:Lee;Ann;;;")
    app = VCardFolderApp(tmp_path)
    rec = write_ok(app, Update("u", "a", {"full_name": "Ann Marie Smith"}))
    assert rec.fields["given_name"] == "Ann Marie"
    assert rec.fields["family_name"] == "Smith"
    assert "N:Smith;Ann Marie;;;" in raw_lines(tmp_path / "a.vcf")


def test_full_name_change_keeps_inconsistent_n(tmp_path: Path) -> None:
    make_card(tmp_path, "a", "FN:Boss\nN:Lee;Ann;;;")
    rec = write_ok(VCardFolderApp(tmp_path), Update("u", "a", {"full_name": "The Boss"}))
    assert rec.fields["full_name"] == "The Boss"
    assert (rec.fields["given_name"], rec.fields["family_name"]) == ("Ann", "Lee")


def test_name_parts_change_updates_consistent_fn(tmp_path: Path) -> None:
    make_card(tmp_path, "a", "FN:Dr. Ann Lee\nN:Lee;Ann;;Dr.;")
    make_card(tmp_path, "b", "FN:Annie\nN:Lee;Ann;;;")
    app = VCardFolderApp(tmp_path)
    rec = write_ok(app, Update("u", "a", {"family_name": "Smith"}))
    assert rec.fields["full_name"] == "Dr. Ann Smith"
    assert rec.fields["name_prefix"] == "Dr."
    rec = write_ok(app, Update("u", "b", {"family_name": "Smith"}))
    assert rec.fields["full_name"] == "Annie"  # FN was not the joined N: left alone
    assert rec.fields["family_name"] == "Smith"


def test_name_parts_fill_empty_fn(tmp_path: Path) -> None:
    make_card(tmp_path, "a", "N:;;;;\nEMAIL:a@example.com")
    rec = write_ok(VCardFolderApp(tmp_path), Update("u", "a", {"given_name": "Ann"}))
    assert rec.fields["full_name"] == "Ann"


def test_label_to_type_mapping(tmp_path: Path) -> None:
    make_card(
        tmp_path,
        "a",
        "FN:A\nN:;A;;;\nTEL;TYPE=WORK,FAX:1\nTEL;TYPE=HOME,VOICE:2\nTEL;TYPE=PAGER:3\n"
        "TEL;TYPE=iPhone:4\nEMAIL;TYPE=INTERNET:e@x\nADR;TYPE=other:;;S;;;;",
    )
    app = VCardFolderApp(tmp_path)
    f = read(app, "a").fields
    assert [p.label for p in f["phones"]] == ["fax", "home", "pager", "mobile"]  # type: ignore[union-attr]
    assert f["emails"] == (Labeled("e@x", ""),)
    assert f["addresses"] == (Address("S", label="other"),)
    phones = (
        Labeled("10", "work"),
        Labeled("11", "mobile"),
        Labeled("12", ""),
        Labeled("13", "fax"),
    )
    write_ok(app, Update("u", "a", {"phones": phones}))
    lines = raw_lines(tmp_path / "a.vcf")
    assert [line for line in lines if line.startswith("TEL")] == [
        "TEL;TYPE=WORK,PREF:10",
        "TEL;TYPE=CELL:11",
        "TEL:12",
        "TEL;TYPE=FAX:13",
    ]
    assert read(VCardFolderApp(tmp_path), "a").fields["phones"] == phones


def test_pref_kept_on_single_value_only_if_it_was(tmp_path: Path) -> None:
    make_card(tmp_path, "a", "FN:A\nN:;A;;;\nEMAIL;TYPE=pref:a@x\nTEL:1")
    app = VCardFolderApp(tmp_path)
    write_ok(
        app, Update("u", "a", {"emails": (Labeled("b@x", "work"),), "phones": (Labeled("2"),)})
    )
    lines = raw_lines(tmp_path / "a.vcf")
    assert "EMAIL;TYPE=WORK:b@x" in lines  # new value: not preferred
    assert "TEL:2" in lines


def test_empty_value_removes_property(tmp_path: Path) -> None:
    make_card(tmp_path, "a", "FN:A\nN:;A;;;\nTITLE:Boss\nORG:Acme;Sales\nEMAIL:a@x")
    app = VCardFolderApp(tmp_path)
    rec = write_ok(app, Update("u", "a", {"title": "", "emails": (), "department": ""}))
    assert "title" not in rec.fields and "emails" not in rec.fields
    assert rec.fields["organization"] == "Acme" and "department" not in rec.fields
    lines = raw_lines(tmp_path / "a.vcf")
    assert not any(line.startswith(("TITLE", "EMAIL")) for line in lines)
    assert "ORG:Acme" in lines


def test_expected_version_conflict_after_outside_edit(tmp_path: Path) -> None:
    path = make_card(tmp_path, "a", "FN:A\nN:;A;;;\nTITLE:One")
    app = VCardFolderApp(tmp_path)
    version = app.list_versions()["a"]
    path.write_bytes(path.read_bytes().replace(b"TITLE:One", b"TITLE:Two, changed"))
    [res] = app.write([Update("u", "a", {"title": "Three"}, expected_version=version)])
    assert isinstance(res.error, Conflict)
    assert read(app, "a").fields["title"] == "Two, changed"


def test_update_missing_record_is_not_found(tmp_path: Path) -> None:
    [res] = VCardFolderApp(tmp_path).write([Update("u", "ghost", {"title": "X"})])
    assert isinstance(res.error, NotFound)


def test_noop_update_does_not_touch_the_file(folder: Path) -> None:
    app = VCardFolderApp(folder)
    before = app.list_versions()["google-3.0"]
    rec = read(app, "google-3.0")
    write_ok(
        app, Update("u", "google-3.0", {"title": "Rear Admiral", "phones": rec.fields["phones"]})
    )
    assert app.list_versions()["google-3.0"] == before


def test_segments_edit_keeps_other_categories(folder: Path) -> None:
    app = VCardFolderApp(folder)
    rec = write_ok(
        app,
        Update(
            "s",
            "apple-3.0",
            {},
            add_segments=frozenset({"Work"}),
            remove_segments=frozenset({"Friends"}),
        ),
    )
    assert rec.segments == {"Apple", "Work"}
    assert "CATEGORIES:Apple,Work" in raw_lines(folder / "apple-3.0.vcf")


def test_list_versions_is_fast(tmp_path: Path) -> None:
    body = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:X\r\nEND:VCARD\r\n"
    for i in range(10_000):
        (tmp_path / f"c{i}.vcf").write_bytes(body)
    app = VCardFolderApp(tmp_path)
    start = time.perf_counter()
    listing = app.list_versions()
    elapsed = time.perf_counter() - start
    assert len(listing) == 10_000
    assert elapsed < 0.5, elapsed  # typically ~20-40 ms; generous for slow CI disks


def test_designated_property_carries_the_subscription_status(tmp_path: Path) -> None:
    (tmp_path / "a.vcf").write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\nEMAIL:a@x.com\r\n"
        "X-NEWSLETTER:Opted in\r\nX-OTHER:keep\r\nEND:VCARD\r\n",
        encoding="utf-8",
    )
    plain = VCardFolderApp(tmp_path)
    [rec] = plain.fetch(["a"])
    assert isinstance(rec, Record) and rec.subscribed is None
    assert not plain.info.capabilities.subscription
    [res] = plain.write([Update("op1", "a", {OPT_OUT_FIELD: "false"})])
    assert not res.ok and "no subscription property" in str(res.error)
    app = VCardFolderApp(tmp_path, "x-newsletter")
    assert app.info.capabilities.subscription
    [rec] = app.fetch(["a"])
    assert isinstance(rec, Record) and rec.subscribed is True
    [res] = app.write([Update("op2", "a", {OPT_OUT_FIELD: "false"})])
    assert res.ok and res.record is not None and res.record.subscribed is False
    text = (tmp_path / "a.vcf").read_bytes().decode("utf-8")
    assert "X-NEWSLETTER:unsubscribed\r\n" in text and "X-OTHER:keep\r\n" in text
    [res] = app.write([Create("op3", {"full_name": "B", OPT_OUT_FIELD: "false"}, new_id="b")])
    assert res.ok and res.record is not None and res.record.subscribed is False


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names open files via /proc")
def test_a_batch_flushes_every_card_before_it_takes_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Durability with one batch flush (issue 18): a card's text is on disk (fsynced) before
    its file appears under its name, and the folder is flushed once after the moves. A power
    cut cannot be made in a test, so the order of the system calls is what is checked."""
    app = VCardFolderApp(tmp_path)
    write_ok(app, Create("c0", {"given_name": "Old"}, new_id="old"))
    events: list[tuple[str, str]] = []
    real_fsync, real_link, real_replace = os.fsync, os.link, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    def link(src: str, dst: str, *args: object, **kwargs: object) -> None:
        events.append(("move", os.path.basename(src)))
        real_link(src, dst)

    def replace(src: str, dst: str, *args: object, **kwargs: object) -> None:
        events.append(("move", os.path.basename(str(src))))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "replace", replace)
    ops: list[Create | Update] = [
        Create(f"c{i}", {"given_name": f"New {i}"}, new_id=f"new{i}") for i in range(20)
    ]
    ops.append(Update("u", "old", {"given_name": "Changed"}))
    results = app.write(ops)
    monkeypatch.undo()
    assert [r.error for r in results] == [None] * 21
    moved = [name for kind, name in events if kind == "move"]
    assert len(moved) == 21
    for name in moved:
        assert events.index(("fsync", name)) < events.index(("move", name))
    # Flushed together (one batch of flushes the journal commits at once), not one by one
    # between the moves.
    first_move = min(i for i, e in enumerate(events) if e[0] == "move")
    assert all(events.index(("fsync", name)) < first_move for name in moved)
    # The folder itself: flushed once, after the last move.
    folder_flushes = [i for i, e in enumerate(events) if e == ("fsync", tmp_path.name)]
    assert len(folder_flushes) == 1
    assert folder_flushes[0] > max(i for i, e in enumerate(events) if e[0] == "move")
    assert read(app, "new7").fields["given_name"] == "New 7"
    assert read(app, "old").fields["given_name"] == "Changed"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
