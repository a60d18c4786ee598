"""Test set-up shared by every test.

* Qt runs offscreen (set before anything can import Qt).
* Every test gets its own PAIRSYNC_HOME and its own keyring (a file in the test's temporary
  folder, ``tests.file_keyring``, which the sync worker process started by the desktop tests
  reads too), so nothing touches the developer's real files or keyring.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from hypothesis import HealthCheck, Phase, settings
from keyring.backend import KeyringBackend

from tests.file_keyring import ENV, FileKeyring

# Real CardDAV servers (Radicale, Xandikos), started only by the tests that ask for them.
pytest_plugins = ("tests.dav",)

# The "explain" phase traces every line (slow on Python 3.11); a failure still shrinks.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]

for name, examples in (("ci", 60), ("dev", 25), ("deep", 1000)):
    settings.register_profile(
        name,
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        phases=PHASES,
    )
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


class MemoryKeyring(KeyringBackend):
    """A keyring that lives in memory: tests never touch a real one."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def pairsync_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "pairsync-home"
    monkeypatch.setenv("PAIRSYNC_HOME", str(home))
    # Subprocesses (the sync worker) find the same keyring, and the ``tests`` package.
    monkeypatch.setenv(ENV, str(tmp_path / "keyring.json"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.file_keyring.FileKeyring")
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    yield home
    keyring.set_keyring(previous)
