"""The tests' keyring: a JSON file in the test's temporary folder, so that the sync worker
process (``app.sync_worker``), which the desktop tests start, reads the secrets the test
stored. Chosen with ``PYTHON_KEYRING_BACKEND=tests.file_keyring.FileKeyring`` and
``PAIRSYNC_TEST_KEYRING=<file>`` (``tests/conftest.py`` sets both for every test). Tests only:
it keeps secrets in plain text."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend

ENV = "PAIRSYNC_TEST_KEYRING"


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def path(self) -> Path:
        return Path(os.environ[ENV])

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return dict(data)

    def _save(self, data: dict[str, str]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.path)

    @staticmethod
    def _key(service: str, username: str) -> str:
        return json.dumps([service, username])

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[self._key(service, username)] = password
        self._save(data)

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(self._key(service, username))

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(self._key(service, username), None) is not None:
            self._save(data)
