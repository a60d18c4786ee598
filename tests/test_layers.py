"""DESIGN.md's layers, checked: imports only point down."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def modules(under: str) -> list[Path]:
    return sorted((APP / under).rglob("*.py")) if (APP / under).is_dir() else [APP / under]


def test_no_qt_outside_ui() -> None:
    for path in APP.rglob("*.py"):
        if "ui" in path.relative_to(APP).parts:
            continue
        bad = {m for m in imports_of(path) if m.split(".")[0] in ("PySide6", "PyQt6", "PyQt5")}
        assert not bad, f"{path}: {bad}"


# Modules every connector may share: the protocol and helpers that belong to no one app.
CONNECTOR_SHARED = (
    "app.connectors.base",
    "app.connectors.vcard_text",
    "app.connectors.http",
    "app.connectors.file_writes",
)


def test_connectors_know_no_engine_store_or_each_other() -> None:
    for path in modules("connectors"):
        name = path.stem
        parts = path.relative_to(APP / "connectors").parts
        # A connector that is a package (app/connectors/hubspot/) imports its own modules.
        own = f"app.connectors.{parts[0]}" if len(parts) > 1 else None
        for mod in imports_of(path):
            if not mod.startswith("app."):
                continue
            if own is not None and (mod == own or mod.startswith(own + ".")):
                continue
            assert not mod.startswith(
                ("app.engine", "app.store", "app.service", "app.mapping", "app.cli", "app.ui")
            ), f"{path}: imports {mod}"
            if mod.startswith("app.connectors.") and name != "registry":
                assert mod in CONNECTOR_SHARED, f"{path}: imports another connector {mod}"
                if f"app.connectors.{name}" in CONNECTOR_SHARED:
                    assert mod == "app.connectors.base", f"{path}: shared code imports {mod}"


def test_engine_knows_no_particular_app_nor_fronts() -> None:
    for path in [*modules("engine"), *modules("mapping")]:
        for mod in imports_of(path):
            if mod.startswith("app.connectors."):
                assert mod == "app.connectors.base", f"{path}: imports {mod}"
            assert not mod.startswith(("app.cli", "app.ui", "app.service")), f"{path}: {mod}"


def test_only_the_store_writes_sql() -> None:
    for path in APP.rglob("*.py"):
        rel = path.relative_to(APP).parts
        if rel[0] == "store":
            continue
        assert "sqlalchemy" not in {m.split(".")[0] for m in imports_of(path)}, path
