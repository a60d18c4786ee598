"""``python -m tests.emulators.google_people --port PORT [--auto-consent] [--access-token T]``"""

from __future__ import annotations

import argparse

from tests.emulators.common import run_main
from tests.emulators.google_people import GooglePeopleEmulator


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--auto-consent",
        action="store_true",
        help="answer the consent page as if the user clicked Allow",
    )
    parser.add_argument("--access-token", help="also accept this fixed bearer token")
    parser.add_argument(
        "--no-response-checks",
        action="store_true",
        help="do not check answers against the Discovery document (benchmarks)",
    )


def _build(args: argparse.Namespace) -> GooglePeopleEmulator:
    emulator = GooglePeopleEmulator(
        args.port, auto_consent=args.auto_consent, access_token=args.access_token
    )
    emulator.check_responses = not args.no_response_checks
    return emulator


if __name__ == "__main__":
    run_main(_build, add_arguments=_arguments, description="Google People API emulator")
