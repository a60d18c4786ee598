"""Pairsync: keeps the contacts of two apps in sync, from the user's own laptop."""

from __future__ import annotations

from pathlib import Path


def _version() -> str:
    """The one version, ``[project] version`` in pyproject.toml: read from the checkout when
    running from one (an editable install's metadata is only as new as its last install),
    else from the installed package's metadata (a wheel, or the installer-built bundle, which
    carries the metadata: installer/pairsync.spec)."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except (OSError, ValueError):
            project = {}
        if project.get("name") == "pairsync" and isinstance(project.get("version"), str):
            return str(project["version"])
    from importlib import metadata

    try:
        return metadata.version("pairsync")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> str:
    """``__version__``, read on first use (PEP 562): reading it costs a command that never
    shows it (a cron sync) the import of ``tomllib`` or ``importlib.metadata``."""
    if name == "__version__":
        version = _version()
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module 'app' has no attribute {name!r}")
