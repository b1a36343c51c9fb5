#!/usr/bin/env bash
# Whole-system benchmark of visitor identity and profile lookup (issue 5):
# a small page (~2 KB) through three tailors on the same origin, every
# request from one returning visitor (a valid signed tailor_id cookie):
#
#   tailor-pass     no rules for the pages: pass-through, plus the cookie
#                   check every HTML response gets
#   tailor-rules    rules, no NATS, so no profile
#   tailor-profile  the same rules, with the embedded NATS server: the
#                   visitor's profile is a cache hit (events off: their
#                   cost is bench/events.sh's to measure)
#
# Two copies of the page: on small.html a rule rewrites the greeting with
# the profile's first name; on lookup.html the one rule needs a segment
# the visitor lacks, so the page is looked up, decided and served as the
# origin sent it. lookup.html through tailor-profile against tailor-pass is
# what identity + profile lookup cost (issue 5's figure); small.html adds a
# rewrite. Same layout and machinery as passthrough.sh (bench/lib.sh).
# See bench/README.md.
#
#   bash bench/profiles.sh
#
# Environment (all optional): as passthrough.sh
#   ROUNDS=3  DURATION=8s  CONNECTIONS=64  WARMUP=2s  WRK_CPU=0  SERVER_CPU=1
#   TAILOR_BIN=...  IDLE_WAIT=60  OUT=FILE  KEEP_TMP=1
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TARGETS=(tailor-pass tailor-rules tailor-profile)
FILES=(lookup.html small.html)
GOAL=0.90 # issue 5: req/s with identity + profile lookup >= 90% of pass-through

check_knobs
need_tools openssl
setup_pinning
log_plan "plus the build (and up to ${IDLE_WAIT}s if the machine is busy)"
wait_idle
make_tmp

take_port ORIGIN_PORT
for t in PASS RULES PROFILE; do
	take_port "${t}_PORT"
	take_port "${t}_ADMIN"
done
take_port NATS_PORT

declare -A URL_BASE=(
	[origin]="http://127.0.0.1:$ORIGIN_PORT"
	[tailor-pass]="http://127.0.0.1:$PASS_PORT"
	[tailor-rules]="http://127.0.0.1:$RULES_PORT"
	[tailor-profile]="http://127.0.0.1:$PROFILE_PORT"
)

# ---------------------------------------------------------------- content
WWW=$TMP/www
mkdir -p "$WWW"
{
	echo '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>'
	echo '<link rel="stylesheet" href="/site.css"></head><body>'
	echo '<header><nav><a href="/">Home</a> <a href="/products/">Products</a> <a href="/cart">Cart</a></nav></header>'
	echo '<main><p class="greeting">Hello there</p>'
	for i in $(seq 1 12); do
		echo "<section class=\"card\"><h2>Product $i</h2><p>Light, fast and made to last: the shoe for every run, road or trail.</p></section>"
	done
	echo '</main><footer><p>&copy; 2026 Shop</p></footer></body></html>'
} >"$WWW/small.html"
cp "$WWW/small.html" "$WWW/lookup.html"
chmod 755 "$WWW"
chmod 644 "$WWW"/*
SIZE=$(stat -c %s "$WWW/small.html")
log "content: small.html $SIZE bytes (text/html)"

# ---------------------------------------------------------------- visitor
# A returning visitor: signed tailor_id and tailor_state cookies
# (bench/lib.sh).
new_visitor
COOKIE="$ID_COOKIE; $(state_cookie)"
WRK_ARGS=(-H "Cookie: $COOKIE")
ADMIN_TOKEN=bench-admin-token

# ---------------------------------------------------------------- configs
nginx_conf origin "
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $WWW;
    }"

mkdir -p "$TMP/rules-none" "$TMP/rules"
cat >"$TMP/rules/site.yaml" <<'EOR'
stages: [awareness, interest, intent, purchase, retention]
pages:
  - match: ["/small.html"]
    rules:
      - id: greet
        select: ".greeting"
        text: "Hello {{ .Traits.first_name }}"
  - match: ["/lookup.html"]
    rules:
      - id: greet-members
        when: { segment: [members-only] }
        select: ".greeting"
        text: "Hello {{ .Traits.first_name }}"
EOR
tailor_yaml() { # tailor_yaml PORT ADMIN RULES-DIR [NATS-BLOCK]
	cat <<EOC
listen: "127.0.0.1:$1"
origin: "http://127.0.0.1:$ORIGIN_PORT"
admin: { listen: "127.0.0.1:$2", token: "$ADMIN_TOKEN" }
identity: { cookie: { keys: ["$COOKIE_KEY"] } }
rules: { dir: "$3", watch: false }
${4:-}
EOC
}
tailor_yaml "$PASS_PORT" "$PASS_ADMIN" "$TMP/rules-none" >"$TMP/pass.yaml"
tailor_yaml "$RULES_PORT" "$RULES_ADMIN" "$TMP/rules" >"$TMP/rules.yaml"
tailor_yaml "$PROFILE_PORT" "$PROFILE_ADMIN" "$TMP/rules" \
	"nats: { embedded: true, url: \"nats://127.0.0.1:$NATS_PORT\", data_dir: \"$TMP/nats\", events_stream: \"\" }" >"$TMP/profile.yaml"

# ---------------------------------------------------------------- build, start
build_tailor
for c in pass rules profile; do
	"$TAILOR_BIN" check --config "$TMP/$c.yaml" >/dev/null || die "tailor check rejected $TMP/$c.yaml"
done
start_nginx origin
wait_http origin "${URL_BASE[origin]}/small.html" "${PID_OF[origin]}"
start_tailor tailor-pass "$TMP/pass.yaml" "$PASS_ADMIN"
start_tailor tailor-rules "$TMP/rules.yaml" "$RULES_ADMIN"
start_tailor tailor-profile "$TMP/profile.yaml" "$PROFILE_ADMIN"

# The visitor's profile, written through the admin API into the embedded
# server's bucket (5 segments, 3 traits).
DOC="{\"id\":\"$VISITOR\",\"segments\":[\"vip\",\"runner\",\"newsletter\",\"mobile\",\"de\"],\"stage\":\"interest\",\"traits\":{\"first_name\":\"Bench\",\"city\":\"Lyon\",\"tier\":\"gold\"}}"
for i in $(seq 1 50); do
	code=$(curl -sS -o "$TMP/put.out" -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN_TOKEN" \
		--data-binary "$DOC" "http://127.0.0.1:$PROFILE_ADMIN/v1/profiles/$VISITOR" || true)
	[[ $code == 200 ]] && break
	sleep 0.2
done
[[ $code == 200 ]] || die "could not store the visitor's profile: $code $(cat "$TMP/put.out")"

# ---------------------------------------------------------------- checks
# Every target answers 200 with the page it should, and sets no cookie
# (the visitor's verifies); the profile target shows the profile.
declare -A WANT=(
	[tailor-pass/small.html]="Hello there" [tailor-rules/small.html]="<p class=\"greeting\">Hello </p>"
	[tailor-profile/small.html]="Hello Bench"
	[tailor-pass/lookup.html]="Hello there" [tailor-rules/lookup.html]="Hello there" [tailor-profile/lookup.html]="Hello there"
)
verify() {
	local t f got
	for t in "${TARGETS[@]}"; do
		for f in "${FILES[@]}"; do
			for _ in 1 2 3; do # the profile target's first answer may come before its fill
				got=$(curl -sS -A "$BENCH_UA" -D "$TMP/check.head" -o "$TMP/check.body" -w '%{http_code}' --max-time 10 \
					-H "Cookie: $COOKIE" "${URL_BASE[$t]}/$f") || die "$t /$f: curl failed"
				grep -qF "${WANT[$t/$f]}" "$TMP/check.body" && break
				sleep 0.2
			done
			[[ $got == 200 ]] || die "$t /$f: status $got, want 200"
			grep -qF "${WANT[$t/$f]}" "$TMP/check.body" || die "$t /$f: body lacks '${WANT[$t/$f]}': $(head -c 300 "$TMP/check.body")"
			! grep -qi '^set-cookie:' "$TMP/check.head" || die "$t /$f: the visitor's cookie did not verify (Set-Cookie sent)"
			if [[ $f == lookup.html ]]; then
				cmp -s "$TMP/check.body" "$WWW/lookup.html" || die "$t /$f: not the origin's bytes"
			fi
		done
	done
}
verify
log "checked: all 3 targets answer 200 with their pages for the returning visitor, no Set-Cookie"

# ---------------------------------------------------------------- measure
init_results
measure_all
for t in origin tailor-pass tailor-rules tailor-profile; do
	kill -0 "${PID_OF[$t]}" 2>/dev/null || die "$t died during the run (logs in $TMP)"
done
verify
hits=$(curl -sS "http://127.0.0.1:$PROFILE_ADMIN/metrics" | awk '/^tailor_profile_lookups_total\{result="hit"\}/{print $2}')
log "tailor-profile served $hits profile cache hits"
[[ -n $OUT ]] && cp "$RESULTS" "$OUT" && log "raw results saved to $OUT"

# ---------------------------------------------------------------- report
echo
echo "tailor identity + profile benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
echo "wrk -t1 -c$CONNECTIONS -d$DURATION --latency, one returning visitor's cookie; $ROUNDS interleaved round(s), medians;" \
	"$( ((PIN)) && echo "wrk on core $WRK_CPU, origin + proxy on core $SERVER_CPU" || echo "no CPU pinning")"
echo "origin: nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'), 1 worker; tailor $("$TAILOR_BIN" version 2>/dev/null | awk '{print $2}') GOMAXPROCS=1"
echo
report_table
echo
for f in "${FILES[@]}"; do
	awk -v f="$f" -v p="${MED[$f/tailor-profile]}" -v r="${MED[$f/tailor-rules]}" -v s="${MED[$f/tailor-pass]}" -v g="$GOAL" \
		-v pc="${PCPU[$f/tailor-profile]}" -v rc="${PCPU[$f/tailor-rules]}" -v sc="${PCPU[$f/tailor-pass]}" 'BEGIN{
		goal = (f == "lookup.html") ? sprintf("(goal >= %.2f)", g) : "(with a rewrite)"
		printf "%-11s profile/pass  req/s = %.2f %-17s CPU/req %.2f\n", f, p/s, goal, pc/sc
		printf "%-11s profile/rules req/s = %.2f %-17s CPU/req %.2f\n", f, p/r, "(the lookup)", pc/rc }'
done
echo
report_legend "proxy us/r: CPU time (user+sys) of the tailor process per request (the embedded NATS server is inside tailor-profile's process)."
