"""Emitting Qt signals from Python safely, also with the PySide6 builds that leak a reference.

PySide6 6.12.0 (at least) returns ``True`` from ``SignalInstance.emit()`` without taking a
new reference to it. Each emit from Python therefore leaves ``True`` one reference short;
on Python 3.11, where ``True`` is not yet immortal (3.12 made it so), a few thousand emits
later the interpreter aborts with "Fatal Python error: bool_dealloc" — in a long-running
tray app that means a crash after some hours of progress signals. Emits from C++ (timers,
buttons, queued deliveries) are not affected.

``emit(signal, *args)`` emits and, only when this build has the bug (measured once, at
import), gives the missing reference back. Everything in ``app.ui`` that emits often should
use it; it is harmless on fixed builds.
"""

from __future__ import annotations

import ctypes
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    ping = Signal()


def _emit_drops_a_reference() -> bool:
    probe = _Probe()
    tries = 16
    before = sys.getrefcount(True)
    for _ in range(tries):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    for _ in range(max(0, lost)):
        _incref(True)  # give back what the probe itself took
    return lost >= tries // 2


EMIT_DROPS_A_REFERENCE = _emit_drops_a_reference()


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, without the reference leak of affected PySide6 builds."""
    result = signal.emit(*args)
    if EMIT_DROPS_A_REFERENCE and isinstance(result, bool):
        _incref(result)


class Handoff(QObject):
    """Objects handed from worker threads to the GUI thread (a reader's answers, a task's
    outcome). A worker appends its object to ``items``, drops its own references to it, and
    only then emits ``arrived``; ``receive`` pops one item per signal, in the GUI thread. So
    the last reference to what a worker was given (a query's or a job's callbacks, which hold
    widgets) always goes in the GUI thread: a Qt object freed on a worker thread crashes the
    app, and a worker that still held its reference while emitting could be the last holder
    by the time the GUI thread was done. Created in the GUI thread."""

    arrived = Signal()

    def __init__(self, receive: Callable[[], None], parent: QObject) -> None:
        super().__init__(parent)
        self.items: deque[Any] = deque()
        self.arrived.connect(receive)
