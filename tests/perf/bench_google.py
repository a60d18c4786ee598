"""Google Contacts benchmark (not a pytest module; run on demand):

    python -m tests.perf.bench_google [--contacts 10000] [--json PATH]

A vCard folder of N cards (side A) is synced with an empty Google account (side B) served by
the People API emulator (``tests.emulators.google_people``, its own process, so its work is
not counted here). Each step is one ``pairsync sync`` in a fresh process (``ru_maxrss`` is
per step), exactly as the CLI runs it:

* ``first``: the N cards are created in Google;
* ``nochange``: nothing changed;
* ``local1``: 1 % of the cards get a new TITLE, then a sync;
* ``google1``: 1 % of the Google contacts get a new job title from another client (through
  the API, not counted), then a sync;
* ``steady``: nothing changed again.

For each step: wall time of the sync (and the part spent waiting for the emulator's
answers, ``in HTTP``; the emulator runs without its response checks here), peak RSS,
People API requests by method and the minimum a client could send for the step (a listing
is one request per 1000 people, a create or update batch one per 200 contacts, a sync-token
check one request), plus token requests (one per run: access tokens live in memory only).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bench-fixed-token"
STEPS = ("first", "nochange", "local1", "google1", "steady")


def make_card(i: int, title: str = "Engineer") -> str:
    uid = uuid.UUID(int=i + 1).hex
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:{uid}\r\nFN:Person {i} Example\r\nN:Example;Person {i};;;\r\n"
        f"EMAIL;TYPE=INTERNET,WORK:person{i}@example.com\r\n"
        f"TEL;TYPE=CELL:+44 7700 9{i:05d}\r\nORG:Company {i % 50}\r\nTITLE:{title}\r\n"
        f"NOTE:Met at conference {i % 7}\\, likes tea.\r\nEND:VCARD\r\n"
    )


def minimum(step: str, n: int) -> int:
    one_pct = max(1, n // 100)
    return {
        "first": 1 + math.ceil(n / 200),  # an empty listing, then the creates
        "nochange": 1,
        "local1": 1 + math.ceil(one_pct / 200),
        "google1": 1,
        "steady": 1,
    }[step]


# --- the measured process ------------------------------------------------------------------


def measured(argv: list[str]) -> dict[str, Any]:
    """Runs in a fresh process: one CLI call, with its requests counted."""
    from app.cli import main
    from app.connectors.http import HttpClient
    from app.connectors.oauth import tokens as oauth_tokens

    counts: Counter[str] = Counter()
    waiting = [0.0]
    send = HttpClient._send_once

    def counting(self: HttpClient, method: str, url: str, *args: Any, **kw: Any) -> Any:
        path = url.split("?", 1)[0].split("/", 3)[-1]
        name = path.split(":")[-1] if ":" in path else path.split("/")[-1]
        counts[f"{method} {name}"] += 1
        started = time.perf_counter()
        try:
            return send(self, method, url, *args, **kw)
        finally:
            waiting[0] += time.perf_counter() - started

    HttpClient._send_once = counting  # type: ignore[method-assign]
    refresh = oauth_tokens.OAuthTokens._refresh_locked

    def counting_refresh(self: Any) -> None:
        counts["token"] += 1
        refresh(self)

    oauth_tokens.OAuthTokens._refresh_locked = counting_refresh  # type: ignore[method-assign]
    if argv[:2] == ["account", "add"]:
        import webbrowser

        from tests.emulators.browser import Browser

        webbrowser.open = Browser("allow")  # type: ignore[assignment]
    started = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "code": code,
        "seconds": seconds,
        "http_seconds": waiting[0],
        "peak_mb": peak,
        "requests": dict(counts),
    }


def run_measured(home: Path, argv: list[str]) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(
        {
            "PAIRSYNC_HOME": str(home),
            "PYTHON_KEYRING_BACKEND": "tests.file_keyring.FileKeyring",
            "PAIRSYNC_TEST_KEYRING": str(home / "keyring.json"),
            "PYTHONPATH": str(ROOT),
        }
    )
    out = subprocess.run(
        [sys.executable, "-m", "tests.perf.bench_google", "--measure", json.dumps(argv)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"step failed: {argv}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if result["code"] != 0:
        raise SystemExit(
            f"pairsync exited {result['code']}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
        )
    return result


# --- the driver ----------------------------------------------------------------------------


def edit_google(url: str, count: int, title: str) -> None:
    """Another client gives ``count`` contacts a new job title (not counted)."""
    h = {"Authorization": f"Bearer {TOKEN}"}
    page = requests.get(
        url + "/v1/people/me/connections",
        params={"personFields": "organizations,metadata", "pageSize": 1000},
        headers=h,
        timeout=60,
    ).json()
    people = page["connections"][:count]
    body: dict[str, Any] = {"contacts": {}, "updateMask": "organizations", "readMask": "names"}
    for p in people:
        org = dict(p.get("organizations", [{}])[0])
        org.pop("metadata", None)
        org.pop("formattedType", None)
        org["title"] = title
        body["contacts"][p["resourceName"]] = {
            "organizations": [org],
            "metadata": {
                "sources": [{"type": "CONTACT", "etag": p["metadata"]["sources"][0]["etag"]}]
            },
        }
    r = requests.post(url + "/v1/people:batchUpdateContacts", json=body, headers=h, timeout=60)
    r.raise_for_status()


def bench(n: int) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="bench-google-"))
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.emulators.google_people",
            "--auto-consent",
            "--access-token",
            TOKEN,
            "--no-response-checks",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().strip()
        folder = work / "cards"
        folder.mkdir()
        for i in range(n):
            (folder / f"{uuid.UUID(int=i + 1).hex}.vcf").write_bytes(make_card(i).encode())
        home = work / "home"
        from tests.emulators.google_people import CLIENT_ID, CLIENT_SECRET

        run_measured(home, ["account", "add", "vcard-folder", "Phone", "--set", f"path={folder}"])
        run_measured(
            home,
            [
                "account",
                "add",
                "google",
                "Google",
                "--set",
                f"client_id={CLIENT_ID}",
                "--set",
                f"client_secret={CLIENT_SECRET}",
                "--set",
                f"api_base={url}",
                "--set",
                f"auth_base={url}",
            ],
        )
        run_measured(
            home,
            [
                "connection",
                "create",
                "main",
                "--a",
                "Phone",
                "--b",
                "Google",
                "--guard-threshold",
                str(n * 2),
            ],
        )
        rows = []
        for step in STEPS:
            if step == "local1":
                for path in sorted(folder.glob("*.vcf"))[: max(1, n // 100)]:
                    path.write_bytes(path.read_bytes().replace(b"TITLE:Engineer", b"TITLE:Lead"))
            if step == "google1":
                edit_google(url, max(1, n // 100), "Director")
            result = run_measured(home, ["sync", "main"])
            api = sum(v for k, v in result["requests"].items() if k != "token")
            rows.append(
                {
                    "step": step,
                    "contacts": n,
                    "seconds": round(result["seconds"], 2),
                    "http_seconds": round(result["http_seconds"], 2),
                    "peak_mb": round(result["peak_mb"]),
                    "requests": api,
                    "minimum": minimum(step, n),
                    "token_requests": result["requests"].get("token", 0),
                    "by_method": {k: v for k, v in result["requests"].items() if k != "token"},
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        return rows
    finally:
        emulator.terminate()
        emulator.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measured(json.loads(args.measure))))
        return
    rows = bench(args.contacts)
    print(
        f"\n{'step':9} {'contacts':>8} {'seconds':>8} {'in HTTP':>8} {'peak MB':>8} "
        f"{'requests':>9} {'minimum':>8}"
    )
    for r in rows:
        print(
            f"{r['step']:9} {r['contacts']:>8} {r['seconds']:>8} {r['http_seconds']:>8} "
            f"{r['peak_mb']:>8} "
            f"{r['requests']:>9} {r['minimum']:>8}   {r['by_method']}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
