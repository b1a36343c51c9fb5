#!/usr/bin/env bash
# Slowloris (issue 15): ordinary traffic through tailor while 20,000
# connections trickle request headers a byte a second and never finish.
#
# Layout: wrk and the attackers (bench/slowloris, in processes of at most
# 9,000 connections, each from 20 loopback addresses of its own: 127.0.0.2
# and on) on core 0; nginx (the origin, a 7 KB page) and tailor on core 1.
# Everything runs at the hard open-files limit; tailor's limits are its
# defaults (header_timeout 10s, max_conns sized from that limit). Each
# round runs wrk (-c64, --latency) without the attack, then again with the
# attack holding its connections; the table gives the medians of req/s and
# p99 side by side, with tailor's CPU per request and its RSS. Then, with
# tailor's open-files limit far below the attack (ulimit -n 4096,
# limits.max_conns above it), descriptor exhaustion: wrk's keep-alive
# connections, opened before the attack, must still be served, tailor must
# not exit, and a new connection must be served once the attack ends.
#
#   bash bench/slowloris.sh
#   ROUNDS=3 DURATION=10s ATTACK_CONNS=20000 bash bench/slowloris.sh
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
ATTACK_CONNS=${ATTACK_CONNS:-20000}
ATTACK_SOURCES=${ATTACK_SOURCES:-20}
ATTACK_RATE=${ATTACK_RATE:-4000}
EXHAUST_NOFILE=${EXHAUST_NOFILE:-4096}
check_knobs
[[ $ATTACK_CONNS =~ ^[1-9][0-9]*$ ]] || die "ATTACK_CONNS must be a positive integer"
need_tools curl go
make_tmp
setup_pinning

# Room for the attack's sockets on both ends (children inherit it): the
# hard limit (20,000 on the machine this was written on, so tailor's
# max_conns, sized from it, is below the attack and eviction is measured
# too). The attack is split over processes of at most 9,000 connections.
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
ATTACK_PROCS=$(((ATTACK_CONNS + 8999) / 9000))

take_port ORIGIN_PORT
take_port PROXY_PORT
take_port ADMIN_PORT

mkdir -p "$TMP/www"
awk 'BEGIN { print "<!DOCTYPE html><html><head><title>Small page</title></head><body><main>";
	for (i = 0; i < 120; i++) print "<p>A paragraph of the small page, line " i ".</p>";
	print "</main></body></html>" }' >"$TMP/www/index.html"
SIZE=$(stat -c %s "$TMP/www/index.html")
nginx_conf origin "    server { listen 127.0.0.1:$ORIGIN_PORT; root $TMP/www; }"
start_nginx origin

build_tailor
log "building the attacker"
(cd "$REPO" && go build -o "$TMP/slowloris" ./bench/slowloris)

# tailor_config NAME [LIMITS]: a pass-through config (no rules).
tailor_config() {
	cat >"$TMP/$1.yaml" <<YAML
listen: "127.0.0.1:$PROXY_PORT"
origin: "http://127.0.0.1:$ORIGIN_PORT"
admin: { listen: "127.0.0.1:$ADMIN_PORT" }
identity: { cookie: { keys: ["$COOKIE_KEY"], secure: false } }
${2:-}
YAML
}
tailor_config tailor
start_tailor tailor "$TMP/tailor.yaml" "$ADMIN_PORT"
URL=http://127.0.0.1:$PROXY_PORT/index.html

# Status and size first: a fast 404 is not a page.
check_page() {
	local got
	got=$(curl -s -o "$TMP/page" -w '%{http_code} %{size_download}' "$URL") || die "no answer from $URL"
	[[ $got == "200 $SIZE" ]] || die "$URL answered '$got', want '200 $SIZE'"
	cmp -s "$TMP/page" "$TMP/www/index.html" || die "tailor's page differs from the origin's"
}
check_page
log "page checked: 200, $SIZE bytes, the origin's bytes"

metric() { curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
rss_mib() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

# wrk_run NAME: one wrk run; appends "name req_s p99_ms non2xx errors cpu_us_req" to $TMP/runs.
wrk_run() {
	local name=$1 out=$TMP/wrk-$1-$RANDOM.txt t0 t1 reqs
	t0=$(cpu_ticks "${PID_OF[tailor]}")
	"${WRK_PIN[@]}" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -H "User-Agent: $BENCH_UA" "$URL" >"$out" 2>&1
	t1=$(cpu_ticks "${PID_OF[tailor]}")
	reqs=$(awk '/requests in/ {print $1}' "$out")
	awk -v n="$name" -v reqs="$reqs" -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" '
		/Requests\/sec/ {rps = $2}
		/^ +99%/ {p99 = $2}
		/Non-2xx/ {non = $NF}
		/Socket errors/ {err = $0; sub(/.*Socket errors: /, "", err); gsub(/ /, "", err)}
		END {
			printf "%s\t%s\t%s\t%s\t%s\t%.1f\n", n, rps, p99, non + 0, (err == "" ? "none" : err), (reqs > 0 ? ticks / hz * 1e6 / reqs : 0)
		}' "$out" >>"$TMP/runs"
}

# attack SECONDS [DELAY]: starts the attackers for SECONDS after DELAY
# seconds (ATTACK_PROCS processes
# sharing ATTACK_CONNS and the source addresses); ATTACK_PIDS are theirs.
attack() {
	local i per=$(((ATTACK_CONNS + ATTACK_PROCS - 1) / ATTACK_PROCS))
	ATTACK_PIDS=()
	for ((i = 0; i < ATTACK_PROCS; i++)); do
		"${WRK_PIN[@]}" "$TMP/slowloris" -addr "127.0.0.1:$PROXY_PORT" -conns "$per" -sources "$ATTACK_SOURCES" \
			-first $((2 + i * ATTACK_SOURCES)) -rate $((ATTACK_RATE / ATTACK_PROCS)) -duration "${1}s" -delay "${2:-0}s" -report 1s \
			>"$TMP/attack-$i.log" 2>&1 &
		ATTACK_PIDS+=($!)
		PIDS+=($!)
	done
}
stop_attack() {
	local p
	for p in "${ATTACK_PIDS[@]}"; do stop_pid "$p"; done
}
# attack_col N: column N of the attackers' last report lines, summed
# (2 open, 4 opened, 6 cut by the server, 8 dial errors).
attack_col() {
	local f sum=0 v
	for f in "$TMP"/attack-*.log; do
		v=$(awk -v c="$1" '/^open/ {o = $c} END {print o + 0}' "$f")
		sum=$((sum + v))
	done
	echo "$sum"
}

# wait_held: until the attackers hold ATTACK_CONNS connections (or 60 s).
wait_held() {
	local i open
	for ((i = 0; i < 600; i++)); do
		open=$(attack_col 2)
		((open >= ATTACK_CONNS)) && return 0
		sleep 0.1
	done
	log "WARNING: the attackers hold $open of $ATTACK_CONNS connections (the rest are being cut and reopened)"
}

: >"$TMP/runs"
: >"$TMP/held"
: >"$TMP/attack-cpu"
ramp=$((ATTACK_CONNS / ATTACK_RATE + 2))
log "plan: $ROUNDS round(s) of wrk -c$CONNECTIONS -d$DURATION without and with $ATTACK_CONNS slowloris connections" \
	"from $ATTACK_SOURCES addresses (ramp ~${ramp}s), then the exhaustion run; ~$(((ROUNDS * (2 * DUR_S + ramp + 4) + 2 * DUR_S + 40) / 60 + 1)) min"
wait_idle
for ((r = 1; r <= ROUNDS; r++)); do
	log "round $r: without the attack"
	wrk_run baseline
	attack $((ramp + DUR_S + 30))
	wait_held
	log "round $r: with $(attack_col 2) connections held"
	a0=0 a1=0
	for p in "${ATTACK_PIDS[@]}"; do a0=$((a0 + $(cpu_ticks "$p"))); done
	wrk_run attack
	for p in "${ATTACK_PIDS[@]}"; do a1=$((a1 + $(cpu_ticks "$p"))); done
	echo "$(((a1 - a0) * 100 / CLK_TCK / DUR_S))" >>"$TMP/attack-cpu"
	printf '%s\t%s\t%s\t%s\t%s\n' "$(attack_col 2)" "$(metric tailor_open_connections)" \
		"$(rss_mib "${PID_OF[tailor]}")" "$(attack_col 6)" "$(metric tailor_connections_evicted_total)" >>"$TMP/held"
	stop_attack
	check_page
	sleep 2 # the attack's sockets close
done

med() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n {print $c}' "$TMP/runs" | median; }
p99med() { awk -F'\t' -v n="$1" '$1 == n {print $3}' "$TMP/runs" | while read -r v; do to_ms "$v"; echo; done | median; }
echo
printf '%-26s %12s %12s %14s\n' "" "req/s" "p99 (ms)" "tailor µs/req"
printf '%-26s %12.0f %12.2f %14.1f\n' "without the attack" "$(med baseline 2)" "$(p99med baseline)" "$(med baseline 6)"
printf '%-26s %12.0f %12.2f %14.1f\n' "with $ATTACK_CONNS held" "$(med attack 2)" "$(p99med attack)" "$(med attack 6)"
awk -F'\t' '{printf "  run %-9s %10s req/s  p99 %-9s non-2xx %s  socket errors %s\n", $1, $2, $3, $4, $5}' "$TMP/runs"
awk -F'\t' '{printf "  attack round %d: attackers held %s, tailor_open_connections %s, tailor RSS %s MiB, attack connections cut so far %s, evicted so far %s\n", NR, $1, $2, $3, $4, $5}' "$TMP/held"
printf '  ratio (with / without): req/s %.2f, p99 %.2f, tailor CPU per request %.2f\n' \
	"$(awk -v a="$(med attack 2)" -v b="$(med baseline 2)" 'BEGIN {print a / b}')" \
	"$(awk -v a="$(p99med attack)" -v b="$(p99med baseline)" 'BEGIN {print a / b}')" \
	"$(awk -v a="$(med attack 6)" -v b="$(med baseline 6)" 'BEGIN {print a / b}')"
echo "  the attackers used $(median <"$TMP/attack-cpu")% of core 0 (wrk's core) during the attack runs (median)"
echo "  tailor_connections_refused_total: $(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep '^tailor_connections_refused_total' | tr '\n' ' ')"
echo "  tailor_rejected_requests_total{reason=\"timeout\"}: $(metric 'tailor_rejected_requests_total{reason="timeout"}')"

# ---------------------------------------------------------------- exhaustion
stop_pid "${PID_OF[tailor]}"
tailor_config exhaust "limits: { max_conns: 1000000, max_conns_per_ip: 1000000 }"
log "exhaustion: tailor under ulimit -n $EXHAUST_NOFILE, limits.max_conns 1000000; $ATTACK_CONNS attack connections"
(ulimit -n "$EXHAUST_NOFILE" && exec "${SRV_PIN[@]}" env GOMAXPROCS=1 "$TAILOR_BIN" serve --config "$TMP/exhaust.yaml") 2>"$TMP/exhaust.log" &
PIDS+=($!)
PID_OF[tailor]=$!
wait_http tailor "http://127.0.0.1:$ADMIN_PORT/healthz" "${PID_OF[tailor]}"
check_page
: >"$TMP/runs"
attack $((ramp + DUR_S + 5)) 3 # after wrk has connected
DUR_SAVE=$DURATION
DURATION=$((DUR_S + ramp + 5))s
wrk_run exhaustion
DURATION=$DUR_SAVE
alive=no
kill -0 "${PID_OF[tailor]}" 2>/dev/null && alive=yes
errors=$(metric tailor_accept_errors_total)
stop_attack
sleep 2
served=no
for ((i = 0; i < 50; i++)); do
	if curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL" | grep -q 200; then served=yes; break; fi
	sleep 0.2
done
echo
awk -F'\t' '{printf "exhaustion: wrk over its keep-alive connections, opened before the attack: %s req/s, p99 %s, non-2xx %s, socket errors %s\n", $2, $3, $4, $5}' "$TMP/runs"
echo "exhaustion: tailor still running: $alive; tailor_accept_errors_total $errors; a new connection served after the attack: $served"
[[ $alive == yes && $served == yes ]] || die "tailor did not survive descriptor exhaustion"
