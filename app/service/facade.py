"""``Service``: the facade's jobs stacked into the one class the fronts use (see
``app.service``)."""

from __future__ import annotations

from pathlib import Path

from app.service.health import Health


class Service(Health):
    """Pairsync as the fronts see it: every action the CLI and the window offer.

    The jobs stack (``Accounts`` → ``Connections`` → ``Mappings`` → ``Rules`` → ``Runs`` →
    ``Health``, each in its own module over ``ServiceCore``), so this class adds nothing of
    its own: it is the name the fronts import. One ``Service`` per thread or process (the
    desktop app's worker threads and its sync worker each make their own); ``close()`` ends
    its database connections.
    """

    def __init__(
        self, home: str | Path | None = None, *, allow_insecure_keyring: bool = False
    ) -> None:
        super().__init__(home, allow_insecure_keyring=allow_insecure_keyring)
