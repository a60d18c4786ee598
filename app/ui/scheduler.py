"""The background scheduler: syncs every connection on its interval, on "Sync now", and runs
undos and "use the other value", one job at a time on a worker ``QThread`` (SPEC §9).

Who does what
-------------
* ``Scheduler`` lives in the GUI thread. It owns the queue, decides what runs next and turns
  the worker's results into the signals the window, the tray and the notifications use.
* ``SyncWorker`` lives in the worker thread. It hands one job at a time to the sync worker
  *process* (``app.sync_worker``), which runs it through its own ``Service`` and reports
  progress (at most every 100 ms, plus every phase change and phase end), and turns those
  events into signals. The run's Python work is in another process, so it never holds the
  window's GIL: that is what keeps the window responsive during a 10k-contact run (a
  thread could not: see ``app.sync_worker``).

Rules
-----
* **One job at a time, so one run per connection at a time**; the store has one writer.
* **Coalescing.** A trigger for a connection already waiting in the queue merges with it. A
  trigger while that connection is running queues *one* follow-up run (the running one may
  have read that app before the change the user is thinking of); any further triggers merge
  into that follow-up. A scheduled tick never queues a connection that is running or queued,
  nor one whose pause or resume is still being saved: a resume syncs once it is saved, and
  a tick that read the flag already in the database first would run it twice (the wizard's
  Finish did: a scheduled run, then the resume's as its follow-up).
* **When a connection is due** comes from ``Service.schedule()``: the last sync run stored in
  the database + the connection's interval (1–60 min), doubled for every unreachable or
  rate-limited run in a row (at most an hour, at least the app's Retry-After). Nothing is
  kept in a timer: the timer only wakes the scheduler (at the next due time, at least every
  ``tick_ms``), which then asks the database. So a restart keeps the rhythm and a run missed
  while the laptop slept is overdue, hence run, within ``tick_ms`` of waking.
* **Held connections** are never scheduled: paused ones, ones whose account needs signing in
  again (re-authorizing triggers a run), and ones waiting for a mass-change decision.
* **Cancel** (and pause, and quit) stops a running job at the engine's next safe point.
* **Saves off the GUI thread.** Pause, resume and the interval are written on the window's
  task runner (a sync's batch holds SQLite's write lock for seconds at 100k contacts). A
  pause counts at once; each save writes the latest value asked for; ``saved`` says when
  it landed or why not, in words.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from PySide6.QtCore import QObject, QThread, QTimer, Signal, SignalInstance, Slot

from app.errors import PairsyncError
from app.service import ConnectionSettings, Service
from app.sync_worker import WorkerClient, WorkerOptions
from app.ui.signals import emit
from app.ui.tasks import TaskControl, TaskRunner

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
TICK_MS = 60_000
"""The longest the scheduler sleeps before asking the database what is due."""
FAILED_JOB_COOLDOWN = 300.0
"""Seconds before the schedule tries a connection again whose sync job failed to start."""
BUSY_COOLDOWN = 30.0
"""Seconds before the schedule tries again a connection that another process was syncing
(``app.run_lock``): that run records itself, and the schedule follows from it."""


_heap_frozen: list[bool] = []


@dataclass(slots=True)
class Job:
    """One thing for the worker to do for one connection."""

    kind: str
    """sync | undo | use_other"""
    name: str
    confirm: bool = False
    """sync: go past the mass-change guard (the user said Continue)."""
    run_id: int = 0
    record: tuple[str, str] | None = None
    conflict_id: int = 0
    reason: str = "manual"
    """manual | scheduled (for logs and tests)."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set when the job should stop at its next safe point (cancel, pause, quit)."""

    def message(self) -> dict[str, Any]:
        """What the sync worker process is sent (``app.sync_worker``)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "confirm": self.confirm,
            "run_id": self.run_id,
            "record": list(self.record) if self.record else None,
            "conflict_id": self.conflict_id,
            "reason": self.reason,
        }


class SyncWorker(QObject):
    """Lives in the worker thread and hands each job to the sync worker *process*
    (``app.sync_worker``), then turns its events into signals. The thread only waits on a
    pipe, which it does without holding the GIL, so the window's thread never waits for it.
    Only the scheduler talks to it (queued signals)."""

    started = Signal(str, str)
    progress = Signal(str, str, int, int, float, int)
    """name, phase, done, total, seconds left (-1: unknown yet), percent of the whole run."""
    finished = Signal(str, str, object)
    """name, kind, the run's report (``RunReport.as_json()``, plus ``kind``)."""
    failed = Signal(str, str, str)
    """name, kind, message: the job could not run (nothing to undo, the worker crashed…)."""

    def __init__(self, options: WorkerOptions) -> None:
        super().__init__()
        self.client = WorkerClient(options)

    def close(self) -> None:
        self.client.close()

    @Slot(object)
    def run_job(self, job: Job) -> None:
        emit(self.started, job.name, job.kind)
        if job.stop.is_set():  # cancelled (or paused) before it could start
            emit(self.failed, job.name, job.kind, "Cancelled before it started.")
            return

        def progress(event: dict[str, Any]) -> None:
            emit(
                self.progress,
                job.name,
                str(event.get("phase", "")),
                int(event.get("done", 0)),
                int(event.get("total", 0)),
                float(event.get("left", -1.0)),
                int(event.get("percent", 0)),
            )

        try:
            event = self.client.run(job.message(), progress, job.stop)
        except Exception as err:  # never let one job kill the worker thread
            log.exception("scheduled job %s for %s failed", job.kind, job.name)
            event = {"event": "failed", "message": f"Unexpected error: {err}"}
        if event.get("event") == "finished":
            emit(self.finished, job.name, job.kind, dict(event.get("report") or {}))
        else:
            emit(self.failed, job.name, job.kind, str(event.get("message", "")))


def utc_now() -> datetime:
    return datetime.now(UTC)


class Saves:
    """What the user asked to save per connection (paused, interval) and how many saves of
    each are still on their way. Shared by the GUI thread (``want``, ``done``) and the
    task threads (``write``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._write = threading.Lock()
        self._wanted: dict[tuple[str, str], object] = {}
        self._count: dict[tuple[str, str], int] = {}

    def want(self, name: str, key: str, value: object) -> None:
        with self._lock:
            self._wanted[(name, key)] = value
            self._count[(name, key)] = self._count.get((name, key), 0) + 1

    def wanted(self, name: str, key: str) -> object | None:
        """The value on its way for ``key``, or None when nothing is being saved."""
        with self._lock:
            return self._wanted.get((name, key))

    def pending(self, name: str) -> bool:
        with self._lock:
            return any(n == name for n, _key in self._count)

    def write(self, svc: Service, name: str, key: str) -> object:
        """Save the latest wanted value (on a task thread). Returns what was saved."""
        with self._write:
            with self._lock:
                value = self._wanted.get((name, key))
            if key == "paused":
                svc.set_paused(name, bool(value))
            else:
                svc.update_connection(name, **{key: value})
            return value

    def done(self, name: str, key: str) -> object | None:
        """One save of ``key`` ended; the value still on its way (None: none is)."""
        with self._lock:
            left = self._count.get((name, key), 1) - 1
            if left > 0:
                self._count[(name, key)] = left
                return self._wanted.get((name, key))
            self._count.pop((name, key), None)
            self._wanted.pop((name, key), None)
            return None


class SyncControl(Protocol):
    """What the main window and the dashboard use of the scheduler: every sync, pause and
    interval change of the window goes through it, so there is one writer."""

    def sync_now(self, names: Sequence[str] | None = None, *, confirm: bool = False) -> list[str]:
        """Sync these connections now (None or empty: every one not paused)."""
        ...

    def pause(self, name: str) -> None: ...

    def resume(self, name: str) -> None: ...

    def pause_all(self) -> None: ...

    def resume_all(self) -> None: ...

    def set_interval(self, name: str, minutes: int) -> None: ...

    def saving(self, name: str) -> bool:
        """Whether a pause, resume or interval of ``name`` is still being saved."""
        ...

    def paused(self, name: str) -> bool:
        """Whether ``name`` is paused, counting a pause or resume still being saved."""
        ...

    @property
    def saved(self) -> SignalInstance:
        """connection, what (pause | resume | interval), the error's sentence ("" if saved)"""
        ...

    def running(self) -> str | None:
        """The connection whose job runs now."""
        ...


class Scheduler(QObject):
    """Schedules and runs syncs (see the module docstring). Start it once the window is up;
    ``shutdown`` before quitting."""

    run_started = Signal(str, str)
    """connection, kind (sync | undo | use_other)"""
    run_progress = Signal(str, str, int, int, float, int)
    """connection, phase, done, total, seconds left (-1 unknown), percent of the run"""
    run_finished = Signal(str, object)
    """connection, report (``RunReport.as_json()`` + ``kind``; an undo's has ``skipped``…)"""
    job_failed = Signal(str, str, str)
    """connection, kind, message: a job refused before it ran (nothing to undo…)"""
    guard_stopped = Signal(str, object, str)
    """connection, the guard's counts, its message: the mass-change guard waits for the user"""
    auth_needed = Signal(str, str)
    """connection, message: an account of it needs signing in again"""
    states_changed = Signal()
    """Pause, interval, a run's end…: whatever shows connection states should re-read them"""
    saved = Signal(str, str, str)
    """connection, what (pause | resume | interval), the error's sentence ("" once saved)"""
    busy_changed = Signal(bool)

    _submit = Signal(object)

    def __init__(
        self,
        service: Service,
        *,
        worker: WorkerOptions | None = None,
        tick_ms: int = TICK_MS,
        clock: Clock = utc_now,
        runner: TaskRunner | None = None,
        parent: QObject | None = None,
    ) -> None:
        """``service``: the GUI thread's own Service (schedule reads).
        ``worker`` says how to start the sync worker process (default: the same folders and
        keyring policy as ``service``). ``clock`` says what time it is when deciding what is
        due (UTC; tests move it forward instead of waiting). ``runner``: the window's task
        runner, which saves pauses and intervals off the GUI thread (default: one of its
        own over the same folders)."""
        super().__init__(parent)
        self.service = service
        home, insecure = service.home, service.allow_insecure_keyring
        self._own_runner = runner is None
        self.runner = runner or TaskRunner(
            lambda: Service(home, allow_insecure_keyring=insecure), self, max_threads=1
        )
        self._saves = Saves()
        self.tick_ms = tick_ms
        self.clock = clock
        self._queue: list[Job] = []
        self._cooldown: dict[str, float] = {}
        self._current: Job | None = None
        self._started = False
        self._thread = QThread(self)
        self._thread.setObjectName("pairsync-sync")
        self._worker = SyncWorker(
            worker
            or WorkerOptions(
                home=service.home, allow_insecure_keyring=service.allow_insecure_keyring
            )
        )
        self._worker.moveToThread(self._thread)
        self._submit.connect(self._worker.run_job)
        self._worker.started.connect(self._on_started)
        self._worker.progress.connect(self.run_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.check_due)

    # --- life cycle ------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        """Start the worker thread and run whatever is due now (e.g. missed while closed)."""
        if self._started:
            return
        self._started = True
        if not _heap_frozen:
            # What exists at the first start (modules, the window) lives as long as the
            # app: keep it out of every later full garbage collection, which then stays
            # short (a full collection walks every object holding the GIL). Once per
            # process.
            _heap_frozen.append(True)
            gc.freeze()
        self._thread.start()
        self.check_due()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop: drop the queue, cancel the running job at its next safe point, wait for the
        worker thread to end, and for the pauses and intervals being saved (the app waits
        for the window's runner at its end). Returns False if it did not end in time."""
        self._timer.stop()
        self._queue.clear()
        self._stop_current()
        saved = self.runner.wait(timeout_ms) if self._own_runner else True
        if not self._started:
            return saved
        self._started = False
        self._thread.quit()
        ended = bool(self._thread.wait(timeout_ms))
        if ended:
            self._worker.close()
        return ended and saved

    # --- what runs when ----------------------------------------------------------------------

    @Slot()
    def check_due(self) -> None:
        """Queue every connection that is due now, then sleep until the next one is."""
        if not self._started:
            return
        now = self.clock()
        try:
            entries = self.service.schedule()
        except PairsyncError:
            log.exception("could not read the schedule")
            entries = []
        for entry in entries:
            if entry.is_due(now) and not self._taken(entry.name):
                self._enqueue(Job("sync", entry.name, reason="scheduled"))
        self._arm(entries, now)
        self._pump()

    def _arm(self, entries: Sequence[Any], now: datetime) -> None:
        wait = self.tick_ms
        for entry in entries:
            if entry.due_at is None or self._taken(entry.name):
                continue
            ms = int((entry.due_at - now).total_seconds() * 1000)
            wait = min(wait, max(ms, 0))
        self._timer.start(max(wait, 50))

    def _taken(self, name: str) -> bool:
        """Running, queued, cooling down after a job that could not even run, or being
        paused or resumed (the save's answer decides: a resume then syncs it)."""
        if self._cooldown.get(name, 0.0) > time.monotonic():
            return True
        if self._saves.wanted(name, "paused") is not None:
            return True
        return (self._current is not None and self._current.name == name) or any(
            j.name == name and j.kind == "sync" for j in self._queue
        )

    def _enqueue(self, job: Job) -> None:
        if job.kind == "sync":
            for queued in self._queue:
                if queued.kind == "sync" and queued.name == job.name:
                    queued.confirm = queued.confirm or job.confirm
                    if job.reason == "manual":
                        queued.reason = "manual"
                    return
        self._queue.append(job)

    def _pump(self) -> None:
        if self._current is not None or not self._started:
            return
        while self._queue:
            job = self._queue.pop(0)
            if job.kind == "sync" and self._paused(job.name):
                continue  # paused while waiting: a paused connection reads nothing
            self._current = job
            emit(self.busy_changed, True)
            emit(self._submit, job)
            return

    def _paused(self, name: str) -> bool:
        wanted = self._saves.wanted(name, "paused")
        if wanted is not None:  # a pause or resume on its way to the database
            return bool(wanted)
        try:
            return self.service.is_paused(name)
        except PairsyncError:
            return True  # deleted meanwhile: nothing to run

    # --- triggers ------------------------------------------------------------------------------

    def sync_now(self, names: Sequence[str] | None = None, *, confirm: bool = False) -> list[str]:
        """ "Sync now" for these connections (None or empty: all that are not paused).
        Returns the names queued or merged into a waiting run."""
        wanted = list(names) if names else self.service.connection_names(paused=False)
        queued = []
        for name in wanted:
            if self._paused(name):
                continue
            self._enqueue(Job("sync", name, confirm=confirm))
            queued.append(name)
        self._pump()
        return queued

    def undo(self, name: str, run_id: int, record: tuple[str, str] | None = None) -> None:
        """Undo a run (or one contact's changes in it) after whatever is running now."""
        self._enqueue(Job("undo", name, run_id=run_id, record=record))
        self._pump()

    def use_other_value(self, name: str, conflict_id: int) -> None:
        self._enqueue(Job("use_other", name, conflict_id=conflict_id))
        self._pump()

    def cancel(self, name: str | None = None) -> bool:
        """Stop the running job (of ``name``, when given) at its next safe point."""
        job = self._current
        if job is None or (name is not None and job.name != name):
            return False
        self._stop_current()
        return True

    def _stop_current(self) -> None:
        if self._current is not None:
            self._current.stop.set()
            self._worker.client.cancel()

    def pause(self, name: str) -> None:
        """Pause one connection: nothing is read or written until it is resumed; a run of
        it stops at its next safe point. It counts as paused at once; the flag is saved off
        the GUI thread (``saved`` says when)."""
        self._queue = [j for j in self._queue if not (j.name == name and j.kind == "sync")]
        if self._current is not None and self._current.name == name:
            self._stop_current()
        self._save(name, "pause", "paused", True)

    def resume(self, name: str) -> None:
        """Resume one connection and sync it now (a full read, SPEC §9), once saved."""
        self._save(name, "resume", "paused", False)

    def pause_all(self) -> None:
        for name in self.service.connection_names():
            if not self._paused(name):
                self.pause(name)

    def resume_all(self) -> None:
        for name in self.service.connection_names():
            if self._paused(name):
                self.resume(name)

    def all_paused(self) -> bool:
        names = self.service.connection_names()
        return bool(names) and all(self._paused(n) for n in names)

    def set_interval(self, name: str, minutes: int) -> None:
        """Save how often ``name`` syncs (a wrong value is refused here, in words)."""
        checked = ConnectionSettings(interval_minutes=minutes).interval_minutes
        self._save(name, "interval", "interval_minutes", checked)

    def saving(self, name: str) -> bool:
        return self._saves.pending(name)

    def paused(self, name: str) -> bool:
        return self._paused(name)

    # --- saves, off the GUI thread --------------------------------------------------------------

    def _save(self, name: str, what: str, key: str, value: object) -> None:
        """Save one column of a connection on the task runner. The GUI thread never waits
        for SQLite's write lock (a sync's batch holds it: a pause waited up to 1.7 s).
        Each save writes the *latest* value the user asked for, under one lock, so a quick
        Pause-Resume lands as Resume whatever order the threads run in."""
        saves = self._saves
        saves.want(name, key, value)

        def job(svc: Service, _ctl: TaskControl) -> object:
            return saves.write(svc, name, key)

        self.runner.start(
            job,
            on_done=lambda result: self._saved(name, what, key, result, ""),
            on_error=lambda message, _code: self._saved(name, what, key, None, message),
            label=f"{what} {name}",
            cancellable=False,
        )
        self._changed()

    def _saved(self, name: str, what: str, key: str, value: object, error: str) -> None:
        left = self._saves.done(name, key)
        emit(self.saved, name, what, error)
        if error:
            emit(self.job_failed, name, what, error)
        elif what == "resume" and left is None and value is False:
            self.sync_now([name])
        self._changed()

    def _changed(self) -> None:
        emit(self.states_changed)
        if self._started:
            self._timer.start(0)  # re-derive the schedule

    # --- state for views -----------------------------------------------------------------------

    def running(self) -> str | None:
        """The connection whose job runs now."""
        return None if self._current is None else self._current.name

    def running_kind(self) -> str | None:
        return None if self._current is None else self._current.kind

    def queued(self) -> list[str]:
        return [j.name for j in self._queue]

    def next_runs(self) -> dict[str, datetime | None]:
        return {e.name: e.due_at for e in self.service.schedule()}

    # --- from the worker -----------------------------------------------------------------------

    @Slot(str, str)
    def _on_started(self, name: str, kind: str) -> None:
        emit(self.run_started, name, kind)

    @Slot(str, str, object)
    def _on_finished(self, name: str, kind: str, report: dict[str, Any]) -> None:
        self._done()
        status = report.get("status", "")
        if status == "busy":  # not recorded: without a pause it would be "due" at once
            self._cooldown[name] = time.monotonic() + BUSY_COOLDOWN
        emit(self.run_finished, name, report)
        if status == "guard":
            emit(
                self.guard_stopped, name, dict(report.get("guard") or {}), report.get("message", "")
            )
        elif status == "auth":
            emit(self.auth_needed, name, report.get("message", ""))
        self._after_job()

    @Slot(str, str, str)
    def _on_failed(self, name: str, kind: str, message: str) -> None:
        stopped = self._current is not None and self._current.stop.is_set()
        self._done()
        if kind == "sync" and not stopped:
            # No run was recorded, so the database still says "due": without a pause the
            # schedule would try again at once, forever.
            self._cooldown[name] = time.monotonic() + FAILED_JOB_COOLDOWN
        emit(self.job_failed, name, kind, message)
        self._after_job()

    def _done(self) -> None:
        self._current = None

    def _after_job(self) -> None:
        emit(self.states_changed)
        if not self._queue:
            emit(self.busy_changed, False)
        if self._started:
            self.check_due()
