"""HubSpot benchmark: the first two-way sync of a vCard folder with the HubSpot emulator under
HubSpot's rate limit (not a pytest module; run on demand):

    python -m tests.perf.bench_hubspot [--contacts 10000] [--limit 100] [--interval 10]
                                       [--validate] [--json PATH]

The contacts are split: 40 % only in the folder (created in HubSpot), 40 % only in HubSpot
(created in the folder), 20 % in both with a different job title (the folder wins: HubSpot is
updated). One ``pairsync sync`` runs in this process against the emulator, which enforces
``--limit`` requests per ``--interval`` seconds (rolling, as HubSpot does) and answers 429
beyond it. Then a second sync with nothing changed.

Printed per sync: HubSpot requests by kind (``requests`` = those counted by the ten-second
limit; ``searches`` have their own per-second one); the minimum possible (⌈N/100⌉ per batch
operation: the listing pages, the creates, the updates, plus the two schema reads); 429s;
wall time; and the throughput while Pairsync talked to HubSpot, as a fraction of what the
limit allows over the same span (``limit`` at once, then ``limit`` per ``interval``): from the
first to the last request the emulator saw. ``rate_fraction`` compares with the steady rate
alone (``limit`` / ``interval``): at 100 / 10 s the first window's burst of 100 would let the
whole 10k sync's 122 requests go in about 3 s, which no engine doing 10k contacts' work meets,
so ``ceiling_fraction`` stays near 0.5 there while the run sends about 9 requests a second.
A fraction well below 1 with no 429s means the limit was not what bounded the run (the
engine's own work was). ``longest_pause_s`` is the
longest stretch without any HubSpot request (under a rolling limit, paced requests come in
bursts, so pauses up to ``interval`` are the pacing itself; a longer one is the engine
matching and planning between reading and writing).

``--feed N`` then measures the change feed the engine will use (``HubSpotApp.changes``) on
its own: N contacts changed since the cursor (more than the 10,000 one search can page
through), searched 200 a page at 4 searches per second: search requests, restarts, 429s,
seconds, and whether every changed contact came back exactly once.

``--opt-outs`` gives the token the communication-preferences scopes and turns Sync
Unsubscribes on: each contact the first sync reads has its opt-out status read (one batch
request per 100 addresses, ``prefs read``).

``--validate`` also checks every exchange against HubSpot's OpenAPI files (slower).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

from tests.emulators.hubspot.scopes import ALL_SCOPES, CRM_SCOPES
from tests.emulators.hubspot.server import HubSpotEmulator

TOKEN = "pat-na1-bench"


def card(i: int, title: str) -> str:
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:bench-{i}\r\nFN:Person {i} Example\r\nN:Example;Person {i};;;\r\n"
        f"EMAIL;TYPE=INTERNET:person{i}@example.com\r\nTITLE:{title}\r\n"
        f"TEL;TYPE=CELL:+44 20 7946 {i % 10000:04d}\r\nEND:VCARD\r\n"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-hubspot-"))
    os.environ["PAIRSYNC_HOME"] = str(work / "home")
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
    os.environ["XDG_DATA_HOME"] = str(work / "xdg")
    os.environ["HUBSPOT_TOKEN"] = TOKEN
    from app.cli import main

    n = args.contacts
    only_folder = range(0, int(n * 0.4))
    only_hubspot = range(int(n * 0.4), int(n * 0.8))
    both = range(int(n * 0.8), n)
    folder = work / "cards"
    folder.mkdir()
    for i in [*only_folder, *both]:
        (folder / f"bench-{i}.vcf").write_text(card(i, "Engineer"), encoding="utf-8")
    emulator = HubSpotEmulator(
        access_token=TOKEN,
        rate_limit=args.limit,
        rate_interval=args.interval,
        validate=args.validate,
        scopes=ALL_SCOPES if args.opt_outs else CRM_SCOPES,
    )
    for i in [*only_hubspot, *both]:
        emulator.portal.seed(
            {
                "email": f"person{i}@example.com",
                "firstname": f"Person {i}",
                "lastname": "Example",
                "jobtitle": "Manager" if i in both else "Engineer",
            }
        )
    emulator.start()
    times: list[float] = []
    original = emulator.handle

    def timed(*a: Any, **kw: Any) -> Any:
        times.append(time.monotonic())
        return original(*a, **kw)

    emulator.handle = timed  # type: ignore[method-assign]
    quiet = StringIO()
    with redirect_stdout(quiet):
        argv = ["--allow-insecure-keyring"]
        assert (
            main([*argv, "account", "add", "vcard-folder", "Phone", "--set", f"path={folder}"]) == 0
        )
        assert main([*argv, "account", "add", "hubspot", "HS", "--set", f"api_base={emulator.url}",
                     "--secret-env", "HUBSPOT_TOKEN"]) == 0  # fmt: skip
        unsub = ["--unsubscribes", "on"] if args.opt_outs else []
        assert (
            main([*argv, "connection", "create", "main", "--a", "Phone", "--b", "HS", *unsub]) == 0
        )
    # Account checks are not part of the sync: start counting (and the window) afresh.
    emulator.set_rate_limit(args.limit, args.interval)
    results = {}
    for label in ("first", "nochange"):
        emulator.stats.by_route.clear()
        emulator.stats.requests = 0
        emulator.stats.rate_limited = 0
        times.clear()
        out = StringIO()
        started = time.monotonic()
        with redirect_stdout(out):
            code = main(["--allow-insecure-keyring", "sync", "main", "--yes", "--json"])
        wall = time.monotonic() - started
        report = json.loads(out.getvalue())[0]
        # Searches have their own per-second limit: the ten-second budget is the rest.
        searches = emulator.stats.by_route.get("search", 0)
        requests = emulator.stats.requests - searches
        span = (times[-1] - times[0]) if len(times) > 1 else 0.0
        allowed = args.limit + args.limit * span / args.interval
        gaps = [b - a for a, b in itertools.pairwise(times)]
        listed = (
            len(emulator.portal.live()) if label == "nochange" else len(only_hubspot) + len(both)
        )
        created_b = report["created"]["b"]
        updated_b = report["updated"]["b"]
        minimum = 2 + max(1, math.ceil(listed / 100))
        minimum += math.ceil(created_b / 100) + math.ceil(updated_b / 100)
        results[label] = {
            "exit": code,
            "created": report["created"],
            "updated": report["updated"],
            "failed": report.get("failed"),
            "requests": requests,
            "minimum": minimum,
            "searches": searches,
            "by_kind": dict(sorted(emulator.stats.by_route.items())),
            "rate_limited_429": emulator.stats.rate_limited,
            "wall_s": round(wall, 2),
            "hubspot_span_s": round(span, 2),
            "throughput_rps": round(requests / span, 2) if span else None,
            "ceiling_fraction": round(requests / allowed, 3) if allowed else None,
            # The same against the limit's steady rate only (limit / interval), without the
            # first window's burst: the ceiling a long sync meets.
            "rate_fraction": (
                round(requests / span / (args.limit / args.interval), 3) if span else None
            ),
            "longest_pause_s": round(max(gaps, default=0.0), 2),
            # Where the time between requests went: (seconds after the first request, pause).
            "pauses_over_2s": [
                (round(a - times[0], 1), round(b - a, 2))
                for a, b in itertools.pairwise(times)
                if b - a > 2.0
            ],
        }
    if args.feed:
        results["feed"] = feed(emulator, args.feed)
    emulator.stop()
    results["violations"] = len(emulator.violations)
    results["contacts"] = n
    results["limit"] = f"{args.limit} / {args.interval:g} s"
    return results


def feed(emulator: HubSpotEmulator, count: int) -> dict[str, Any]:
    from app.connectors.hubspot import HubSpotApp

    app = HubSpotApp(TOKEN, api_base=emulator.url)
    first = app.changes(None)
    assert first is not None
    time.sleep(0.01)
    start_ms = int(time.time() * 1000) + 120_000  # after the cursor's minute of lag
    ids = []
    for i in range(count):
        c = emulator.portal.seed({"email": f"feed{i}@example.com"}, modified_ms=start_ms + i // 5)
        ids.append(c.id)
    time.sleep(emulator.portal.search_delay_ms / 1000)  # until search has indexed them
    emulator.stats.by_route.clear()
    emulator.stats.rate_limited = 0
    started = time.monotonic()
    got = app.changes(first.cursor)
    seconds = time.monotonic() - started
    assert got is not None
    returned = [r.id for r in got.records] + list(got.versions)
    app.close()
    searches = emulator.stats.by_route["search"]
    return {
        "changed": count,
        "returned": len(returned),
        "all_changed_returned": set(ids) <= set(returned),
        "no_duplicates": len(returned) == len(set(returned)),
        "also_returned": len(set(returned) - set(ids)),
        "_note": "also_returned = contacts written in the minute before the cursor (its lag)",
        "search_requests": searches,
        "minimum_pages": math.ceil(count / 200),
        "rate_limited_429": emulator.stats.rate_limited,
        "seconds": round(seconds, 2),
        "searches_per_second": round(searches / seconds, 2) if seconds else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--validate", action="store_true")
    parser.add_argument("--opt-outs", action="store_true", help="read opt-out statuses too")
    parser.add_argument("--feed", type=int, default=0, help="also measure the change feed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = run(args)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
