"""The task runner (``app.ui.tasks``): what a job holds is let go in the GUI thread, and a
finished task is not kept."""

from __future__ import annotations

import gc
import threading

from app.service import Service
from app.ui.tasks import TaskControl, TaskRunner
from tests.ui.last_reference import Witness, held_after_emit


def test_a_job_and_its_callbacks_are_let_go_in_the_gui_thread(runner: TaskRunner) -> None:
    """A job and its callbacks hold widgets (a save closes over its page, ``on_done`` is a
    view's method). The pool's thread is held just after its emits until the GUI thread has
    taken the answer in and let go of the task: the order in which the thread's reference
    would be the last one. Before, the job was never freed at all: each task, with its job,
    was kept by the QThreadPool it had been given to as a QRunnable, for the pool's life."""
    witness = Witness()
    with held_after_emit():
        holder = witness.holder()

        def job(service: Service, control: TaskControl, held: object = holder) -> int:
            return 1

        runner.start(job, on_done=holder.done)
        del holder, job
        witness.wait_answered()
        assert not runner.active
    assert runner.wait(10_000)
    gc.collect()
    assert witness.freed_on == [threading.get_ident()]
