#!/usr/bin/env bash
# Builds Pairsync's Linux packages from this checkout, into dist/:
#
#   dist/pairsync_<version>_amd64.deb              Debian 12+ / Ubuntu: `sudo apt install ./…deb`
#   dist/pairsync-<version>-linux-x86_64.tar.gz    any distribution (glibc 2.36+): ./install.sh
#
# Usage: installer/linux/build.sh            (makes a clean build venv in build/venv first)
# Environment:
#   PAIRSYNC_BUILD_PYTHON  a Python that already has `pip install -e '.[installer]'` of this
#                          checkout (tests/installer uses the test venv's; saves ~1 min)
#   PAIRSYNC_BUILD         work folder (default build/), PAIRSYNC_DIST output (default dist/)
#   PAIRSYNC_MAINTAINER    the .deb's Maintainer field
#   PAIRSYNC_DEB_COMPRESS  dpkg-deb compressor (default xz; zstd is ~10x quicker, Debian 12+)
#   PAIRSYNC_GZIP_LEVEL    the tarball's gzip level (default 6)
# Needs: python3 (3.11+, with venv), dpkg-deb, binutils (strip, objdump); appstreamcli
# (package appstream) is used to check the metainfo when present.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/installer/linux"
BUILD="$(realpath -m "${PAIRSYNC_BUILD:-$ROOT/build}")"
DIST="$(realpath -m "${PAIRSYNC_DIST:-$ROOT/dist}")"
MAINTAINER="${PAIRSYNC_MAINTAINER:-Pairsync <packages@pairsync.invalid>}"
COMPRESS="${PAIRSYNC_DEB_COMPRESS:-xz}"  # xz: smallest; zstd: ~10x quicker
export PAIRSYNC_BUILD="$BUILD"

# What Qt needs on any desktop (Qt's "X11 requirements", Wayland, EGL/GL, fonts, D-Bus): the
# .deb depends on these, and the build machine must have them too (ldd then resolves every
# library, and the bundle holds the same files whichever machine builds it).
QT_RUNTIME="libc6 libegl1 libgl1 libfontconfig1 libfreetype6 libxkbcommon0 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libx11-xcb1 libdbus-1-3 libwayland-client0
  libwayland-cursor0 libwayland-egl1"
# `build.sh --host-packages`: the Debian packages a build machine needs (.ci/run installs them).
if [ "${1:-}" = --host-packages ]; then
  echo $QT_RUNTIME dpkg binutils appstream desktop-file-utils util-linux
  exit 0
fi
exec 3>&1 1>&2  # progress on stderr; stdout gets only the two packages' paths (at the end)
export PATH="$PATH:/usr/sbin:/sbin"  # ldconfig, for users whose PATH lacks them
say() { printf '\n== [%3d s] %s\n' "$SECONDS" "$*" >&2; }
started=$SECONDS

case "$(uname -m)" in
  x86_64) DEB_ARCH=amd64 TAR_ARCH=x86_64 ;;
  aarch64) DEB_ARCH=arm64 TAR_ARCH=aarch64 ;;
  *) echo "build.sh: unsupported machine $(uname -m)" >&2; exit 2 ;;
esac

# --- the Python that builds ------------------------------------------------------------------
if [ -n "${PAIRSYNC_BUILD_PYTHON:-}" ]; then
  PY="$PAIRSYNC_BUILD_PYTHON"
else
  say "build venv ($BUILD/venv): pairsync with the installer extra, nothing else"
  python3 -m venv "$BUILD/venv"
  "$BUILD/venv/bin/pip" install -q --upgrade pip
  "$BUILD/venv/bin/pip" install -q "$ROOT[installer]"
  PY="$BUILD/venv/bin/python"
fi
# Exit code 2: a tool is missing (tests/installer skips on it outside CI).
for tool in dpkg-deb dpkg-query readelf strip objdump ldconfig tar gzip; do
  command -v "$tool" >/dev/null \
    || { echo "build.sh: $tool is missing (Debian: apt-get install dpkg binutils)" >&2; exit 2; }
done
"$PY" -c 'import PyInstaller' 2>/dev/null \
  || { echo "build.sh: PyInstaller is missing: $PY -m pip install -e '.[installer]'" >&2; exit 2; }
VERSION="$("$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$ROOT/pyproject.toml")"
# Release date for the metainfo: the commit's date (reproducible), else today.
DATE="$(git -C "$ROOT" log -1 --format=%cs 2>/dev/null || date -u +%F)"
say "Pairsync $VERSION ($DEB_ARCH)"

# --- the bundle (installer/pairsync.spec) ---------------------------------------------------
say "icons from resources/icons/pairsync.svg"
rm -rf "$BUILD/icons"
QT_QPA_PLATFORM=offscreen "$PY" "$ROOT/installer/render_icons.py" "$BUILD/icons"

say "PyInstaller bundle"
rm -rf "$BUILD/bundle"
"$PY" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$BUILD/bundle" --workpath "$BUILD/pyinstaller" "$ROOT/installer/pairsync.spec"
BUNDLE="$BUILD/bundle/pairsync"
[ "$("$BUNDLE/pairsync" --version)" = "pairsync $VERSION" ] \
  || { echo "build.sh: the bundle does not say 'pairsync $VERSION'" >&2; exit 1; }

# --- Debian dependencies: the system libraries the bundle's binaries link to ---------------
# Every library any bundled ELF file needs, resolved on this (Debian) build machine, mapped to
# its package; plus what Qt loads at run time without linking (xcb's cursor library, the
# keyboard maps behind libxkbcommon, fonts through fontconfig). The bundle carries copies of
# some of these; depending on the packages too keeps them patched and brings their data files.
say "Debian dependencies"
absent=""
for p in $QT_RUNTIME; do
  # (No `| grep -q` under pipefail: grep's early exit makes the pipeline fail with SIGPIPE.)
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] \
    || absent="$absent $p"
done
if [ -n "$absent" ]; then
  echo "build.sh: this machine lacks libraries the bundle links to; first run:" >&2
  echo "  apt-get install -y$absent" >&2
  exit 2
fi
# The sonames the bundle's ELF files link to (readelf: no loader run, quick), less those the
# bundle carries, located through the linker cache and mapped to their packages in one query.
needed="$(find "$BUNDLE" -type f \( -name '*.so*' -o -name pairsync \) -print0 \
  | { xargs -0 readelf -d 2>/dev/null || true; } | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u)"
bundled="$(find "$BUNDLE" \( -type f -o -type l \) -name 'lib*.so*' -printf '%f\n' | sort -u)"
patterns=()
cache="$(ldconfig -p)"
for soname in $(comm -23 <(echo "$needed") <(echo "$bundled")); do
  path="$(awk -v n="$soname" '$1 == n && /x86-64|AArch64/ {print $NF; exit}' <<<"$cache")"
  [ -n "$path" ] || { echo "build.sh: $soname is neither on this machine nor in the bundle" >&2; exit 1; }
  path="$(realpath "$path")"  # /lib or /usr/lib (merged /usr): match either
  patterns+=("*/$(basename "$(dirname "$path")")/$(basename "$path")")
done
pkgs="$(dpkg -S "${patterns[@]}" | cut -d: -f1 | tr ',' '\n' | sed 's/^ *//' | sort -u)"
DEPENDS="$(printf '%s\n' $pkgs $QT_RUNTIME | grep -v '^pairsync$' | sort -u | paste -sd, - | sed 's/,/, /g')"
# The newest glibc symbol any bundled binary uses: the oldest libc6 the bundle runs on.
GLIBC="$(find "$BUNDLE" -type f \( -name '*.so*' -o -name pairsync \) -print0 \
  | { xargs -0 objdump -T 2>/dev/null || true; } | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 | cut -d_ -f2)"
DEPENDS="$(sed -E "s/(^|, )libc6(,|$)/\1libc6 (>= $GLIBC)\2/" <<<"$DEPENDS")"
# A GLib from Debian 13 on is libglib2.0-0t64: accept either (same for any *t64 rename).
DEPENDS="$(sed -E 's/\b(lib[a-z0-9.+-]+)t64\b/\1t64 | \1/g' <<<"$DEPENDS")"
echo "Depends: $DEPENDS" >&2

# --- shared pieces: desktop entry, metainfo, icons --------------------------------------------
stage_share() {  # $1: a share/ folder to fill
  install -Dm644 "$HERE/org.pairsync.Pairsync.desktop" "$1/applications/org.pairsync.Pairsync.desktop"
  mkdir -p "$1/metainfo"
  sed -e "s/@VERSION@/$VERSION/g" -e "s/@DATE@/$DATE/g" "$HERE/org.pairsync.Pairsync.metainfo.xml" \
    > "$1/metainfo/org.pairsync.Pairsync.metainfo.xml"
  chmod 644 "$1/metainfo/org.pairsync.Pairsync.metainfo.xml"
  mkdir -p "$1/icons"
  cp -r "$BUILD/icons/hicolor" "$1/icons/"
}

# --- the .deb ---------------------------------------------------------------------------------
say ".deb"
DEBROOT="$BUILD/deb/pairsync_${VERSION}_${DEB_ARCH}"
rm -rf "$DEBROOT" && mkdir -p "$DEBROOT/DEBIAN" "$DEBROOT/opt" "$DEBROOT/usr/bin"
cp -a "$BUNDLE" "$DEBROOT/opt/pairsync"
ln -s /opt/pairsync/pairsync "$DEBROOT/usr/bin/pairsync"
stage_share "$DEBROOT/usr/share"
install -Dm644 /dev/stdin "$DEBROOT/usr/share/doc/pairsync/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Pairsync
Comment: /opt/pairsync holds Pairsync with the Python runtime and the Qt (LGPL-3.0) and
 other libraries it runs on, each under its own license; see the wheels' metadata in
 /opt/pairsync/_internal/*.dist-info.

Files: *
Copyright: Pairsync
License: proprietary
EOF
if command -v appstreamcli >/dev/null; then
  appstreamcli validate --no-net "$DEBROOT/usr/share/metainfo/org.pairsync.Pairsync.metainfo.xml" >&2
fi
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$DEBROOT/usr/share/applications/org.pairsync.Pairsync.desktop"
fi
find "$DEBROOT" -type d -exec chmod 755 {} +
SIZE_KB="$(du -sk --exclude=DEBIAN "$DEBROOT" | cut -f1)"
cat > "$DEBROOT/DEBIAN/control" <<EOF
Package: pairsync
Version: $VERSION
Architecture: $DEB_ARCH
Maintainer: $MAINTAINER
Installed-Size: $SIZE_KB
Depends: $DEPENDS
Recommends: gnome-keyring | kwalletmanager | keepassxc
Section: utils
Priority: optional
Description: keep the contacts of two apps in sync
 Pairsync keeps the contacts of two apps in sync, from your own computer: vCard
 folders and files, CSV files (Outlook, Google Contacts exports) and CardDAV
 address books (iCloud, Nextcloud, Fastmail). Nothing is ever deleted, every
 run can be previewed, and every field written is logged and can be undone.
 .
 Passwords are kept in the desktop's keyring (the Secret Service).
EOF
mkdir -p "$DIST"
DEB="$DIST/pairsync_${VERSION}_${DEB_ARCH}.deb"
dpkg-deb --root-owner-group -Z"$COMPRESS" --build "$DEBROOT" "$DEB" >&2

# --- the tarball ------------------------------------------------------------------------------
say "tarball"
TARNAME="pairsync-${VERSION}-linux-${TAR_ARCH}"
TARROOT="$BUILD/tar/$TARNAME"
rm -rf "$TARROOT" && mkdir -p "$TARROOT"
cp -a "$BUNDLE" "$TARROOT/pairsync"
stage_share "$TARROOT/share"
install -m755 "$HERE/install.sh" "$TARROOT/install.sh"
install -m644 "$HERE/README-tarball.txt" "$TARROOT/README.txt"
TAR="$DIST/$TARNAME.tar.gz"
gzip_cmd=gzip
command -v pigz >/dev/null && gzip_cmd=pigz
tar -C "$BUILD/tar" --owner=0 --group=0 --numeric-owner -cf - "$TARNAME" | "$gzip_cmd" "-${PAIRSYNC_GZIP_LEVEL:-6}" > "$TAR"

say "done in $((SECONDS - started)) s"
ls -l "$DEB" "$TAR" >&2
echo "bundle: $(du -sh "$BUNDLE" | cut -f1)" >&2
printf '%s\n%s\n' "$DEB" "$TAR" >&3
