"""The one facade both fronts (CLI, GUI) call: accounts, connections, sync runs, health.

One module per job (``accounts``, ``connections``, ``mappings``, ``rules``, ``runs``,
``health``) over a shared ``core`` (the database, the keyring, and ``opened``, the one way
to open a connection's two apps). It never prints and never imports Qt; errors are typed
(``app.errors``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.app_list import AccountCheck, AppEntry, app_list
    from app.model import ConnectionSettings
    from app.paths import PrivateLogFile
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
    from app.service.connections import EXPORT_VERSION, parse_export, parse_on_off
    from app.service.database import database_backups, restore_database
    from app.service.facade import Service
    from app.service.listing import list_accounts, logs_folder
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

# Where each name lives. They are imported on first use (PEP 562), so that a command that
# needs little (``--version``, ``account list``) never pays for SQLAlchemy, the engine and
# the keyring: a cron run starts as fast as the interpreter (issue 18).
_WHERE = {
    "AccountCheck": "app.app_list",
    "AppEntry": "app.app_list",
    "app_list": "app.app_list",
    "ConnectionSettings": "app.model",
    "Preview": "app.preview",
    "PrivateLogFile": "app.paths",
    **dict.fromkeys(
        (
            "FIELD_OPS",
            "NO_VALUE_OPS",
            "Action",
            "ActionKind",
            "Filter",
            "FilterKind",
            "Join",
            "Op",
            "RuleDraft",
            "parse_filter",
            "parse_set",
        ),
        "app.rules.model",
    ),
    "ConnectionState": "app.schedule",
    "ScheduleEntry": "app.schedule",
    "EXPORT_VERSION": "app.service.connections",
    "parse_on_off": "app.service.connections",
    "parse_export": "app.service.connections",
    "database_backups": "app.service.database",
    "restore_database": "app.service.database",
    "Service": "app.service.facade",
    "list_accounts": "app.service.listing",
    "logs_folder": "app.service.listing",
    "AccountInfo": "app.service.types",
    "AccountRef": "app.service.types",
    "ConnectionView": "app.service.types",
    "LastRun": "app.service.types",
    "AppFields": "app.service.types",
    "ConnectionFields": "app.service.types",
    "FieldChoice": "app.service.types",
    "FieldInfo": "app.service.types",
    "HealthReport": "app.service.types",
    "MappingChoices": "app.service.types",
    "MappingInfo": "app.service.types",
    "ReportConflict": "app.service.types",
    "ReportContact": "app.service.types",
    "ReportCounts": "app.service.types",
    "ReportFailure": "app.service.types",
    "ReportNotFitting": "app.service.types",
    "ReportRuleConflict": "app.service.types",
    "ReportRun": "app.service.types",
    "RuleInfo": "app.service.types",
    "RuleMirror": "app.service.types",
    "ConnectionStatus": "app.status",
    "ConnectionSummary": "app.status",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
    "PrivateLogFile",
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
    "app_list",
    "database_backups",
    "list_accounts",
    "logs_folder",
    "parse_export",
    "parse_filter",
    "parse_on_off",
    "parse_set",
    "restore_database",
]
