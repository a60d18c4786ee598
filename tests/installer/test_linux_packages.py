"""The Linux installers, built and used as a user would: installer/linux/build.sh makes the
.deb and the tarball from installer/pairsync.spec; the .deb is installed into an empty root
with dpkg, the installed ``pairsync`` is run (version, the window offscreen, a CLI sync between
two vCard folders, the sync worker), and purging it leaves nothing behind; the tarball's
install.sh installs into a scratch home and uninstalls cleanly.

Needs PyInstaller (``pip install -e '.[installer]'``), dpkg, binutils and the Qt runtime
libraries (``.ci/run`` installs them). Without them the tests skip, except under CI=true,
where they fail: CI must never pass by not building. ``.ci/run`` sets
``PAIRSYNC_INSTALLER_TESTS=skip`` when nothing the bundle is made of changed since the last
release tag.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
SKIP_ENV = "PAIRSYNC_INSTALLER_TESTS"
TEST_ONLY = ("pytest", "_pytest", "pytestqt", "hypothesis", "keyrings", "radicale", "xandikos")
TEST_ONLY += ("psutil", "tests", "jsonschema", "openapi_core")

pytestmark = [pytest.mark.installer, pytest.mark.timeout(1800)]

ANN = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann-1\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\n"
    "EMAIL:ann@example.com\r\nTEL:+44 20 7946 0958\r\nEND:VCARD\r\n"
)
BOB = (
    "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:bob-1\r\nFN:Bob Stone\r\nN:Stone;Bob;;;\r\n"
    "EMAIL:bob@example.com\r\nEND:VCARD\r\n"
)


@dataclass(frozen=True)
class Built:
    deb: Path
    tarball: Path
    bundle: Path
    log: str


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"installer tests cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    if os.environ.get(SKIP_ENV) == "skip":
        pytest.skip(
            f"{SKIP_ENV}=skip: nothing under installer/, app/, resources/ or pyproject.toml "
            "changed since the last release tag"
        )
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip("the Linux packages are built on Linux x86-64 or arm64")
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        _unavailable("PyInstaller is not installed: pip install -e '.[installer]'")
    for tool in ("dpkg", "dpkg-deb", "readelf"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is missing (Debian: apt-get install dpkg binutils)")
    # PAIRSYNC_INSTALLER_REUSE=DIR (local iterations on the tests): build into DIR once, then
    # reuse what is there.
    reuse = os.environ.get("PAIRSYNC_INSTALLER_REUSE")
    work = Path(reuse) if reuse else tmp_path_factory.mktemp("installer-build")
    done = sorted((work / "dist").glob("pairsync*"))
    if reuse and len(done) == 2:
        deb, tarball = (done[1], done[0]) if done[1].suffix == ".deb" else (done[0], done[1])
        return Built(deb, tarball, work / "build" / "bundle" / "pairsync", "")
    env = _env_without_test_hooks() | {
        "PAIRSYNC_BUILD_PYTHON": sys.executable,
        "PAIRSYNC_BUILD": str(work / "build"),
        "PAIRSYNC_DIST": str(work / "dist"),
        # Quick compression: what is tested is the content, the release uses xz and gzip -6.
        "PAIRSYNC_DEB_COMPRESS": "zstd",
        "PAIRSYNC_GZIP_LEVEL": "1",
    }
    proc = subprocess.run(
        ["bash", str(ROOT / "installer" / "linux" / "build.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    if proc.returncode == 2:
        _unavailable(f"build.sh lacks a prerequisite: {proc.stderr.strip().splitlines()[-2:]}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    deb, tarball = (Path(line) for line in proc.stdout.split())
    return Built(deb, tarball, work / "build" / "bundle" / "pairsync", proc.stderr)


def _env_without_test_hooks() -> dict[str, str]:
    """The environment minus what the test suite adds for its own Python processes (its
    file keyring, PYTHONPATH): an installed app must work without them."""
    env = dict(os.environ)
    for name in ("PYTHON_KEYRING_BACKEND", "PYTHONPATH", "PAIRSYNC_HOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user's environment with a home of its own (and no display but offscreen Qt)."""
    home = tmp_path / "user"
    home.mkdir()
    env = _env_without_test_hooks()
    for name in list(env):
        if name.startswith("XDG_") or name in ("DISPLAY", "WAYLAND_DISPLAY"):
            del env[name]
    return env | {
        "HOME": str(home),
        "QT_QPA_PLATFORM": "offscreen",
        "LANG": "C.UTF-8",
        "PAIRSYNC_WORKER_IDLE_S": "30",
    }


# --- the bundle --------------------------------------------------------------------------------


def test_bundle_holds_the_app_and_leaves_out_tests_and_unused_qt(built: Built) -> None:
    from PyInstaller.archive.readers import CArchiveReader

    internal = built.bundle / "_internal"
    archive = CArchiveReader(str(built.bundle / "pairsync"))
    modules = set(archive.open_embedded_archive("PYZ.pyz").toc)
    assert {"app.cli", "app.sync_worker", "app.ui.main", "app.connectors.carddav"} <= modules
    assert {"alembic.op", "sqlalchemy.dialects.sqlite"} <= modules
    leaked = sorted(m for m in modules if m.split(".")[0] in TEST_ONLY)
    assert leaked == [], f"test-only packages in the bundle: {leaked[:10]}"
    files = {p.relative_to(internal).as_posix() for p in internal.rglob("*")}
    assert not [f for f in files if f.split("/")[0] in TEST_ONLY]
    # The resources, the migrations and the metadata the version is read from.
    svgs = sorted(p.name for p in (ROOT / "resources" / "icons").glob("*.svg"))
    assert sorted(p.name for p in (internal / "app/ui/resources/icons").iterdir()) == svgs
    versions = sorted(p.name for p in (ROOT / "app/store/migrations/versions").glob("*.py"))
    assert sorted(p.name for p in (internal / "app/store/migrations/versions").glob("*.py")) == (
        versions
    )
    assert (internal / "app/store/migrations/env.py").is_file()
    # Only the Qt Pairsync uses: SVG icons yes; Quick, QML, PDF, virtual keyboard, GTK no.
    qt = internal / "PySide6" / "Qt"
    assert (qt / "plugins/iconengines/libqsvgicon.so").is_file()
    assert (qt / "plugins/imageformats/libqsvg.so").is_file()
    assert {"libqxcb.so", "libqwayland.so", "libqoffscreen.so"} <= {
        p.name for p in (qt / "plugins/platforms").iterdir()
    }
    unused = [
        f for f in files if any(n in f for n in ("Qt6Quick", "Qt6Qml", "Qt6Pdf", "VirtualKey"))
    ]
    assert unused == []
    assert not [f for f in files if "gtk" in f.lower() or "libpango" in f]
    assert not [m for m in modules if m.startswith(("PySide6.QtQml", "PySide6.QtQuick"))]
    size_mb = sum(p.lstat().st_size for p in internal.rglob("*") if not p.is_dir()) / 1e6
    assert size_mb < 200, f"the bundle grew to {size_mb:.0f} MB"


# --- the .deb ----------------------------------------------------------------------------------


def _deb_field(deb: Path, field: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_deb_declares_what_a_fresh_debian_needs(built: Built, tmp_path: Path) -> None:
    assert built.deb.name == f"pairsync_{VERSION}_amd64.deb" or built.deb.name.endswith(
        "_arm64.deb"
    )
    assert _deb_field(built.deb, "Package") == "pairsync"
    assert _deb_field(built.deb, "Version") == VERSION
    depends = {d.split("|")[0].strip() for d in _deb_field(built.deb, "Depends").split(",")}
    assert "libc6 (>= 2." in _deb_field(built.deb, "Depends")  # the newest glibc symbol used
    depends = {d.split("(")[0].strip() for d in depends}
    assert {"libc6", "libegl1", "libgl1", "libxkbcommon0", "libxkbcommon-x11-0"} <= depends
    assert {"libxcb-cursor0", "libfontconfig1", "libdbus-1-3", "libwayland-client0"} <= depends
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(built.deb)], capture_output=True, text=True, check=True
    ).stdout
    assert "./usr/bin/pairsync -> /opt/pairsync/pairsync" in listing
    assert "./opt/pairsync/pairsync\n" in listing
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        assert f"./usr/share/icons/hicolor/{size}x{size}/apps/pairsync.png" in listing
    assert "./usr/share/icons/hicolor/scalable/apps/pairsync.svg" in listing
    # Every file is root's, as dpkg wants.
    assert all(" root/root " in line for line in listing.splitlines())

    subprocess.run(["dpkg-deb", "-x", str(built.deb), str(tmp_path)], check=True)
    desktop = (tmp_path / "usr/share/applications/org.pairsync.Pairsync.desktop").read_text()
    assert "Categories=Office;ContactManagement;\n" in desktop
    assert "Exec=pairsync\n" in desktop and "Icon=pairsync\n" in desktop
    metainfo = tmp_path / "usr/share/metainfo/org.pairsync.Pairsync.metainfo.xml"
    assert f'<release version="{VERSION}"' in metainfo.read_text()
    if shutil.which("appstreamcli"):
        subprocess.run(["appstreamcli", "validate", "--no-net", str(metainfo)], check=True)
    elif os.environ.get("CI"):
        pytest.fail("appstreamcli is missing (Debian: apt-get install appstream)")
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(desktop_path(tmp_path))], check=True)


def desktop_path(root: Path) -> Path:
    return root / "usr/share/applications/org.pairsync.Pairsync.desktop"


class Installed:
    """The .deb installed into an empty root. ``run`` starts ``/usr/bin/pairsync`` of that
    root: inside a private mount namespace where the root's /opt is mounted on /opt (so the
    package's absolute /usr/bin/pairsync -> /opt/pairsync/pairsync link is what runs), or,
    where namespaces are not allowed, the linked file itself."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.namespaces = (
            shutil.which("unshare") is not None
            and subprocess.run(
                ["unshare", "-m", "--propagation", "private", "true"], capture_output=True
            ).returncode
            == 0
        )

    def command(self, *args: str) -> list[str]:
        link = self.root / "usr/bin/pairsync"
        assert os.readlink(link) == "/opt/pairsync/pairsync"
        if not self.namespaces:
            return [str(self.root / "opt/pairsync/pairsync"), *args]
        script = 'mount --bind "$1/opt" /opt && shift && exec "$@"'
        unshare = ["unshare", "-m", "--propagation", "private"]
        return [*unshare, "sh", "-c", script, "sh", str(self.root), str(link), *args]

    def run(
        self, *args: str, env: dict[str, str], input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _dpkg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dpkg", f"--root={root}", "--force-not-root", "--log=/dev/null", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture
def installed(built: Built, tmp_path: Path) -> Iterator[Installed]:
    root = tmp_path / "root"
    admin = root / "var/lib/dpkg"
    for sub in ("info", "updates", "triggers"):
        (admin / sub).mkdir(parents=True)
    (admin / "status").touch()
    (admin / "available").touch()
    before = _tree(root)
    # An empty root has none of the libraries the package depends on (this machine has them).
    proc = _dpkg(root, "--force-depends", "--install", str(built.deb))
    assert proc.returncode == 0, proc.stderr
    assert "pairsync" in _dpkg(root, "--list", "pairsync").stdout
    yield Installed(root)
    proc = _dpkg(root, "--purge", "pairsync")
    assert proc.returncode == 0, proc.stderr
    # Nothing left behind but dpkg's own records.
    left = {
        p
        for p in _tree(root) - before
        if not p.startswith("var/lib/dpkg/") and p not in ("var/log", "var/log/dpkg.log")
    }
    assert left == set()
    leftover_records = [p for p in _tree(admin / "info") if p.startswith("pairsync.")]
    assert leftover_records == []


def test_deb_installs_runs_syncs_and_purges_cleanly(
    installed: Installed, user_env: dict[str, str], tmp_path: Path
) -> None:
    root = installed.root
    assert (root / "opt/pairsync/pairsync").stat().st_mode & 0o111
    assert desktop_path(root).is_file()

    proc = installed.run("--version", env=user_env)
    assert (proc.returncode, proc.stdout.strip()) == (0, f"pairsync {VERSION}"), proc.stderr

    # A sync between two vCard folders with the installed command (README: "A first sync").
    phone, laptop = tmp_path / "phone", tmp_path / "laptop"
    phone.mkdir()
    laptop.mkdir()
    (phone / "ann.vcf").write_text(ANN, newline="")
    (laptop / "bob.vcf").write_text(BOB, newline="")
    home = str(tmp_path / "pairsync-data")
    steps = [
        ["account", "add", "vcard-folder", "Phone", "--set", f"path={phone}"],
        ["account", "add", "vcard-folder", "Laptop", "--set", f"path={laptop}"],
        ["connection", "create", "Main", "--a", "Phone", "--b", "Laptop"],
        ["sync", "Main", "--dry-run"],
    ]
    for step in steps:
        proc = installed.run("--home", home, *step, env=user_env)
        assert proc.returncode == 0, (step, proc.stdout, proc.stderr)
    assert sorted(p.name for p in laptop.iterdir()) == ["bob.vcf"]  # a dry run writes nothing
    proc = installed.run("--home", home, "sync", "Main", "--json", env=user_env)
    assert proc.returncode == 0, proc.stderr
    [report] = json.loads(proc.stdout)
    assert report["status"] == "ok"
    assert report["created"] == {"a": 1, "b": 1}
    synced = "".join(p.read_text() for p in laptop.iterdir())
    assert "ann@example.com" in synced and "Ann Lee" in synced
    assert "bob@example.com" in "".join(p.read_text() for p in phone.iterdir())

    # The desktop app's sync worker, as the installed app starts it (`pairsync _sync-worker`).
    (phone / "cy.vcf").write_text(
        ANN.replace("ann", "cy").replace("Ann Lee", "Cy Young").replace("Lee;Ann", "Young;Cy"),
        newline="",
    )
    job = json.dumps({"job": {"id": 7, "kind": "sync", "name": "Main"}}) + "\n"
    proc = installed.run("_sync-worker", "--home", home, env=user_env, input=job)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["event"] == "finished", events[-1]
    assert events[-1]["report"]["created"] == {"a": 0, "b": 1}
    assert "Cy Young" in "".join(p.read_text() for p in laptop.iterdir())

    # The window, offscreen: it opens on the same data, and quits as by its Quit command.
    proc = installed.run("--home", home, env=user_env | {"PAIRSYNC_QUIT_AFTER_S": "3"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ui_settings = list(Path(home).rglob("pairsync-ui.ini"))
    assert ui_settings and "geometry=" in ui_settings[0].read_text(), proc.stderr


# --- the tarball -------------------------------------------------------------------------------


def test_tarball_installs_for_the_user_and_uninstalls_cleanly(
    built: Built, user_env: dict[str, str], tmp_path: Path
) -> None:
    assert built.tarball.name == f"pairsync-{VERSION}-linux-{platform.machine()}.tar.gz"
    unpacked = tmp_path / "unpacked"
    with tarfile.open(built.tarball) as tar:
        tar.extractall(unpacked, filter="tar")
    [folder] = list(unpacked.iterdir())
    assert folder.name == f"pairsync-{VERSION}-linux-{platform.machine()}"
    home = Path(user_env["HOME"])
    (home / "Documents").mkdir()  # the user's own things stay
    before = _tree(home)

    proc = subprocess.run(
        [str(folder / "install.sh")], env=user_env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert f"Pairsync {VERSION} is installed" in proc.stdout
    launcher = home / ".local/bin/pairsync"
    app = home / ".local/lib/pairsync/pairsync/pairsync"
    assert launcher.is_symlink() and Path(os.readlink(launcher)) == app
    entry = home / ".local/share/applications/org.pairsync.Pairsync.desktop"
    text = entry.read_text()
    assert f'Exec="{app}"\n' in text and f"TryExec={app}\n" in text
    assert "Categories=Office;ContactManagement;\n" in text
    assert (home / ".local/share/icons/hicolor/48x48/apps/pairsync.png").is_file()
    assert (home / ".local/share/icons/hicolor/scalable/apps/pairsync.svg").is_file()
    proc = subprocess.run(
        [str(launcher), "--version"], env=user_env, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == f"pairsync {VERSION}", proc.stderr

    # Installing again (an update) keeps one copy and one record of each file.
    proc = subprocess.run(
        [str(folder / "install.sh")], env=user_env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    manifest = (home / ".local/lib/pairsync/installed-files").read_text().splitlines()
    assert len(manifest) == len(set(manifest))

    # The start-at-login entry the app writes for this copy goes with it.
    autostart = home / ".config/autostart/pairsync.desktop"
    autostart.parent.mkdir(parents=True)
    autostart.write_text(f"[Desktop Entry]\nExec={launcher} --background\n")
    shutil.rmtree(folder)  # the download is gone: the installed copy uninstalls itself
    proc = subprocess.run(
        [str(home / ".local/lib/pairsync/install.sh"), "--uninstall"],
        env=user_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "uninstalled" in proc.stdout
    assert _tree(home) - before <= {".config", ".config/autostart"}
    assert not autostart.exists()
