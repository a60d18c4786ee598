"""Pairsync as a program: ``python -m app``, the ``pairsync`` console script and the
installer-built app all start here (``console``).

A command-line command ends without the interpreter's teardown (issue 18). Once everything
Pairsync opened is closed, a normal exit still frees every module, class and object one by
one: about 60 ms of CPU at the end of each cron-run ``pairsync sync`` (more than a tenth of a
no-change run), for memory the operating system takes back at once. So this module registers
its exit handler before anything else is imported: handlers run last-registered-first, so
``_exit_now`` runs after every other one (the log file's close, temporary folders' removal,
joining the threads: the interpreter does that before any handler), flushes the terminal and
ends the process with the command's exit status. The desktop app and its sync worker exit
normally (``cli.ran_a_command`` is false for them), as does anything that stops with an
exception (``--help``, ``--version``).
"""

from __future__ import annotations

import atexit
import os
import sys

_status: list[int] = []
"""The exit status of a command that returned: ``_exit_now`` ends the process with it.
Empty: exit normally."""


def _exit_now() -> None:
    if not _status:
        return
    code = _status[0]
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # no console (a windowed app on Windows)
            continue
        try:
            stream.flush()
        except ValueError:  # closed: nothing left to write
            pass
        except OSError:  # e.g. a pipe closed by the reader: the interpreter's own status
            code = 120
    os._exit(code)


atexit.register(_exit_now)


def console() -> int:
    from app.cli import main, ran_a_command

    code = main()
    if ran_a_command():
        _status.append(code)
    return code


if __name__ == "__main__":
    raise SystemExit(console())
