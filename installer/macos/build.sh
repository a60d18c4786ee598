#!/usr/bin/env bash
# Builds Pairsync for macOS: dist/pairsync-<version>-macos-<arch>.dmg holding Pairsync.app.
#
#   installer/macos/build.sh
#
# Needs: macOS 12+, Python 3.11+ from python.org (a framework build: PyInstaller bundles it),
# Xcode command line tools (codesign, hdiutil, xcrun). Builds for this Mac's architecture
# (arm64 or x86_64); build on each to ship both.
# Signing and notarization (see installer/README.md), both optional:
#   PAIRSYNC_SIGN_IDENTITY   "Developer ID Application: Name (TEAMID)": sign with the hardened
#                            runtime; without it the app is ad-hoc signed (runs on this Mac;
#                            elsewhere Gatekeeper asks the user to allow it)
#   PAIRSYNC_NOTARY_PROFILE  a `xcrun notarytool store-credentials` profile: notarize the .dmg
#                            and staple the ticket
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/installer/macos"
BUILD="${PAIRSYNC_BUILD:-$ROOT/build}"
DIST="${PAIRSYNC_DIST:-$ROOT/dist}"
PYTHON="${PYTHON:-python3}"
export PAIRSYNC_BUILD="$BUILD"
say() { printf '\n== %s\n' "$*" >&2; }

[ "$(uname -s)" = Darwin ] || { echo "build.sh: run this on macOS" >&2; exit 2; }
ARCH="$(uname -m)"

say "build venv"
"$PYTHON" -m venv "$BUILD/venv"
PY="$BUILD/venv/bin/python"
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q "$ROOT[installer]"
VERSION="$("$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$ROOT/pyproject.toml")"
say "Pairsync $VERSION ($ARCH)"

say "icons (pairsync.icns) from resources/icons/pairsync.svg"
rm -rf "$BUILD/icons"
QT_QPA_PLATFORM=offscreen "$PY" "$ROOT/installer/render_icons.py" "$BUILD/icons"

say "Pairsync.app (installer/pairsync.spec)"
rm -rf "$BUILD/bundle"
"$PY" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$BUILD/bundle" --workpath "$BUILD/pyinstaller" "$ROOT/installer/pairsync.spec"
APP="$BUILD/bundle/Pairsync.app"
said="$("$APP/Contents/MacOS/Pairsync" --version)"
[ "$said" = "pairsync $VERSION" ] || { echo "build.sh: the app says '$said'" >&2; exit 1; }
plutil -lint "$APP/Contents/Info.plist" >&2

if [ -n "${PAIRSYNC_SIGN_IDENTITY:-}" ]; then
  say "signing with $PAIRSYNC_SIGN_IDENTITY (hardened runtime)"
  codesign --force --deep --timestamp --options runtime \
    --entitlements "$HERE/entitlements.plist" --sign "$PAIRSYNC_SIGN_IDENTITY" "$APP"
else
  say "ad-hoc signature (no PAIRSYNC_SIGN_IDENTITY)"
  codesign --force --deep --sign - "$APP"
fi
codesign --verify --deep --strict "$APP" >&2

say ".dmg"
STAGE="$BUILD/dmg"
rm -rf "$STAGE" && mkdir -p "$STAGE" "$DIST"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"  # drag Pairsync onto it to install
DMG="$DIST/pairsync-$VERSION-macos-$ARCH.dmg"
rm -f "$DMG"
hdiutil create -volname "Pairsync $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG" >&2
if [ -n "${PAIRSYNC_SIGN_IDENTITY:-}" ]; then
  codesign --force --timestamp --sign "$PAIRSYNC_SIGN_IDENTITY" "$DMG"
fi
if [ -n "${PAIRSYNC_NOTARY_PROFILE:-}" ]; then
  say "notarizing (a few minutes)"
  xcrun notarytool submit "$DMG" --keychain-profile "$PAIRSYNC_NOTARY_PROFILE" --wait
  xcrun stapler staple "$DMG"
  spctl --assess --type open --context context:primary-signature -v "$DMG" >&2
fi
say "done: $DMG ($(du -h "$DMG" | cut -f1))"
echo "$DMG"
