"""The only place Pairsync keeps secrets (passwords, API tokens, OAuth refresh tokens).

Secrets live in the operating system's keyring, through the ``keyring`` library, one entry
per account: service ``"pairsync"``, username ``"account:<account name>"``. Nothing else in
Pairsync writes a secret anywhere — not to the database, not to config files, not to logs.

Before the first use, :class:`SecretStore` checks the active keyring backend and refuses
(with :class:`~app.errors.KeyringError`) one that cannot store anything (``fail``, ``null``)
or one that keeps secrets in a plain file (keyrings.alt's file backends and the like). The
latter are accepted when the user explicitly allows it (``--allow-insecure-keyring``).

No secret value is ever logged or put into an exception message or its ``raw`` text.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import ConfigError, KeyringError

# ``keyring`` is imported on the first secret asked for, not with this module: a run over
# folders and files never needs it, and it costs a CLI start a tenth of a second (issue 18).
if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = ["SERVICE_NAME", "SecretStore", "keyring_username", "secret_from_env"]

log = logging.getLogger(__name__)

SERVICE_NAME = "pairsync"

NO_KEYRING_MESSAGE = (
    "No system keyring is available: install and unlock GNOME Keyring/KWallet (Linux), "
    "or use Keychain/Credential Manager; Pairsync stores secrets nowhere else."
)
NULL_KEYRING_MESSAGE = (
    "The active keyring backend (keyring.backends.null.Keyring) stores nothing, so secrets "
    "would be silently dropped: set up GNOME Keyring/KWallet (Linux), or use "
    "Keychain/Credential Manager; Pairsync stores secrets nowhere else."
)
LOCKED_MESSAGE = "The system keyring is locked: unlock it and try again."

_INSECURE_MESSAGE = (
    "The active keyring backend ({backend}) keeps secrets in a file rather than in a "
    "secure system keyring: set up GNOME Keyring/KWallet (Linux), or use "
    "Keychain/Credential Manager, or rerun with --allow-insecure-keyring to accept it."
)
_GENERIC_MESSAGE = (
    "The system keyring failed while {action} the secret for account '{account}': "
    "check that it is running and unlocked, then try again."
)

_STARTUP_MESSAGE = (
    "The system keyring could not be opened: check that it is running and unlocked, then try again."
)


def keyring_username(account: str) -> str:
    """The keyring username under which ``account``'s secret is stored."""
    return f"account:{account}"


def secret_from_env(var: str) -> str:
    """Read a secret from environment variable ``var`` (the CLI's ``--secret-env VAR``).

    Raises :class:`ConfigError` when the variable is missing or empty. The value is returned
    unchanged (no stripping: a secret is taken exactly as given).
    """
    value = os.environ.get(var)
    if not value:
        raise ConfigError(f"Environment variable {var} is not set")
    return value


def _class_name(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _priority(backend: KeyringBackend) -> float:
    try:
        return float(type(backend).priority)
    except Exception:  # a backend may raise here when it is not usable at all
        return 0.0


def _is_insecure(backend: KeyringBackend) -> bool:
    """True for backends that keep secrets in a file (plaintext or passphrase-prompting).

    Deliberately conservative: keyrings.alt's ``PlaintextKeyring`` and ``EncryptedKeyring``
    both count (the encrypted one prompts for a passphrase on a terminal, which a desktop
    app cannot answer), as does any low-priority backend that names itself a file store.
    """
    cls = type(backend)
    module = cls.__module__
    full = f"{module}.{cls.__qualname__}".lower()
    if module.startswith("keyrings.alt.file"):  # file and file_base
        return True
    if "plaintext" in full:
        return True
    return _priority(backend) < 1 and "file" in full


def _chained(backend: KeyringBackend) -> list[KeyringBackend]:
    """The backends a ``ChainerBackend`` delegates to, best first."""
    try:
        return list(type(backend).backends)  # type: ignore[attr-defined]
    except Exception:
        return []


class SecretStore:
    """Stores one secret per account in the OS keyring.

    The active backend is checked lazily, once, on the first ``set``/``get``/``delete``
    (thread-safe); an unusable or insecure backend raises :class:`KeyringError` with an
    actionable sentence. ``allow_insecure=True`` accepts file-based backends, but never
    ``fail`` or ``null``, which store nothing.
    """

    def __init__(self, allow_insecure: bool = False, remember_in: Path | None = None) -> None:
        self.allow_insecure = allow_insecure
        self._remember_in = remember_in
        """Where the backend keyring's own detection chose is remembered (None: nowhere)."""
        self._lock = threading.RLock()
        self._backend: KeyringBackend | None = None
        self._detected = False

    # -- public API -------------------------------------------------------------------

    def set(self, account: str, secret: str) -> None:
        """Store (or replace) ``account``'s secret."""
        _check_account(account)
        if not isinstance(secret, str) or secret == "":
            raise KeyringError(f"Refusing to store an empty secret for account '{account}'.")
        with self._lock:
            backend = self._checked_backend()
            with _translated("storing", account):
                backend.set_password(SERVICE_NAME, keyring_username(account), secret)
        log.debug("Stored the secret for account %r", account)

    def get(self, account: str) -> str | None:
        """``account``'s secret, or None when none is stored."""
        _check_account(account)
        with self._lock:
            backend = self._checked_backend()
            with _translated("reading", account):
                return backend.get_password(SERVICE_NAME, keyring_username(account))

    def delete(self, account: str) -> None:
        """Remove ``account``'s secret; nothing happens when there is none."""
        _check_account(account)
        username = keyring_username(account)
        with self._lock:
            backend = self._checked_backend()
            with _translated("deleting", account):
                try:
                    backend.delete_password(SERVICE_NAME, username)
                except _keyring_errors().PasswordDeleteError:
                    # Backends raise this when the entry does not exist, which is success
                    # for us; if the entry is still there, it is a real failure.
                    if backend.get_password(SERVICE_NAME, username) is not None:
                        raise
        log.debug("Deleted the secret for account %r (if any)", account)

    def backend_name(self) -> str:
        """The active backend's dotted class name, for diagnostics.

        Does not refuse an unusable backend (so the CLI can show what is active even when
        it is refused); a keyring chainer lists the backends it delegates to.
        """
        with self._lock:
            backend = self._resolve()
        name = _class_name(backend)
        from keyring.backends import chainer as keyring_chainer

        if isinstance(backend, keyring_chainer.ChainerBackend):
            inner = ", ".join(_class_name(b) for b in _chained(backend))
            name = f"{name} ({inner})"
        return name

    # -- internals --------------------------------------------------------------------

    def _resolve(self) -> KeyringBackend:
        """The backend: the user's choice (``PYTHON_KEYRING_BACKEND``, keyring's config file)
        as keyring reads it; else the one keyring's detection chose before, while it still
        works; else keyring's detection.

        Detection imports every backend keyring knows and asks each whether it works: on
        Linux that is 50-70 ms of CPU and 150-280 ms in all (the macOS backend looks for its
        library with ``ldconfig``, SecretService loads ``cryptography``), on every cron
        run (issue 18). Only a secure backend that detection chose is remembered
        (``_checked_backend``), so a secure keyring set up later replaces a file one."""
        if self._backend is not None:
            return self._backend
        with _translated("looking up", None):
            import keyring

            detecting = False
            if self._remember_in is not None and not _chosen_by_user():
                detecting = True
                remembered = _remembered(self._remember_in)
                if remembered is not None:
                    keyring.set_keyring(remembered)
                    return remembered
            backend = keyring.get_keyring()
            self._detected = detecting
            return backend

    def _checked_backend(self) -> KeyringBackend:
        """The active backend, checked once (callers hold ``self._lock``)."""
        if self._backend is not None:
            return self._backend
        backend = self._resolve()
        self._refuse_if_unusable(backend)
        self._backend = backend
        log.debug("Using keyring backend %s", _class_name(backend))
        if self._detected and self._remember_in is not None and _rememberable(backend):
            _remember(self._remember_in, _class_name(backend))
        return backend

    def _refuse_if_unusable(self, backend: KeyringBackend) -> None:
        from keyring.backends import chainer as keyring_chainer
        from keyring.backends import fail as keyring_fail
        from keyring.backends import null as keyring_null

        target = backend
        if isinstance(backend, keyring_chainer.ChainerBackend):
            # A chainer writes to the first backend it delegates to: judge that one.
            members = _chained(backend)
            if not members:
                raise KeyringError(NO_KEYRING_MESSAGE, raw=_class_name(backend))
            target = members[0]
        if isinstance(target, keyring_fail.Keyring):
            raise KeyringError(NO_KEYRING_MESSAGE, raw=_class_name(target))
        if isinstance(target, keyring_null.Keyring):
            raise KeyringError(NULL_KEYRING_MESSAGE, raw=_class_name(target))
        if _is_insecure(target) and not self.allow_insecure:
            name = _class_name(target)
            raise KeyringError(_INSECURE_MESSAGE.format(backend=name), raw=name)


def _chosen_by_user() -> bool:
    """Whether keyring would take its backend from the environment or its config file."""
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return True
    from keyring.util import platform_

    return (platform_.config_root() / "keyringrc.cfg").exists()


def _remembered(path: Path) -> KeyringBackend | None:
    """The remembered backend, if it still loads and says it works (its priority)."""
    try:
        name = path.read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return None
    if not name:
        return None
    import keyring.core

    try:
        return keyring.core.load_keyring(name)
    except Exception:  # gone, or not usable now (no D-Bus session): detect again
        log.debug("Remembered keyring backend %s not usable: detecting again", name)
        return None


def _rememberable(backend: KeyringBackend) -> bool:
    """A plain, secure backend: a chainer reads from several (remembering its first would
    miss secrets kept in another), and a file store should give way to a secure keyring as
    soon as there is one."""
    from keyring.backends import chainer as keyring_chainer

    return not isinstance(backend, keyring_chainer.ChainerBackend) and not _is_insecure(backend)


def _remember(path: Path, name: str) -> None:
    try:
        if path.read_text(encoding="utf-8").strip() == name:
            return
    except (OSError, ValueError):
        pass
    try:
        path.write_text(name + "\n", encoding="utf-8")
    except OSError as err:  # only costs the next run the detection again
        log.debug("Could not remember the keyring backend: %s", err)


def _keyring_errors() -> Any:
    import keyring.errors

    return keyring.errors


def _check_account(account: str) -> None:
    if not isinstance(account, str) or not account.strip():
        raise KeyringError("An account name is required to store or read its secret.")


@contextmanager
def _translated(action: str, account: str | None) -> Iterator[None]:
    """Turn keyring (and file) errors into :class:`KeyringError` without leaking secrets.

    ``raw`` carries only the original exception's class name: backend messages are not
    trusted to be free of secret material, and the original exception is not chained.
    """
    errors = _keyring_errors()
    try:
        yield
    except errors.KeyringLocked as exc:
        raise KeyringError(LOCKED_MESSAGE, raw=type(exc).__name__) from None
    except (errors.InitError, errors.NoKeyringError) as exc:
        raise KeyringError(NO_KEYRING_MESSAGE, raw=type(exc).__name__) from None
    except (errors.KeyringError, OSError) as exc:
        if account is None:
            message = _STARTUP_MESSAGE
        else:
            message = _GENERIC_MESSAGE.format(action=action, account=account)
        raise KeyringError(message, raw=type(exc).__name__) from None
