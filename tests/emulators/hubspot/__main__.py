"""Run the HubSpot emulator alone: ``python -m tests.emulators.hubspot --port PORT``.

The first line on stdout is its base URL; it serves until killed. Point any HubSpot client
at it (``pairsync account add hubspot NAME --set api_base=URL``, or the vendor's SDK with
its host set to the URL).
"""

from __future__ import annotations

import argparse
from typing import Any

from tests.emulators.common import run_main
from tests.emulators.hubspot.scopes import parse_scopes
from tests.emulators.hubspot.server import DEFAULT_SEARCH_DELAY, HubSpotEmulator


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--access-token", default="pat-na1-test-token")
    parser.add_argument("--rate-limit", type=int, default=100, help="requests per interval")
    parser.add_argument("--rate-interval", type=float, default=10.0, help="seconds")
    parser.add_argument("--search-per-second", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="contacts to create at start")
    parser.add_argument("--no-validate", action="store_true", help="skip the OpenAPI checks")
    parser.add_argument(
        "--scopes",
        default="crm",
        help="the token's scopes, comma-separated; 'crm' = the five contacts and lists scopes "
        "(the default), 'all' adds the communication-preferences ones",
    )
    parser.add_argument(
        "--search-delay",
        type=float,
        default=DEFAULT_SEARCH_DELAY,
        help="seconds before a write shows in search (HubSpot indexes with a delay)",
    )


def _build(args: argparse.Namespace) -> Any:
    emulator = HubSpotEmulator(
        access_token=args.access_token,
        port=args.port,
        rate_limit=args.rate_limit,
        rate_interval=args.rate_interval,
        search_per_second=args.search_per_second,
        validate=not args.no_validate,
        scopes=parse_scopes(args.scopes),
        search_delay=args.search_delay,
    )
    for i in range(args.seed):
        emulator.portal.seed(
            {"email": f"person{i}@example.com", "firstname": f"Person{i}", "lastname": "Example"}
        )
    return emulator


if __name__ == "__main__":
    run_main(_build, add_arguments=_arguments, description="A local HubSpot (CRM v3 contacts).")
