"""Icons: every app in the app list has its own, they render, and the wheel carries them
(``pyproject.toml`` lists every package and maps resources/ into the package)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from app.app_list import app_list
from app.ui.icons import CANDIDATES, app_icon, icon_dir, icon_path

ROOT = Path(__file__).resolve().parents[2]


def test_every_listed_app_has_an_icon_that_renders(qapp: object) -> None:
    for entry in app_list():
        path = icon_path(entry.kind)
        assert path.name == f"{entry.kind}.svg", f"{entry.name} has no icon of its own"
        image = app_icon(entry.kind).pixmap(64, 64).toImage()
        assert not image.isNull() and image.width() == 64
        assert image.pixelColor(32, 32).alpha() > 0, f"{entry.name}'s icon is blank"
    assert icon_path("no-such-app").name == "app.svg"


def test_icons_live_once_in_resources_and_ship_in_the_wheel() -> None:
    assert icon_dir() == ROOT / "resources" / "icons"
    assert CANDIDATES[0].parts[-3:] == ("ui", "resources", "icons")  # where the wheel has them
    assert not (ROOT / "app" / "ui" / "resources").exists()  # no copy in the source tree
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["app.ui.resources"] == "resources"
    assert "icons/*.svg" in config["package-data"]["app.ui.resources"]
    packages = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "app").rglob("__init__.py")
    }
    missing = packages - set(config["packages"])
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
