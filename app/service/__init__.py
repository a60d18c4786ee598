"""The one facade both fronts (CLI, GUI) call: accounts, connections, sync runs, health.

One module per job (``accounts``, ``connections``, ``mappings``, ``rules``, ``runs``,
``health``) over a shared ``core`` (the database, the keyring, and ``opened``, the one way
to open a connection's two apps). It never prints and never imports Qt; errors are typed
(``app.errors``).
"""

from __future__ import annotations

from pathlib import Path

from app.app_list import AccountCheck, AppEntry
from app.model import ConnectionSettings
from app.preview import Preview
from app.rules.model import (
    FIELD_OPS,
    NO_VALUE_OPS,
    Action,
    ActionKind,
    Filter,
    FilterKind,
    Join,
    Op,
    RuleDraft,
    parse_filter,
    parse_set,
)
from app.schedule import ConnectionState, ScheduleEntry
from app.service.connections import EXPORT_VERSION, parse_on_off
from app.service.database import database_backups, restore_database
from app.service.health import Health
from app.service.types import (
    AccountInfo,
    AccountRef,
    AppFields,
    ConnectionFields,
    ConnectionView,
    FieldChoice,
    FieldInfo,
    HealthReport,
    LastRun,
    MappingChoices,
    MappingInfo,
    ReportConflict,
    ReportContact,
    ReportCounts,
    ReportFailure,
    ReportNotFitting,
    ReportRuleConflict,
    ReportRun,
    RuleInfo,
    RuleMirror,
)
from app.status import ConnectionStatus, ConnectionSummary

# The values the facade hands out and takes (rule drafts), importable from here: the fronts
# import the facade, app.model and app.errors only (tests/test_layers.py).
__all__ = [
    "EXPORT_VERSION",
    "FIELD_OPS",
    "NO_VALUE_OPS",
    "AccountCheck",
    "AccountInfo",
    "AccountRef",
    "Action",
    "ActionKind",
    "AppEntry",
    "AppFields",
    "ConnectionFields",
    "ConnectionSettings",
    "ConnectionState",
    "ConnectionStatus",
    "ConnectionSummary",
    "ConnectionView",
    "FieldChoice",
    "FieldInfo",
    "Filter",
    "FilterKind",
    "HealthReport",
    "Join",
    "LastRun",
    "MappingChoices",
    "MappingInfo",
    "Op",
    "Preview",
    "ReportConflict",
    "ReportContact",
    "ReportCounts",
    "ReportFailure",
    "ReportNotFitting",
    "ReportRuleConflict",
    "ReportRun",
    "RuleDraft",
    "RuleInfo",
    "RuleMirror",
    "ScheduleEntry",
    "Service",
    "database_backups",
    "parse_filter",
    "parse_on_off",
    "parse_set",
    "restore_database",
]


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
