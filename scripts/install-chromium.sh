#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests, unless a Chromium is
# already on the PATH or named by TAILOR_CHROMIUM. Safe to run twice.
set -euo pipefail

if [ -n "${TAILOR_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
	exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	sudo=sudo
fi
echo "installing Debian's chromium for the browser test" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
