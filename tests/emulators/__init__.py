"""Local emulators of cloud apps' APIs, built from the vendors' own API descriptions.

``common`` holds what every emulator shares: the threaded loopback server with routing,
the command-line runner (``python -m tests.emulators.<app> --port PORT`` prints the base URL
as its first stdout line), and :class:`~tests.emulators.common.DiscoveryValidator`, which
checks JSON against a Google Discovery document's schemas with ``jsonschema``.
"""
