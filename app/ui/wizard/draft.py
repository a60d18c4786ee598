"""The wizard's draft connection, written off the GUI thread.

The wizard creates the connection (paused) on entering Configure, may rename it there, and
deletes it again on Back or Cancel. Each of those writes runs on a task thread (a write can
wait for SQLite's lock while a sync of another connection commits a batch), so they may end
after the wizard has moved on, or is gone. A ``Draft`` puts them in order: every write takes
its lock, a creation that ends after Cancel deletes what it made, and a delete always
deletes the name the connection has *now*, whatever rename ran before it.
"""

from __future__ import annotations

import contextlib
import threading

from app.errors import PairsyncError
from app.service import ConnectionSettings, Service


class Draft:
    """One draft connection, from its creation to Finish (kept) or Cancel (deleted).

    Two locks: ``_write`` puts the task threads' writes in order (held while SQLite works);
    ``_state`` guards the name and the abandoned flag, and is all the GUI thread ever takes,
    so it never waits for a write."""

    def __init__(self, account_a: str, account_b: str) -> None:
        self.accounts = (account_a, account_b)
        self._write = threading.Lock()
        self._state = threading.Lock()
        self._name: str | None = None
        self._abandoned = False

    @property
    def name(self) -> str | None:
        """The connection's name once created (None before, and after it is dropped)."""
        with self._state:
            return self._name

    def create(self, svc: Service, settings: ConnectionSettings) -> str | None:
        """Create the connection, paused (on a task thread). None if the wizard let go of
        the draft meanwhile: what was made is deleted again at once."""
        a, b = self.accounts
        with self._write:
            with self._state:
                if self._abandoned:
                    return None
            name = svc.suggest_connection_name(a, b)
            svc.create_connection(name, a, b, settings, paused=True)
            with self._state:
                if not self._abandoned:
                    self._name = name
                    return name
            with contextlib.suppress(PairsyncError):
                svc.delete_connection(name)
            return None

    def rename(self, svc: Service, new_name: str) -> str | None:
        """Rename it (on a task thread); None if it was dropped meanwhile."""
        with self._write:
            with self._state:
                if self._abandoned or self._name is None:
                    return None
                name = self._name
            new = svc.rename_connection(name, new_name).name
            with self._state:
                if self._name == name:
                    self._name = new
            return new

    def abandon(self) -> bool:
        """Let go of the draft (Back, Cancel, closing). True if a connection exists that
        ``delete`` must remove; a creation still running deletes its own."""
        with self._state:
            self._abandoned = True
            return self._name is not None

    def keep(self) -> None:
        """Finish: the connection stays; nothing here deletes it any more."""
        with self._state:
            self._name = None

    def delete(self, svc: Service) -> None:
        """Delete the draft under the name it has now (on a task thread). It never synced,
        so nothing else is undone."""
        with self._write:
            with self._state:
                name, self._name = self._name, None
            if name is not None:
                with contextlib.suppress(PairsyncError):  # already gone
                    svc.delete_connection(name)
