#!/bin/sh
# Installs Pairsync for you alone (no administrator rights needed), from this folder:
#
#   ./install.sh              install, or update an earlier install
#   ./install.sh --uninstall  remove it again (also: ~/.local/lib/pairsync/install.sh --uninstall)
#
# Where things go:
#   ~/.local/lib/pairsync/                   the app (this folder's pairsync/)
#   ~/.local/bin/pairsync                    the command (a link into the folder above)
#   ~/.local/share/applications/, icons/hicolor/, metainfo/   the menu entry and its icons
# Uninstalling removes exactly those (and the "Start Pairsync when I log in" entry if it starts
# this copy). Your contacts, settings and Pairsync's database (~/.local/share/pairsync,
# ~/.config/pairsync) are kept; delete those folders too to remove every trace.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
CONFIG=${XDG_CONFIG_HOME:-$HOME/.config}
case $DATA in /*) ;; *) DATA=$HOME/.local/share ;; esac
case $CONFIG in /*) ;; *) CONFIG=$HOME/.config ;; esac
BIN=$HOME/.local/bin
LIB=$HOME/.local/lib/pairsync
MANIFEST=$LIB/installed-files
APP=$LIB/pairsync/pairsync

say() { printf '%s\n' "$*"; }

# A path as one argument of a desktop entry's Exec key (Desktop Entry Specification).
exec_quote() {
  printf '"%s"' "$(printf '%s' "$1" | sed -e 's/[\\"`$]/\\&/g')"
}

# mkdir -p that records each folder it creates (so that uninstalling removes only those).
make_dir() {
  if [ ! -d "$1" ]; then
    make_dir "$(dirname "$1")"
    mkdir "$1"
    printf 'd %s\n' "$1" >> "$NEW"
  fi
}

put_file() {  # put_file SOURCE TARGET
  make_dir "$(dirname "$2")"
  cp "$1" "$2.tmp.$$" && chmod 644 "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
  printf 'f %s\n' "$2" >> "$NEW"
}

uninstall() {
  if [ ! -f "$MANIFEST" ]; then
    say "Pairsync is not installed in $LIB (nothing to remove)."
    return 0
  fi
  autostart=$CONFIG/autostart/pairsync.desktop
  if [ -f "$autostart" ] && grep -q -e "$LIB/" -e "$BIN/pairsync" "$autostart"; then
    rm -f "$autostart"
  fi
  if [ -L "$BIN/pairsync" ] && [ "$(readlink "$BIN/pairsync")" = "$APP" ]; then
    rm -f "$BIN/pairsync"
  fi
  manifest=$(cat "$MANIFEST")
  printf '%s\n' "$manifest" | grep '^f ' | cut -c3- | while IFS= read -r path; do
    rm -f "$path"
  done
  rm -rf "$LIB"
  # The folders install.sh created, deepest first, where they are empty now.
  printf '%s\n' "$manifest" | grep '^d ' | cut -c3- | sort -r | while IFS= read -r path; do
    rmdir "$path" 2>/dev/null || true
  done
  say "Pairsync is uninstalled. Your data is kept in $DATA/pairsync and $CONFIG/pairsync;"
  say "delete those folders to remove it too."
}

install_app() {
  if [ ! -x "$HERE/pairsync/pairsync" ]; then
    say "install.sh: run it from the unpacked pairsync-…-linux folder (pairsync/ is missing)." >&2
    exit 2
  fi
  old_manifest=""
  [ -f "$MANIFEST" ] && old_manifest=$(cat "$MANIFEST")
  NEW=$(mktemp "${TMPDIR:-/tmp}/pairsync-install.XXXXXX")
  trap 'rm -f "$NEW"' EXIT
  if [ -d "$LIB" ]; then
    # An update: keep the record of the folders the first install created.
    printf '%s\n' "$old_manifest" | grep '^d ' > "$NEW" || true
  else
    make_dir "$LIB"
  fi
  # The app folder: copied beside the old one, then swapped in.
  rm -rf "$LIB/pairsync.new" "$LIB/pairsync.old"
  cp -R "$HERE/pairsync" "$LIB/pairsync.new"
  [ -d "$LIB/pairsync" ] && mv "$LIB/pairsync" "$LIB/pairsync.old"
  mv "$LIB/pairsync.new" "$LIB/pairsync"
  rm -rf "$LIB/pairsync.old"
  if [ "$HERE" != "$LIB" ]; then
    cp "$HERE/install.sh" "$LIB/install.sh.tmp" && chmod 755 "$LIB/install.sh.tmp"
    mv -f "$LIB/install.sh.tmp" "$LIB/install.sh"
  fi

  # The command.
  make_dir "$BIN"
  if [ -e "$BIN/pairsync" ] || [ -L "$BIN/pairsync" ]; then
    if [ -L "$BIN/pairsync" ] && [ "$(readlink "$BIN/pairsync")" = "$APP" ]; then
      :
    else
      say "Note: $BIN/pairsync already exists and is not this install's; left as it is."
      say "      This copy runs as $APP."
    fi
  else
    ln -s "$APP" "$BIN/pairsync"
  fi

  # Menu entry, metainfo and icons.
  entry=$LIB/org.pairsync.Pairsync.desktop
  sed -e "s|^Exec=.*|Exec=$(exec_quote "$APP")|" -e "s|^TryExec=.*|TryExec=$APP|" \
    "$HERE/share/applications/org.pairsync.Pairsync.desktop" > "$entry"
  put_file "$entry" "$DATA/applications/org.pairsync.Pairsync.desktop"
  rm -f "$entry"
  put_file "$HERE/share/metainfo/org.pairsync.Pairsync.metainfo.xml" \
    "$DATA/metainfo/org.pairsync.Pairsync.metainfo.xml"
  (cd "$HERE/share/icons" && find hicolor -type f) | while IFS= read -r icon; do
    put_file "$HERE/share/icons/$icon" "$DATA/icons/$icon"
  done
  # Files of the previous install that this one no longer has.
  printf '%s\n' "$old_manifest" | grep '^f ' | cut -c3- | while IFS= read -r path; do
    grep -qxF "f $path" "$NEW" || rm -f "$path"
  done
  cp "$NEW" "$MANIFEST.tmp" && mv -f "$MANIFEST.tmp" "$MANIFEST"
  # Menus notice new entries by themselves; this only makes it quicker where available.
  touch "$DATA/icons/hicolor" 2>/dev/null || true

  say "Pairsync $("$APP" --version | cut -d' ' -f2) is installed: find it in your applications menu."
  case ":$PATH:" in
    *":$BIN:"*) say "Commands: pairsync --help" ;;
    *) say "Commands: $BIN/pairsync --help ($BIN is not on your PATH)" ;;
  esac
  say "To uninstall: $LIB/install.sh --uninstall"
}

case "${1:-}" in
  "") install_app ;;
  --uninstall) uninstall ;;
  -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) say "install.sh: unknown option $1 (use --uninstall or --help)" >&2; exit 2 ;;
esac
