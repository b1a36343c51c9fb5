#!/usr/bin/env bash
# A 1 GiB HTML page on a path with rules whose elements are at its very
# end (bench/slow-origin's /huge), through tailor: what comes out, how
# long it takes, and tailor's peak memory (VmHWM). Past max_rewrite_body
# (5 MiB by default) tailor rewrites the page in pieces, holding at most
# that much (rewrite.Segmenter), and counts it as rewritten.
#
#   bash bench/bigpage.sh
#   TAILOR_BIN=/path/to/tailor SIZE=$((1<<30)) bash bench/bigpage.sh
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SIZE=${SIZE:-$((1 << 30))}
need_tools curl go
make_tmp
take_port ORIGIN_PORT
take_port PROXY_PORT
take_port ADMIN_PORT

mkdir -p "$TMP/rules"
cat >"$TMP/rules/huge.yaml" <<'YAML'
pages:
  - match: ["/huge"]
    rules:
      - id: greet
        select: ".greeting"
        text: "Welcome back!"
YAML
slow_origin_and_tailor -huge "$SIZE"

rss() { awk '/^VmHWM/ {print $2/1024 " MiB peak"} /^VmRSS/ {print $2/1024 " MiB now"}' "/proc/$TPID/status" | paste -sd' '; }
log "tailor before: $(rss)"
for url in "http://127.0.0.1:$ORIGIN_PORT/huge" "http://127.0.0.1:$PROXY_PORT/huge"; do
	out=$(curl -s -A "$BENCH_UA" -w '%{size_download} %{time_total}' -o >(tail -c 16384 >"$TMP/tail") "$url")
	sleep 0.2
	read -r bytes secs <<<"$out"
	printf '%-40s %12d bytes in %6.2f s (%6.0f MiB/s); ends %s\n' "$url" "$bytes" "$secs" \
		"$(awk -v b="$bytes" -v s="$secs" 'BEGIN{print b/s/1048576}')" \
		"$(grep -o '<p class="greeting">[^<]*</p>' "$TMP/tail" || echo '(no greeting in the last 16 KiB)')"
done
log "tailor after: $(rss)"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -E '^tailor_rewrites_total\{result="(too_large|rewritten)"' >&2
