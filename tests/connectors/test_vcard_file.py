"""The vCard file connector (one .vcf holding many cards): the contract suite, then its own
behaviour (ids of cards without UID, byte-for-byte rewrites, encodings, broken cards)."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest
import vobject

from app.connectors import vcard_file
from app.connectors.registry import app_kind
from app.connectors.vcard_file import VCardFileApp
from app.errors import BadData, ConfigError, Conflict, NotFound, Rejected, Unavailable
from app.model import OPT_OUT_FIELD, Create, Labeled, Record, Unreadable, Update
from tests.connectors.contract import ConnectorContract

DATA = Path(__file__).resolve().parent.parent / "data" / "vcard"


class TestVCardFileContract(ConnectorContract):
    @pytest.fixture
    def app(self, tmp_path: Path) -> VCardFileApp:
        return VCardFileApp(tmp_path / "contacts.vcf")

    @pytest.fixture
    def reopen(self, app: VCardFileApp) -> Callable[[], VCardFileApp]:
        return lambda: VCardFileApp(app.path)


# --- helpers ------------------------------------------------------------------------------


def card(name: str, email: str = "", uid: str | None = None, nl: str = "\r\n", **extra: str) -> str:
    given, _, family = name.partition(" ")
    lines = ["BEGIN:VCARD", "VERSION:3.0"]
    if uid is not None:
        lines.append(f"UID:{uid}")
    lines += [f"FN:{name}", f"N:{family};{given};;;"]
    if email:
        lines.append(f"EMAIL;TYPE=INTERNET:{email}")
    lines += [f"{key.replace('_', '-').upper()}:{value}" for key, value in extra.items()]
    lines.append("END:VCARD")
    return nl.join(lines) + nl


def items(app: VCardFileApp) -> list[Record | Unreadable]:
    return app.fetch(list(app.list_versions()))


def records(app: VCardFileApp) -> dict[str, Record]:
    """Readable records by full name."""
    return {str(i.fields.get("full_name")): i for i in items(app) if isinstance(i, Record)}


def write_ok(app: VCardFileApp, op: Create | Update) -> Record:
    [res] = app.write([op])
    assert res.ok, res.error
    assert res.record is not None
    return res.record


def cards_in(path: Path, encoding: str = "utf-8") -> list[str]:
    """Each card's exact text, in file order."""
    text = path.read_bytes().decode(encoding)
    return re.findall(r"BEGIN:VCARD.*?END:VCARD\r?\n?", text, re.S)


def export(tmp_path: Path) -> Path:
    """All sample cards (Apple, Google, Outlook 2.1, vCard 4.0, a broken one…) in one file."""
    path = tmp_path / "export.vcf"
    names = sorted(p.name for p in DATA.iterdir() if p.name != "cp1252.vcf")
    path.write_bytes(b"".join((DATA / name).read_bytes() for name in names))
    return path


# --- reading ------------------------------------------------------------------------------


def test_reads_a_real_export_of_many_cards(tmp_path: Path) -> None:
    app = VCardFileApp(export(tmp_path))
    people = records(app)
    assert people["Mr. Johnny Q Appleseed Jr."].segments == {"Friends", "Apple"}
    assert people["Grace Hopper"].fields["emails"] == (
        Labeled("grace@home.example", "home"),
        Labeled("grace.hopper@navy.example", "work"),
    )
    assert people["Jürgen Müller"].fields["notes"] == (
        "Erste Zeile\nZweite Zeile mit einem sehr langen Text, der umbrochen wird."
    )
    assert people["Ada Lovelace"].fields["name_prefix"] == "Countess"
    assert "Folded Person" in people and "John Smith" in people
    # Cards with a UID are known by it.
    assert people["Orphan Org Only"].id == "no-n-property-1"
    assert people["Ada Lovelace"].id.startswith("urn:uuid:")
    [bad] = [i for i in items(app) if isinstance(i, Unreadable)]
    assert "“Broken”" in bad.message and "is not a valid vCard" in bad.message
    assert "this line is not a property" in bad.message
    assert app.schema().segments == tuple(sorted(app.schema().segments))
    assert {"Friends", "myContacts"} <= set(app.schema().segments)
    found = app.find_by_email(["GRACE.hopper@Navy.example "])
    assert [r.fields["full_name"] for r in found] == ["Grace Hopper"]


def test_cards_without_uid_get_stable_ids_then_their_id_as_uid(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    same = card("Al Ash", "al@x.com")
    text = same + card("Bo Birch", "bo@x.com") + same + card("Cy Cole", "cy@x.com", uid="cy-1")
    path.write_text(text, encoding="utf-8", newline="")
    first = VCardFileApp(path).list_versions()
    assert len(first) == 4 and "cy-1" in first  # identical cards: distinct ids
    assert VCardFileApp(path).list_versions() == first  # stable across reads
    assert path.read_bytes().decode("utf-8") == text  # reading writes nothing
    app = VCardFileApp(path)
    bo = records(app)["Bo Birch"]
    new = write_ok(app, Update("u", bo.id, {"title": "Boss"}, expected_version=bo.version))
    assert new.id == bo.id
    # The first write gave every card without a UID its id as UID; nothing else changed.
    after = cards_in(path)
    uids = [re.search(r"UID:(.*)\r\n", c).group(1) for c in after]  # type: ignore[union-attr]
    assert set(uids) == set(first)
    assert after[0] == same.replace("END:VCARD", f"UID:{uids[0]}\r\nEND:VCARD")
    assert after[3] == card("Cy Cole", "cy@x.com", uid="cy-1")
    listing = VCardFileApp(path).list_versions()
    assert listing.keys() == first.keys()
    # Adding the UID is not an edit: the other cards keep their versions.
    assert {k: v for k, v in listing.items() if k != bo.id} == {
        k: v for k, v in first.items() if k != bo.id
    }
    # From now on an outside edit of a card keeps its id.
    path.write_bytes(path.read_bytes().replace(b"FN:Al Ash", b"FN:Al Ashley", 1))
    assert VCardFileApp(path).list_versions().keys() == first.keys()


def test_prepare_stamps_uids_once(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    path.write_text(card("Al Ash", "al@x.com") + card("Bo Birch", uid="b"), newline="")
    dry = VCardFileApp(path).list_versions()
    app = VCardFileApp(path)
    app.prepare()
    assert "UID:" in cards_in(path)[0]
    assert VCardFileApp(path).list_versions() == dry
    data, mtime = path.read_bytes(), path.stat().st_mtime_ns
    app.prepare()
    VCardFileApp(path).prepare()
    assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime


def test_update_leaves_other_cards_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    VCardFileApp(path).prepare()  # no file: nothing to do
    src = export(tmp_path)
    VCardFileApp(src).prepare()  # every readable card has a UID now
    path.write_bytes(src.read_bytes() + b"\r\n\r\n")
    before = cards_in(path)
    app = VCardFileApp(path)
    grace = records(app)["Grace Hopper"]
    versions = app.list_versions()
    new = write_ok(app, Update("u", grace.id, {"title": "Rear Admiral (ret.)"}))
    after = cards_in(path)
    changed = [n for n, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1 and "Grace Hopper" in after[changed[0]]
    assert "TITLE:Rear Admiral (ret.)\r\n" in after[changed[0]]
    assert "X-ABLabel:PROFILE" in after[changed[0]]  # unknown properties kept
    assert path.read_bytes().endswith(b"END:VCARD\n\r\n\r\n")  # text after the cards kept
    listing = VCardFileApp(path).list_versions()
    assert listing[grace.id] == new.version != grace.version
    assert {k: v for k, v in listing.items() if k != grace.id} == {
        k: v for k, v in versions.items() if k != grace.id
    }
    # The whole file still reads as vCards (the broken sample aside).
    text = path.read_text(encoding="utf-8").replace(
        (DATA / "broken.vcf").read_text(encoding="utf-8"), ""
    )
    assert len(list(vobject.readComponents(text, allowQP=True))) == len(after) - 1


def test_noop_update_does_not_touch_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    path.write_text(card("Al Ash", "al@x.com", title="CEO"), newline="")
    app = VCardFileApp(path)
    al = records(app)["Al Ash"]
    data, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert write_ok(app, Update("u", al.id, {"title": "CEO"})) == al
    assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("nl", ["\r\n", "\n"])
def test_line_endings_are_kept(tmp_path: Path, nl: str) -> None:
    path = tmp_path / "c.vcf"
    path.write_bytes((card("Al Ash", "al@x.com", nl=nl) + card("Bo Birch", nl=nl)).encode())
    app = VCardFileApp(path)
    al = records(app)["Al Ash"]
    write_ok(app, Update("u", al.id, {"notes": "two\nlines", "title": "CEO"}))
    write_ok(app, Create("c", {"full_name": "Cy Cole", "emails": (Labeled("cy@x.com"),)}))
    data = path.read_bytes()
    assert data.count(nl.encode()) == len(data.decode().splitlines())
    if nl == "\n":
        assert b"\r" not in data
    assert set(records(VCardFileApp(path))) == {"Al Ash", "Bo Birch", "Cy Cole"}


def test_each_card_keeps_its_own_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    lf, crlf = card("Al Ash", uid="a", nl="\n"), card("Bo Birch", uid="b", nl="\r\n")
    path.write_bytes((lf + crlf).encode())
    app = VCardFileApp(path)
    write_ok(app, Update("u", "a", {"title": "CEO"}))
    write_ok(app, Update("u", "b", {"title": "CTO"}))
    [a, b] = cards_in(path)
    assert "\r" not in a and "TITLE:CEO\n" in a
    assert b.count("\r\n") == b.count("\n") and "TITLE:CTO\r\n" in b


def test_file_without_final_line_break(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    path.write_bytes(card("Al Ash", uid="a").rstrip().encode())
    write_ok(VCardFileApp(path), Create("c", {"full_name": "Bo Birch"}, new_id="b"))
    assert path.read_bytes().startswith(card("Al Ash", uid="a").encode())
    assert set(VCardFileApp(path).list_versions()) == {"a", "b"}


def test_bom_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    path.write_bytes(b"\xef\xbb\xbf" + card("Zoë Ångström", "zoe@x.com", uid="z").encode())
    app = VCardFileApp(path)
    assert records(app)["Zoë Ångström"].id == "z"
    write_ok(app, Update("u", "z", {"title": "Direktör"}))
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfBEGIN:VCARD\r\n") and data.count(b"\xef\xbb\xbf") == 1
    assert "TITLE:Direktör" in data.decode("utf-8-sig")


def test_utf16_export_is_read_and_written_back_as_utf16(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    path.write_bytes(b"\xff\xfe" + card("Zoë Å", uid="z").encode("utf-16-le"))
    app = VCardFileApp(path)
    write_ok(app, Update("u", "z", {"title": "Chef"}))
    assert path.read_bytes()[:2] == b"\xff\xfe"
    assert "TITLE:Chef" in path.read_bytes()[2:].decode("utf-16-le")
    assert records(VCardFileApp(path))["Zoë Å"].fields["title"] == "Chef"


def test_windows_1252_export_is_read_and_written_back_in_its_encoding(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    text = card("Zoë Ångström", "zoe@x.com", note="Café – naïve") + card("Bo Bø", uid="b")
    path.write_bytes(text.encode("cp1252"))
    app = VCardFileApp(path)
    people = records(app)
    assert people["Zoë Ångström"].fields["notes"] == "Café – naïve"
    zoe = people["Zoë Ångström"]
    [ok, bad] = app.write(
        [Update("u1", zoe.id, {"title": "Directrice générale"}), Update("u2", "b", {"title": "🙂"})]
    )
    assert ok.ok, ok.error
    assert isinstance(bad.error, Rejected) and "Windows-1252" in str(bad.error)
    data = path.read_bytes()
    assert "TITLE:Directrice générale".encode("cp1252") in data
    assert card("Bo Bø", uid="b").encode("cp1252") in data  # the refused op changed nothing
    assert records(VCardFileApp(path))["Zoë Ångström"].fields["title"] == "Directrice générale"


def test_latin1_bytes_undefined_in_windows_1252_are_read(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    data = card("Zoë", uid="z", note="x\x81y").encode("latin-1")
    path.write_bytes(data)
    assert records(VCardFileApp(path))["Zoë"].fields["notes"] == "x\x81y"
    write_ok(VCardFileApp(path), Update("u", "z", {"title": "Señora"}))
    assert path.read_bytes().startswith(data.split(b"END:VCARD")[0])
    assert "TITLE:Señora".encode("latin-1") in path.read_bytes()


def test_broken_cards_are_unreadable_never_block_and_survive_writes(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    unclosed = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:half\r\nFN:Half Done\r\n"
    garbage = "-- exported by SomeTool --\r\n"
    not_a_property = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Odd\r\nthis is no property\r\nEND:VCARD\r\n"
    cp1252_card = card("Zoë", uid="zoe").encode("cp1252")
    data = (
        card("Al Ash", "al@x.com", uid="a").encode()
        + unclosed.encode()
        + card("Bo Birch", "bo@x.com").encode()
        + garbage.encode()
        + not_a_property.encode()
        + cp1252_card
        + card("Cy Cölé", "cy@x.com", uid="c").encode()  # real UTF-8: the file is UTF-8
    )
    path.write_bytes(data)
    app = VCardFileApp(path)
    got = items(app)
    assert sorted(str(r.fields["full_name"]) for r in got if isinstance(r, Record)) == [
        "Al Ash",
        "Bo Birch",
        "Cy Cölé",
    ]
    bad = {i.id: i for i in got if isinstance(i, Unreadable)}
    assert len(bad) == 4
    assert bad["half"].message == (
        "The card “Half Done” starting on line 8 of c.vcf is not closed (END:VCARD is missing)."
    )
    messages = sorted(i.message for i in bad.values())
    assert any(m.startswith("Line 18 of c.vcf is not part of any card") for m in messages)
    assert any("“Odd” starting on line 19" in m and "(line 22: this line is" in m for m in messages)
    zoe = "The card “Zoë” starting on line 24 of c.vcf contains bytes that are not valid UTF-8"
    assert f"{zoe} text." in messages
    assert bad["zoe"].raw.startswith("BEGIN:VCARD") and "Zoë" in bad["zoe"].raw
    assert all(i.version == app.list_versions()[i.id] for i in bad.values())
    # An update of a broken card is refused for that card only; the others are written.
    [refused, done, created] = app.write(
        [
            Update("u1", "half", {"title": "X"}),
            Update("u2", "a", {"title": "CEO"}),
            Create("c1", {"full_name": "Di Dee"}, new_id="d"),
        ]
    )
    assert isinstance(refused.error, BadData) and "it was not changed" in str(refused.error)
    assert done.ok and created.ok
    after = path.read_bytes()
    for piece in (unclosed.encode(), garbage.encode(), not_a_property.encode(), cp1252_card):
        assert piece in after
    again = VCardFileApp(path)
    assert {i.id for i in items(again) if isinstance(i, Unreadable)} == set(bad)
    assert sorted(records(again)) == ["Al Ash", "Bo Birch", "Cy Cölé", "Di Dee"]


def test_a_card_broken_by_a_typo_keeps_its_id(tmp_path: Path) -> None:
    """So that the engine sees a failure, not a deletion, until the card is fixed."""
    path = tmp_path / "c.vcf"
    path.write_text(card("Al Ash", "al@x.com", uid="a") + card("Bo", uid="b"), newline="")
    good = path.read_bytes()
    path.write_bytes(good.replace(b"FN:Al Ash", b"FN Al Ash"))
    [item] = VCardFileApp(path).fetch(["a"])
    assert isinstance(item, Unreadable)
    path.write_bytes(good)
    [item] = VCardFileApp(path).fetch(["a"])
    assert isinstance(item, Record)


def test_duplicate_uids_are_distinct_records_until_the_first_write_gives_them_their_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.vcf"
    text = (
        card("Al One", "al1@x.com", uid="dup")
        + card("Al Two", "al2@x.com", uid="dup")
        + card("Taken", uid="dup#2")  # a real UID looking like a copy's id
        + card("Al Three", "al3@x.com", uid="dup")
    )
    path.write_text(text, newline="")
    app = VCardFileApp(path)
    people = records(app)
    assert [people[n].id for n in ("Al One", "Al Two", "Taken", "Al Three")] == [
        "dup",
        "dup#3",
        "dup#2",
        "dup#4",
    ]
    assert VCardFileApp(path).list_versions() == app.list_versions()
    write_ok(app, Update("u", "dup#4", {"title": "Third"}))
    uids = [re.search(r"UID:(.*)\r\n", c).group(1) for c in cards_in(path)]  # type: ignore[union-attr]
    assert uids == ["dup", "dup#3", "dup#2", "dup#4"]
    again = records(VCardFileApp(path))
    assert again["Al Three"].id == "dup#4" and again["Al Three"].fields["title"] == "Third"
    assert again["Al Two"].id == "dup#3"


def test_readable_card_owns_a_uid_before_a_broken_copy(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    broken = "BEGIN:VCARD\r\nUID:x\r\nnonsense\r\nEND:VCARD\r\n"
    path.write_text(broken + card("Al", uid="x"), newline="")
    listing = VCardFileApp(path).list_versions()
    assert set(listing) == {"x", "x#2"}
    [item] = VCardFileApp(path).fetch(["x"])
    assert isinstance(item, Record)


def test_new_file_is_created_at_the_first_write(tmp_path: Path) -> None:
    path = tmp_path / "new.vcf"
    app = VCardFileApp(path)
    assert app.list_versions() == {} and app.schema().segments == ()
    app.prepare()
    assert not path.exists()
    rec = write_ok(
        app,
        Create("c", {"full_name": "Ann Lee", "emails": (Labeled("ann@x.com"),)}, new_id="a"),
    )
    data = path.read_bytes()
    assert data.startswith(b"BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Pairsync//vCard file//EN\r\n")
    assert b"UID:a\r\n" in data and not data.startswith(b"\xef\xbb\xbf")
    [parsed] = vobject.readComponents(data.decode())
    assert parsed.fn.value == "Ann Lee" and parsed.email.value == "ann@x.com"
    assert VCardFileApp(path).fetch(["a"]) == [rec]
    assert [p.name for p in tmp_path.iterdir()] == ["new.vcf"]  # no temp file left
    [dup] = app.write([Create("c2", {"full_name": "Other"}, new_id="a")])
    assert isinstance(dup.error, Conflict)


def test_new_cards_follow_a_vcard_4_file(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    path.write_bytes((DATA / "rfc-4.0.vcf").read_bytes())
    write_ok(VCardFileApp(path), Create("c", {"full_name": "Bo Birch"}, new_id="b"))
    new = cards_in(path)[1]
    assert "VERSION:4.0\n" in new and "\r" not in new


def test_missing_folder_or_a_folder_is_unavailable(tmp_path: Path) -> None:
    app = VCardFileApp(tmp_path / "nope" / "c.vcf")
    with pytest.raises(Unavailable, match="does not exist"):
        app.list_versions()
    with pytest.raises(Unavailable):
        app.write([Create("c", {"given_name": "X"})])
    with pytest.raises(Unavailable, match="is a folder"):
        VCardFileApp(tmp_path).list_versions()


def test_conflict_and_not_found(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    path.write_text(card("Al Ash", "al@x.com", uid="a"), newline="")
    app = VCardFileApp(path)
    version = app.list_versions()["a"]
    path.write_text(card("Al Ashley", "al@x.com", uid="a"), newline="")  # edited meanwhile
    [stale, gone] = app.write(
        [Update("u", "a", {"title": "CEO"}, expected_version=version), Update("v", "zz", {})]
    )
    assert isinstance(stale.error, Conflict) and isinstance(gone.error, NotFound)
    assert "CEO" not in path.read_text()


def test_file_edited_while_writing_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.vcf"
    path.write_text(card("Al Ash", "al@x.com", uid="a"), newline="")
    app = VCardFileApp(path)
    app.list_versions()
    stamp = VCardFileApp._stamp

    def edit_meanwhile(self: VCardFileApp, work: object) -> bool:
        path.write_text(card("Al Edited Elsewhere", uid="a"), newline="")
        return stamp(self, work)  # type: ignore[arg-type]

    monkeypatch.setattr(VCardFileApp, "_stamp", edit_meanwhile)
    [res] = app.write([Update("u", "a", {"title": "CEO"})])
    assert isinstance(res.error, Conflict)
    assert path.read_bytes().decode() == card("Al Edited Elsewhere", uid="a")
    assert [p.name for p in tmp_path.iterdir()] == ["c.vcf"]


def _edit_in_place_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    """What another program's save looks like on a coarse clock (FAT keeps 2 s): the same
    file (inode), the same size, the same mtime; only the bytes differ."""
    assert len(old) == len(new)
    st = os.stat(path)
    data = path.read_bytes()
    assert data.count(old.encode()) == 1
    with open(path, "r+b") as handle:
        handle.write(data.replace(old.encode(), new.encode()))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = os.stat(path)
    assert (again.st_size, again.st_mtime_ns, again.st_ino) == (
        st.st_size,
        st.st_mtime_ns,
        st.st_ino,
    )


def test_an_edit_keeping_size_and_mtime_after_listing_is_seen_by_its_digest(
    tmp_path: Path,
) -> None:
    """Another program edits one card between the run's listing and its write, leaving the
    file's size, mtime and inode as they were: the file is read again (its content digest
    differs), so the write goes onto the edited file and the edit is kept."""
    path = tmp_path / "c.vcf"
    path.write_text(card("Al Ash", "al@x.com", uid="a") + card("Bo Birch", uid="b"), newline="")
    app = VCardFileApp(path)
    versions = app.list_versions()
    _edit_in_place_keeping_size_and_mtime(path, "FN:Bo Birch", "FN:Bo Burch")
    [res] = app.write([Update("u", "a", {"title": "CEO"}, expected_version=versions["a"])])
    assert res.ok, res.error
    text = path.read_text()
    assert "FN:Bo Burch" in text and "TITLE:CEO" in text


def test_an_edit_keeping_size_and_mtime_during_a_write_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same edit while the new file is being written: the check just before the
    replacement compares the content's digest too, so the other program's edit stays."""
    path = tmp_path / "c.vcf"
    path.write_text(card("Al Ash", "al@x.com", uid="a") + card("Bo Birch", uid="b"), newline="")
    app = VCardFileApp(path)
    app.list_versions()
    stamp = VCardFileApp._stamp

    def edit_meanwhile(self: VCardFileApp, work: object) -> bool:
        _edit_in_place_keeping_size_and_mtime(path, "FN:Bo Birch", "FN:Bo Burch")
        return stamp(self, work)  # type: ignore[arg-type]

    monkeypatch.setattr(VCardFileApp, "_stamp", edit_meanwhile)
    [res] = app.write([Update("u", "a", {"title": "CEO"})])
    assert isinstance(res.error, Conflict)
    text = path.read_text()
    assert "FN:Bo Burch" in text and "CEO" not in text
    assert [p.name for p in tmp_path.iterdir()] == ["c.vcf"]


def test_write_failing_midway_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.vcf"
    path.write_text(card("Al Ash", "al@x.com", uid="a") + card("Bo Birch", uid="b"), newline="")
    before = path.read_bytes()

    def disk_full(handle: BinaryIO, data: bytes) -> None:
        handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(vcard_file, "_write_bytes", disk_full)
    app = VCardFileApp(path)
    with pytest.raises(Unavailable, match="could not be written") as info:
        app.write([Update("u", "a", {"title": "CEO"}), Create("c", {"full_name": "Cy"})])
    assert "it was left as it was" in str(info.value)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.vcf"]  # the temp file is removed
    monkeypatch.undo()
    write_ok(app, Update("u", "a", {"title": "CEO"}))  # works again once the disk has room
    assert records(VCardFileApp(path))["Al Ash"].fields["title"] == "CEO"


def test_replace_failing_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.vcf"
    path.write_text(card("Al Ash", uid="a"), newline="")
    before = path.read_bytes()

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(vcard_file.os, "replace", refuse)
    with pytest.raises(Unavailable):
        VCardFileApp(path).write([Update("u", "a", {"title": "CEO"})])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.vcf"]


def test_file_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    path.write_text(card("Al Ash", uid="a"), newline="")
    path.chmod(0o600)
    write_ok(VCardFileApp(path), Update("u", "a", {"title": "CEO"}))
    assert path.stat().st_mode & 0o777 == 0o600


def test_designated_property_carries_the_subscription_status(tmp_path: Path) -> None:
    path = tmp_path / "c.vcf"
    path.write_text(
        card("Eve Ng", "eve@x.com", uid="e", x_newsletter="Opted in", x_other="keep"), newline=""
    )
    plain = VCardFileApp(path)
    assert not plain.info.capabilities.subscription
    assert records(plain)["Eve Ng"].subscribed is None
    [res] = plain.write([Update("op1", "e", {OPT_OUT_FIELD: "false"})])
    assert not res.ok and "no subscription property" in str(res.error)
    app = VCardFileApp(path, "x-newsletter")
    assert app.info.capabilities.subscription
    assert records(app)["Eve Ng"].subscribed is True
    [res] = app.write([Update("op2", "e", {OPT_OUT_FIELD: "false"})])
    assert res.ok and res.record is not None and res.record.subscribed is False
    text = path.read_bytes().decode("utf-8")
    assert "X-NEWSLETTER:unsubscribed\r\n" in text and "X-OTHER:keep\r\n" in text


def test_list_versions_and_fetch_parse_the_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = export(tmp_path)
    calls: list[int] = []
    book = vcard_file._Reader.book

    def counting(self: vcard_file._Reader, data: bytes) -> vcard_file._Book:
        calls.append(len(data))
        return book(self, data)

    monkeypatch.setattr(vcard_file._Reader, "book", counting)
    app = VCardFileApp(path)
    app.fetch(list(app.list_versions()))
    app.schema()
    app.find_by_email(["x@y.z"])
    assert len(calls) == 1


# --- the account check --------------------------------------------------------------------


def test_check_refuses_a_folder_a_missing_folder_and_a_file_that_is_not_vcards(
    tmp_path: Path,
) -> None:
    kind = app_kind("vcard-file")
    assert kind.name == "vCard file" and not kind.needs_secret
    kind.check({"path": str(tmp_path / "new.vcf")})  # created at the first sync
    (tmp_path / "empty.vcf").write_bytes(b"")
    kind.check({"path": str(tmp_path / "empty.vcf")})
    (tmp_path / "a.vcf").write_text(card("Al", uid="a"))
    kind.check({"path": str(tmp_path / "a.vcf")})
    with pytest.raises(ConfigError, match="is a folder"):
        kind.check({"path": str(tmp_path)})
    with pytest.raises(ConfigError, match="does not exist"):
        kind.check({"path": str(tmp_path / "nope" / "c.vcf")})
    (tmp_path / "sheet.csv").write_text("Name,Email\nAl,al@x.com\n")
    with pytest.raises(ConfigError, match="not a vCard file"):
        kind.check({"path": str(tmp_path / "sheet.csv")})
    built = kind.build({"path": str(tmp_path / "a.vcf"), "subscription": "X-NEWS"}, None)
    assert isinstance(built, VCardFileApp) and built.subscription == "X-NEWS"
