#!/usr/bin/env bash
# Whole-system pass-through benchmark: direct origin vs nginx proxy_pass vs
# tailor, side by side, on one machine, loopback only. See bench/README.md.
#
#   bash bench/passthrough.sh
#
# Environment (all optional):
#   ROUNDS=3          interleaved rounds; the table shows the median
#   DURATION=8s       wrk duration of one measured run (wrk syntax: 8s, 1m)
#   CONNECTIONS=64    wrk connections (wrk always runs one thread: -t1)
#   WARMUP=2s         one unmeasured run per target and file before round 1
#   WRK_CPU=0         core for wrk
#   SERVER_CPU=1      core shared by the origin nginx and the proxy under test
#   TAILOR_BIN=...    use this binary instead of building ./cmd/tailor
#   BASELINE_BIN=...  also measure this tailor binary (say, an older commit's)
#                     as targets baseline and baseline-returning, interleaved
#                     with the others: a before/after on the same machine state
#   NGINX_PROXY_EXTRA=... extra directives for the proxy nginx's location,
#                     e.g. 'proxy_buffers 16 64k; proxy_buffer_size 64k;'
#   IDLE_WAIT=60      seconds to wait for an idle machine before starting
#   OUT=FILE          also save the raw per-run results (TSV) to FILE
#   KEEP_TMP=1        keep the temporary directory (configs, logs, wrk output)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
NGINX_PROXY_EXTRA=${NGINX_PROXY_EXTRA:-}
BASELINE_BIN=${BASELINE_BIN:-}

# tailor-returning is the same tailor, asked with a returning visitor's
# signed id and state cookies (RUN_HOOK below); tailor alone is a new
# visitor on every request, who gets an id cookie on HTML. fasthttp is
# bench/bare-proxy: the same server and client library with nothing of
# tailor's, the ceiling fasthttp itself sets in this layout.
TARGETS=(direct nginx fasthttp tailor tailor-returning)
if [[ -n $BASELINE_BIN ]]; then
	[[ -x $BASELINE_BIN ]] || die "BASELINE_BIN=$BASELINE_BIN is not an executable"
	TARGETS+=(baseline baseline-returning)
fi
FILES=(page.html small.html small.json blob.bin)

check_knobs
need_tools
setup_pinning
log_plan "plus the build (and up to ${IDLE_WAIT}s if the machine is busy)"
wait_idle
make_tmp

# ---------------------------------------------------------------- ports
take_port ORIGIN_PORT
take_port NGINX_PORT
take_port BARE_PORT
take_port TAILOR_PORT
take_port ADMIN_PORT
take_port BASE_PORT
take_port BASE_ADMIN_PORT

declare -A URL_BASE=(
	[direct]="http://127.0.0.1:$ORIGIN_PORT"
	[nginx]="http://127.0.0.1:$NGINX_PORT"
	[fasthttp]="http://127.0.0.1:$BARE_PORT"
	[tailor]="http://127.0.0.1:$TAILOR_PORT"
	[tailor-returning]="http://127.0.0.1:$TAILOR_PORT"
	[baseline]="http://127.0.0.1:$BASE_PORT"
	[baseline-returning]="http://127.0.0.1:$BASE_PORT"
)

# ---------------------------------------------------------------- content
WWW=$TMP/www
mkdir -p "$WWW"
gen_html >"$WWW/page.html"
# 1 KB responses (issue 16): where per-request work (identity, state,
# headers) weighs most. A small HTML page and a JSON document.
awk 'BEGIN { printf "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Small</title></head><body><main>";
	for (i = 0; i < 14; i++) printf "<p>Line %02d of a small page, about a kilobyte in all.</p>", i;
	print "</main></body></html>" }' >"$WWW/small.html"
awk 'BEGIN { printf "{\"items\":["; for (i = 0; i < 24; i++) printf "%s{\"id\":%d,\"name\":\"item %02d\"}", (i ? "," : ""), i, i;
	print "],\"next\":null}" }' >"$WWW/small.json"
head -c 1048576 /dev/urandom >"$WWW/blob.bin"
chmod 755 "$WWW"
chmod 644 "$WWW"/*
declare -A SIZE SUM
for f in "${FILES[@]}"; do
	SIZE[$f]=$(stat -c %s "$WWW/$f")
	SUM[$f]=$(sha256sum <"$WWW/$f" | cut -d' ' -f1)
done
log "content: page.html ${SIZE[page.html]} bytes (text/html), small.html ${SIZE[small.html]}, small.json ${SIZE[small.json]}, blob.bin ${SIZE[blob.bin]} bytes"

# ---------------------------------------------------------------- configs
nginx_conf origin "
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $WWW;
    }"

# The proxy nginx (lib.sh): keep-alive proxy_pass, default buffers.
proxy_nginx_conf

cat >"$TMP/tailor.yaml" <<EOC
listen: "127.0.0.1:$TAILOR_PORT"
origin: "http://127.0.0.1:$ORIGIN_PORT"
admin: { listen: "127.0.0.1:$ADMIN_PORT" }
identity: { cookie: { keys: ["$COOKIE_KEY"], secure: false } }
EOC

# The returning visitor's cookies, for tailor-returning's runs.
new_visitor
RETURNING_COOKIE="$ID_COOKIE; $(state_cookie)"
returning_hook() { # pre|post ROUND FILE TARGET DURATION
	WRK_ARGS=()
	[[ $1 == pre && $4 == *-returning ]] && WRK_ARGS=(-H "Cookie: $RETURNING_COOKIE")
	return 0
}
RUN_HOOK=returning_hook

# ---------------------------------------------------------------- build
build_tailor
(cd "$REPO" && go build -o "$TMP/bare-proxy" ./bench/bare-proxy) || die "go build ./bench/bare-proxy failed"
"$TAILOR_BIN" check --config "$TMP/tailor.yaml" >/dev/null || die "tailor check rejected $TMP/tailor.yaml"

# ---------------------------------------------------------------- start
start_nginx origin
wait_http origin "${URL_BASE[direct]}/page.html" "${PID_OF[origin]}"
PID_OF[direct]=${PID_OF[origin]}
start_nginx nginx
wait_http nginx "${URL_BASE[nginx]}/page.html" "${PID_OF[nginx]}"
start_tailor tailor "$TMP/tailor.yaml" "$ADMIN_PORT"
PID_OF[tailor-returning]=${PID_OF[tailor]}
if [[ -n $BASELINE_BIN ]]; then
	sed -e "s/127.0.0.1:$TAILOR_PORT/127.0.0.1:$BASE_PORT/" -e "s/127.0.0.1:$ADMIN_PORT/127.0.0.1:$BASE_ADMIN_PORT/" \
		"$TMP/tailor.yaml" >"$TMP/baseline.yaml"
	TAILOR_BIN=$BASELINE_BIN start_tailor baseline "$TMP/baseline.yaml" "$BASE_ADMIN_PORT"
	PID_OF[baseline-returning]=${PID_OF[baseline]}
	log "baseline: $BASELINE_BIN on :$BASE_PORT (pid ${PID_OF[baseline]})"
fi
GOMAXPROCS=1 "${SRV_PIN[@]}" "$TMP/bare-proxy" -listen "127.0.0.1:$BARE_PORT" -origin "127.0.0.1:$ORIGIN_PORT" 2>"$TMP/fasthttp.log" &
PIDS+=($!)
PID_OF[fasthttp]=$!
wait_http fasthttp "${URL_BASE[fasthttp]}/page.html" "${PID_OF[fasthttp]}"
log "origin nginx :$ORIGIN_PORT (pid ${PID_OF[origin]}), nginx proxy :$NGINX_PORT (pid ${PID_OF[nginx]})," \
	"tailor :$TAILOR_PORT admin :$ADMIN_PORT (pid ${PID_OF[tailor]}, GOMAXPROCS=1);" \
	"$( ((PIN)) && echo "wrk on core $WRK_CPU, servers on core $SERVER_CPU" || echo "unpinned")"

# ---------------------------------------------------------------- checks
verify() { # every target must answer 200 with the exact bytes of each file
	local t f got sum
	for t in "${TARGETS[@]}"; do
		for f in "${FILES[@]}"; do
			got=$(curl -sS -A "$BENCH_UA" -o "$TMP/check.body" -w '%{http_code} %{size_download}' --max-time 10 "${URL_BASE[$t]}/$f") ||
				die "$t /$f: curl failed"
			[[ $got == "200 ${SIZE[$f]}" ]] || die "$t /$f: got status+bytes '$got', want '200 ${SIZE[$f]}'"
			sum=$(sha256sum <"$TMP/check.body" | cut -d' ' -f1)
			[[ $sum == "${SUM[$f]}" ]] || die "$t /$f: body differs from the file"
		done
	done
}
verify
log "checked: all targets answer 200 with the exact bytes of every file"

# ---------------------------------------------------------------- measure
init_results
measure_all

# The processes must have survived and still serve the exact bytes.
for t in origin nginx fasthttp tailor ${BASELINE_BIN:+baseline}; do
	kill -0 "${PID_OF[$t]}" 2>/dev/null || die "$t died during the run (logs in $TMP)"
done
verify

[[ -n $OUT ]] && cp "$RESULTS" "$OUT" && log "raw results saved to $OUT"

# ---------------------------------------------------------------- report
echo
echo "tailor pass-through benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
echo "wrk -t1 -c$CONNECTIONS -d$DURATION --latency; $ROUNDS interleaved round(s), medians shown;" \
	"$( ((PIN)) && echo "wrk on core $WRK_CPU, origin + proxy on core $SERVER_CPU" || echo "no CPU pinning")"
echo "origin: nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'), 1 worker, sendfile; proxy nginx: 1 worker, upstream keepalive 64${NGINX_PROXY_EXTRA:+, ${NGINX_PROXY_EXTRA%;}};" \
	"tailor $("$TAILOR_BIN" version 2>/dev/null | awk '{print $2}') GOMAXPROCS=1"
echo
report_table
echo
for f in "${FILES[@]}"; do
	awk -v f="$f" -v t="${MED[$f/tailor]}" -v r="${MED[$f/tailor-returning]}" -v n="${MED[$f/nginx]}" -v d="${MED[$f/direct]}" -v b="${MED[$f/fasthttp]}" 'BEGIN{
		printf "%-10s tailor/nginx req/s = %.2f, returning visitor %.2f   (fasthttp/nginx %.2f, tailor/fasthttp %.2f, tailor/direct %.2f, nginx/direct %.2f)\n", f, t/n, r/n, b/n, t/b, t/d, n/d }'
done
if [[ -n $BASELINE_BIN ]]; then
	for f in "${FILES[@]}"; do
		awk -v f="$f" -v t="${MED[$f/tailor]}" -v r="${MED[$f/tailor-returning]}" -v bt="${MED[$f/baseline]}" -v br="${MED[$f/baseline-returning]}" \
			-v n="${MED[$f/nginx]}" 'BEGIN{ printf "%-10s tailor/baseline req/s = %.2f, returning %.2f   (baseline/nginx %.2f, returning %.2f)\n", f, t/bt, r/br, bt/n, br/n }'
	done
fi
echo "issue 16's goals: 1 KB HTML >= 0.7x nginx for a new and a returning visitor, 1 KB JSON >= 0.8x"
echo
report_legend "proxy us/r: CPU time (user+sys) of the proxy process per request; for direct, in parentheses, the origin's."
