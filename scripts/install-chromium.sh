#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests, unless a Chromium is
# already on the PATH or named by TAILOR_CHROMIUM. Safe to run twice.
set -euo pipefail

if [ -n "${TAILOR_CHROMIUM:-}" ]; then
	exit 0
fi
for name in chromium chromium-browser google-chrome; do
	if command -v "$name" >/dev/null 2>&1; then
		exit 0
	fi
done
if ! command -v apt-get >/dev/null 2>&1; then
	echo "no Chromium and no apt-get: install Chromium, or name it in TAILOR_CHROMIUM" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	sudo=sudo
fi
echo "installing Debian's chromium for the browser test" >&2
# Bounded: a slow mirror or a held dpkg lock fails CI rather than hanging it.
timeout 300 $sudo apt-get -o DPkg::Lock::Timeout=60 update -qq
timeout 600 $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 install -y -qq chromium >/dev/null
command -v chromium >/dev/null
