#!/usr/bin/env bash
# Installs Debian's `chromium` when it is missing: the e2e suite drives it headless (playwright with
# executable_path) and fails, rather than skips, without it. `make e2e` runs this first.
# Needs root (or sudo) for apt-get; does nothing when a Chromium is already on PATH.
set -euo pipefail

for candidate in "${SYMBL_CHROMIUM:-}" chromium chromium-browser; do
  if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1; then
    echo "install_chromium: using $(command -v "$candidate")"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: no chromium on PATH and no apt-get; install Chromium and set SYMBL_CHROMIUM=/path/to/chromium" >&2
  exit 1
fi
sudo=""
if [[ "$(id -u)" != "0" ]]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install_chromium: apt-get needs root; run as root or install 'chromium' yourself" >&2
    exit 1
  fi
fi
echo "install_chromium: installing Debian's chromium with apt-get (one time)"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium
command -v chromium >/dev/null 2>&1 || { echo "install_chromium: chromium still not on PATH" >&2; exit 1; }
echo "install_chromium: installed $(command -v chromium)"
