"""Database reads off the GUI thread: Health, Activity and the other lists of the window.

A *query* is a plain function ``query(service) -> result`` that only touches Pairsync's own
database (never an app: those go to ``app.ui.tasks`` and the sync worker process). It runs
on one of the reader's threads, each holding its own ``Service`` (an SQLite connection
belongs to the thread that opened it), and its result comes back to ``on_done`` in the GUI
thread through a queued Qt signal. At 100k contacts a page is a few milliseconds but a search
that matches nothing scans a whole table (300 ms and more); on the GUI thread that froze the
window, here SQLite runs without the GIL and the window keeps painting.

Stale answers are the caller's to drop (a model keeps a generation number), but the reader
helps: a query given a ``slot`` replaces the one of the same slot still waiting, so typing a
search runs one query for the last text, not one per key. A thread that has had nothing to do
for ``IDLE_SECONDS`` closes its Service and ends; the next query starts a new one.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from itertools import count
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Signal

from app.errors import PairsyncError
from app.service import Service
from app.ui.signals import Handoff, emit
from app.ui.tasks import ServiceFactory, open_service

log = logging.getLogger(__name__)

IDLE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class _Query:
    run: Callable[[Service], Any]
    on_done: Callable[[Any], None]
    on_error: Callable[[str], None] | None
    owner: QObject | None
    slot: Hashable
    ticket: int


class Reader(QObject):
    """Runs database queries on up to ``threads`` threads of its own."""

    busy_changed = Signal(bool)

    def __init__(
        self, factory: ServiceFactory, parent: QObject | None = None, threads: int = 2
    ) -> None:
        super().__init__(parent)
        self.factory = factory
        self.max_threads = threads
        self._lock = threading.Condition()
        self._waiting: OrderedDict[Hashable, _Query] = OrderedDict()
        self._running = 0
        self._threads = 0
        self._idle_threads = 0
        self._closed = False
        self._tickets = count()
        self._latest: dict[Hashable, int] = {}
        """The newest query asked for each slot: answers to older ones are dropped, even
        when they arrive after it (two threads)."""
        self._outstanding = 0
        self._answers = Handoff(self._answered, self)
        """(query, result, error sentence), from the threads to the GUI thread."""

    @property
    def busy(self) -> bool:
        return self._outstanding > 0

    def read(
        self,
        query: Callable[[Service], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None] | None = None,
        *,
        slot: Hashable | None = None,
        owner: QObject | None = None,
    ) -> None:
        """Run ``query`` off the GUI thread; ``on_done(result)`` (or ``on_error(sentence)``)
        runs in the GUI thread, unless ``owner`` has been deleted by then. A waiting query
        of the same ``slot`` is dropped, and so is the answer to one that was already
        running: only the newest query of a slot is answered. GUI thread only."""
        ticket = next(self._tickets)
        key: Hashable = ("slot", slot) if slot is not None else ("query", ticket)
        self._latest[key] = ticket
        with self._lock:
            if self._closed:
                return
            replaced = self._waiting.pop(key, None) is not None
            self._waiting[key] = _Query(query, on_done, on_error, owner, key, ticket)
            if self._idle_threads == 0 and self._threads < self.max_threads:
                self._threads += 1
                threading.Thread(target=self._serve, name="pairsync-reader", daemon=True).start()
            else:
                self._lock.notify()
        if not replaced:
            self._count(+1)

    def close(self, timeout: float = 10.0) -> None:
        """Drop waiting queries and end the threads (their Services close). GUI thread."""
        with self._lock:
            self._closed = True
            dropped = len(self._waiting)
            self._waiting.clear()
            self._lock.notify_all()
            self._lock.wait_for(lambda: self._threads == 0, timeout)
        self._count(-dropped)

    def _count(self, by: int) -> None:
        """Queries asked and not answered yet (GUI thread); tells when ``busy`` changes."""
        was = self._outstanding > 0
        self._outstanding += by
        if was != (self._outstanding > 0):
            emit(self.busy_changed, self._outstanding > 0)

    # --- the threads --------------------------------------------------------------------------

    def _next(self) -> _Query | None:
        """The oldest waiting query; None when closed or idle for ``IDLE_SECONDS`` (the
        thread is then no longer counted, so the next ``read`` starts a new one)."""
        with self._lock:
            while not self._waiting and not self._closed:
                self._idle_threads += 1
                woke = self._lock.wait(IDLE_SECONDS)
                self._idle_threads -= 1
                if not woke and not self._waiting:
                    break
            if self._closed or not self._waiting:
                self._threads -= 1
                self._lock.notify_all()
                return None
            _key, query = self._waiting.popitem(last=False)
            return query

    def _serve(self) -> None:
        service: Service | None = None
        try:
            while (query := self._next()) is not None:
                result, error = None, None
                try:
                    if service is None:
                        service = open_service(self.factory)
                    result = query.run(service)
                except PairsyncError as err:
                    error = str(err)
                except Exception as err:
                    log.exception("database query failed")
                    error = f"Unexpected error: {type(err).__name__}: {err}"
                # The query's callbacks hold widgets: handed over, and let go of here
                # before the GUI thread is told (see Handoff).
                self._answers.items.append((query, result, error))
                del query, result
                emit(self._answers.arrived)
        finally:
            if service is not None:
                service.close()

    def _answered(self) -> None:
        query, result, error = self._answers.items.popleft()  # one per signal, oldest first
        try:
            if self._latest.get(query.slot) != query.ticket:
                return  # a newer query of its slot was asked meanwhile
            del self._latest[query.slot]
            if query.owner is not None and not shiboken6.isValid(query.owner):
                return
            if error is None:
                query.on_done(result)
            elif query.on_error is not None:
                query.on_error(error)
            else:
                log.warning("database query failed: %s", error)
        finally:
            # After the callback: a query it asks for keeps the reader busy without a gap.
            self._count(-1)


class ImmediateReader:
    """A reader that runs each query at once, on the calling thread, with ``service``: for
    a benchmark timing the queries themselves (``tests/perf/bench_health``) and parts
    built without the window (a tray or notifier on their own), never the window."""

    busy = False

    def __init__(self, service: Service) -> None:
        self.service = service

    def read(
        self,
        query: Callable[[Service], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None] | None = None,
        *,
        slot: Hashable | None = None,
        owner: QObject | None = None,
    ) -> None:
        try:
            result = query(self.service)
        except PairsyncError as err:
            if on_error is None:
                raise
            on_error(str(err))
            return
        on_done(result)
