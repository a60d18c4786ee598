"""Where the last reference to a widget goes: a Qt object freed on a worker thread crashes
the app, so what a worker thread was given (a query, a job, their callbacks) must be let go
in the GUI thread. Shared by the reader's and the task runner's tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop

from app.ui import signals


class Witness:
    """Makes stand-ins for widgets, and records on which thread each was freed."""

    def __init__(self) -> None:
        self.answered = threading.Event()
        self.freed_on: list[int] = []

    def holder(self) -> Any:
        witness = self

        class Holder:
            """Stands for a widget: a query or job holds it, its ``done`` gets the answer."""

            def done(self, answer: object) -> None:
                witness.answered.set()

            def __del__(self) -> None:
                witness.freed_on.append(threading.get_ident())

        return Holder()

    def wait_answered(self, timeout: float = 10.0) -> None:
        """Run the GUI thread's events until the answer came, then let its arguments go."""
        deadline = time.monotonic() + timeout
        while not self.answered.is_set() and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        assert self.answered.is_set(), "no answer came"
        QCoreApplication.processEvents()


@contextmanager
def held_after_emit() -> Iterator[None]:
    """Hold every thread started in the block just after each ``app.ui.signals.emit`` of
    its returns, until the block ends: the order in which the GUI thread has answered and
    let go of its references while the worker's still exist."""
    go_on = threading.Event()

    def trace(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not signals.emit.__code__:
            return None

        def on_return(frame: Any, event: str, arg: Any) -> Any:
            if event == "return":
                go_on.wait(10)
            return on_return

        return on_return

    threading.settrace(trace)
    try:
        yield
    finally:
        threading.settrace(None)  # type: ignore[arg-type]
        go_on.set()
