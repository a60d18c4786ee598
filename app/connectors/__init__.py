"""One module per app, each behind the protocol in ``base``."""
