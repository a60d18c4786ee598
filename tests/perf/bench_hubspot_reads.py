"""What reading only the mapped HubSpot properties saves (not a pytest module; run on demand):

    python -m tests.perf.bench_hubspot_reads [--contacts 2000] [--properties 200] [--filled 40]

A portal with ``--properties`` extra contact properties (a real portal has hundreds:
HubSpot's own analytics, sales and marketing ones, plus custom ones), each contact having
``--filled`` of them set. The connector's full listing of every contact is read twice: as
before (every property the schema shows) and narrowed to what a default vCard ↔ HubSpot
connection uses (``ReadHint``: names, email, phones, address, company, job title, website).
Printed: requests, bytes HubSpot sent, bytes of request URLs and bodies, seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from app.connectors.base import ReadHint
from app.connectors.hubspot import HubSpotApp
from tests.emulators.hubspot.server import HubSpotEmulator

TOKEN = "pat-na1-bench"
DEFAULT_FIELDS = frozenset(
    {"emails", "given_name", "family_name", "full_name", "phones", "addresses"}
    | {"organization", "title", "website"}
)


def measure(hs: HubSpotEmulator, hint: ReadHint | None) -> dict[str, Any]:
    sent = {"requests": 0, "bytes_in": 0, "bytes_out": 0}
    original = hs.handle

    def counted(method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Any:
        status, extra, data = original(method, raw_path, headers, body)
        sent["requests"] += 1
        sent["bytes_in"] += len(data)
        sent["bytes_out"] += len(raw_path) + len(body)
        return status, extra, data

    hs.handle = counted  # type: ignore[method-assign]
    app = HubSpotApp(TOKEN, api_base=hs.url, rate_limit=10_000)
    try:
        app.contact_schema()  # the schema read is the same either way: not counted
        sent.update(requests=0, bytes_in=0, bytes_out=0)
        if hint is not None:
            app.narrow_reads(hint)
        started = time.monotonic()
        versions = app.list_versions()
        records = app.fetch(list(versions))
        sent["seconds"] = round(time.monotonic() - started, 2)
        sent["contacts"] = len(records)
    finally:
        app.close()
        hs.handle = original  # type: ignore[method-assign]
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--properties", type=int, default=200)
    parser.add_argument("--filled", type=int, default=40)
    args = parser.parse_args()
    with HubSpotEmulator(
        access_token=TOKEN, rate_limit=10_000, search_per_second=100, validate=False
    ) as hs:
        for p in range(args.properties):
            hs.portal.add_property(f"prop_{p:03d}", f"Property {p}")
        for i in range(args.contacts):
            props = {
                "email": f"person{i}@example.com",
                "firstname": f"Person {i}",
                "lastname": "Example",
                "jobtitle": "Engineer",
                "phone": f"+44 20 7946 {i % 10000:04d}",
            }
            for k in range(args.filled):
                props[f"prop_{(i + k * 7) % args.properties:03d}"] = f"value {k} of contact {i}"
            hs.portal.seed(props)
        before = measure(hs, None)
        after = measure(hs, ReadHint(DEFAULT_FIELDS, subscription=False))
    print(json.dumps({"all_properties": before, "mapped_only": after}, indent=2))
    for key in ("requests", "bytes_in", "bytes_out"):
        if before[key]:
            print(f"{key}: {before[key]} -> {after[key]} ({after[key] / before[key]:.0%})")


if __name__ == "__main__":
    main()
