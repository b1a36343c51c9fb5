#!/usr/bin/env bash
# Refreshes internal/bots from the npm package crawler-user-agents (MIT):
# its crawler-user-agents.json and LICENSE replace the embedded ones, the
# version is written into internal/bots/doc.go, and the package's tests
# run (every pattern compiles and matches one of its instances; common
# browsers are not bots). Review the diff and commit. Needs npm and go.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "crawler-user-agents@${1:-latest}" >/dev/null && tar xzf crawler-user-agents-*.tgz)
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$work/package/package.json" | head -n1)
cp "$work/package/crawler-user-agents.json" internal/bots/crawler-user-agents.json
cp "$work/package/LICENSE" internal/bots/LICENSE.crawler-user-agents
sed -i "s/version [0-9][0-9.]* as published on npm/version $version as published on npm/" internal/bots/doc.go
go test -count=1 ./internal/bots ./rules
echo "crawler-user-agents $version: review 'git diff internal/bots' and commit"
