#!/usr/bin/env bash
# The browser tests: a headless Chromium opens the demo's home page as a new
# visitor and as Jane and checks that only the personalized blocks differ;
# then logs into the console, checks its maps, experiment and audience
# against traffic it sent, and follows a persona's preview link; and a page
# served through tailor echoes ten thousand messages over a WebSocket; and
# hostile profile values in every context a template lands in run no script. Saves
# screenshots (the README's). Installs Debian's chromium first when
# there is none. Screenshots go to $TAILOR_SCREENSHOTS (docs/screenshots
# refreshes the README's), else a new temporary folder; the test names it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-chromium.sh
TAILOR_SCREENSHOTS="$(realpath -m "${TAILOR_SCREENSHOTS:-$(mktemp -d -t tailor-screenshots.XXXXXX)}")"
export TAILOR_SCREENSHOTS
go test -tags browser -count=1 -run '^TestBrowser' -v ./cmd/tailor
