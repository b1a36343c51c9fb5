#!/usr/bin/env bash
# The browser test: a headless Chromium opens the demo's home page as a new
# visitor and as Jane, saves both screenshots (the README's) and checks that
# only the personalized blocks differ. Installs Debian's chromium first when
# there is none. Screenshots go to docs/screenshots, or $TAILOR_SCREENSHOTS.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-chromium.sh
export TAILOR_SCREENSHOTS="$(realpath -m "${TAILOR_SCREENSHOTS:-docs/screenshots}")"
go test -tags browser -count=1 -run '^TestBrowser' -v ./cmd/tailor
