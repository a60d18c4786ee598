"""The sync worker process (``app.sync_worker``), driven through its client as the desktop
app's scheduler drives it, over real address books (a vCard folder and a CSV file)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from app.service import ConnectionSettings, Service
from app.sync_worker import WorkerClient, WorkerOptions
from tests.ui.desktop import card, read_csv, write_csv


class Crashing(Service):
    """Dies in the middle of its first sync, as a crash or a kill would end it."""

    def sync(self, *args: Any, **kwargs: Any) -> Any:
        os._exit(3)


class Chatty(Service):
    """Prints to stdout, as a careless library might: the events must not suffer."""

    def sync(self, *args: Any, **kwargs: Any) -> Any:
        print("hello from a library", flush=True)
        print('{"event": "finished", "id": 1, "report": {"status": "forged"}}', flush=True)
        return super().sync(*args, **kwargs)


@pytest.fixture
def books(tmp_path: Path, pairsync_home: Path) -> tuple[Path, Path]:
    folder, sheet = tmp_path / "cards", tmp_path / "contacts.csv"
    folder.mkdir()
    for i in range(40):
        (folder / f"p{i}.vcf").write_text(
            card(f"p{i}", f"Person {i}", f"p{i}@example.com"), encoding="utf-8"
        )
    write_csv(sheet, [{"First Name": "Ann", "Last Name": "Lee", "E-mail Address": "a@x.com"}])
    svc = Service()
    svc.add_account("vcard-folder", "Phone", {"path": str(folder)})
    svc.add_account("csv", "Sheet", {"path": str(sheet)})
    svc.create_connection("Main", "Phone", "Sheet", ConnectionSettings())
    svc.close()
    return folder, sheet


def sync_job(**extra: Any) -> dict[str, Any]:
    return {"kind": "sync", "name": "Main", "reason": "manual"} | extra


def run(client: WorkerClient, job: dict[str, Any], **kw: Any) -> tuple[dict[str, Any], list]:
    progress: list[dict[str, Any]] = []
    return client.run(job, progress.append, **kw), progress


def test_a_sync_runs_in_the_worker_and_reports_progress(books: tuple[Path, Path]) -> None:
    folder, sheet = books
    client = WorkerClient()
    try:
        event, progress = run(client, sync_job())
        assert event["event"] == "finished", event
        report = event["report"]
        assert report["status"] == "ok" and report["kind"] == "sync"
        assert report["created"] == {"a": 1, "b": 40}
        assert len(read_csv(sheet)) == 41 and len(list(folder.glob("*.vcf"))) == 41
        phases = [p["phase"] for p in progress]
        assert {"Matching", "Planning", "Writing"} <= set(phases)
        percents = [p["percent"] for p in progress]
        assert percents == sorted(percents) and percents[-1] >= 80
        # The worker stays up for the next job: one process for both runs.
        again, _ = run(client, sync_job())
        assert again["report"]["status"] == "ok" and again["report"]["created"] == {"a": 0, "b": 0}
        assert client.starts == 1 and client.alive()
    finally:
        client.close()
    assert not client.alive()


def test_a_cancel_that_comes_first_stops_the_run_before_it_writes(
    books: tuple[Path, Path],
) -> None:
    _, sheet = books
    stop = threading.Event()
    stop.set()
    client = WorkerClient()
    try:
        event, _ = run(client, sync_job(), stop=stop)
    finally:
        client.close()
    assert event["report"]["status"] == "cancelled"
    assert len(read_csv(sheet)) == 1


def test_a_refused_job_fails_with_the_services_sentence(books: tuple[Path, Path]) -> None:
    client = WorkerClient()
    try:
        event, _ = run(client, {"kind": "sync", "name": "Nope"})
        assert event["event"] == "failed"
        assert "Nope" in event["message"] and "Traceback" not in event["message"]
        event, _ = run(client, {"kind": "undo", "name": "Main", "run_id": 99})
        assert event["event"] == "failed" and "Traceback" not in event["message"]
        assert client.starts == 1  # a refusal does not end the worker
    finally:
        client.close()


def test_a_crashed_worker_fails_its_job_and_the_next_job_gets_a_new_one(
    books: tuple[Path, Path],
) -> None:
    crashing = WorkerClient(WorkerOptions(service=f"{__name__}:Crashing"))
    try:
        event, _ = run(crashing, sync_job())
    finally:
        crashing.close()
    assert event["event"] == "failed"
    assert "stopped unexpectedly (exit code 3)" in event["message"]
    assert "Nothing is lost" in event["message"]
    # A worker killed between two jobs: the next job starts a fresh one.
    client = WorkerClient()
    try:
        run(client, {"kind": "sync", "name": "Nope"})
        proc = client._proc
        assert proc is not None
        proc.kill()
        proc.wait()
        event, _ = run(client, sync_job())
        assert event["report"]["status"] == "ok" and client.starts == 2
    finally:
        client.close()


def test_prints_to_stdout_cannot_forge_or_break_events(books: tuple[Path, Path]) -> None:
    client = WorkerClient(WorkerOptions(service=f"{__name__}:Chatty"))
    try:
        event, _ = run(client, sync_job())
    finally:
        client.close()
    assert event["event"] == "finished" and event["report"]["status"] == "ok"


def test_a_worker_over_its_memory_limit_retires_after_the_job(
    books: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAIRSYNC_WORKER_MAX_MB", "1")
    client = WorkerClient()
    try:
        first, _ = run(client, sync_job())
        assert first["report"]["status"] == "ok" and first["retire"] is True
        assert not client.alive()
        second, _ = run(client, sync_job())
        assert second["event"] == "finished" and second["report"]["status"] == "ok"
        assert client.starts == 2
    finally:
        client.close()


def test_the_worker_reads_secrets_from_the_keyring_not_from_the_pipe(
    books: tuple[Path, Path],
) -> None:
    """The job message carries names and numbers only (what ``Scheduler`` sends)."""
    from app.ui.scheduler import Job

    message = Job("sync", "Main", confirm=True).message()
    assert set(message) == {
        "kind",
        "name",
        "confirm",
        "run_id",
        "record",
        "conflict_id",
        "reason",
    }


def test_an_idle_worker_ends_and_the_next_job_starts_a_new_one(
    books: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setenv("PAIRSYNC_WORKER_IDLE_S", "0.3")
    client = WorkerClient()
    try:
        first, _ = run(client, sync_job())
        assert first["report"]["status"] == "ok"
        deadline = time.monotonic() + 20
        while client.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.alive()  # it gave its memory back
        again, _ = run(client, sync_job())
        assert again["report"]["status"] == "ok" and client.starts == 2
    finally:
        client.close()


def test_a_job_sent_as_the_worker_ended_idle_goes_to_a_new_worker(
    books: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: the worker ends for being idle just as a job is written to it. It never
    read the job (exit code 0, no event for it), so the job goes to a fresh worker once."""
    import subprocess
    import sys

    client = WorkerClient()
    real_ensure = client._ensure
    calls: list[str] = []

    def ensure() -> Any:
        if not calls:
            calls.append("ended")
            ended = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(0.5)"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            client._proc = ended
            return ended
        calls.append("fresh")
        return real_ensure()

    monkeypatch.setattr(client, "_ensure", ensure)
    try:
        event, _ = run(client, sync_job())
    finally:
        client.close()
    assert calls == ["ended", "fresh"]
    assert event["event"] == "finished" and event["report"]["status"] == "ok"


def test_the_cli_starts_a_worker_for_an_installer_built_app(books: tuple[Path, Path]) -> None:
    """A frozen app has no ``-m``: it starts ``<app> _sync-worker``, which the CLI's entry
    point hands to the worker (``WorkerOptions.command``)."""
    import json
    import subprocess
    import sys

    job = {"job": sync_job(id=7)}
    entry = "import sys; from app.cli import main; sys.exit(main())"
    out = subprocess.run(
        [sys.executable, "-c", entry, "_sync-worker"],
        input=json.dumps(job) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[-1]["event"] == "finished" and events[-1]["id"] == 7
    assert events[-1]["report"]["status"] == "ok"
    assert all(e["event"] in ("progress", "finished") for e in events)


def test_the_wizards_connect_reads_the_app_in_the_worker(
    books: tuple[Path, Path], tmp_path: Path
) -> None:
    """The wizard's Connect for a file or folder (no secret): the worker reads it, adds the
    account in place of the page's earlier try, and answers with the check; an existing
    account is checked there too; a path that is not there fails with the sentence."""
    from app.service import AccountCheck

    folder, _sheet = books
    client = WorkerClient()
    try:
        message = {"kind": "connect_account", "name": "", "app": "vcard-folder"}
        first, _ = run(client, message | {"settings": {"path": str(folder)}})
        tried = AccountCheck.from_json(first["report"])
        assert tried.contacts == 40 and tried.account and tried.account != "Phone"
        again, progress = run(
            client, message | {"settings": {"path": str(folder)}, "previous": tried.account}
        )
        check = AccountCheck.from_json(again["report"])
        assert check.contacts == 40 and progress
        names = sorted(a.name for a in Service().list_accounts())
        assert names == sorted(["Phone", "Sheet", check.account])  # the first try replaced
        existing, _ = run(client, {"kind": "check_account", "name": "Phone"})
        assert AccountCheck.from_json(existing["report"]).account == "Phone"
        missing, _ = run(client, message | {"settings": {"path": str(tmp_path / "nowhere")}})
        assert missing["event"] == "failed" and "nowhere" in missing["message"]
    finally:
        client.close()
