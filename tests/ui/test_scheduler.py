"""The background scheduler (SPEC §9) over a real vCard folder and CSV file: scheduled runs,
Sync now, coalescing, pause, cancel, the mass-change guard's dialog, intervals."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication

from app.errors import ConfigError
from app.service import Service
from app.status import ConnectionSummary
from app.sync_worker import WorkerOptions
from app.ui.connection_list import ConnectionListModel, SummaryRole
from app.ui.guard_dialog import GuardPrompt
from app.ui.notifications import Notifier
from app.ui.progress import ProgressDelegate, RunProgressBar, SyncProgress
from app.ui.scheduler import Scheduler
from tests.ui.desktop import Desk, WriteLock, desk, write_csv

__all__ = ["desk"]


class Broken(Service):
    """A Service whose syncs crash: the sync worker process runs it (``--service``)."""

    def sync(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def show_message(self, title: str, text: str, icon: Any = None) -> None:
        self.messages.append((title, text))


def summary(model: ConnectionListModel, name: str) -> ConnectionSummary:
    row: ConnectionSummary = model.index(model.row_of(name)).data(SummaryRole)
    return row


def test_a_scheduled_run_fires_and_updates_the_list(desk: Desk, qtbot: Any) -> None:
    desk.put_card("ann", "Ann Lee", "ann@x.com")
    model = ConnectionListModel()
    progress = SyncProgress(desk.scheduler)
    progress.attach_list(model)
    percents: list[int] = []
    desk.scheduler.run_progress.connect(lambda *args: percents.append(args[-1]))
    desk.scheduler.states_changed.connect(
        lambda: model.set_rows(desk.service.connection_overview())
    )
    model.set_rows(desk.service.connection_overview())
    assert summary(model, desk.name).status.code == "new"
    first = desk.sync(qtbot)  # starting runs what is due: the never-synced connection
    assert first["reason"] == "scheduled" and first["created"]["b"] == 1
    assert summary(model, desk.name).status.code == "ok"
    assert percents and percents[-1] == 100
    assert desk.name not in model.syncing  # the "Syncing n%" overlay is gone
    # Time passes (or the laptop sleeps through the run that was due): the next tick of
    # the timer finds the connection overdue in the database and syncs it.
    desk.put_card("bo", "Bo Bee", "bo@x.com")
    desk.backdate_runs(10)
    desk.scheduler.tick_ms = 100
    with qtbot.waitSignal(desk.scheduler.run_finished, timeout=20_000) as blocker:
        desk.scheduler.check_due()
    report = blocker.args[1]
    assert report["reason"] == "scheduled" and report["created"]["b"] == 1
    assert set(desk.rows()) == {"ann@x.com", "bo@x.com"}
    assert summary(model, desk.name).last_run_at is not None
    # The next run is derived from this run: five minutes on, nothing due before.
    [entry] = desk.service.schedule()
    assert entry.interval_minutes == 5 and entry.due_at is not None
    qtbot.wait(300)  # three ticks: nothing is due, nothing runs
    assert len(desk.reports) == 2


def test_sync_now_while_running_coalesces_into_one_follow_up(desk: Desk, qtbot: Any) -> None:
    for i in range(40):
        desk.put_card(f"p{i}", f"Person {i}", f"p{i}@x.com")
    started: list[str] = []

    def trigger_again(name: str, kind: str) -> None:
        started.append(name)
        if len(started) == 1:
            # While the first run is running: five more clicks, and the schedule's tick.
            for _ in range(5):
                desk.scheduler.sync_now([desk.name])
            desk.scheduler.check_due()
            assert desk.scheduler.queued() == [desk.name]

    desk.scheduler.run_started.connect(trigger_again)
    desk.sync(qtbot)
    desk.wait_idle(qtbot)
    assert started == [desk.name, desk.name]  # one follow-up run, never two at once
    assert len(desk.reports) == 2
    assert desk.reports[1]["created"] == {"a": 0, "b": 0}  # it found nothing left to do
    assert len(desk.rows()) == 40


def test_paused_connections_never_run(desk: Desk, qtbot: Any) -> None:
    desk.put_card("ann", "Ann Lee", "ann@x.com")
    desk.scheduler.pause_all()
    assert desk.scheduler.all_paused()  # at once, while the flag is being saved
    desk.scheduler.start()
    assert desk.scheduler.sync_now() == [] and desk.scheduler.sync_now([desk.name]) == []
    desk.wait_saved(qtbot)
    [entry] = desk.service.schedule()
    assert entry.hold == "paused" and entry.due_at is None
    qtbot.wait(200)
    assert desk.reports == [] and not desk.sheet.read_text().count("ann@x.com")
    with qtbot.waitSignal(desk.scheduler.run_finished, timeout=20_000) as blocker:
        desk.scheduler.resume_all()  # resuming syncs at once (a full read)
    assert blocker.args[1]["created"]["b"] == 1


def test_cancel_stops_at_a_safe_point_and_the_next_run_completes(desk: Desk, qtbot: Any) -> None:
    for i in range(300):
        desk.put_card(f"p{i:03}", f"Person {i}", f"p{i}@x.com")
    cancels: list[bool] = []
    desk.scheduler.run_started.connect(
        lambda name, kind: cancels.append(desk.scheduler.cancel(name))
    )
    report = desk.sync(qtbot, timeout=60_000)
    assert cancels == [True] and report["status"] == "cancelled"
    written = len(desk.rows())
    assert written < 300 and report["created"]["b"] == written
    assert desk.service.connection_state(desk.name).status.code != "auth"
    desk.scheduler.run_started.disconnect()
    report = desk.sync(qtbot, timeout=60_000)
    assert report["status"] == "ok" and report["created"]["b"] == 300 - written
    assert len(desk.rows()) == 300  # no duplicate, nothing lost


def test_the_guard_asks_and_continue_goes_past_it(desk: Desk, qtbot: Any) -> None:
    for i in range(10):
        desk.put_card(f"p{i}", f"Person {i}", f"p{i}@x.com")
    sink = Sink()
    notifier = Notifier(desk.service, desk.scheduler, sink)
    prompt = GuardPrompt(desk.service, desk.scheduler)
    assert desk.sync(qtbot)["status"] == "ok"
    write_csv(desk.sheet, [])  # the sheet was emptied by mistake
    with qtbot.waitSignal(desk.scheduler.guard_stopped, timeout=20_000):
        desk.scheduler.sync_now()
    dialog = prompt.dialogs[desk.name]
    assert dialog.isVisible()
    assert dialog.counts == {"listed": 0, "known": 10, "gone": 10}
    assert any("Stopped before writing" in title for title, _ in sink.messages)
    assert [kind for kind, _title, _text in notifier.sent] == ["guard"]
    [entry] = desk.service.schedule()
    assert entry.hold == "guard"  # no scheduled run until the user decides
    assert desk.service.connection_state(desk.name).status.code == "guard"
    with qtbot.waitSignal(desk.scheduler.run_finished, timeout=20_000) as blocker:
        dialog.continue_button.click()
    report = blocker.args[1]
    assert report["status"] == "ok" and report["deleted_other_side"] == 10
    assert len(list(desk.folder.glob("*.vcf"))) == 10  # never deletes
    assert desk.name not in prompt.dialogs


def test_guard_cancel_writes_nothing_and_waits(desk: Desk, qtbot: Any) -> None:
    for i in range(10):
        desk.put_card(f"p{i}", f"Person {i}", f"p{i}@x.com")
    prompt = GuardPrompt(desk.service, desk.scheduler)
    desk.sync(qtbot)
    write_csv(desk.sheet, [])
    with qtbot.waitSignal(desk.scheduler.guard_stopped, timeout=20_000):
        desk.scheduler.sync_now()
    runs = len(desk.reports)
    prompt.dialogs[desk.name].cancel_button.click()
    qtbot.wait(200)
    assert len(desk.reports) == runs and desk.scheduler.queued() == []
    assert desk.service.schedule()[0].hold == "guard"


def test_interval_is_per_connection_and_survives_a_restart(desk: Desk, qtbot: Any) -> None:
    desk.sync(qtbot)
    desk.scheduler.set_interval(desk.name, 15)
    with pytest.raises(ConfigError):
        desk.scheduler.set_interval(desk.name, 61)
    desk.wait_saved(qtbot)
    [before] = desk.service.schedule()
    again = Service()  # as after a restart
    try:
        [after] = again.schedule()
    finally:
        again.close()
    assert after.interval_minutes == 15 and after.due_at == before.due_at
    assert after.due_at is not None and desk.reports
    last = desk.service.connection_state(desk.name).last_run_at
    assert last is not None and (after.due_at - last).total_seconds() == 15 * 60


def test_progress_reaches_the_dashboard_bar_and_list_delegate(desk: Desk, qtbot: Any) -> None:
    for i in range(30):
        desk.put_card(f"p{i}", f"Person {i}", f"p{i}@x.com")
    progress = SyncProgress(desk.scheduler)
    bar = RunProgressBar(progress, desk.scheduler)
    qtbot.addWidget(bar)
    bar.set_connection(desk.name)
    delegate = ProgressDelegate(progress)
    seen: list[tuple[str, int, str]] = []

    def record(name: str) -> None:
        p = progress.get(name)
        if p is not None:
            seen.append((p.phase, p.step, p.phase_text()))

    progress.changed.connect(record)
    desk.sync(qtbot)
    steps = [step for _phase, step, _text in seen]
    assert steps == sorted(steps) and steps[-1] == 5  # Reading A … Writing, in order
    assert any(text.startswith("Reading") and "step 1 of 5" in text for _p, _s, text in seen)
    assert any(text.startswith("Writing") and "of 30" in text for _p, _s, text in seen)
    assert bar.isHidden() and progress.get(desk.name) is None  # gone once the run ended
    assert delegate.progress is progress


def test_shutdown_stops_a_running_sync(qtbot: Any, tmp_path: Any, pairsync_home: Any) -> None:
    from tests.ui.desktop import make_desk

    d = make_desk(tmp_path)
    for i in range(300):
        d.put_card(f"p{i:03}", f"Person {i}", f"p{i}@x.com")
    try:
        # Progress, not just "started": the run is inside the engine (a job cancelled
        # before it reached the worker process ends without a run).
        with qtbot.waitSignal(d.scheduler.run_progress, timeout=20_000):
            d.scheduler.start()
        assert d.scheduler.shutdown(30_000)
        QCoreApplication.processEvents()
        assert (
            d.service._connections.last_run(d.service._connections.connection(d.name).id)
            is not None
        )
    finally:
        d.scheduler.shutdown()
        d.service.close()


def test_scheduler_without_a_started_thread_does_nothing(qtbot: Any, pairsync_home: Any) -> None:
    svc = Service()
    try:
        s = Scheduler(svc)
        assert s.sync_now() == [] and s.running() is None
        assert s.shutdown()
    finally:
        svc.close()


def test_a_job_that_cannot_run_is_not_retried_in_a_loop(
    qtbot: Any, tmp_path: Any, pairsync_home: Any
) -> None:
    from tests.ui.desktop import make_desk

    d = make_desk(tmp_path)
    d.scheduler.shutdown()
    worker = WorkerOptions(service=f"{__name__}:Broken")
    sched = Scheduler(d.service, worker=worker, tick_ms=50)
    failures: list[str] = []
    sched.job_failed.connect(lambda name, kind, message: failures.append(message))
    try:
        sched.start()
        qtbot.waitUntil(lambda: len(failures) == 1, timeout=20_000)
        qtbot.wait(400)  # eight ticks: the connection is still "due" in the database
        assert failures == ["Unexpected error: RuntimeError: boom"]
        assert sched.running() is None and sched.queued() == []
    finally:
        assert sched.shutdown()
        d.service.close()


def test_a_connection_another_process_is_syncing_is_skipped_without_spinning(
    desk: Desk, qtbot: Any
) -> None:
    """The sync worker finds Main's writer lock held (``pairsync sync`` from cron, say):
    the run is skipped, recorded nowhere, and the schedule waits instead of retrying at
    every tick."""
    from tests.test_run_lock import hold_lock

    desk.put_card("ann", "Ann Lee", "ann@x.com")
    holder = hold_lock(desk.service)
    try:
        report = desk.sync(qtbot)
        assert report["status"] == "busy" and "right now" in report["message"]
        started: list[str] = []
        desk.scheduler.run_started.connect(lambda name, kind: started.append(name))
        desk.scheduler.check_due()
        qtbot.wait(300)
        assert started == [] and desk.scheduler.queued() == []
    finally:
        holder.kill()
        holder.wait()
    # Sync now is the user's own decision: it runs at once, and now syncs.
    report = desk.sync(qtbot)
    assert report["status"] == "ok" and report["created"]["b"] == 1


def test_pause_and_interval_never_wait_for_the_write_lock(desk: Desk, qtbot: Any) -> None:
    """While a sync holds SQLite's write lock, Pause and the interval return at once: the
    connection counts as paused (no run starts), and both land once the lock is free."""
    import time

    saved: list[tuple[str, str, str]] = []
    desk.scheduler.saved.connect(lambda *args: saved.append(args))
    lock = WriteLock(desk.service.paths.database)
    try:
        started = time.perf_counter()
        desk.scheduler.pause(desk.name)
        desk.scheduler.set_interval(desk.name, 9)
        took = time.perf_counter() - started
        assert desk.scheduler.paused(desk.name) and desk.scheduler.saving(desk.name)
        assert desk.scheduler.sync_now([desk.name]) == []  # paused at once
        qtbot.wait(300)
        assert saved == []  # still waiting for the lock, off the GUI thread
    finally:
        lock.release()
    assert took < 0.1
    desk.wait_saved(qtbot)
    view = desk.service.show_connection(desk.name)
    assert view.paused is True and view.settings.interval_minutes == 9
    assert sorted(what for _n, what, error in saved if not error) == ["interval", "pause"]


def test_a_quick_pause_and_resume_lands_as_the_last_click(desk: Desk, qtbot: Any) -> None:
    desk.put_card("ann", "Ann Lee", "ann@x.com")
    desk.scheduler.start()
    desk.wait_idle(qtbot)
    lock = WriteLock(desk.service.paths.database)  # the saves queue up behind it
    try:
        desk.scheduler.pause(desk.name)
        desk.scheduler.resume(desk.name)
        desk.scheduler.pause(desk.name)
        assert desk.scheduler.paused(desk.name)
    finally:
        lock.release()
    desk.wait_saved(qtbot)
    assert desk.service.is_paused(desk.name) is True
    qtbot.wait(300)
    assert desk.scheduler.running() is None and desk.scheduler.queued() == []
    runs = len(desk.reports)
    with qtbot.waitSignal(desk.scheduler.run_finished, timeout=20_000):
        desk.scheduler.resume(desk.name)  # resuming syncs, once saved
        desk.scheduler.pause(desk.name)
        desk.scheduler.resume(desk.name)
    desk.wait_saved(qtbot)
    assert desk.service.is_paused(desk.name) is False and len(desk.reports) == runs + 1


def test_a_resume_syncs_once_when_the_timer_reads_the_schedule_before_the_save_answers(
    desk: Desk, qtbot: Any
) -> None:
    """Resume saves the flag on a task thread and then syncs. The schedule's timer may read
    the database after the flag landed but before the save's answer reaches the GUI thread
    (as after the wizard's Finish): the never-synced connection is due, and it must not run
    twice (once scheduled, then once more as the resume's follow-up)."""
    import time

    desk.put_card("ann", "Ann Lee", "ann@x.com")
    desk.scheduler.pause(desk.name)  # the wizard's draft is paused until Finish
    desk.scheduler.start()
    desk.wait_saved(qtbot)
    qtbot.wait(200)
    assert desk.reports == []
    desk.scheduler.resume(desk.name)
    deadline = time.monotonic() + 20
    while desk.service.is_paused(desk.name):  # landed; its answer not taken in yet
        assert time.monotonic() < deadline, "the resume was not saved"
        time.sleep(0.01)
    desk.scheduler.check_due()  # the timer's tick, before the answer
    desk.wait_saved(qtbot)
    desk.wait_idle(qtbot)
    qtbot.wait(500)  # the schedule settles: nothing more is due
    desk.wait_idle(qtbot)
    assert len(desk.reports) == 1, [r.get("reason") for r in desk.reports]
    assert desk.reports[0]["created"]["b"] == 1


def test_a_refused_save_is_said_in_words(desk: Desk, qtbot: Any) -> None:
    failed: list[tuple[str, str, str]] = []
    desk.scheduler.job_failed.connect(lambda *args: failed.append(args))
    desk.service.delete_connection(desk.name)  # gone meanwhile (the CLI, another window)
    with qtbot.waitSignal(desk.scheduler.saved, timeout=20_000) as blocker:
        desk.scheduler.pause(desk.name)
    name, what, error = blocker.args
    assert (name, what) == (desk.name, "pause") and "no connection named" in error
    assert failed == [(desk.name, "pause", error)]
    assert not desk.scheduler.saving(desk.name)


def test_shutting_down_mid_save_keeps_the_save(desk: Desk, qtbot: Any) -> None:
    """Quit while a pause waits for the write lock: the scheduler's shutdown waits for
    it, and closing the window (``cancel_all``) does not drop it."""
    import threading

    lock = WriteLock(desk.service.paths.database)
    desk.scheduler.pause(desk.name)  # waits for the lock on the runner's one thread
    desk.scheduler.set_interval(desk.name, 9)  # not started yet: queued behind it
    desk.scheduler.runner.cancel_all()
    threading.Timer(0.5, lock.release).start()
    assert desk.scheduler.shutdown(30_000)  # returns once both are saved
    again = Service()
    try:
        view = again.show_connection(desk.name)
        assert view.paused is True and view.settings.interval_minutes == 9
    finally:
        again.close()
