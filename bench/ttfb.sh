#!/usr/bin/env bash
# Time to first byte through tailor, against an origin that takes its time
# (bench/slow-origin): issue 14's two cases.
#
#   /download  1 KiB every 200 ms, Content-Length known, no rules: the
#              first byte through tailor should come within 50 ms
#   /page      10 KB of head at once, the rest 1.5 s later, on a path with
#              rules whose elements are in the late part: the head should
#              come within 50 ms, on the first request for the URL (the
#              first match is looked for in what has arrived when the
#              origin pauses) as once its template is cached
#
# For each: curl's time_starttransfer (the first byte of the body or
# headers) and the time of the first body byte, direct and through tailor,
# ROUNDS times (median), plus a check that tailor's page is personalized.
#
#   bash bench/ttfb.sh
#   TAILOR_BIN=/path/to/tailor ROUNDS=5 bash bench/ttfb.sh
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROUNDS=${ROUNDS:-5}
need_tools curl go
make_tmp

take_port ORIGIN_PORT
take_port PROXY_PORT
take_port ADMIN_PORT

mkdir -p "$TMP/rules"
cat >"$TMP/rules/slow.yaml" <<'YAML'
pages:
  - match: ["/page"]
    rules:
      - id: greet
        select: ".greeting"
        text: "Welcome back!"
      - id: cta
        select: ".cta"
        inner: '<a href="/cart">Finish your order</a>'
YAML
slow_origin_and_tailor

# ttfb URL: seconds to the first byte of the response and to the end.
ttfb() { curl -s -A "$BENCH_UA" -o "$TMP/body" -w '%{time_starttransfer} %{time_total}\n' "$1"; }

report() { # report NAME URL
	local i out first=() total=()
	for ((i = 0; i < ROUNDS; i++)); do
		read -r -a out < <(ttfb "$2")
		first+=("${out[0]}")
		total+=("${out[1]}")
	done
	printf '%-34s first byte %7.1f ms   whole response %7.1f ms   (median of %d)\n' "$1" \
		"$(printf '%s\n' "${first[@]}" | median | awk '{print $1*1000}')" \
		"$(printf '%s\n' "${total[@]}" | median | awk '{print $1*1000}')" "$ROUNDS"
}

direct=http://127.0.0.1:$ORIGIN_PORT
proxy=http://127.0.0.1:$PROXY_PORT
log "measuring ($ROUNDS rounds each; the page takes 1.5 s, the download 3.8 s per request)"
report "download, direct" "$direct/download"
report "download, through tailor" "$proxy/download"
report "page, direct" "$direct/page"
read -r -a cold < <(ttfb "$proxy/page?cold")
printf '%-34s first byte %7.1f ms   whole response %7.1f ms   (one request, nothing cached)\n' \
	"page, through tailor, first request" "$(awk -v s="${cold[0]}" 'BEGIN{print s*1000}')" "$(awk -v s="${cold[1]}" 'BEGIN{print s*1000}')"
personalized() {
	grep -q '<p class="greeting">Welcome back!</p>' "$TMP/body" || die "tailor's page is not personalized"
	grep -q 'Finish your order' "$TMP/body" || die "tailor's page is not personalized"
}
personalized
ttfb "$proxy/page" >/dev/null # the URL's first request: its template is cached from here on
report "page, through tailor, cached" "$proxy/page"
personalized
log "tailor's pages are personalized, first request and cached (both rules applied)"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -E '^tailor_rewrites_total|^tailor_page_cache_requests_total' >&2
