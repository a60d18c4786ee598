"""The sync worker: a process of its own that runs the desktop app's long jobs (syncs,
undos, "use the other value", previews, rule counts) through the service facade.

Why a process and not a thread: a run is seconds of pure-Python work. In a thread of the
window's process it holds the GIL, and every time the window's thread needs it back (each
Python slot, each ``Signal.emit``, each SQLite call) it waits for the interpreter's switch
interval, so a progress update that makes twenty such calls froze the window for 100-250 ms
at 2,000 contacts. In its own process the run shares nothing with the window: the window's
event loop measured a worst stall of 18-45 ms at 2,000 and 10,000 contacts
(``tests/perf/bench_responsiveness``). It also keeps a run's memory and any crash out of the
tray app; the engine's write-ahead intents make a crash mid-run lose and duplicate nothing.

Protocol: JSON lines. The app writes ``{"job": {...}}`` and ``{"cancel": id}`` to the
worker's stdin; the worker answers each job with ``progress`` events (throttled: at most
every ``PROGRESS_INTERVAL``, plus every phase change and phase end) and one ``finished`` (the
run's report) or ``failed`` (a sentence) event on its stdout. End of stdin ends the worker.
Nothing else is written to that stdout: stray prints go to stderr, logs to
``sync-worker.log`` in the logs folder. Secrets are read by the worker from the keyring, as
the CLI does; they never travel through the pipes.

``WorkerClient`` is the app's end (Qt-free too: ``app.ui.scheduler`` calls it from its
worker ``QThread``, which blocks on the pipe without holding the GIL).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import itertools
import json
import logging
import logging.handlers
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from app.errors import ConfigError, PairsyncError
from app.run_progress import RunProgress

if TYPE_CHECKING:
    from app.service import AccountCheck

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.1
"""Seconds between two progress events of one run (the engine reports far more often)."""
IDLE_SECONDS = 600.0
"""A worker without a job for this long ends (``PAIRSYNC_WORKER_IDLE_S`` overrides it)."""
RESTART_ABOVE_MB = 400
"""After a job, a worker using more memory than this ends; the next job starts a fresh one
(a first sync of 100k contacts peaks near a gigabyte, which Python keeps once it has it).
``PAIRSYNC_WORKER_MAX_MB`` overrides it."""
FROZEN_FLAG = "_sync-worker"
"""How a frozen (installer-built) app starts its own worker: ``<app> _sync-worker …``."""

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How to start the worker: the same folders and keyring policy as the app's Service."""

    home: str | None = None
    """Pairsync's folder (None: PAIRSYNC_HOME or the platform's folders, as the app)."""
    allow_insecure_keyring: bool = False
    service: str | None = None
    """``module:Class`` of the Service to run the jobs with (tests: one that fails on
    purpose); None is ``app.service:Service``."""

    def command(self) -> list[str]:
        if getattr(sys, "frozen", False):
            cmd = [sys.executable, FROZEN_FLAG]
        else:
            cmd = [sys.executable, "-m", "app.sync_worker"]
        if self.home is not None:
            cmd += ["--home", self.home]
        if self.allow_insecure_keyring:
            cmd.append("--allow-insecure-keyring")
        if self.service is not None:
            cmd += ["--service", self.service]
        return cmd


# --- the app's end ---------------------------------------------------------------------------


class WorkerClient:
    """Starts the worker on first use, hands it one job at a time and reads its events.

    ``run`` blocks its calling thread (not the GUI thread) until the job's last event.
    ``cancel`` may be called from any thread. A worker that dies (crash, killed, could not
    start) fails the job with a sentence saying so; the next job starts a new one.
    """

    def __init__(self, options: WorkerOptions | None = None) -> None:
        self.options = options or WorkerOptions()
        self._proc: subprocess.Popen[str] | None = None
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._job_id = 0
        self.starts = 0
        """How many worker processes were started (tests, logs)."""

    def run(
        self,
        job: dict[str, Any],
        on_progress: Callable[[Event], None],
        stop: threading.Event | None = None,
    ) -> Event:
        """Run one job; returns its ``finished`` or ``failed`` event. ``stop``: the job's
        cancel flag, for a cancel that came before the job reached the worker."""
        for attempt in (1, 2):
            event = self._run_once(job, on_progress, stop)
            if event is not _IDLED or attempt == 2:
                break
            # The worker ended for being idle just as this job was sent: it never saw the
            # job, so sending it to a fresh worker cannot run it twice.
            log.info("the sync worker had just ended (idle): job sent to a new one")
        return _failed(_DIED.format(code=0)) if event is _IDLED else event

    def _run_once(
        self,
        job: dict[str, Any],
        on_progress: Callable[[Event], None],
        stop: threading.Event | None,
    ) -> Event:
        try:
            proc = self._ensure()
        except OSError as err:
            return _failed(f"The sync worker could not start: {err}")
        job_id = next(self._ids)
        self._job_id = job_id  # from here on ``cancel`` reaches this job
        try:
            self._send({"job": job | {"id": job_id}})
            if stop is not None and stop.is_set():
                self._send({"cancel": job_id})
        except OSError:
            return self._died(proc, seen=False)
        assert proc.stdout is not None
        seen = False
        try:
            for line in proc.stdout:
                event = _parse(line)
                if event is None or event.get("id") != job_id:
                    continue
                seen = True
                if event.get("event") == "progress":
                    on_progress(event)
                elif event.get("event") in ("finished", "failed"):
                    if event.get("retire"):
                        self.close()
                    return event
        finally:
            self._job_id = 0
        return self._died(proc, seen)

    def start(self) -> None:
        """Start the worker now (it takes about half a second to be ready), so the first
        job does not wait for it. Never blocks."""
        try:
            self._ensure()
        except OSError as err:
            log.warning("the sync worker could not start: %s", err)

    def cancel(self) -> bool:
        """Ask the running job to stop at its next safe point."""
        job_id = self._job_id
        if not job_id or self._proc is None:
            return False
        try:
            self._send({"cancel": job_id})
        except OSError:
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """End the worker: no more jobs (its stdin closes), wait, kill if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with self._write_lock, contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the sync worker did not end within %.0f s: killed", timeout)
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _ensure(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        if self._proc is not None:
            self.close()
        self._proc = subprocess.Popen(
            self.options.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
            cwd=os.getcwd(),
        )
        self.starts += 1
        log.info("sync worker started (pid %s)", self._proc.pid)
        return self._proc

    def _send(self, message: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise OSError("the sync worker is not running")
        with self._write_lock:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()

    def _died(self, proc: subprocess.Popen[str], seen: bool) -> Event:
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if self._proc is proc:
            self._proc = None
        if code == 0 and not seen:
            return _IDLED
        log.error("the sync worker ended during a job (exit code %s)", code)
        return _failed(_DIED.format(code=code))


_IDLED: Event = {"event": "idled"}
"""Not an event of the worker: it had ended (idle, exit code 0) before reading the job."""
_DIED = (
    "The sync worker stopped unexpectedly (exit code {code}). Nothing is lost: the next run "
    "picks up where this one stopped."
)


def _failed(message: str) -> Event:
    return {"event": "failed", "message": message}


def _parse(line: str) -> Event | None:
    try:
        event = json.loads(line)
    except ValueError:
        log.warning("sync worker wrote a line that is not an event: %.200r", line)
        return None
    return event if isinstance(event, dict) else None


# --- the worker's end --------------------------------------------------------------------------


class _Worker:
    def __init__(self, out: IO[str], make_service: Callable[[], Any]) -> None:
        self.out = out
        self.make_service = make_service
        self.service: Any = None
        self.jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stops: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def read_commands(self, stream: IO[str]) -> None:
        """The reader thread: jobs into the queue, cancels onto their job's flag."""
        for line in stream:
            msg = _parse(line)
            if msg is None:
                continue
            if isinstance(msg.get("job"), dict):
                job = msg["job"]
                self.stops.setdefault(int(job.get("id", 0)), threading.Event())
                self.jobs.put(job)
            elif "cancel" in msg:
                self.stops.setdefault(int(msg["cancel"]), threading.Event()).set()
        self.jobs.put(None)

    def write(self, event: Event) -> None:
        with self._lock:
            self.out.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
            self.out.flush()

    def serve(self, idle_s: float | None = None) -> None:
        """Run jobs until stdin ends, or until none came for ``idle_s`` seconds (the app
        starts a new worker for its next job; an idle worker gives its memory back)."""
        while True:
            try:
                job = self.jobs.get(timeout=idle_s)
            except queue.Empty:
                log.info("ending after %.0f s without a job", idle_s or 0)
                return
            if job is None:
                return
            job_id = int(job.get("id", 0))
            stop = self.stops.setdefault(job_id, threading.Event())
            try:
                event = {"event": "finished", "report": self.run(job, stop)}
            except PairsyncError as err:
                event = _failed(str(err)) | {"code": err.code}
            except Exception as err:  # one job never ends the worker
                log.exception("job %s for %s failed", job.get("kind"), job.get("name"))
                event = _failed(f"Unexpected error: {type(err).__name__}: {err}")
            self.stops.pop(job_id, None)
            retire = _resident_mb() > _restart_above_mb()
            self.write(event | {"id": job_id, "retire": retire})
            if retire:
                log.info("ending after a job that left %.0f MB in use", _resident_mb())
                return

    def run(self, job: dict[str, Any], stop: threading.Event) -> dict[str, Any]:
        if self.service is None:
            self.service = self.make_service()
        svc = self.service
        kind, name = str(job.get("kind", "sync")), str(job["name"])
        if kind == "undo":
            record = job.get("record")
            rec = (str(record[0]), str(record[1])) if record else None
            return dict(svc.undo_run(name, int(job["run_id"]), record=rec).as_json())
        if kind == "use_other":
            return dict(svc.use_other_value(name, int(job["conflict_id"])).as_json())
        progress = self._progress_writer(int(job.get("id", 0)))
        if kind == "preview":
            return dict(svc.preview(name, progress=progress, should_stop=stop.is_set).as_json())
        if kind == "check_account":
            return svc.check_account(name, progress=progress).as_json()
        if kind == "connect_account":
            return self._connect_account(job, progress).as_json()
        if kind == "rules":
            counted = bool(job.get("counts")) and svc.has_synced(name)
            rules = [r.as_json() for r in svc.rules(name, counts=counted)]  # RuleInfo.from_json
            return {"rules": rules, "counted": counted}
        if kind != "sync":
            raise ValueError(f"unknown job kind {kind!r}")
        [report] = svc.sync(
            [name], confirm=bool(job.get("confirm")), progress=progress, should_stop=stop.is_set
        )
        return dict(report.as_json()) | {"kind": "sync", "reason": job.get("reason", "manual")}

    def _connect_account(
        self, job: dict[str, Any], progress: Callable[[str, int, int], None]
    ) -> AccountCheck:
        """The wizard's Connect for an app that needs no secret (a file, a folder): read it
        here, where a 100k-contact file costs the window nothing, then add the account
        (replacing the page's earlier, unused try ``previous``). Never given a secret."""
        assert self.service is not None
        svc, kind = self.service, str(job["app"])
        settings = {str(k): str(v) for k, v in dict(job.get("settings") or {}).items()}
        check = svc.check_new_account(kind, settings, None, progress=progress)
        previous = job.get("previous")
        if previous:
            with contextlib.suppress(ConfigError):
                svc.remove_account(str(previous))
        name = str(job.get("name") or "") or svc.suggest_account_name(kind, check.settings)
        svc.add_account(kind, name, check.settings, None)
        return replace(check, account=name)

    def _progress_writer(self, job_id: int) -> Callable[[str, int, int], None]:
        """The engine's progress callback: throttled ``progress`` events, with the run's
        percent and time left (``RunProgress``)."""
        tracker = RunProgress()
        last: dict[str, Any] = {"at": 0.0, "phase": ""}

        def progress(phase: str, done: int, total: int) -> None:
            percent = tracker.update(phase, done, total)
            now = time.monotonic()
            fresh = phase != last["phase"] or (total and done >= total)
            if fresh or now - float(last["at"]) >= PROGRESS_INTERVAL:
                last["at"], last["phase"] = now, phase
                left = tracker.seconds_left()
                self.write(
                    {
                        "event": "progress",
                        "id": job_id,
                        "phase": phase,
                        "done": done,
                        "total": total,
                        "left": -1.0 if left is None else left,
                        "percent": percent,
                    }
                )

        return progress


def _restart_above_mb() -> float:
    return _env_float("PAIRSYNC_WORKER_MAX_MB", RESTART_ABOVE_MB)


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _resident_mb() -> float:
    """This process's resident memory in MB (Linux; elsewhere 0: never restarts)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _service_factory(args: argparse.Namespace) -> Callable[[], Any]:
    cls: Any
    if args.service:
        module, _, qualname = str(args.service).partition(":")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    else:
        from app.service import Service

        cls = Service

    def make() -> Any:
        return cls(args.home, allow_insecure_keyring=args.allow_insecure_keyring)

    return make


def _setup_logging(home: str | None) -> None:
    from app.paths import PrivateLogFile, app_paths

    logs = app_paths(home).logs
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    try:
        logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        handlers.append(
            PrivateLogFile(
                logs / "sync-worker.log", maxBytes=2_000_000, backupCount=2, encoding="utf-8"
            )
        )
    except OSError:
        pass
    handlers[0].setLevel(logging.WARNING)
    for handler in handlers:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s[worker]: %(message)s")
        )
    root = logging.getLogger()
    root.handlers = handlers
    root.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pairsync-sync-worker", description=__doc__)
    parser.add_argument("--home")
    parser.add_argument("--allow-insecure-keyring", action="store_true")
    parser.add_argument("--service", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # The events own the real stdout; anything else printed goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", newline="\n")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _setup_logging(args.home)
    worker = _Worker(out, _service_factory(args))
    gc.freeze()  # the imports live as long as the worker: keep them out of full collections
    # A run keeps what it reads until it ends: collect young objects less often (as the CLI
    # does, app.cli.RUN_GC_THRESHOLD), or the collector walks the growing heap again and again.
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    reader = threading.Thread(
        target=worker.read_commands, args=(sys.stdin,), name="commands", daemon=True
    )
    reader.start()
    try:
        worker.serve(_env_float("PAIRSYNC_WORKER_IDLE_S", IDLE_SECONDS))
    finally:
        if worker.service is not None:
            worker.service.close()
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
