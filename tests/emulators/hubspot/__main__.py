"""Run the HubSpot emulator alone: ``python -m tests.emulators.hubspot --port PORT``.

The first line on stdout is its base URL; it serves until killed. Point any HubSpot client
at it (``pairsync account add hubspot NAME --set api_base=URL``, or the vendor's SDK with
its host set to the URL).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from tests.emulators.hubspot.server import HubSpotEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.hubspot")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--access-token", default="pat-na1-test-token")
    parser.add_argument("--rate-limit", type=int, default=100, help="requests per interval")
    parser.add_argument("--rate-interval", type=float, default=10.0, help="seconds")
    parser.add_argument("--search-per-second", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="contacts to create at start")
    parser.add_argument("--no-validate", action="store_true", help="skip OpenAPI checks")
    args = parser.parse_args(argv)
    emulator = HubSpotEmulator(
        access_token=args.access_token,
        port=args.port,
        rate_limit=args.rate_limit,
        rate_interval=args.rate_interval,
        search_per_second=args.search_per_second,
        validate=not args.no_validate,
    )
    for i in range(args.seed):
        emulator.portal.seed(
            {"email": f"person{i}@example.com", "firstname": f"Person{i}", "lastname": "Example"}
        )
    emulator.start()
    print(emulator.url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    emulator.stop()
    for problem in emulator.violations:
        print(f"spec violation: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
