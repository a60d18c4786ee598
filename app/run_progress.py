"""A sync run's progress as one number: its phases (Reading A, Reading B, Matching, Planning,
Writing) become one percentage and an estimate of the time left, for a determinate bar
(SPEC §9). Qt-free: the sync worker process computes it and the window only shows it."""

from __future__ import annotations

import time
from collections.abc import Callable


class RunProgress:
    """Turns a run's phases (Reading A, Reading B, Matching, Planning, Writing) into one
    percentage and an estimate of the time left, for a determinate bar (SPEC §9)."""

    SPANS = (("read", 0, 35), ("read", 35, 70), ("Matching", 70, 72), ("Planning", 72, 80))
    WRITING = (80, 100)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.reads: list[str] = []
        self.percent = 0

    def update(self, phase: str, done: int, total: int) -> int:
        if phase.startswith("Reading "):
            if phase not in self.reads:
                self.reads.append(phase)
            start, end = self.SPANS[min(len(self.reads), 2) - 1][1:]
        elif phase == "Matching":
            start, end = self.SPANS[2][1:]
        elif phase == "Planning":
            start, end = self.SPANS[3][1:]
        elif phase == "Writing":
            start, end = self.WRITING
        else:
            return self.percent
        share = done / total if total else 0.0
        self.percent = max(self.percent, min(100, int(start + (end - start) * share)))
        return self.percent

    def seconds_left(self) -> float | None:
        """None until enough is done to guess (5 %)."""
        if self.percent < 5:
            return None
        elapsed = self.clock() - self.started
        return elapsed * (100 - self.percent) / self.percent
