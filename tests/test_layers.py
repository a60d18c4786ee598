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
    "app.connectors.oauth",
)
# What shared code may itself use: the protocol, and HTTP for the OAuth sign-in.
SHARED_MAY_USE = ("app.connectors.base", "app.connectors.http")


def _package(path: Path) -> str:
    """``app.connectors.google`` for app/connectors/google/app.py, else the module's name."""
    rel = path.relative_to(APP).with_suffix("").parts
    return "app." + ".".join(rel[:2]) if len(rel) > 2 else "app." + ".".join(rel)


def _within(mod: str, package: str) -> bool:
    return mod == package or mod.startswith(package + ".")


def test_connectors_know_no_engine_store_or_each_other() -> None:
    for path in modules("connectors"):
        name = path.stem
        package = _package(path)
        for mod in imports_of(path):
            if not mod.startswith("app."):
                continue
            assert not mod.startswith(
                ("app.engine", "app.store", "app.service", "app.mapping", "app.cli", "app.ui")
            ), f"{path}: imports {mod}"
            if not mod.startswith("app.connectors.") or name == "registry":
                continue
            if _within(mod, package):
                continue  # a connector package's own modules
            assert any(_within(mod, s) for s in CONNECTOR_SHARED), (
                f"{path}: imports another connector {mod}"
            )
            if any(_within(package, s) for s in CONNECTOR_SHARED):
                assert mod in SHARED_MAY_USE, f"{path}: shared code imports {mod}"


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
