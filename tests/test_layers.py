"""DESIGN.md's layers as a table, checked: which Pairsync modules each part may import.

``ALLOWED`` maps a module (or package) to the modules it may import; the most specific key
wins. ``violations`` walks a source tree and lists every import the table does not allow,
plus third-party packages used outside their layer and the facade's private members reached
from outside it. The last tests plant violations in a copy of ``app/`` and show the check
catches each one, so the table cannot silently stop biting.
"""

from __future__ import annotations

import ast
import functools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

VALUES = ("app.model", "app.errors", "app.printable", "app.sign_in")
"""Plain values, typed errors, the text escaping for terminals and the sign-in forms apps
declare: every layer may use them."""

CONNECTOR_SHARED = (
    "app.connectors.base",
    "app.connectors.decoding",
    "app.connectors.vcard_text",
    "app.connectors.http",
    "app.connectors.file_writes",
    "app.connectors.single_file",
    "app.connectors.oauth",
)
"""What every connector may share: the protocol and helpers that belong to no one app."""

ALLOWED: dict[str, tuple[str, ...]] = {
    # values and small leaf modules
    "app": (),
    "app.__main__": ("app.cli",),
    "app.errors": (),
    "app.model": ("app.errors",),
    "app.packed": ("app.model",),
    "app.printable": ("app.errors",),
    "app.sign_in": (),
    "app.paths": ("app.errors",),
    "app.status": (),
    "app.schedule": (*VALUES, "app.status"),
    "app.run_progress": VALUES,
    "app.secrets": VALUES,
    "app.run_lock": VALUES,
    # the sync core: no fronts, no particular app, no store but the engine's state
    "app.mapping": (*VALUES, "app.mapping"),
    "app.rules": (*VALUES, "app.rules", "app.mapping"),
    "app.engine": (
        *VALUES,
        "app.engine",
        "app.mapping",
        "app.rules",
        "app.connectors.base",
        "app.packed",
    ),
    "app.preview": (*VALUES, "app.engine"),
    # connectors: their own package, the shared helpers, values (see _connector_rule)
    "app.connectors": (*VALUES, *CONNECTOR_SHARED, "app.packed"),
    "app.connectors.base": VALUES,
    "app.connectors.registry": (*VALUES, "app.connectors", "app.paths"),
    "app.app_list": (*VALUES, "app.connectors.registry"),
    # the store: values, and the protocol of the engine's state it implements
    "app.store": (*VALUES, "app.store", "app.engine.state"),
    "app.engine.state": VALUES,
    # the facade: everything below the fronts
    "app.service": (
        *VALUES,
        "app.service",
        "app.app_list",
        "app.connectors.base",
        "app.connectors.registry",
        "app.engine",
        "app.mapping",
        "app.rules",
        "app.store",
        "app.preview",
        "app.paths",
        "app.run_lock",
        "app.schedule",
        "app.secrets",
        "app.status",
    ),
    # the fronts: the facade, values, and their own parts
    "app.sync_worker": (*VALUES, "app.service", "app.run_progress", "app.paths"),
    "app.cli": (*VALUES, "app", "app.service", "app.secrets", "app.ui", "app.sync_worker"),
    "app.ui": (
        *VALUES,
        "app",
        "app.ui",
        "app.service",
        "app.run_progress",
        "app.sync_worker",
        "app.paths",
    ),
}

THIRD_PARTY: dict[str, tuple[str, ...]] = {
    "PySide6": ("app.ui",),
    "PyQt6": (),
    "PyQt5": (),
    "sqlalchemy": ("app.store",),
    "alembic": ("app.store",),
}
"""Packages only one layer may use: Qt in the window, SQL in the store."""

PRIVATE_FACADE = frozenset({"_store", "_connections", "_health", "_secrets"})
"""The facade's private members: no front reaches them."""
FRONTS = ("app.ui", "app.cli", "app.sync_worker")


def _matches(module: str, prefix: str) -> bool:
    if prefix == "app":  # the top package itself (``from app import __version__``)
        return module == "app"
    return module == prefix or module.startswith(prefix + ".")


def _module_name(root: Path, path: Path) -> str:
    parts = ["app", *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _rule(module: str) -> tuple[str, ...]:
    key = max((k for k in ALLOWED if _matches(module, k) or module == k), key=len, default=None)
    assert key is not None, f"{module}: no row in the layer table (add one)"
    return ALLOWED[key]


def _connector_rule(module: str) -> tuple[str, ...]:
    """A connector may import its own package too (``app.connectors.google.*``)."""
    parts = module.split(".")
    own = ".".join(parts[:3]) if len(parts) >= 3 else module
    return (own,)


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> ast.Module:
    return ast.parse(text)


def _imports(root: Path, path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import; ``from app import x`` counts as ``app.x`` when x
    is a module of the tree."""
    tree = _parse(path.read_text(encoding="utf-8"))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                rel = Path(*sub.split(".")[1:])
                is_module = sub.startswith("app.") and (
                    (root / rel).with_suffix(".py").is_file() or (root / rel).is_dir()
                )
                out.append((node.lineno, sub if is_module else node.module))
    return out


def violations(root: Path) -> list[str]:
    """Every import under ``root`` (an ``app/`` tree) that the table does not allow."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(root, path)
        allowed = _rule(module)
        if module.startswith("app.connectors.") and module not in (
            "app.connectors.registry",
            "app.connectors.base",
        ):
            allowed = (*allowed, *_connector_rule(module))
        where = f"{path.relative_to(root.parent)}"
        for line, imported in _imports(root, path):
            top = imported.split(".")[0]
            if top == "app":
                if _matches(imported, module) or any(_matches(imported, a) for a in allowed):
                    if imported.startswith("app.service.") and not module.startswith("app.service"):
                        found.append(f"{where}:{line}: imports {imported} (use app.service)")
                    continue
                found.append(f"{where}:{line}: {module} may not import {imported}")
            elif top in THIRD_PARTY and not any(_matches(module, a) for a in THIRD_PARTY[top]):
                found.append(f"{where}:{line}: {module} may not use {top}")
        if any(_matches(module, front) for front in FRONTS):
            tree = _parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in PRIVATE_FACADE:
                    found.append(f"{where}:{node.lineno}: reaches the facade's {node.attr}")
    return found


def test_the_code_keeps_the_layer_table() -> None:
    assert violations(APP) == []


def test_every_module_has_a_row() -> None:
    for path in APP.rglob("*.py"):
        _rule(_module_name(APP, path))


@pytest.fixture(scope="module")
def copy_of_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("layers") / "app"
    shutil.copytree(APP, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert violations(copy) == []
    return copy


@pytest.fixture
def planted(copy_of_app: Path) -> Iterator[Path]:
    """The copy of ``app/``; files a test plants in are put back afterwards."""
    before = {p: p.read_text(encoding="utf-8") for p in copy_of_app.rglob("*.py")}
    yield copy_of_app
    for path, text in before.items():
        path.write_text(text, encoding="utf-8")


def _plant(root: Path, relative: str, line: str) -> None:
    path = root / relative
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("relative", "line", "expected"),
    [
        ("ui/health_view.py", "from app.store.health import HealthQueries", "may not import"),
        ("ui/reauth_dialog.py", "from app.connectors import registry", "may not import"),
        ("cli.py", "from app.rules.edit import rule_view", "may not import"),
        ("ui/scheduler.py", "from app.service.core import ServiceCore", "use app.service"),
        ("ui/notifications.py", "x = service._connections", "reaches the facade's"),
        ("engine/planner.py", "from app.store.models import Binding", "may not import"),
        ("engine/context.py", "from app.store.state import SyncState", "may not import"),
        ("engine/sync.py", "import app.ui.tasks", "may not import"),
        ("connectors/carddav/app.py", "from app.connectors.csv import CsvApp", "may not import"),
        ("connectors/csv/codec.py", "from app.connectors.carddav.dav import DAV", "may not"),
        ("connectors/vcard_folder.py", "from app.mapping.fields import Direction", "may not"),
        ("store/state.py", "from app.engine.plan import SyncPlan", "may not import"),
        ("mapping/config.py", "from app.service import Service", "may not import"),
        ("service/runs.py", "import PySide6.QtCore", "may not use PySide6"),
        ("engine/applier.py", "import sqlalchemy", "may not use sqlalchemy"),
    ],
)
def test_a_planted_violation_is_caught(
    planted: Path, relative: str, line: str, expected: str
) -> None:
    _plant(planted, relative, line)
    found = violations(planted)
    assert len(found) == 1 and expected in found[0], found
