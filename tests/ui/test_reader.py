"""The reader runs database queries off the GUI thread, each thread with its own Service, and
answers in the GUI thread: only the newest query of a slot, never to a deleted owner, errors
as the sentence; idle threads end and close their Service."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QObject

from app.errors import ConfigError
from app.service import Service
from app.ui import reader as reader_module
from app.ui.reader import Reader
from tests.ui.desktop import settle
from tests.ui.last_reference import Witness, held_after_emit


@pytest.fixture
def reader(qapp: Any, pairsync_home: Path) -> Iterator[Reader]:
    r = Reader(Service)
    yield r
    r.close()


def test_a_query_runs_on_another_thread_with_its_own_service(reader: Reader) -> None:
    gui = threading.get_ident()
    seen: list[Any] = []

    def query(svc: Service) -> tuple[int, list[str]]:
        return threading.get_ident(), svc.connection_names()

    reader.read(query, lambda answer: seen.append((threading.get_ident(), answer)))
    assert reader.busy
    settle(reader)
    [(answered_on, (ran_on, names))] = seen
    assert answered_on == gui and ran_on != gui and names == []
    assert not reader.busy


def test_errors_come_back_as_the_sentence(reader: Reader) -> None:
    errors: list[str] = []

    def query(svc: Service) -> None:
        raise ConfigError("No connection named “Nope”.")

    reader.read(query, lambda _r: pytest.fail("no result expected"), errors.append)
    settle(reader)
    assert errors == ["No connection named “Nope”."]


def test_only_the_newest_query_of_a_slot_is_answered(reader: Reader) -> None:
    release = threading.Event()
    answers: list[str] = []

    def slow(svc: Service) -> str:
        release.wait(10)
        return "first"

    reader.read(slow, answers.append, slot="list")  # running: its answer comes too late
    reader.read(lambda svc: "second", answers.append, slot="list")  # waiting: replaced
    reader.read(lambda svc: "third", answers.append, slot="list")
    release.set()
    settle(reader)
    assert answers == ["third"]


def test_no_answer_to_a_deleted_owner(reader: Reader) -> None:
    owner = QObject()
    answers: list[int] = []
    reader.read(lambda svc: 1, answers.append, owner=owner)
    shiboken6.delete(owner)  # the view went away before the answer came
    settle(reader)
    assert answers == []


def test_idle_threads_end_and_the_next_query_starts_one(
    reader: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_module, "IDLE_SECONDS", 0.05)
    answers: list[int] = []
    reader.read(lambda svc: 1, answers.append)
    settle(reader)
    with reader._lock:
        assert reader._lock.wait_for(lambda: reader._threads == 0, 5)
    reader.read(lambda svc: 2, answers.append)
    settle(reader)
    assert answers == [1, 2]


def test_a_query_and_its_callbacks_are_let_go_in_the_gui_thread(reader: Reader) -> None:
    """The callbacks of a query hold widgets (a list's model, a view); the last reference to
    them must go in the GUI thread. A full suite once segfaulted in ``Reader._serve`` right
    after it had emitted an answer (helper-25, 2026-12-02, near the end of
    test_health_view.py; not reproduced in reruns): the thread dropped its reference to the
    query only after the emit, so when the GUI thread had already answered and let go of its
    own, the thread's was the last one. That order is made here."""
    witness = Witness()
    with held_after_emit():
        holder = witness.holder()
        reader.read(lambda svc: 1, holder.done)
        del holder  # only the query holds it now
        witness.wait_answered()
    settle(reader)
    with reader._lock:
        assert reader._lock.wait_for(lambda: reader._idle_threads == reader._threads, 5)
    assert witness.freed_on == [threading.get_ident()]
