"""End-to-end: ``pairsync account add google`` with the browser sign-in, and SPEC §13b
scenarios S1, S2, S7, S14 with Google Contacts (the People API emulator) as one side."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
import vobject

from app.cli import main
from app.secrets import SERVICE_NAME, keyring_username
from tests.emulators.browser import Browser
from tests.emulators.google_people import CLIENT_ID, CLIENT_SECRET, GooglePeopleEmulator


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def google() -> Iterator[GooglePeopleEmulator]:
    with GooglePeopleEmulator() as emulator:
        yield emulator  # type: ignore[misc]
    assert not emulator.spec_errors, emulator.spec_errors


def google_settings(google: GooglePeopleEmulator) -> list[str]:
    out: list[str] = []
    for key, value in (
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("api_base", google.url),
        ("auth_base", google.url),
    ):
        out += ["--set", f"{key}={value}"]
    return out


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Browser:
    """The system browser: clicks Allow on the consent page."""
    b = Browser("allow")
    monkeypatch.setattr("webbrowser.open", b)
    return b


def add_google(
    capsys: pytest.CaptureFixture[str], google: GooglePeopleEmulator, name: str = "Google"
) -> None:
    code, out, err = cli(capsys, "account", "add", "google", name, *google_settings(google))
    assert code == 0, err
    assert f"Added google account {name!r}." in out


def test_account_add_signs_in_and_keeps_the_token_in_the_keyring(
    google: GooglePeopleEmulator, browser: Browser, capsys: pytest.CaptureFixture[str]
) -> None:
    add_google(capsys, google)
    assert browser.opened and "code_challenge=" in browser.opened[0]
    stored = keyring.get_password(SERVICE_NAME, keyring_username("Google"))
    assert stored and stored.startswith("1//")
    _code, out, _ = cli(capsys, "account", "list", "--json")
    [acc] = json.loads(out)
    assert acc["settings"]["account_email"] == "user@example.com"
    assert stored not in out  # the token is nowhere but in the keyring


def test_denied_consent_exits_3(
    google: GooglePeopleEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("webbrowser.open", Browser("deny"))
    code, _, err = cli(capsys, "account", "add", "google", "G", *google_settings(google))
    # The browser hint, then the error as one line.
    assert code == 3
    assert err.strip().splitlines()[-1] == "pairsync: Access to Google was denied in the browser."
    assert json.loads(cli(capsys, "account", "list", "--json")[1]) == []


def test_timeout_is_one_clear_line(
    google: GooglePeopleEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("webbrowser.open", Browser("none"))
    code, _, err = cli(
        capsys, "account", "add", "google", "G", *google_settings(google), "--timeout", "1"
    )
    assert code == 3
    assert err.strip().splitlines()[-1:] == [
        "pairsync: Signing in to Google timed out: the browser did not come back within "
        "1 second; try again."
    ]


def test_missing_client_id_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "account", "add", "google", "G")
    assert code == 2 and "client_id" in err and "README" in err


def test_plain_http_only_to_this_computer(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(
        capsys,
        *("account", "add", "google", "G", "--set", "client_id=x"),
        *("--set", "api_base=http://people.example.com"),
    )
    assert code == 2 and "https" in err


def test_no_browser_prints_one_line_and_waits(google: GooglePeopleEmulator, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "account",
            "add",
            "google",
            "G",
            "--no-browser",
            *google_settings(google),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Open this address to sign in: ")
        browser = Browser("allow")
        browser(line.split(": ", 1)[1].strip())
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "Added google account 'G'."
    assert browser.pages[-1][0] == 200


# --- scenarios ----------------------------------------------------------------------------


def card(uid: str, fn: str, email: str, *extra: str) -> str:
    given, _, family = fn.partition(" ")
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{fn}", f"N:{family};{given};;;"]
    lines.append(f"EMAIL;TYPE=INTERNET,WORK:{email}")
    return "\r\n".join([*lines, *extra, "END:VCARD"]) + "\r\n"


def sync(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = cli(capsys, "sync", "main", "--json")
    assert code == 0, (out, err)
    report: dict[str, Any] = json.loads(out)[0]
    return report


def person(google: GooglePeopleEmulator, email: str) -> Any:
    found = [
        c
        for c in google.contacts.values()
        if not c.deleted and any(e["value"] == email for e in c.data.get("emailAddresses", []))
    ]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def phone_and_google(
    google: GooglePeopleEmulator,
    browser: Browser,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    folder = tmp_path / "cards"
    folder.mkdir()
    assert cli(capsys, "account", "add", "vcard-folder", "Phone", "--set", f"path={folder}")[0] == 0
    add_google(capsys, google)
    return folder


def connect(capsys: pytest.CaptureFixture[str], a: str = "Phone") -> None:
    assert cli(capsys, "connection", "create", "main", "--a", a, "--b", "Google")[0] == 0


def test_s1_s17_first_sync_then_nothing_to_do(
    google: GooglePeopleEmulator, phone_and_google: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = phone_and_google
    (folder / "ann.vcf").write_text(
        card("ann", "Ann Lee", "ann@x.com", "TEL;TYPE=CELL:+44 7700 900123")
    )
    (folder / "zed.vcf").write_text(card("zed", "Zed Zee", "zed@x.com"))
    customers = google.add_group("Customers")
    google.add_contact(
        {
            "names": [{"givenName": "Ann", "familyName": "Lee"}],
            "emailAddresses": [{"value": "ANN@x.com", "type": "work"}],
            "phoneNumbers": [{"value": "+44 7700 900999", "type": "mobile"}],
            "organizations": [{"name": "Acme"}],
        }
    )
    google.add_contact(
        {
            "names": [{"givenName": "Bea", "familyName": "Bo"}],
            "emailAddresses": [{"value": "bea@x.com"}],
            "organizations": [{"title": "CTO"}],
        },
        {customers},
    )
    connect(capsys)
    report = sync(capsys)
    assert report["status"] == "ok", report
    assert report["created"] == {"a": 1, "b": 1}
    ann = person(google, "ANN@x.com")
    # Lists are united on the first sync (nothing either side holds is dropped), in the
    # winner's order: A's mobile first, as Google's primary.
    phones = [(p["value"], p.get("type")) for p in ann.data["phoneNumbers"]]
    assert phones == [("+44 7700 900123", "mobile"), ("+44 7700 900999", "mobile")]
    assert ann.data["organizations"][0]["name"] == "Acme"
    zed = person(google, "zed@x.com")
    assert zed.data["names"][0]["givenName"] == "Zed"
    cards = {p.stem: vobject.readOne(p.read_text()) for p in folder.glob("*.vcf")}
    assert cards["ann"].org.value == ["Acme"]  # empty in A, filled from Google
    bea = next(c for c in cards.values() if c.fn.value == "Bea Bo")
    assert bea.title.value == "CTO" and bea.categories.value == ["Customers"]
    # S17: a second run writes nothing, and reads Google with one request.
    before = google.count(path="^/v1/")
    writes = google.count("POST")
    report = sync(capsys)
    assert report["created"] == {"a": 0, "b": 0} and report["updated"] == {"a": 0, "b": 0}
    assert google.count("POST") - writes == 1  # the access token, nothing else
    assert google.count(path="^/v1/") - before == 1


def test_s2_email_change(
    google: GooglePeopleEmulator, phone_and_google: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = phone_and_google
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", "TITLE:CEO"))
    connect(capsys)
    assert sync(capsys)["created"] == {"a": 0, "b": 1}
    rid = person(google, "ann@x.com").rid
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@y.com", "TITLE:CEO"))
    report = sync(capsys)
    assert report["created"] == {"a": 0, "b": 0} and report["updated"]["b"] == 1
    assert person(google, "ann@y.com").rid == rid
    assert len([c for c in google.contacts.values() if not c.deleted]) == 1


def test_s7_deleted_in_google_never_recreated(
    google: GooglePeopleEmulator, phone_and_google: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = phone_and_google
    for name in ("Ann Lee", "Bea Bo", "Cy Cee"):
        uid = name.split()[0].lower()
        (folder / f"{uid}.vcf").write_text(card(uid, name, f"{uid}@x.com"))
    connect(capsys)
    assert sync(capsys)["created"] == {"a": 0, "b": 3}
    google.delete_contact(person(google, "ann@x.com").rid)
    report = sync(capsys)
    assert report["deleted_other_side"] == 1
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", "TITLE:edited"))
    report = sync(capsys)
    assert report["created"] == {"a": 0, "b": 0}
    assert (folder / "ann.vcf").exists()
    assert len([c for c in google.contacts.values() if not c.deleted]) == 2
    h = json.loads(cli(capsys, "health", "main", "--json")[1])
    assert [d["name"] for d in h["deleted_other_side"]] == ["Ann Lee"]


def test_s14_two_phones_in_google_to_one_phone_column(
    google: GooglePeopleEmulator,
    browser: Browser,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sheet = tmp_path / "simple.csv"
    sheet.write_text("Name,Email,Phone\n", encoding="utf-8")
    rid = google.add_contact(
        {
            "names": [{"givenName": "Ann", "familyName": "Lee"}],
            "emailAddresses": [{"value": "ann@x.com"}],
            "phoneNumbers": [
                {"value": "+44 7700 900123", "type": "mobile"},
                {"value": "+44 20 7946 0958", "type": "work"},
            ],
        }
    )
    assert cli(capsys, "account", "add", "csv", "Simple", "--set", f"path={sheet}")[0] == 0
    add_google(capsys, google)
    connect(capsys, "Simple")
    sync(capsys)
    with sheet.open(encoding="utf-8-sig", newline="") as fh:
        [row] = list(csv.DictReader(fh))
    assert row["Phone"] == "+44 7700 900123"
    row["Phone"] = "+44 7700 900999"
    with sheet.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(row))
        w.writerow(list(row.values()))
    sync(capsys)
    phones = google.contacts[rid].data["phoneNumbers"]
    assert [(p["value"], p.get("type")) for p in phones] == [
        ("+44 7700 900999", "mobile"),
        ("+44 20 7946 0958", "work"),
    ]
    report = sync(capsys)
    assert report["updated"] == {"a": 0, "b": 0}


def test_revoked_access_needs_reauthorization_and_sign_in_again_keeps_the_connection(
    google: GooglePeopleEmulator,
    phone_and_google: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app.service import Service

    folder = phone_and_google
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com"))
    connect(capsys)
    assert sync(capsys)["created"] == {"a": 0, "b": 1}
    google.revoke_all()  # the user removed Pairsync's access in their Google account
    code, out, err = cli(capsys, "sync", "main", "--json")
    assert code == 3, (out, err)
    report = json.loads(out)[0]
    assert report["status"] == "auth" and "sign in again" in report["message"]
    service = Service()
    try:
        assert service.connection_overview()[0].status.code == "auth"
    finally:
        service.close()
    old = keyring.get_password(SERVICE_NAME, keyring_username("Google"))
    # "Sign in again" (the browser fixture clicks Allow): same account, same connection.
    code, out, err = cli(capsys, "account", "reauth", "Google")
    assert code == 0, err
    assert out.strip() == "Signed in to 'Google' again. Connections using it: main."
    assert keyring.get_password(SERVICE_NAME, keyring_username("Google")) != old
    # Any account signs in again the same way (a folder: its settings are checked again).
    assert cli(capsys, "account", "reauth", "Phone")[1].startswith("Signed in to 'Phone' again")
    (folder / "ann.vcf").write_text(card("ann", "Ann Lee", "ann@x.com", "TITLE:CEO"))
    report = sync(capsys)
    assert report["status"] == "ok" and report["updated"]["b"] == 1
    assert person(google, "ann@x.com").data["organizations"][0]["title"] == "CEO"
