"""Secrets given on the command line go to the keyring only: never SQLite, logs or errors."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest

from app.cli import main

SECRET = "s3cr3t-Token-that-must-not-leak"


def test_secret_env_goes_to_the_keyring_only(
    tmp_path: Path,
    pairsync_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MY_TOKEN", SECRET)
    sheet = tmp_path / "c.csv"
    code = main(
        ["account", "add", "csv", "Work", "--set", f"path={sheet}", "--secret-env", "MY_TOKEN"]
    )
    out, err = capsys.readouterr()
    assert code == 0 and SECRET not in out + err
    assert keyring.get_password("pairsync", "account:Work") == SECRET
    main(["account", "list", "--json"])
    assert SECRET not in capsys.readouterr().out
    for path in pairsync_home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert main(["account", "remove", "Work"]) == 0
    assert keyring.get_password("pairsync", "account:Work") is None


def test_missing_secret_env_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(
        [
            "account",
            "add",
            "csv",
            "Work",
            "--set",
            f"path={tmp_path / 'c.csv'}",
            "--secret-env",
            "NOPE_NOT_SET",
        ]
    )
    assert code == 2 and "NOPE_NOT_SET" in capsys.readouterr().err


def test_plaintext_keyring_refused_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from keyrings.alt.file import PlaintextKeyring

    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")  # type: ignore[misc]
    keyring.set_keyring(backend)
    monkeypatch.setenv("MY_TOKEN", SECRET)
    args = [
        "account",
        "add",
        "csv",
        "Work",
        "--set",
        f"path={tmp_path / 'c.csv'}",
        "--secret-env",
        "MY_TOKEN",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--allow-insecure-keyring" in err and SECRET not in err
    assert main(["--allow-insecure-keyring", *args]) == 0
