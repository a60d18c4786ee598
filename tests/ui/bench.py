"""Desktop app timings, printed (not collected by pytest):

    python -m tests.ui.bench [--contacts 1000]

* start-up: from launching ``python`` to the main window shown and its event loop running;
* preview: the wizard's dry run over a vCard folder and a CSV file of N contacts each (half
  of them the same people), as the preview page runs it (worker thread, own Service).
Offscreen, in a temporary PAIRSYNC_HOME with an in-memory keyring.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

STARTUP = """
import time
from PySide6.QtCore import QTimer
from app.ui.main import create_app, main
app = create_app([])
def shown():
    print("shown", time.time(), flush=True)
    app.quit()
QTimer.singleShot(0, shown)
raise SystemExit(main([]))
"""


def startup_seconds(home: Path) -> float:
    env = os.environ | {"PAIRSYNC_HOME": str(home)}
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-c", STARTUP], env=env, capture_output=True, text=True, check=True
    ).stdout
    shown = float(next(line for line in out.splitlines() if line.startswith("shown")).split()[1])
    return shown - started


def preview_seconds(root: Path, n: int) -> tuple[float, dict[str, object]]:
    import keyring
    from PySide6.QtCore import QEventLoop

    from app.service import ConnectionSettings, Service
    from app.ui.dashboard.preview_view import PreviewView
    from app.ui.main import create_app
    from app.ui.tasks import TaskRunner
    from tests.conftest import MemoryKeyring
    from tests.ui.contacts import many_contacts

    keyring.set_keyring(MemoryKeyring())
    os.environ["PAIRSYNC_HOME"] = str(root / "home")
    create_app([])
    folder, sheet = many_contacts(root, n)
    service = Service()
    service.add_account("vcard-folder", "Phone", {"path": str(folder)})
    service.add_account("csv", "Sheet", {"path": str(sheet)})
    service.create_connection("Main", "Phone", "Sheet", ConnectionSettings())
    view = PreviewView(service, TaskRunner(Service))
    view.set_connection("Main")
    loop = QEventLoop()
    view.finished.connect(loop.quit)
    started = time.perf_counter()
    view.start()
    loop.exec()
    elapsed = time.perf_counter() - started
    assert view.preview is not None
    return elapsed, view.preview.report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Desktop app timings.")
    parser.add_argument("--contacts", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pairsync-bench-") as tmp:
        root = Path(tmp)
        first = startup_seconds(root / "start")
        again = startup_seconds(root / "start")
        print(
            f"start-up to window shown: {first:.2f} s (first, new database), {again:.2f} s (again)"
        )
        seconds, report = preview_seconds(root, args.contacts)
        print(
            f"preview of {args.contacts} + {args.contacts} contacts: {seconds:.2f} s "
            f"(matched {report['matched']}, to create {report['created']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
