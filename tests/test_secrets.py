"""SecretStore: OS-keyring storage of account secrets, and refusal of unusable backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import keyring
import keyring.backend
import keyring.core
import keyring.errors
import pytest
from keyring.backends import fail as keyring_fail
from keyring.backends import null as keyring_null
from keyring.backends.chainer import ChainerBackend
from keyrings.alt.file import EncryptedKeyring, PlaintextKeyring

from app.errors import ConfigError, KeyringError
from app.secrets import (
    LOCKED_MESSAGE,
    NO_KEYRING_MESSAGE,
    SERVICE_NAME,
    SecretStore,
    secret_from_env,
)

_T = TypeVar("_T", bound=type)

SECRET = "s3cr3t-Token-value-9f8e7d"


def _unregistered(cls: _T) -> _T:
    """Keep a test backend out of keyring's global registry of candidate backends."""
    classes = getattr(keyring.backend.KeyringBackend, "_classes", None)
    if isinstance(classes, set):
        classes.discard(cls)
    return cls


@_unregistered
class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.store[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError("not found") from None


@_unregistered
class LockedKeyring(keyring.backend.KeyringBackend):
    priority = 5  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked(f"Failed to unlock the collection! {password}")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


@_unregistered
class BrokenKeyring(keyring.backend.KeyringBackend):
    """Raises a generic keyring error that (badly) echoes the secret."""

    priority = 5  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringError("D-Bus said no")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError(f"could not store {password!r}")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.PasswordDeleteError("could not delete")


@_unregistered
class InitFailingKeyring(BrokenKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.InitError("no D-Bus session")


@_unregistered
class LegacyFileKeyring(BrokenKeyring):
    """A third-party low-priority file store, recognised by its name."""

    priority = 0.5  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def _restore_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Save keyring's active backend without triggering its auto-detection; monkeypatch
    # puts it back after each test whatever set_keyring() did meanwhile.
    monkeypatch.setattr(keyring.core, "_keyring_backend", keyring.core._keyring_backend)
    yield


@pytest.fixture
def memory() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


@pytest.fixture
def plaintext(tmp_path, monkeypatch: pytest.MonkeyPatch) -> PlaintextKeyring:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring_pass.cfg")
    keyring.set_keyring(backend)
    return backend


def test_round_trip(memory: MemoryKeyring) -> None:
    store = SecretStore()
    assert store.get("work-google") is None
    store.set("work-google", SECRET)
    assert store.get("work-google") == SECRET
    assert memory.store == {(SERVICE_NAME, "account:work-google"): SECRET}
    store.set("work-google", "replaced")
    assert store.get("work-google") == "replaced"
    store.delete("work-google")
    assert store.get("work-google") is None
    assert memory.store == {}


def test_delete_absent_is_silent(memory: MemoryKeyring) -> None:
    SecretStore().delete("never-stored")


def test_accounts_are_separate(memory: MemoryKeyring) -> None:
    store = SecretStore()
    store.set("a", "secret-a")
    store.set("b", "secret-b")
    store.delete("a")
    assert store.get("a") is None
    assert store.get("b") == "secret-b"


def test_backend_name(memory: MemoryKeyring) -> None:
    assert SecretStore().backend_name() == f"{__name__}.MemoryKeyring"


@pytest.mark.parametrize("allow_insecure", [False, True])
def test_fail_backend_refused(allow_insecure: bool) -> None:
    keyring.set_keyring(keyring_fail.Keyring())
    store = SecretStore(allow_insecure=allow_insecure)
    for call in (lambda: store.set("acct", SECRET), lambda: store.get("acct")):
        with pytest.raises(KeyringError) as info:
            call()
        assert str(info.value) == NO_KEYRING_MESSAGE
        assert isinstance(info.value, ConfigError)
        assert SECRET not in str(info.value)
    # The name is still available for diagnostics.
    assert store.backend_name() == "keyring.backends.fail.Keyring"


@pytest.mark.parametrize("allow_insecure", [False, True])
def test_null_backend_refused(allow_insecure: bool) -> None:
    keyring.set_keyring(keyring_null.Keyring())
    store = SecretStore(allow_insecure=allow_insecure)
    with pytest.raises(KeyringError, match="silently dropped") as info:
        store.set("acct", SECRET)
    assert "keyring.backends.null.Keyring" in str(info.value)
    assert SECRET not in str(info.value)
    with pytest.raises(KeyringError, match="silently dropped"):
        store.get("acct")


def test_plaintext_refused_without_allow(plaintext: PlaintextKeyring, tmp_path) -> None:
    store = SecretStore()
    with pytest.raises(KeyringError) as info:
        store.set("acct", SECRET)
    message = str(info.value)
    assert "keyrings.alt.file.PlaintextKeyring" in message
    assert "--allow-insecure-keyring" in message
    assert SECRET not in message
    assert not (tmp_path / "keyring_pass.cfg").exists()


def test_plaintext_accepted_with_allow(plaintext: PlaintextKeyring, tmp_path) -> None:
    store = SecretStore(allow_insecure=True)
    store.set("acct", SECRET)
    assert (tmp_path / "keyring_pass.cfg").exists()
    assert store.get("acct") == SECRET
    store.delete("acct")
    assert store.get("acct") is None
    store.delete("acct")  # absent: no error


def test_encrypted_file_backend_refused_without_allow() -> None:
    # Judged by its class alone; skip __init__, which needs pycryptodome (not a test dep).
    backend = EncryptedKeyring.__new__(EncryptedKeyring)
    keyring.set_keyring(backend)
    with pytest.raises(KeyringError, match="--allow-insecure-keyring"):
        SecretStore().get("acct")


def test_low_priority_file_backend_refused() -> None:
    keyring.set_keyring(LegacyFileKeyring())
    with pytest.raises(KeyringError, match="--allow-insecure-keyring"):
        SecretStore().get("acct")


def test_locked_keyring() -> None:
    keyring.set_keyring(LockedKeyring())
    store = SecretStore()
    calls = (
        lambda: store.set("acct", SECRET),
        lambda: store.get("acct"),
        lambda: store.delete("acct"),
    )
    for call in calls:
        with pytest.raises(KeyringError) as info:
            call()
        assert str(info.value) == LOCKED_MESSAGE
        assert SECRET not in str(info.value)
        assert SECRET not in info.value.raw


def test_init_error_is_no_keyring() -> None:
    keyring.set_keyring(InitFailingKeyring())
    with pytest.raises(KeyringError) as info:
        SecretStore().get("acct")
    assert str(info.value) == NO_KEYRING_MESSAGE


def test_generic_error_never_contains_secret() -> None:
    keyring.set_keyring(BrokenKeyring())
    store = SecretStore()
    with pytest.raises(KeyringError) as info:
        store.set("acct", SECRET)
    err = info.value
    assert "acct" in str(err)
    assert SECRET not in str(err)
    assert SECRET not in err.raw
    assert SECRET not in repr(err)
    assert err.__cause__ is None
    assert err.__suppress_context__
    with pytest.raises(KeyringError, match="reading"):
        store.get("acct")
    # A failed delete of an entry that cannot even be read is reported, not swallowed.
    with pytest.raises(KeyringError):
        store.delete("acct")


def test_empty_inputs_refused(memory: MemoryKeyring) -> None:
    store = SecretStore()
    with pytest.raises(KeyringError):
        store.set("acct", "")
    with pytest.raises(KeyringError):
        store.get("")
    assert memory.store == {}


def test_backend_checked_once_across_threads(
    memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SecretStore()
    checks: list[int] = []
    original = SecretStore._refuse_if_unusable

    def counting(self: SecretStore, backend: keyring.backend.KeyringBackend) -> None:
        checks.append(1)
        original(self, backend)

    monkeypatch.setattr(SecretStore, "_refuse_if_unusable", counting)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            store.set(f"acct{i}", f"secret{i}")
            assert store.get(f"acct{i}") == f"secret{i}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(checks) == 1
    assert len(memory.store) == 8


def test_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIRSYNC_TEST_SECRET", SECRET)
    assert secret_from_env("PAIRSYNC_TEST_SECRET") == SECRET
    monkeypatch.setenv("PAIRSYNC_TEST_SECRET", "")
    with pytest.raises(
        ConfigError, match=r"^Environment variable PAIRSYNC_TEST_SECRET is not set$"
    ):
        secret_from_env("PAIRSYNC_TEST_SECRET")
    monkeypatch.delenv("PAIRSYNC_TEST_SECRET")
    with pytest.raises(ConfigError, match="PAIRSYNC_TEST_SECRET is not set"):
        secret_from_env("PAIRSYNC_TEST_SECRET")


def _chainer(members: list[keyring.backend.KeyringBackend]) -> ChainerBackend:
    @_unregistered
    class FixedChainer(ChainerBackend):
        backends = members  # type: ignore[assignment]

    return FixedChainer()


def test_chainer_judged_by_its_first_backend(tmp_path) -> None:
    memory = MemoryKeyring()
    keyring.set_keyring(_chainer([memory]))
    store = SecretStore()
    store.set("acct", SECRET)
    assert store.get("acct") == SECRET
    assert "MemoryKeyring" in store.backend_name()

    plain = PlaintextKeyring()
    plain.file_path = str(tmp_path / "keyring_pass.cfg")
    keyring.set_keyring(_chainer([plain, memory]))
    with pytest.raises(KeyringError, match="--allow-insecure-keyring"):
        SecretStore().get("acct")

    keyring.set_keyring(_chainer([]))
    with pytest.raises(KeyringError) as info:
        SecretStore(allow_insecure=True).get("acct")
    assert str(info.value) == NO_KEYRING_MESSAGE


# --- the remembered backend (a cron run skips keyring's detection) -----------------------


@_unregistered
class SharedKeyring(MemoryKeyring):
    """A secure backend whose secrets outlive the instance (as a system keyring's do)."""

    shared: ClassVar[dict[tuple[str, str], str]] = {}
    works = True

    def __init__(self) -> None:
        super().__init__()
        self.store = SharedKeyring.shared

    @classmethod
    def _viable(cls) -> float:
        if not cls.works:
            raise RuntimeError("no D-Bus session")
        return 1

    priority = keyring.backend.properties.classproperty(_viable)  # type: ignore[assignment]


@dataclass
class Detection:
    """keyring left to detect its backend: how often it did, and what it finds."""

    finds: keyring.backend.KeyringBackend
    count: int = 0


@pytest.fixture
def detection(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Detection:
    """No environment variable, no keyring config file: keyring detects its backend."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    monkeypatch.setattr(SharedKeyring, "shared", {})
    monkeypatch.setattr(SharedKeyring, "works", True)
    seen = Detection(SharedKeyring())

    def detect(limit=None):  # type: ignore[no-untyped-def]
        seen.count += 1
        return seen.finds

    monkeypatch.setattr(keyring.core, "_detect_backend", detect)
    return seen


def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)


def test_the_next_run_uses_the_backend_detection_chose(
    detection: Detection, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remember = tmp_path / "keyring-backend"
    SecretStore(remember_in=remember).set("acct", SECRET)
    assert detection.count == 1
    assert remember.read_text().strip() == f"{__name__}.SharedKeyring"
    _fresh_process(monkeypatch)
    assert SecretStore(remember_in=remember).get("acct") == SECRET
    assert detection.count == 1  # no detection this time
    # Without a place to remember it (tests, tools), detection as before.
    _fresh_process(monkeypatch)
    assert SecretStore().get("acct") == SECRET
    assert detection.count == 2


def test_a_remembered_backend_that_stopped_working_is_detected_again(
    detection: Detection, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remember = tmp_path / "keyring-backend"
    SecretStore(remember_in=remember).set("acct", SECRET)
    _fresh_process(monkeypatch)
    monkeypatch.setattr(SharedKeyring, "works", False)  # e.g. cron, without a D-Bus session
    elsewhere = MemoryKeyring()
    elsewhere.store[(SERVICE_NAME, "account:acct")] = "elsewhere"
    detection.finds = elsewhere
    assert SecretStore(remember_in=remember).get("acct") == "elsewhere"
    assert detection.count == 2
    remember.write_text("no.such.Backend\n")
    _fresh_process(monkeypatch)
    assert SecretStore(remember_in=remember).get("acct") == "elsewhere"
    assert detection.count == 3


def test_a_file_backend_or_a_chainer_is_never_remembered(
    detection: Detection, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # So a secure keyring set up later takes over from the file at once, and a chainer
    # keeps reading from all of its backends.
    remember = tmp_path / "keyring-backend"
    plain = PlaintextKeyring()
    plain.file_path = str(tmp_path / "keyring_pass.cfg")
    detection.finds = plain
    SecretStore(allow_insecure=True, remember_in=remember).set("acct", SECRET)
    assert not remember.exists()
    _fresh_process(monkeypatch)
    chainer = ChainerBackend.__new__(ChainerBackend)
    monkeypatch.setattr(ChainerBackend, "backends", [SharedKeyring()])
    detection.finds = chainer
    SecretStore(remember_in=remember).set("acct", SECRET)
    assert not remember.exists()


def test_the_users_own_choice_wins_over_the_remembered_one(
    detection: Detection, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remember = tmp_path / "keyring-backend"
    SecretStore(remember_in=remember).set("acct", SECRET)
    _fresh_process(monkeypatch)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{__name__}.MemoryKeyring")
    monkeypatch.setattr(keyring.core, "_detect_backend", lambda limit=None: keyring.core.load_env())
    store = SecretStore(remember_in=remember)
    assert store.backend_name() == f"{__name__}.MemoryKeyring"
    assert store.get("acct") is None
    assert remember.read_text().strip() == f"{__name__}.SharedKeyring"  # left as it was
