"""Running service calls off the GUI thread.

A *job* is a plain function ``job(service, control) -> result`` that runs on a worker thread
of a ``QThreadPool``. It gets its own ``Service`` (SQLite connections belong to one thread)
and a ``TaskControl`` to report progress and to notice a cancel. Results, errors, progress
and cancellation come back as Qt signals, delivered in the GUI thread (queued connections),
so widgets are only ever touched there. Nothing here sleeps or spins the event loop.

A *worker job* (``WorkerJob``) is the same, for long pure-Python work (a preview, rule
counts): the pool thread hands it to the sync worker *process* (``app.sync_worker``) and
only waits on its pipe, so the work never holds the window's GIL and the window stays
responsive (a 10k-contact preview in a thread stalled the event loop 140-300 ms).

Cancelling is cooperative: the engine stops at its next safe point (``should_stop``), other
jobs at their next ``control.check()``. A call that cannot be interrupted (a network
request) runs to its end, but its result is dropped and the UI moves on at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

from app.errors import PairsyncError
from app.service import Service
from app.sync_worker import WorkerClient, WorkerOptions
from app.ui.signals import Handoff, emit

log = logging.getLogger(__name__)

ServiceFactory = Callable[[], Service]


@dataclass(frozen=True, slots=True)
class WorkerJob:
    """A job for the sync worker process: the message it is sent (``app.sync_worker``), and
    what turns its result (JSON) into the object the UI wants."""

    message: dict[str, Any]
    convert: Callable[[dict[str, Any]], Any] = field(default=lambda result: result)


Job = Callable[[Service, "TaskControl"], Any] | WorkerJob


class WorkerJobFailed(PairsyncError):
    """The worker process refused a job (its sentence and code) or could not run it."""

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.code = code


class SharedWorker:
    """One sync worker process for a task runner's worker jobs, one job at a time."""

    def __init__(self, options: WorkerOptions) -> None:
        self.client = WorkerClient(options)
        self._lock = threading.Lock()

    def call(self, message: dict[str, Any], control: TaskControl) -> dict[str, Any]:
        with self._lock:
            control.check()
            control.on_cancel(self.client.cancel)
            try:
                event = self.client.run(
                    message,
                    lambda e: control.progress(
                        str(e.get("phase", "")), int(e.get("done", 0)), int(e.get("total", 0))
                    ),
                    stop=control.stop_flag,
                )
            finally:
                control.on_cancel(None)
        if event.get("event") != "finished":
            raise WorkerJobFailed(str(event.get("message", "")), str(event.get("code", "error")))
        return dict(event.get("report") or {})

    def warm_up(self) -> None:
        """Start the worker process now (never blocks), so a job the user is about to ask
        for does not wait for its start (about half a second)."""
        if self._lock.acquire(blocking=False):  # else a job is running: it is started
            try:
                self.client.start()
            finally:
                self._lock.release()

    def close(self) -> None:
        with self._lock:
            self.client.close()


_OPENING = threading.Lock()
"""Workers open their ``Service`` one at a time: opening checks the database's schema
version with Alembic, whose script loading is not thread-safe (a few ms, once per task)."""


def open_service(factory: ServiceFactory) -> Service:
    """Open a Service for a worker thread. Every thread that opens one (the task runner's
    workers, the scheduler's sync worker) must come through here: the opens are serialized
    because Alembic's script loading is not thread-safe (two workers opening at once on a
    fresh database crashed the interpreter)."""
    with _OPENING:
        return factory()


PROGRESS_INTERVAL = 0.1
"""Seconds between two progress signals of one task (the engine may report far more often)."""


class TaskCancelled(Exception):
    """Raised by ``TaskControl.check`` in a job whose task was cancelled."""


class TaskSignals(QObject):
    """The signals of one task. Lives in the GUI thread; emitted from the worker."""

    progress = Signal(str, int, int)
    """phase, done, total (total 0: no count known, show a busy bar)."""
    succeeded = Signal(object)
    failed = Signal(str, str)
    """The user-facing message and the error's code (``app.errors``)."""
    cancelled = Signal()
    finished = Signal()
    """Always the last signal, whatever the outcome."""


class TaskControl:
    """What a job sees of its task: progress reporting (throttled) and the cancel flag."""

    def __init__(self, signals: TaskSignals, interval: float = PROGRESS_INTERVAL) -> None:
        self._signals = signals
        self._stop = threading.Event()
        self._interval = interval
        self._last = 0.0
        self._phase = ""
        self._on_cancel: Callable[[], object] | None = None

    def cancel(self) -> None:
        self._stop.set()
        hook = self._on_cancel
        if hook is not None:
            hook()

    def on_cancel(self, hook: Callable[[], object] | None) -> None:
        """Also call ``hook`` on cancel (a worker job: tell the worker process)."""
        self._on_cancel = hook

    @property
    def stop_flag(self) -> threading.Event:
        return self._stop

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def should_stop(self) -> bool:
        """For the engine's ``should_stop``: it stops at its next safe point."""
        return self._stop.is_set()

    def check(self) -> None:
        """Stop here if the task was cancelled."""
        if self._stop.is_set():
            raise TaskCancelled

    def progress(self, phase: str, done: int, total: int) -> None:
        """The engine's progress callback. Emits at most every ``interval`` seconds, but
        always on a new phase and at a phase's end, so the bar never lies for long."""
        now = time.monotonic()
        if phase != self._phase or (total and done >= total) or now - self._last >= self._interval:
            self._phase, self._last = phase, now
            emit(self._signals.progress, phase, done, total)


Outcome = tuple[str, tuple[Any, ...]]
"""How a job ended: the name of the ``TaskSignals`` signal that says so and its arguments."""


class Task:
    """One job on the pool. The runner keeps it until its outcome is delivered."""

    def __init__(
        self,
        job: Job,
        factory: ServiceFactory,
        label: str = "",
        worker: SharedWorker | None = None,
        *,
        cancellable: bool = True,
    ) -> None:
        self.job = job
        self.cancellable = cancellable
        self.factory = factory
        self.worker = worker
        self.label = label
        self.signals = TaskSignals()
        self.control = TaskControl(self.signals)
        self.done = threading.Event()

    def cancel(self) -> None:
        """Stop at the job's next check; a save (``cancellable=False``) always completes."""
        if self.cancellable:
            self.control.cancel()

    def execute(self) -> Outcome:  # on a pool thread
        """Run the job; its outcome is delivered in the GUI thread (``deliver``)."""
        service: Service | None = None
        try:
            self.control.check()
            if isinstance(self.job, WorkerJob):
                if self.worker is None:
                    raise WorkerJobFailed("This task runner has no sync worker.")
                result = self.job.convert(self.worker.call(self.job.message, self.control))
            else:
                service = open_service(self.factory)
                result = self.job(service, self.control)
            return ("cancelled", ()) if self.control.cancelled else ("succeeded", (result,))
        except TaskCancelled:
            return ("cancelled", ())
        except PairsyncError as err:
            return ("failed", (str(err), err.code))
        except Exception as err:
            log.exception("task %s failed", self.label or self.job)
            return ("failed", (f"Unexpected error: {type(err).__name__}: {err}", "error"))
        finally:
            if service is not None:
                service.close()
            self.done.set()

    def deliver(self, outcome: Outcome) -> None:  # in the GUI thread
        """Emit the outcome's signal, then ``finished`` (always the last)."""
        kind, args = outcome
        try:
            emit(getattr(self.signals, kind), *args)
        finally:
            emit(self.signals.finished)


class TaskRunner(QObject):
    """Starts jobs on its own thread pool and keeps their tasks alive until they finish."""

    busy_changed = Signal(bool)

    def __init__(
        self,
        factory: ServiceFactory,
        parent: QObject | None = None,
        max_threads: int = 2,
        *,
        worker: WorkerOptions | None = None,
    ) -> None:
        """``worker``: how to start the sync worker process for ``WorkerJob``s (default: as
        the app's, from PAIRSYNC_HOME or the platform's folders); started on first use."""
        super().__init__(parent)
        self.factory = factory
        self.worker = SharedWorker(worker or WorkerOptions())
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._tasks: set[Task] = set()
        self._to_start: deque[Task] = deque()
        self._ended = Handoff(self._deliver, self)
        """(task, outcome) of jobs that returned, from the pool's threads to the GUI thread
        (see Handoff). The pool never holds a task: it runs ``_work``, which takes one from
        ``_to_start`` (a QRunnable given to PySide's pool was kept for the pool's life)."""

    @property
    def active(self) -> int:
        return len(self._tasks)

    def start(
        self,
        job: Job,
        *,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str, str], None] | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        label: str = "",
        cancellable: bool = True,
    ) -> Task:
        """Run ``job`` off the GUI thread; the callbacks run in the GUI thread. Connect
        bound methods of widgets: Qt drops the call if the widget is gone by then.

        ``cancellable=False`` is for saves (a pause, a rename, a new connection): closing
        the window (``cancel_all``) does not drop one the user already asked for, and
        ``wait`` lets it finish before the app ends."""
        task = Task(job, self.factory, label, self.worker, cancellable=cancellable)
        s = task.signals
        if on_progress is not None:
            s.progress.connect(on_progress)
        if on_done is not None:
            s.succeeded.connect(on_done)
        if on_error is not None:
            s.failed.connect(on_error)
        if on_cancelled is not None:
            s.cancelled.connect(on_cancelled)
        if on_finished is not None:
            s.finished.connect(on_finished)
        was_idle = not self._tasks
        self._tasks.add(task)
        if was_idle:
            emit(self.busy_changed, True)
        self._to_start.append(task)
        self.pool.start(self._work)
        return task

    def _work(self) -> None:  # on a pool thread: one per ``start``
        task = self._to_start.popleft()
        outcome = task.execute()
        self._ended.items.append((task, outcome))
        del task, outcome
        emit(self._ended.arrived)

    def _deliver(self) -> None:
        task, outcome = self._ended.items.popleft()  # one per signal, oldest first
        try:
            task.deliver(outcome)
        finally:
            self._tasks.discard(task)
            if not self._tasks:
                emit(self.busy_changed, False)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until every job has returned, then end the worker process (shutdown only:
        never while the UI runs; a later worker job would start a new one)."""
        done = bool(self.pool.waitForDone(msecs))
        if done:
            self.worker.close()
        return done
